//! Programs pinned by another lanbridge build (an upgrade, a downgrade, or a
//! build from before the version marker) are replaced in place: every TCX
//! link moves to the new program with `BPF_LINK_UPDATE`, atomically, so a
//! pod's traffic never passes unfiltered or unforwarded. Maps whose
//! definition is unchanged are kept with their entries (the pods'
//! endpoints, flows, counters). A map whose layout changed is recreated;
//! when only its values grew (layouts grow at the end, new fields zero =
//! off) and its keys did not change, its entries are copied over
//! zero-extended before any link moves, so running pods keep their
//! endpoints; otherwise it starts empty and is named in the log.

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::SchedClassifierLink;
use aya::programs::{ProgramInfo, SchedClassifier};
use aya::{Ebpf, EbpfLoader};

use super::error::DatapathError;
use super::object::{MAPS, PROGRAMS};
use super::pins::Pins;
use super::raw;
use crate::node::gone::done;

/// The build whose programs are pinned; `None` before the marker existed.
pub fn pinned_build(pins: &Pins) -> Option<u64> {
    let data = MapData::from_pin(pins.version()).ok()?;
    let map: Array<MapData, u64> = Map::Array(data).try_into().ok()?;
    map.get(&0, 0).ok()
}

/// Pins the marker saying build `id`'s programs are pinned here.
pub fn mark(pins: &Pins, id: u64) -> Result<(), DatapathError> {
    let err = |source| DatapathError::Map {
        name: "lb_version",
        source,
    };
    let mut map = Array::<MapData, u64>::create(1, 0).map_err(err)?;
    map.set(0, id, 0).map_err(err)?;
    let path = pins.version();
    let tmp = staged(&path, "new");
    done(fs::remove_file(&tmp)).map_err(|e| DatapathError::io("unpinning a stale marker", e))?;
    map.pin(&tmp).map_err(|source| DatapathError::Pin {
        path: tmp.clone(),
        source,
    })?;
    replace_pin(&tmp, &path)
}

/// Replaces the pinned programs (and maps whose layout changed) with those
/// of `object` and moves every link over; the caller holds the load lock.
pub fn replace(pins: &Pins, object: &[u8], id: u64) -> Result<(), DatapathError> {
    let keep = unchanged_maps(pins, object)?;
    let mut loader = EbpfLoader::new();
    for name in &keep {
        loader.map_pin_path(name, pins.object(name));
    }
    let mut ebpf = loader.load(object)?;
    for name in PROGRAMS {
        program(&mut ebpf, name)?
            .load()
            .map_err(|source| DatapathError::Program { name, source })?;
    }
    let old: HashMap<u32, &'static str> = PROGRAMS
        .iter()
        .filter_map(|&n| Some((ProgramInfo::from_pin(pins.object(n)).ok()?.id(), n)))
        .collect();
    for name in PROGRAMS {
        let tmp = staged(&pins.object(name), "new");
        program(&mut ebpf, name)?
            .pin(&tmp)
            .map_err(|source| DatapathError::Pin {
                path: tmp.clone(),
                source,
            })?;
        replace_pin(&tmp, &pins.object(name))?;
    }
    // New maps first, filled from the old ones, so the programs find the
    // pods' entries the moment their links move.
    let changed: Vec<&'static str> = MAPS.into_iter().filter(|n| !keep.contains(n)).collect();
    for &name in &changed {
        let tmp = pin_staged(&ebpf, name, &pins.object(name), "new")?;
        if !pins.object(name).exists() {
            tracing::info!("map {name}: new in this build");
            continue;
        }
        match migrate(&pins.object(name), &tmp) {
            Ok(Some(n)) => {
                tracing::warn!("map {name} changed its layout: {n} entries carried over")
            }
            Ok(None) => tracing::warn!("map {name} changed its layout: recreated empty"),
            Err(e) => tracing::warn!("map {name} changed its layout, recreated empty: {e}"),
        }
    }
    for ifname in pins.linked_interfaces() {
        for egress in [false, true] {
            move_link(pins, &mut ebpf, &old, &pins.link(&ifname, egress))?;
        }
    }
    for &name in &changed {
        replace_pin(&staged(&pins.object(name), "new"), &pins.object(name))?;
    }
    mark(pins, id)?;
    tracing::info!("replaced the programs in {}", pins.dir().display());
    Ok(())
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, DatapathError> {
    ebpf.program_mut(name)
        .ok_or(DatapathError::Missing(name))?
        .try_into()
        .map_err(|source| DatapathError::Program { name, source })
}

/// Pinned maps whose type, key, value, size and flags the new object keeps.
fn unchanged_maps(pins: &Pins, object: &[u8]) -> Result<Vec<&'static str>, DatapathError> {
    let probe = EbpfLoader::new().load(object)?;
    let mut keep = Vec::new();
    for name in MAPS {
        let Ok(old) = MapInfo::from_pin(pins.object(name)) else {
            continue;
        };
        // The kernel reports a map's definition through a pin only.
        let tmp = pin_staged(&probe, name, &pins.object(name), "probe")?;
        let new = MapInfo::from_pin(&tmp);
        done(fs::remove_file(&tmp)).map_err(|e| DatapathError::io("unpinning a probe", e))?;
        let new = new.map_err(|source| DatapathError::Map { name, source })?;
        let same = old.map_type().ok() == new.map_type().ok()
            && old.key_size() == new.key_size()
            && old.value_size() == new.value_size()
            && old.max_entries() == new.max_entries()
            && old.map_flags() == new.map_flags();
        if same {
            keep.push(name);
        }
    }
    Ok(keep)
}

/// Points the link pinned at `path` at the new program of the same name as
/// the one it runs (`BPF_LINK_UPDATE`: no moment without a program).
fn move_link(
    pins: &Pins,
    ebpf: &mut Ebpf,
    old: &HashMap<u32, &'static str>,
    path: &Path,
) -> Result<(), DatapathError> {
    let link_err = |source| DatapathError::Link {
        path: path.to_path_buf(),
        source,
    };
    let pinned = match PinnedLink::from_pin(path) {
        Ok(p) => p,
        Err(aya::programs::links::LinkError::SyscallError(e))
            if e.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(())
        }
        Err(e) => return Err(link_err(e)),
    };
    let fd = FdLink::from(pinned);
    let prog_id = fd.info().map_err(link_err)?.program_id();
    let Some(&name) = old.get(&prog_id) else {
        tracing::warn!(
            "{} runs program {prog_id}, not one of {}: left as it is",
            path.display(),
            pins.dir().display()
        );
        return Ok(());
    };
    let link: SchedClassifierLink = fd.try_into().map_err(link_err)?;
    let prog = program(ebpf, name)?;
    let id = prog
        .attach_to_link(link)
        .map_err(|source| DatapathError::Program { name, source })?;
    // The pin holds the link; this process's handle on it may go.
    drop(
        prog.take_link(id)
            .map_err(|source| DatapathError::Program { name, source })?,
    );
    Ok(())
}

/// Copies the entries of the map pinned at `old` into the one pinned at
/// `new`, each value zero-extended; `None` when the layouts do not allow it
/// (another type or key, or a smaller value).
pub fn migrate(old: &Path, new: &Path) -> Result<Option<usize>, DatapathError> {
    let open = |p: &Path| {
        MapData::from_pin(p).map_err(|source| DatapathError::Map {
            name: "migrated map",
            source,
        })
    };
    let (old, new) = (open(old)?, open(new)?);
    let info = |m: &MapData| {
        m.info().map_err(|source| DatapathError::Map {
            name: "migrated map",
            source,
        })
    };
    let (a, b) = (info(&old)?, info(&new)?);
    let same_type = a.map_type().ok() == b.map_type().ok();
    // Per-CPU values are laid out per CPU: not carried over.
    let type_ok = matches!(
        a.map_type(),
        Ok(MapType::Hash | MapType::Array | MapType::LruHash | MapType::LpmTrie)
    );
    if !same_type || !type_ok || a.key_size() != b.key_size() || a.value_size() > b.value_size() {
        return Ok(None);
    }
    raw::copy(
        old.fd().as_fd(),
        new.fd().as_fd(),
        a.key_size() as usize,
        b.value_size() as usize,
    )
    .map(Some)
    .map_err(|e| DatapathError::io("copying map entries", e))
}

/// A pin next to `path` for a new object (bpffs refuses names with a dot).
fn staged(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("_{what}"));
    path.with_file_name(name)
}

/// Pins `ebpf`'s map `name` next to `path` as [`staged`] `what`, in place of
/// a stale one a crashed run left there; the staged path.
fn pin_staged(
    ebpf: &Ebpf,
    name: &'static str,
    path: &Path,
    what: &str,
) -> Result<PathBuf, DatapathError> {
    let tmp = staged(path, what);
    done(fs::remove_file(&tmp)).map_err(|e| DatapathError::io("unpinning a stale pin", e))?;
    ebpf.map(name)
        .ok_or(DatapathError::Missing(name))?
        .pin(&tmp)
        .map_err(|source| DatapathError::Pin {
            path: tmp.clone(),
            source,
        })?;
    Ok(tmp)
}

/// Renames a fresh pin over the old one (bpffs renames atomically).
fn replace_pin(new: &Path, old: &Path) -> Result<(), DatapathError> {
    fs::rename(new, old).map_err(|e| DatapathError::io(format!("replacing {}", old.display()), e))
}

//! Loading a network's programs and maps once and pinning them. Later plugin
//! runs only open the pins. A lock file serialises first loads that race.

use std::fs;

use aya::programs::SchedClassifier;
use aya::EbpfLoader;

use super::error::DatapathError;
use super::maps::Maps;
use super::object::{embedded, MAPS, PROGRAMS};
use super::pins::Pins;
use super::upgrade;
use crate::node::gone::done;

/// A complete load by some lanbridge build: programs are pinned last. An
/// older build's may lack maps this build added.
pub fn is_loaded(pins: &Pins) -> bool {
    PROGRAMS.iter().all(|name| pins.object(name).exists())
}

/// This build's programs and all its maps are pinned.
fn is_current(pins: &Pins, id: u64) -> bool {
    is_loaded(pins)
        && MAPS.iter().all(|name| pins.object(name).exists())
        && upgrade::pinned_build(pins) == Some(id)
}

/// Loads and pins the programs and maps unless this build's already are;
/// another build's are replaced ([`upgrade`]).
pub fn ensure_loaded(pins: &Pins) -> Result<(), DatapathError> {
    let Some((object, id)) = embedded() else {
        // Nothing to load or compare with: whatever is pinned serves.
        return match is_loaded(pins) {
            true => Ok(()),
            false => Err(DatapathError::NoObject),
        };
    };
    if is_current(pins, id) {
        return Ok(());
    }
    let _lock = pins.lock()?;
    if is_current(pins, id) {
        return Ok(());
    }
    if is_loaded(pins) {
        upgrade::replace(pins, object, id)?;
        return Maps::rebuild_ip_slots(pins, false);
    }
    // A previous load that died half-way: start over.
    remove_objects(pins)?;
    let loaded = load_and_pin(pins, object)
        .and_then(|()| Maps::rebuild_ip_slots(pins, true))
        .and_then(|()| upgrade::mark(pins, id));
    if let Err(e) = loaded {
        if let Err(cleanup) = remove_objects(pins) {
            tracing::error!("removing a partial load: {cleanup}");
        }
        return Err(e);
    }
    Ok(())
}

/// Brings a loaded datapath to this build (DEL, GC and the daemon find an
/// older build's pins after an upgrade of the binary); `false` when none
/// is loaded.
pub fn ensure_current(pins: &Pins) -> Result<bool, DatapathError> {
    if !is_loaded(pins) {
        return Ok(false);
    }
    ensure_loaded(pins)?;
    Ok(true)
}

fn load_and_pin(pins: &Pins, object: &[u8]) -> Result<(), DatapathError> {
    let mut ebpf = EbpfLoader::new().load(object)?;
    fs::create_dir_all(pins.dir())
        .map_err(|e| DatapathError::io(format!("creating {}", pins.dir().display()), e))?;
    for name in MAPS {
        let path = pins.object(name);
        ebpf.map(name)
            .ok_or(DatapathError::Missing(name))?
            .pin(&path)
            .map_err(|source| DatapathError::Pin { path, source })?;
    }
    // Programs last: their pins are what later runs take as "loaded".
    for name in PROGRAMS {
        let prog_err = |source| DatapathError::Program { name, source };
        let prog: &mut SchedClassifier = ebpf
            .program_mut(name)
            .ok_or(DatapathError::Missing(name))?
            .try_into()
            .map_err(prog_err)?;
        prog.load().map_err(prog_err)?;
        let path = pins.object(name);
        prog.pin(&path)
            .map_err(|source| DatapathError::Pin { path, source })?;
    }
    Ok(())
}

/// Unpins the network's programs and maps (links are unpinned by their owners).
pub fn remove_objects(pins: &Pins) -> Result<(), DatapathError> {
    for path in MAPS
        .iter()
        .chain(PROGRAMS.iter())
        .map(|name| pins.object(name))
        .chain([pins.version()])
    {
        done(fs::remove_file(&path))
            .map_err(|e| DatapathError::io(format!("unpinning {}", path.display()), e))?;
    }
    Ok(())
}

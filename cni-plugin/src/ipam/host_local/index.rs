//! lanbridge's index of a host-local store by owner, so ADD, DEL and CHECK
//! find an attachment's addresses without reading every allocation (one
//! file per address: with 200 pods, 1,000 system calls of every ADD).
//!
//! `<dataDir>/.lanbridge-owners/<network>/` holds one file per owner
//! listing its addresses, and `synced`: the `last_reserved_ip.*` values as
//! of the last change, present only while the index matches the store.
//! Every change of the store removes it first and writes it back last, so a
//! crash in between leaves no marker; another writer (the reference plugin,
//! an older build) moves `last_reserved_ip` with each reservation. Either
//! way the next lookup rebuilds the index from a full read. An address the
//! index lists is still checked against its file (another writer may have
//! released it). Outside the network's directory: the reference reads every
//! file under it as an allocation. An index without owners is removed, so
//! a network's last DEL leaves nothing of it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::owner::Owner;
use crate::node::gone::{done, found};
use crate::node::naming;

pub struct OwnerIndex {
    dir: PathBuf,
    /// Whether `synced` is on disk (as far as this run knows).
    synced: bool,
}

impl OwnerIndex {
    pub fn new(data_dir: &Path, network: &str) -> OwnerIndex {
        OwnerIndex {
            dir: data_dir.join(".lanbridge-owners").join(network),
            synced: true,
        }
    }

    fn marker(&self) -> PathBuf {
        self.dir.join("synced")
    }

    fn entry(&self, owner: &Owner) -> PathBuf {
        self.dir
            .join(naming::ipam_owner_file(&owner.container_id, &owner.ifname))
    }

    /// Whether the index matches a store whose `last_reserved_ip`s read `stamp`.
    pub fn matches(&self, stamp: &str) -> io::Result<bool> {
        Ok(found(fs::read_to_string(self.marker()))?.is_some_and(|s| s == stamp))
    }

    /// Before a change of the store.
    pub fn unsync(&mut self) -> io::Result<()> {
        if self.synced {
            done(fs::remove_file(self.marker()))?;
            self.synced = false;
        }
        Ok(())
    }

    /// After a change of the store, which now reads `stamp`.
    pub fn mark_synced(&mut self, stamp: &str) -> io::Result<()> {
        if !self.synced {
            write(&self.marker(), stamp)?;
            self.synced = true;
        }
        Ok(())
    }

    /// The addresses listed for `owner`.
    pub fn get(&self, owner: &Owner) -> io::Result<Vec<IpAddr>> {
        let listed = found(fs::read_to_string(self.entry(owner)))?.unwrap_or_default();
        Ok(listed.lines().filter_map(|l| l.parse().ok()).collect())
    }

    /// Lists `ips` for `owner` (none: removes its entry).
    pub fn set(&self, owner: &Owner, ips: &[IpAddr]) -> io::Result<()> {
        let path = self.entry(owner);
        if ips.is_empty() {
            return done(fs::remove_file(path));
        }
        let listed: String = ips.iter().map(|ip| format!("{ip}\n")).collect();
        write(&path, &listed)
    }

    /// Whether no owner is listed (`synced` and temporary files aside).
    pub fn is_empty(&self) -> io::Result<bool> {
        let Some(entries) = found(fs::read_dir(&self.dir))? else {
            return Ok(true);
        };
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name != "synced" && !name.ends_with(".tmp") {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes the whole index (and `.lanbridge-owners` when no other
    /// network has one); the next lookup rebuilds it.
    pub fn forget(&mut self) -> io::Result<()> {
        done(fs::remove_dir_all(&self.dir))?;
        self.synced = false;
        if let Some(parent) = self.dir.parent() {
            // Another network's index keeps it.
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }

    /// Replaces the whole index with `all`, the store's allocations (an
    /// empty store: no index).
    pub fn rebuild(&mut self, all: &[(IpAddr, Owner)], stamp: &str) -> io::Result<()> {
        self.unsync()?;
        self.forget()?;
        if all.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        let mut by_owner: BTreeMap<String, (&Owner, Vec<IpAddr>)> = BTreeMap::new();
        for (ip, owner) in all {
            by_owner
                .entry(owner.encode())
                .or_insert((owner, Vec::new()))
                .1
                .push(*ip);
        }
        for (owner, ips) in by_owner.values() {
            self.set(owner, ips)?;
        }
        self.mark_synced(stamp)
    }
}

/// Via a temporary file and rename: a reader never sees half a list. Not
/// fsynced: a crash costs the marker at worst, and then a rebuild.
fn write(path: &Path, data: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let written = fs::write(&tmp, data).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        // A full disk must not leave a partial file behind.
        let _ = done(fs::remove_file(&tmp));
    }
    written
}

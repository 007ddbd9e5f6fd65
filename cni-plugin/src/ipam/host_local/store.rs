//! Where host-local keeps its allocations.
//!
//! The on-disk layout is the reference plugin's (`<dataDir>/<network>/<ip>`
//! holding `<containerID>\r\n<ifname>`, `last_reserved_ip.<set>`), so an
//! operator switching plugins keeps the allocations already made. Owners'
//! addresses are found through lanbridge's index beside it ([`OwnerIndex`]).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::index::OwnerIndex;
use super::owner::Owner;
use crate::ipam::IpamError;
use crate::node::gone::done;

/// Allocation bookkeeping; the allocator is pure logic over this.
pub trait Store {
    /// Records `ip` for `owner`; false if it is already taken.
    fn reserve(&mut self, ip: IpAddr, owner: &Owner, set: usize) -> Result<bool, IpamError>;
    fn last_reserved(&self, set: usize) -> Result<Option<IpAddr>, IpamError>;
    fn owner_of(&self, ip: IpAddr) -> Result<Option<Owner>, IpamError>;
    /// Every allocation (GC).
    fn all(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError>;
    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError>;

    /// The addresses `owner` holds.
    fn owned_by(&mut self, owner: &Owner) -> Result<Vec<IpAddr>, IpamError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(_, o)| o == owner)
            .map(|(ip, _)| ip)
            .collect())
    }
}

/// How long an ADD waits for another plugin run holding the store before
/// telling the runtime to try again (code 11) rather than hanging it.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// `flock` with a deadline; `Err(None)` when the deadline passed.
fn lock_within(file: &File, patience: Duration) -> Result<(), Option<io::Error>> {
    let deadline = Instant::now() + patience;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(TryLockError::WouldBlock) => return Err(None),
            Err(TryLockError::Error(e)) => return Err(Some(e)),
        }
    }
}

/// The reference layout on disk, held under an exclusive `flock` for the
/// whole transaction so concurrent plugin runs never hand out one address twice.
pub struct DiskStore {
    dir: PathBuf,
    /// How many range sets (`last_reserved_ip.<set>` files) the network has.
    sets: usize,
    index: OwnerIndex,
    _lock: File,
}

impl DiskStore {
    pub fn open(data_dir: &Path, network: &str, sets: usize) -> Result<DiskStore, IpamError> {
        let dir = data_dir.join(network);
        let err = |source| IpamError::Store {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(err)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(err)?;
        lock_within(&lock, LOCK_PATIENCE).map_err(|e| match e {
            None => IpamError::Busy { path: dir.clone() },
            Some(source) => err(source),
        })?;
        Ok(DiskStore {
            dir,
            sets,
            index: OwnerIndex::new(data_dir, network),
            _lock: lock,
        })
    }

    fn index_err(&self) -> impl FnOnce(io::Error) -> IpamError {
        self.err(&self.dir.with_file_name(".lanbridge-owners"))
    }

    /// What the index records to tell the store's changes apart: every
    /// reservation, by lanbridge or another writer, moves one of these.
    fn stamp(&self) -> Result<String, IpamError> {
        let mut stamp = String::new();
        for set in 0..self.sets {
            let last = self.last_reserved(set)?;
            stamp.push_str(&last.map(|ip| ip.to_string()).unwrap_or_default());
            stamp.push('\n');
        }
        Ok(stamp)
    }

    fn synced(&mut self) -> Result<(), IpamError> {
        let stamp = self.stamp()?;
        self.index.mark_synced(&stamp).map_err(self.index_err())
    }

    fn err(&self, path: &Path) -> impl FnOnce(io::Error) -> IpamError {
        let path = path.to_path_buf();
        move |source| IpamError::Store { path, source }
    }

    /// Writes via a temporary file and rename, so a reader never sees half
    /// a file. Not fsynced: `last_reserved_ip` is only where the next search
    /// starts (the reference does not sync it either), one lost in a crash
    /// starts it at the range's beginning, and an fsync under the store's
    /// lock took 8 ms (median; up to 75) of every ADD on a VM's disk and
    /// made concurrent ADDs queue behind it.
    fn write_atomic(&self, path: &Path, data: &str) -> Result<(), IpamError> {
        let tmp = path.with_extension("tmp");
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(data.as_bytes())?;
            fs::rename(&tmp, path)
        });
        if written.is_err() {
            // A full disk must not leave a partial file behind.
            let _ = done(fs::remove_file(&tmp));
        }
        written.map_err(self.err(path))
    }
}

impl Store for DiskStore {
    fn reserve(&mut self, ip: IpAddr, owner: &Owner, set: usize) -> Result<bool, IpamError> {
        let path = self.dir.join(ip.to_string());
        self.index.unsync().map_err(self.index_err())?;
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                if let Err(e) = f.write_all(owner.encode().as_bytes()) {
                    // An empty file would hold the address for nobody.
                    let _ = done(fs::remove_file(&path));
                    return Err(self.err(&path)(e));
                }
                let last = self.dir.join(format!("last_reserved_ip.{set}"));
                self.write_atomic(&last, &ip.to_string())?;
                let mut ips = self.index.get(owner).map_err(self.index_err())?;
                ips.push(ip);
                self.index.set(owner, &ips).map_err(self.index_err())?;
                self.synced()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.synced()?;
                Ok(false)
            }
            Err(e) => Err(self.err(&path)(e)),
        }
    }

    fn last_reserved(&self, set: usize) -> Result<Option<IpAddr>, IpamError> {
        let path = self.dir.join(format!("last_reserved_ip.{set}"));
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&path)(e)),
        }
    }

    fn owner_of(&self, ip: IpAddr) -> Result<Option<Owner>, IpamError> {
        let path = self.dir.join(ip.to_string());
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(Owner::decode(&s))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&path)(e)),
        }
    }

    fn all(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(self.err(&self.dir))? {
            let entry = entry.map_err(self.err(&self.dir))?;
            let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let data = fs::read_to_string(entry.path()).map_err(self.err(&entry.path()))?;
            out.push((ip, Owner::decode(&data)));
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }

    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        let path = self.dir.join(ip.to_string());
        let owner = self.owner_of(ip)?;
        self.index.unsync().map_err(self.index_err())?;
        done(fs::remove_file(&path)).map_err(self.err(&path))?;
        if let Some(owner) = owner {
            let mut ips = self.index.get(&owner).map_err(self.index_err())?;
            ips.retain(|i| *i != ip);
            self.index.set(&owner, &ips).map_err(self.index_err())?;
        }
        if self.index.is_empty().map_err(self.index_err())? {
            return self.index.forget().map_err(self.index_err());
        }
        self.synced()
    }

    /// Through the index, rebuilt first when it does not match the store;
    /// every address it lists is checked against its file, and those no
    /// longer the owner's (released or truncated meanwhile) are dropped.
    fn owned_by(&mut self, owner: &Owner) -> Result<Vec<IpAddr>, IpamError> {
        let stamp = self.stamp()?;
        if !self.index.matches(&stamp).map_err(self.index_err())? {
            let all = self.all()?;
            self.index.rebuild(&all, &stamp).map_err(self.index_err())?;
        }
        let listed = self.index.get(owner).map_err(self.index_err())?;
        let mut mine = Vec::new();
        for ip in &listed {
            if self.owner_of(*ip)?.as_ref() == Some(owner) {
                mine.push(*ip);
            }
        }
        if mine.len() != listed.len() {
            self.index.set(owner, &mine).map_err(self.index_err())?;
        }
        Ok(mine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_layout_and_exclusive_reserve() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = DiskStore::open(tmp.path(), "net", 1).unwrap();
        let owner = Owner {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        };
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(s.reserve(ip, &owner, 0).unwrap());
        assert!(!s.reserve(ip, &owner, 0).unwrap());
        let raw = fs::read_to_string(tmp.path().join("net/10.0.0.2")).unwrap();
        assert_eq!(raw, "c1\r\neth0");
        assert_eq!(s.last_reserved(0).unwrap(), Some(ip));
        assert_eq!(s.owner_of(ip).unwrap(), Some(owner.clone()));
        assert_eq!(s.all().unwrap(), vec![(ip, owner)]);
        s.release(ip).unwrap();
        s.release(ip).unwrap();
        assert!(s.all().unwrap().is_empty());
    }

    fn owner(id: &str) -> Owner {
        Owner {
            container_id: id.into(),
            ifname: "eth0".into(),
        }
    }

    #[test]
    fn owners_are_found_through_the_index_across_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        {
            let mut s = DiskStore::open(tmp.path(), "net", 1).unwrap();
            assert!(s.owned_by(&owner("a")).unwrap().is_empty());
            assert!(s.reserve(ip("10.0.0.2"), &owner("a"), 0).unwrap());
            assert!(s.reserve(ip("10.0.0.3"), &owner("b"), 0).unwrap());
        }
        let mut s = DiskStore::open(tmp.path(), "net", 1).unwrap();
        assert_eq!(s.owned_by(&owner("a")).unwrap(), vec![ip("10.0.0.2")]);
        // Found without reading every allocation: one that cannot be read
        // fails a full read.
        let unreadable = tmp.path().join("net/10.0.0.99");
        fs::create_dir(&unreadable).unwrap();
        assert!(s.all().is_err());
        assert_eq!(s.owned_by(&owner("a")).unwrap(), vec![ip("10.0.0.2")]);
        fs::remove_dir(&unreadable).unwrap();
        s.release(ip("10.0.0.2")).unwrap();
        assert!(s.owned_by(&owner("a")).unwrap().is_empty());
        assert_eq!(s.owned_by(&owner("b")).unwrap(), vec![ip("10.0.0.3")]);
    }

    #[test]
    fn another_writer_or_a_crash_makes_the_index_rebuild() {
        let tmp = tempfile::tempdir().unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut s = DiskStore::open(tmp.path(), "net", 1).unwrap();
        assert!(s.reserve(ip("10.0.0.2"), &owner("a"), 0).unwrap());
        // The reference plugin reserves for b, and releases a's address.
        fs::write(tmp.path().join("net/10.0.0.9"), "b\r\neth0").unwrap();
        fs::write(tmp.path().join("net/last_reserved_ip.0"), "10.0.0.9").unwrap();
        fs::remove_file(tmp.path().join("net/10.0.0.2")).unwrap();
        assert_eq!(s.owned_by(&owner("b")).unwrap(), vec![ip("10.0.0.9")]);
        assert!(s.owned_by(&owner("a")).unwrap().is_empty());
        // A run killed between the reservation and the index's update
        // leaves no marker behind.
        fs::write(tmp.path().join("net/10.0.0.7"), "c\r\neth0").unwrap();
        fs::remove_file(tmp.path().join(".lanbridge-owners/net/synced")).unwrap();
        assert_eq!(s.owned_by(&owner("c")).unwrap(), vec![ip("10.0.0.7")]);
    }

    #[test]
    fn the_last_release_and_a_lookup_in_an_empty_store_leave_no_index() {
        let tmp = tempfile::tempdir().unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let index = tmp.path().join(".lanbridge-owners");
        let mut s = DiskStore::open(tmp.path(), "net", 1).unwrap();
        assert!(s.owned_by(&owner("a")).unwrap().is_empty());
        assert!(!index.exists(), "a DEL without ADD made an index");
        assert!(s.reserve(ip("10.0.0.2"), &owner("a"), 0).unwrap());
        assert!(s.reserve(ip("10.0.0.3"), &owner("b"), 0).unwrap());
        s.release(ip("10.0.0.2")).unwrap();
        assert_eq!(s.owned_by(&owner("b")).unwrap(), vec![ip("10.0.0.3")]);
        s.release(ip("10.0.0.3")).unwrap();
        assert!(!index.exists(), "the last release left the index");
        assert!(s.reserve(ip("10.0.0.4"), &owner("c"), 0).unwrap());
        drop(s);
        let mut again = DiskStore::open(tmp.path(), "net", 1).unwrap();
        assert_eq!(again.owned_by(&owner("c")).unwrap(), vec![ip("10.0.0.4")]);
    }

    #[test]
    fn a_held_lock_makes_the_caller_try_again_later() {
        let tmp = tempfile::tempdir().unwrap();
        let _held = DiskStore::open(tmp.path(), "net", 1).unwrap();
        let other = File::open(tmp.path().join("net/lock")).unwrap();
        assert!(matches!(
            lock_within(&other, Duration::from_millis(20)),
            Err(None)
        ));
    }
}

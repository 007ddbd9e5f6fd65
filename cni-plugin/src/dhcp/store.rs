//! Leases on disk, one file per attachment, written atomically, so a
//! restarted daemon resumes every renewal timer where it was.
//!
//! `<stateDir>/leases/<network>/<container>:<ifname>.json`; releases that
//! could not be sent (daemon down at DEL) wait in `<stateDir>/release-queue/`.
//! A file that does not decode (truncated, a full disk) is renamed
//! `*.json.corrupt` and named in the log: it never stops the others.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::protocol::{LeaseKey, LeaseRecord};
use super::RecordError;
use crate::node::naming;

type Result<T> = std::result::Result<T, RecordError>;

#[derive(Debug, Clone)]
pub struct LeaseStore {
    root: PathBuf,
}

impl LeaseStore {
    pub fn new(state_dir: &Path) -> LeaseStore {
        LeaseStore {
            root: state_dir.to_path_buf(),
        }
    }

    fn lease_path(&self, key: &LeaseKey) -> PathBuf {
        self.root
            .join("leases")
            .join(&key.network)
            .join(naming::lease_file(&key.container_id, &key.ifname))
    }

    fn queue_path(&self, key: &LeaseKey) -> PathBuf {
        self.root
            .join("release-queue")
            .join(naming::queued_release_file(
                &key.network,
                &key.container_id,
                &key.ifname,
            ))
    }

    pub fn save(&self, record: &LeaseRecord) -> Result<()> {
        write_atomic(&self.lease_path(&record.holder.key), record)
    }

    pub fn load(&self, key: &LeaseKey) -> Result<Option<LeaseRecord>> {
        read_or_set_aside(&self.lease_path(key))
    }

    pub fn remove(&self, key: &LeaseKey) -> Result<()> {
        remove(&self.lease_path(key))
    }

    pub fn all(&self) -> Result<Vec<LeaseRecord>> {
        let dir = self.root.join("leases");
        let mut out = Vec::new();
        for network in list(&dir)? {
            for file in list(&network)? {
                out.extend(read_or_set_aside(&file)?);
            }
        }
        Ok(out)
    }

    /// DEL while the daemon is down: the lease moves to the release queue.
    pub fn queue_release(&self, key: &LeaseKey) -> Result<bool> {
        let from = self.lease_path(key);
        let to = self.queue_path(key);
        mkdir_parent(&to)?;
        match fs::rename(&from, &to) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RecordError::io(
                format!("queueing release of {}", from.display()),
                e,
            )),
        }
    }

    pub fn queued_releases(&self) -> Result<Vec<LeaseRecord>> {
        let mut out = Vec::new();
        for file in list(&self.root.join("release-queue"))? {
            out.extend(read_or_set_aside(&file)?);
        }
        Ok(out)
    }

    pub fn dequeue_release(&self, key: &LeaseKey) -> Result<()> {
        remove(&self.queue_path(key))
    }
}

fn mkdir_parent(path: &Path) -> Result<()> {
    let dir = path.parent().expect("lease paths have a parent");
    fs::create_dir_all(dir).map_err(|e| RecordError::io(format!("creating {}", dir.display()), e))
}

fn write_atomic(path: &Path, record: &LeaseRecord) -> Result<()> {
    mkdir_parent(path)?;
    let tmp = path.with_extension("tmp");
    let data = serde_json::to_vec_pretty(record).expect("lease records serialize");
    let ctx = || format!("writing {}", path.display());
    let file = fs::File::create(&tmp).map_err(|e| RecordError::io(ctx(), e))?;
    io::Write::write_all(&mut &file, &data).map_err(|e| RecordError::io(ctx(), e))?;
    file.sync_all().map_err(|e| RecordError::io(ctx(), e))?;
    fs::rename(&tmp, path).map_err(|e| RecordError::io(ctx(), e))
}

fn read(path: &Path) -> Result<Option<LeaseRecord>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| RecordError::Decode {
                what: "lease record",
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RecordError::io(format!("reading {}", path.display()), e)),
    }
}

/// [`read`], with an undecodable file moved aside (and so out of every
/// later listing) instead of failing.
fn read_or_set_aside(path: &Path) -> Result<Option<LeaseRecord>> {
    match read(path) {
        Err(RecordError::Decode { source, .. }) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            match fs::rename(path, &aside) {
                Ok(()) => tracing::error!(
                    "lease record {} is corrupt ({source}): moved to {}",
                    path.display(),
                    Path::new(&aside).display()
                ),
                Err(e) => tracing::error!(
                    "lease record {} is corrupt ({source}), and moving it aside failed: {e}",
                    path.display()
                ),
            }
            Ok(None)
        }
        other => other,
    }
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(RecordError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Files (or dirs) in `dir` ending in `.json` or being directories; none if `dir` is missing.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordError::io(format!("listing {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| RecordError::io(format!("listing {}", dir.display()), e))?
            .path();
        if path.is_dir() || path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_record_is_set_aside_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::new(dir.path());
        let net = dir.path().join("leases").join("n");
        fs::create_dir_all(&net).unwrap();
        fs::write(net.join("bad:eth0.json"), b"{\"key\": {\"netw").unwrap();
        let queue = dir.path().join("release-queue");
        fs::create_dir_all(&queue).unwrap();
        fs::write(queue.join("n_q:eth0.json"), b"").unwrap();
        assert_eq!(store.all().unwrap(), vec![]);
        assert!(net.join("bad:eth0.json.corrupt").is_file());
        assert!(!net.join("bad:eth0.json").exists());
        assert_eq!(store.queued_releases().unwrap(), vec![]);
        assert!(queue.join("n_q:eth0.json.corrupt").is_file());
    }
}

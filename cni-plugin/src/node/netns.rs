//! Network namespaces. Work that must run *inside* a namespace (opening a
//! netlink socket, writing its sysctls) runs on a short-lived dedicated
//! thread, never on a tokio worker, so no thread of the runtime changes
//! namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::node::error::{Error, Result};

pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens a namespace by path (`CNI_NETNS`); a missing one is code 3.
    pub fn open(path: &Path) -> Result<NetNs> {
        let file = File::open(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NetnsNotFound {
                path: path.to_path_buf(),
                source,
            },
            _ => Error::io(format!("opening netns {}", path.display()), source),
        })?;
        Ok(NetNs {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens `path` only while it names the namespace whose inode is `inode`
    /// (0: any). A `/proc/<pid>/ns/net` path (`ctr run --cni`, nerdctl)
    /// outlives its pod when the PID is reused, and then names another
    /// namespace, perhaps the node's own; in another PID namespace (a daemon
    /// container without hostPID) it names another process's. Either way
    /// it is not the pod's (code 3).
    pub fn open_same(path: &Path, inode: u64) -> Result<NetNs> {
        let ns = NetNs::open(path)?;
        let now = ns.inode()?;
        if inode != 0 && now != inode {
            return Err(Error::NetnsNotFound {
                path: path.to_path_buf(),
                source: io::Error::other(format!(
                    "the path names another namespace here (inode {now}, not {inode})"
                )),
            });
        }
        Ok(ns)
    }

    /// The namespace's inode (what `lsns -t net` shows).
    pub fn inode(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.ino())
            .map_err(|e| Error::io(format!("fstat of netns {}", self.path.display()), e))
    }

    /// The namespace this process runs in (the node's).
    pub fn current() -> Result<NetNs> {
        NetNs::open(Path::new("/proc/thread-self/ns/net"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` on a dedicated thread that has entered this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                f()
            })
            .join()
            .expect("netns worker thread panicked")
        })
        .map_err(|e| Error::io(format!("in netns {}", self.path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_names_another_namespace_is_a_pod_gone() {
        let path = Path::new("/proc/self/ns/net");
        let inode = NetNs::open(path).unwrap().inode().unwrap();
        assert!(NetNs::open_same(path, inode).is_ok());
        assert!(NetNs::open_same(path, 0).is_ok(), "0: a record from before");
        let err = NetNs::open_same(path, inode + 1).err().expect("refused");
        assert!(matches!(err, Error::NetnsNotFound { .. }), "{err}");
        assert!(err.to_string().contains("another namespace"), "{err}");
    }
}

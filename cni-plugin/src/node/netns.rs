//! Network namespaces. Work that must run *inside* a namespace (opening a
//! netlink socket, writing its sysctls) runs on a short-lived dedicated
//! thread, never on a tokio worker, so no thread of the runtime changes
//! namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
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

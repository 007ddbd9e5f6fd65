//! Default node paths, scoped per network namespace. Several node
//! namespaces on one machine (kind-style nodes, simulators, tests) share
//! bpffs, `/var/lib` and `/run`; with the plain defaults they would share
//! programs, maps, ifindex-keyed endpoints, records and the daemon's socket.
//! In the machine's initial namespace the defaults are the plain paths; in
//! any other a `netns-<inode>` directory is added (the inode `lsns -t net`
//! shows). Paths a config or a flag gives are used as given.
//!
//! A dead namespace's inode can be reused by a new one, which would then
//! find the old one's pins and records: the scope's marker holds the netns
//! cookie (unique per boot), and a different cookie means those are stale.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::node::error::{Error, Result};
use crate::node::gone::{done, found};
use crate::node::naming;

/// The initial namespace's inode on current kernels (`PROC_NET_INIT_INO`).
const INIT_NET_INO: u64 = 0xEFFF_FFF9;

/// `netns-<inode>` outside the initial namespace.
static SCOPE: LazyLock<Option<String>> = LazyLock::new(|| {
    let ino = |p: &str| fs::metadata(p).map(|m| m.ino()).ok();
    let current = ino("/proc/thread-self/ns/net")?;
    // PID 1's namespace; when it is hidden (a sandbox denies access even to
    // root), the kernel's fixed inode of the initial one.
    let initial = ino("/proc/1/ns/net").unwrap_or(INIT_NET_INO);
    (current != initial).then(|| naming::scope(current))
});

/// Where the scope's marker lives: `/run`, cleared at boot like bpffs.
const MARKER_ROOT: &str = "/run/lanbridge";

/// A default directory (`pinRoot`, `stateDir`), scoped.
pub fn dir(default: &str) -> PathBuf {
    match &*SCOPE {
        Some(scope) => Path::new(default).join(scope),
        None => PathBuf::from(default),
    }
}

/// A default file (the daemon's socket): scoped in a directory of its own.
pub fn file(default: &str) -> PathBuf {
    let path = Path::new(default);
    match (&*SCOPE, path.parent(), path.file_name()) {
        (Some(scope), Some(parent), Some(name)) => parent.join(scope).join(name),
        _ => path.to_path_buf(),
    }
}

/// Makes sure the scoped `defaults` directories belong to this namespace
/// when one of the `used` paths is one of them: if the marker names another
/// namespace (a dead one whose inode this one got), they are removed first
/// (its pins, records, leases). Nothing to do in the initial namespace or
/// for explicit paths; one small read otherwise.
pub fn claim(defaults: &[&str], used: &[&Path]) -> Result<()> {
    let Some(scope) = &*SCOPE else {
        return Ok(());
    };
    if !used.iter().any(|p| defaults.iter().any(|d| *p == dir(d))) {
        return Ok(());
    }
    let Some(cookie) = netns_cookie() else {
        return Ok(());
    };
    let marker_dir = Path::new(MARKER_ROOT).join(scope);
    let marker = marker_dir.join("netns-cookie");
    let read = || found(fs::read_to_string(&marker)).ok().flatten();
    let mine = cookie.to_string();
    if read().as_deref() == Some(&mine) {
        return Ok(());
    }
    let io = |what: String| move |e| Error::io(what, e);
    let lock_path = marker_dir.join("claim.lock");
    fs::create_dir_all(&marker_dir).map_err(io(format!("creating {}", marker_dir.display())))?;
    let lock =
        fs::File::create(&lock_path).map_err(io(format!("creating {}", lock_path.display())))?;
    lock.lock()
        .map_err(io(format!("locking {}", lock_path.display())))?;
    match read() {
        Some(other) if other == mine => return Ok(()),
        Some(other) => {
            for default in defaults {
                let stale = dir(default);
                tracing::warn!(
                    "{} belonged to a dead network namespace (cookie {other}) with this \
                     one's inode: removing it",
                    stale.display()
                );
                done(fs::remove_dir_all(&stale))
                    .map_err(io(format!("removing {}", stale.display())))?;
            }
        }
        None => {}
    }
    let tmp = marker.with_extension("tmp");
    fs::write(&tmp, &mine)
        .and_then(|()| fs::rename(&tmp, &marker))
        .map_err(io(format!("writing {}", marker.display())))
}

/// Removes this namespace's scope marker (`lanbridge cleanup`, once the
/// scoped pins and state are gone), unless something else lives beside it
/// (the daemon's socket). Returns the directory removed.
pub fn forget() -> Option<PathBuf> {
    let marker_dir = Path::new(MARKER_ROOT).join(SCOPE.as_ref()?);
    let ours = |n: &std::ffi::OsStr| n == "netns-cookie" || n == "claim.lock";
    let only_ours = fs::read_dir(&marker_dir)
        .ok()?
        .all(|e| e.is_ok_and(|e| ours(&e.file_name())));
    if !only_ours {
        return None;
    }
    for name in ["netns-cookie", "claim.lock"] {
        let _ = fs::remove_file(marker_dir.join(name));
    }
    fs::remove_dir(&marker_dir).ok()?;
    // The shared root too, when this was its last scope.
    let _ = fs::remove_dir(MARKER_ROOT);
    Some(marker_dir)
}

/// `SO_NETNS_COOKIE` of this namespace (Linux 5.14+), never reused until reboot.
fn netns_cookie() -> Option<u64> {
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::DGRAM, None).ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cookie)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_defaults_in_the_initial_namespace() {
        // Unit tests run in the machine's namespace.
        assert_eq!(
            super::dir("/var/lib/x"),
            std::path::PathBuf::from("/var/lib/x")
        );
        assert_eq!(
            super::file("/run/x/s.sock"),
            std::path::PathBuf::from("/run/x/s.sock")
        );
        assert!(super::netns_cookie().is_some());
        let p = std::path::Path::new("/nonexistent");
        super::claim(&["/nonexistent"], &[p]).unwrap();
    }
}

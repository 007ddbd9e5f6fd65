//! The one rule of every teardown path: "not found" means done. A DEL, GC or
//! rollback that finds a map entry, link, pin, route, address or file
//! already gone has nothing left to do, whichever API reported it and how.

use std::io;

/// An error that only says the object to remove or read is not there.
pub trait Gone {
    fn is_gone(&self) -> bool;
}

impl Gone for io::Error {
    fn is_gone(&self) -> bool {
        self.kind() == io::ErrorKind::NotFound
    }
}

impl Gone for rtnetlink::Error {
    /// ENODEV: a link; ESRCH / ENOENT: a route or rule; EADDRNOTAVAIL: an address.
    fn is_gone(&self) -> bool {
        const GONE: [i32; 4] = [libc::ENODEV, libc::ESRCH, libc::ENOENT, libc::EADDRNOTAVAIL];
        matches!(self, rtnetlink::Error::NetlinkError(m) if GONE.iter().any(|e| m.raw_code() == -e))
    }
}

impl Gone for aya::maps::MapError {
    /// aya reports a missing key as `KeyNotFound` on lookup but as the
    /// syscall's ENOENT on delete.
    fn is_gone(&self) -> bool {
        match self {
            aya::maps::MapError::KeyNotFound => true,
            aya::maps::MapError::SyscallError(e) => e.io_error.is_gone(),
            _ => false,
        }
    }
}

/// A removal that found nothing to remove succeeded.
pub fn done<E: Gone>(r: Result<(), E>) -> Result<(), E> {
    match r {
        Err(e) if e.is_gone() => Ok(()),
        other => other,
    }
}

/// A lookup that found nothing is `None`, not an error.
pub fn found<T, E: Gone>(r: Result<T, E>) -> Result<Option<T>, E> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first error of a best-effort teardown, with the rest logged: every
/// step runs whatever the others did, and the caller sees one error.
pub fn first_error<E: std::fmt::Display>(mut errors: Vec<E>) -> Result<(), E> {
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors[1..] {
        tracing::error!("also failed: {e}");
    }
    Err(errors.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_in_every_dialect_is_done() {
        let enoent = || io::Error::from_raw_os_error(libc::ENOENT);
        assert!(done(Err(enoent())).is_ok());
        assert!(done(Err(io::Error::from_raw_os_error(libc::EACCES))).is_err());
        let syscall = aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_delete_elem",
            io_error: enoent(),
        });
        assert!(syscall.is_gone());
        assert!(aya::maps::MapError::KeyNotFound.is_gone());
        let busy = aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_delete_elem",
            io_error: io::Error::from_raw_os_error(libc::EBUSY),
        });
        assert!(!busy.is_gone());
        assert_eq!(found(Ok::<_, io::Error>(1)).unwrap(), Some(1));
        assert_eq!(found::<u8, _>(Err(enoent())).unwrap(), None);
    }
}

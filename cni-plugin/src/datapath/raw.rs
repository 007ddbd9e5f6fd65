//! `bpf(2)` commands aya does not offer: element access of maps of any
//! layout (to carry entries across a layout change), a hash map's keys in
//! batches, and what a pinned TCX link is attached to.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const LOOKUP: libc::c_long = 1;
const UPDATE: libc::c_long = 2;
const NEXT_KEY: libc::c_long = 4;

/// `union bpf_attr` as the element commands use it.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `bpf(cmd, attr)`; the return value (a new fd for `OBJ_GET`).
///
/// SAFETY: `attr` must be the `union bpf_attr` layout of `cmd`, its
/// pointers valid for what the kernel reads and writes through them.
unsafe fn sys_bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: as the caller promises.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, std::mem::size_of::<A>()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn bpf(cmd: libc::c_long, fd: BorrowedFd, key: *const u8, value: *mut u8) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        _pad: 0,
        key: key as u64,
        value: value as u64,
        flags: 0,
    };
    // SAFETY: `attr` points at buffers of the map's key and value sizes,
    // which the caller allocated; the kernel reads/writes only those.
    unsafe { sys_bpf(cmd, &mut attr) }.map(drop)
}

/// Copies every entry of `old` into `new`, values zero-extended to
/// `value_size` (at least the old map's).
pub fn copy(
    old: BorrowedFd,
    new: BorrowedFd,
    key_size: usize,
    value_size: usize,
) -> io::Result<usize> {
    let (mut key, mut next) = (vec![0u8; key_size], vec![0u8; key_size]);
    let mut value = vec![0u8; value_size];
    let mut first = true;
    let mut copied = 0;
    loop {
        let from = if first {
            std::ptr::null()
        } else {
            key.as_ptr()
        };
        match bpf(NEXT_KEY, old, from, next.as_mut_ptr()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(copied),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        first = false;
        key.copy_from_slice(&next);
        value.fill(0);
        match bpf(LOOKUP, old, key.as_ptr(), value.as_mut_ptr()) {
            // Deleted meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        bpf(UPDATE, new, key.as_ptr(), value.as_mut_ptr())?;
        copied += 1;
    }
}

const LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr` as the batch commands use it.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every key of a (not per-CPU) hash map, `key_size` bytes each, one after
/// the other: a thousand per system call (`BPF_MAP_LOOKUP_BATCH`), where
/// `GET_NEXT_KEY` takes one per key (65,536 for a full `lb_flows`).
pub fn hash_keys(fd: BorrowedFd, key_size: usize, value_size: usize) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 1024;
    let mut keys = vec![0u8; CHUNK * key_size];
    let mut values = vec![0u8; CHUNK * value_size];
    // A hash map's batch position is its next bucket, a u32.
    let (mut from, mut next) = (0u32, 0u32);
    let mut all = Vec::new();
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &from as *const u32 as u64 },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd.as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: the kernel writes at most `count` keys and values into
        // buffers sized for `CHUNK` of each, and a u32 into `next`.
        let done = match unsafe { sys_bpf(LOOKUP_BATCH, &mut attr) } {
            Ok(_) => false,
            // The end of the map; this call's keys still count.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) => return Err(e),
        };
        all.extend_from_slice(&keys[..attr.count as usize * key_size]);
        if done {
            return Ok(all);
        }
        from = next;
        first = false;
    }
}

/// Deletes `key` from the map; a key already gone is fine.
pub fn delete(fd: BorrowedFd, key: &[u8]) -> io::Result<()> {
    const DELETE: libc::c_long = 3;
    match bpf(DELETE, fd, key.as_ptr(), std::ptr::null_mut()) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

const OBJ_GET: libc::c_long = 7;
const OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The interface a pinned TCX link is attached to; 0 when that interface is
/// gone (the link is defunct: a stale pin).
pub fn tcx_link_ifindex(pin: &std::path::Path) -> io::Result<u32> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: u32,
    }
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let path = std::ffi::CString::new(pin.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut get = ObjGet {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
        path_fd: 0,
        _pad: 0,
    };
    // SAFETY: OBJ_GET reads the NUL-terminated path `pathname` points at.
    let fd = unsafe { sys_bpf(OBJ_GET, &mut get) }?;
    // SAFETY: OBJ_GET returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // struct bpf_link_info: type, id, prog_id, then a union aligned to 8
    // whose `tcx` member starts with the ifindex.
    let mut info = [0u8; 64];
    let mut by_fd = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: info.len() as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: the kernel writes at most `info_len` bytes into `info`.
    unsafe { sys_bpf(OBJ_GET_INFO_BY_FD, &mut by_fd) }?;
    Ok(u32::from_ne_bytes(
        info[16..20].try_into().expect("4 bytes"),
    ))
}

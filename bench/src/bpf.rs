//! bpf(2), as little as the bench needs: an empty TC program (the floor's,
//! and the twin that `ebpf_cost` attaches beside lanbridge's programs),
//! TCX links, pins and the programs attached at a hook.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const TCX_INGRESS: u32 = 46;
pub const TCX_EGRESS: u32 = 47;
/// Attach in front of every program already at the hook.
pub const BPF_F_BEFORE: u32 = 1 << 3;

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> Result<i32> {
    // SAFETY: attr is a zeroed bpf_attr of the size passed.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        bail!("bpf({cmd}): {}", std::io::Error::last_os_error());
    }
    Ok(r as i32)
}

fn put(attr: &mut [u8; 128], at: usize, bytes: &[u8]) {
    attr[at..at + bytes.len()].copy_from_slice(bytes);
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: a new fd the kernel just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The empty program for `hook` (`return TCX_NEXT`), pinned at `path`
/// once, then reused.
pub fn empty_program(path: &Path, hook: u32) -> Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())?;
    if path.exists() {
        let mut attr = [0u8; 128];
        put(&mut attr, 0, &(cpath.as_ptr() as u64).to_ne_bytes());
        return Ok(owned(bpf(BPF_OBJ_GET, &mut attr)?));
    }
    // r0 = -1 (TCX_NEXT); exit.
    let insns: [u64; 2] = [
        u64::from_le_bytes([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &BPF_PROG_TYPE_SCHED_CLS.to_ne_bytes());
    put(&mut attr, 4, &2u32.to_ne_bytes());
    put(&mut attr, 8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 16, &(license.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 68, &hook.to_ne_bytes());
    let prog = owned(bpf(BPF_PROG_LOAD, &mut attr)?);
    pin(&prog, path)?;
    Ok(prog)
}

/// A TCX link of `prog` at `hook` of `ifindex` (in the calling thread's
/// namespace); detached when the returned fd closes, unless pinned.
pub fn link_create(prog: &OwnedFd, ifindex: u32, hook: u32, flags: u32) -> Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &(prog.as_raw_fd() as u32).to_ne_bytes());
    put(&mut attr, 4, &ifindex.to_ne_bytes());
    put(&mut attr, 8, &hook.to_ne_bytes());
    put(&mut attr, 12, &flags.to_ne_bytes());
    Ok(owned(bpf(BPF_LINK_CREATE, &mut attr)?))
}

pub fn pin(fd: &OwnedFd, path: &Path) -> Result<()> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())?;
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &(cpath.as_ptr() as u64).to_ne_bytes());
    put(&mut attr, 8, &(fd.as_raw_fd() as u32).to_ne_bytes());
    bpf(BPF_OBJ_PIN, &mut attr).map(drop)
}

/// The ids of the programs attached at `hook` of `ifindex` (calling
/// thread's namespace), first to run first.
pub fn attached(ifindex: u32, hook: u32) -> Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &ifindex.to_ne_bytes());
    put(&mut attr, 4, &hook.to_ne_bytes());
    put(&mut attr, 16, &(ids.as_mut_ptr() as u64).to_ne_bytes());
    put(&mut attr, 24, &(ids.len() as u32).to_ne_bytes());
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let n = u32::from_ne_bytes(attr[24..28].try_into()?) as usize;
    Ok(ids[..n.min(ids.len())].to_vec())
}

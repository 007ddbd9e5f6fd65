//! Destroying retired links after the plugin has answered.
//!
//! Deleting a veth pair returns only after the kernel's unregister waits
//! for RCU grace periods (20-40 ms a pair). DEL therefore only retires a
//! port (down, renamed: [`crate::node::naming::tombstone_link`]; its TCX
//! link pins renamed too) and [`defer`]s the rest; once the result is out,
//! [`finish`] forks a detached deleter that destroys the links and then
//! unlinks their pins (a TCX link whose device is gone is released
//! cheaply). What a killed deleter leaves, GC and `lanbridge cleanup` sweep.
//!
//! The child runs only libc calls on memory prepared before `fork` (no
//! allocation, no lock): it is forked only when the process has a single
//! thread, so no other thread's lock can be held in it; otherwise, or when
//! `fork` fails, the work is done inline.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// A retired link of this namespace and the pins of its TCX links.
struct Tombstone {
    link: CString,
    pins: Vec<CString>,
}

/// The work this process owes the node once it has answered.
static OWED: Mutex<Vec<Tombstone>> = Mutex::new(Vec::new());

/// Owes the destruction of the retired link `link` (in the caller's network
/// namespace), then the removal of `pins`.
pub fn defer(link: &str, pins: Vec<PathBuf>) {
    let c = |b: &[u8]| CString::new(b).ok();
    let Some(link) = c(link.as_bytes()) else {
        return;
    };
    let pins = pins
        .iter()
        .filter_map(|p| c(p.as_os_str().as_bytes()))
        .collect();
    OWED.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Tombstone { link, pins });
}

/// Whether this process owes the destruction of the retired link `link`:
/// a sweep leaves it alone.
pub fn owes(link: &str) -> bool {
    OWED.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|t| t.link.as_bytes() == link.as_bytes())
}

/// How the deleter behaves: test hooks (`commands::fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleter {
    Normal,
    /// As if killed before it deleted anything: the tombstones stay.
    Killed,
    /// Waits this long before deleting.
    Delayed(Duration),
}

/// Does the deferred work: in a detached child when the process is
/// single-threaded (call it after stdout is flushed and the runtime is
/// dropped), else inline. The parent returns at once.
pub fn finish(deleter: Deleter) {
    let owed = std::mem::take(&mut *OWED.lock().unwrap_or_else(|e| e.into_inner()));
    if owed.is_empty() || deleter == Deleter::Killed {
        return;
    }
    let delay = match deleter {
        Deleter::Delayed(d) => d,
        _ => Duration::ZERO,
    };
    if !single_threaded() {
        tracing::debug!("deleting {} link(s) inline: other threads run", owed.len());
        std::thread::sleep(delay);
        reap(&owed);
        return;
    }
    // SAFETY: the process has one thread, so the child inherits no lock
    // another thread held; it calls only async-signal-safe libc functions
    // (and nanosleep) on memory allocated before the fork, then `_exit`s.
    match unsafe { libc::fork() } {
        0 => unsafe {
            libc::setsid();
            detach_fds();
            if !delay.is_zero() {
                let ts = libc::timespec {
                    tv_sec: delay.as_secs() as libc::time_t,
                    tv_nsec: delay.subsec_nanos() as libc::c_long,
                };
                libc::nanosleep(&ts, std::ptr::null_mut());
            }
            reap(&owed);
            libc::_exit(0)
        },
        -1 => {
            tracing::warn!(
                "fork for the deleter: {}; deleting inline",
                std::io::Error::last_os_error()
            );
            reap(&owed);
        }
        child => tracing::debug!("deleter {child} destroys {} link(s)", owed.len()),
    }
}

/// Whether the process has one thread left. A thread just joined can be
/// listed a few microseconds longer: asked again a few times.
fn single_threaded() -> bool {
    (0..10).any(|i| {
        if i > 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
    })
}

/// The child's stdio on /dev/null and every other inherited fd closed: a
/// runtime reads the plugin's stdout and stderr until EOF.
unsafe fn detach_fds() {
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
        for fd in 3..libc::sysconf(libc::_SC_OPEN_MAX).clamp(3, 65536) as libc::c_int {
            libc::close(fd);
        }
    }
}

/// Destroys each link, then unlinks its pins; a link that could not be
/// destroyed keeps its pins for the sweep.
fn reap(owed: &[Tombstone]) {
    // SAFETY: plain syscalls on a socket this function owns.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return;
    }
    for t in owed {
        if delete_link(fd, &t.link) {
            for pin in &t.pins {
                // SAFETY: a NUL-terminated path.
                unsafe { libc::unlink(pin.as_ptr()) };
            }
        }
    }
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
}

const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
/// nlmsghdr, ifinfomsg and one IFLA_IFNAME attribute (a name ≤ 15 bytes).
const DELLINK_MAX: usize = NLMSG_HDR + IFINFO + 4 + 16;

/// RTM_DELLINK of the link named `name`, asking for an ack. By name, not
/// ifindex: a tombstone's name is lanbridge's alone, while the ifindex of a
/// pair the pod's namespace took down with it could name another link.
fn dellink_message(name: &[u8], buf: &mut [u8; DELLINK_MAX]) -> usize {
    let attr_len = 4 + name.len() + 1;
    let len = NLMSG_HDR + IFINFO + attr_len.next_multiple_of(4);
    buf.fill(0);
    buf[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    buf[4..6].copy_from_slice(&libc::RTM_DELLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: AF_UNSPEC, index 0 (by name): all zero.
    let attr = NLMSG_HDR + IFINFO;
    buf[attr..attr + 2].copy_from_slice(&(attr_len as u16).to_ne_bytes());
    buf[attr + 2..attr + 4].copy_from_slice(&libc::IFLA_IFNAME.to_ne_bytes());
    buf[attr + 4..attr + 4 + name.len()].copy_from_slice(name);
    len
}

/// Whether the link is gone (destroyed now, or already).
fn delete_link(fd: libc::c_int, name: &CString) -> bool {
    let name = name.as_bytes();
    if name.len() > 15 {
        return false;
    }
    let mut msg = [0u8; DELLINK_MAX];
    let len = dellink_message(name, &mut msg);
    // SAFETY: `msg` holds `len` initialized bytes; `ack` is writable.
    let sent = unsafe { libc::send(fd, msg.as_ptr().cast(), len, 0) };
    if sent != len as isize {
        return false;
    }
    let mut ack = [0u8; 64];
    let got = unsafe { libc::recv(fd, ack.as_mut_ptr().cast(), ack.len(), 0) };
    if got < (NLMSG_HDR + 4) as isize {
        return false;
    }
    let kind = u16::from_ne_bytes([ack[4], ack[5]]);
    let error = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
    kind == libc::NLMSG_ERROR as u16 && (error == 0 || error == -libc::ENODEV)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dellink_names_the_link_and_asks_for_an_ack() {
        let mut buf = [0u8; DELLINK_MAX];
        let len = dellink_message(b"lbgone1f", &mut buf);
        assert_eq!(len, 16 + 16 + 16, "4 + 8 + NUL padded to 16");
        assert_eq!(
            u32::from_ne_bytes(buf[0..4].try_into().unwrap()),
            len as u32
        );
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), libc::RTM_DELLINK);
        assert_eq!(u16::from_ne_bytes([buf[6], buf[7]]), 0x5, "REQUEST | ACK");
        assert_eq!(&buf[20..32], &[0; 12], "ifindex 0: by name");
        assert_eq!(u16::from_ne_bytes([buf[32], buf[33]]), 13);
        assert_eq!(u16::from_ne_bytes([buf[34], buf[35]]), libc::IFLA_IFNAME);
        assert_eq!(&buf[36..45], b"lbgone1f\0");
        let longest = dellink_message(b"lbgoneffffffff0", &mut buf);
        assert!(longest <= DELLINK_MAX);
    }
}

//! Everything the benchmark creates outside its own memory, so that it can be
//! removed on every exit path: normal end, panic (the owners' `Drop`s), and
//! SIGINT / SIGTERM / SIGHUP (a dedicated thread waits for them and runs
//! [`cleanup_all`] before exiting).
//!
//! Tracked: directories (temp dirs, bpffs pin roots), the previous value of
//! the host-global `kernel.bpf_stats_enabled`. Network namespaces are tracked
//! by the tests harness's registry
//! ([`lanbridge_tests::netns::cleanup_registered`]), whose removal kills the
//! processes living in them (dnsmasq, daemons, iperf3 servers).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

#[derive(Default)]
struct Tracked {
    dirs: Vec<PathBuf>,
    /// `kernel.bpf_stats_enabled` as it was before we set it.
    bpf_stats_prev: Option<String>,
}

static TRACKED: Mutex<Tracked> = Mutex::new(Tracked {
    dirs: Vec::new(),
    bpf_stats_prev: None,
});
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn tracked() -> std::sync::MutexGuard<'static, Tracked> {
    TRACKED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a signal asked us to stop (long loops check it).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn track_dir(dir: &Path) {
    tracked().dirs.push(dir.to_path_buf());
}

/// A bpffs directory `/sys/fs/bpf/<prefix>-<tag>` for the bench's own
/// pins, removed at the end.
pub fn bpffs_dir(prefix: &str, tag: &str) -> PathBuf {
    let p = Path::new("/sys/fs/bpf").join(format!("{prefix}-{tag}"));
    track_dir(&p);
    p
}

/// Removes `dir` (recursively) now and forgets it.
pub fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("[bench] removing {}: {e}", dir.display());
        }
    }
    tracked().dirs.retain(|d| d != dir);
}

/// Sets `kernel.bpf_stats_enabled` to 1, remembering the previous value
/// for [`bpf_stats_restore`] (and for the signal path).
pub fn bpf_stats_enable() -> std::io::Result<()> {
    let prev = std::fs::read_to_string(BPF_STATS)?.trim().to_string();
    {
        let mut t = tracked();
        if t.bpf_stats_prev.is_none() {
            t.bpf_stats_prev = Some(prev);
        }
    }
    std::fs::write(BPF_STATS, "1")
}

/// Puts `kernel.bpf_stats_enabled` back as it was (no-op when we never set it).
pub fn bpf_stats_restore() {
    let prev = tracked().bpf_stats_prev.take();
    if let Some(prev) = prev {
        if let Err(e) = std::fs::write(BPF_STATS, &prev) {
            eprintln!("[bench] restoring kernel.bpf_stats_enabled={prev}: {e}");
        }
    }
}

/// Removes everything still tracked: namespaces first (with the processes
/// in them, which may hold the directories), then directories, the sysctl.
pub fn cleanup_all() {
    lanbridge_tests::netns::cleanup_registered();
    let dirs: Vec<PathBuf> = tracked().dirs.clone();
    for d in dirs.iter().rev() {
        remove_dir(d);
    }
    bpf_stats_restore();
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this (the main) thread — threads
/// spawned later inherit the mask — and starts a thread that waits for
/// them, cleans up and exits. Call first thing in `main`.
pub fn install_signal_thread() {
    // SAFETY: sigset manipulation on a local set; signal() with SIG_DFL
    // undoes an inherited SIG_IGN, which would discard the signals.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_DFL);
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: waits on the set blocked above.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!(
            "\n[bench] signal {sig}: removing every namespace, process and directory we made"
        );
        cleanup_all();
        std::process::exit(128 + sig);
    });
}

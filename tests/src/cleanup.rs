//! Removing what a long-running user of the harness (the demo, the bench)
//! made, on every exit path: the directories it tracks and every registered
//! namespace (with the processes in them), also on SIGINT / SIGTERM / SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::netns;

static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn dirs() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    DIRS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a signal asked us to stop (long loops check it).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Removes `dir` (recursively) at cleanup, unless forgotten or removed before.
pub fn track_dir(dir: &Path) {
    dirs().push(dir.to_path_buf());
}

/// Stops tracking `dir` (its owner removes it).
pub fn forget_dir(dir: &Path) {
    dirs().retain(|d| d != dir);
}

/// Removes `dir` (recursively) now and forgets it.
pub fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("[harness] removing {}: {e}", dir.display());
        }
    }
    forget_dir(dir);
}

/// Removes every registered namespace first (with the processes in them,
/// which may hold the directories), then every tracked directory.
pub fn cleanup_all() {
    netns::cleanup_registered();
    let tracked = dirs().clone();
    for d in tracked.iter().rev() {
        remove_dir(d);
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (threads spawned later
/// inherit the mask) and starts a thread that waits for them, runs `first`
/// (e.g. restoring a sysctl) and [`cleanup_all`], and exits with 128 + the
/// signal. Call first thing in `main`.
pub fn on_signals(first: fn()) {
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
        eprintln!("\nsignal {sig}: removing every namespace, process and directory we made");
        first();
        cleanup_all();
        std::process::exit(128 + sig);
    });
}

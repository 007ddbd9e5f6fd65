//! What the bench changes outside its namespaces, put back on every exit
//! path with the harness's cleanup ([`lanbridge_tests::cleanup`]: tracked
//! directories, namespaces and the processes in them, also on signals): the
//! host-global `kernel.bpf_stats_enabled`, and the bench's own bpffs pins.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use lanbridge_tests::cleanup::{interrupted, track_dir};

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// `kernel.bpf_stats_enabled` as it was before we set it.
static BPF_STATS_PREV: Mutex<Option<String>> = Mutex::new(None);

fn prev() -> std::sync::MutexGuard<'static, Option<String>> {
    BPF_STATS_PREV.lock().unwrap_or_else(|p| p.into_inner())
}

/// A bpffs directory `/sys/fs/bpf/<prefix>-<tag>` for the bench's own
/// pins, removed at the end.
pub fn bpffs_dir(prefix: &str, tag: &str) -> PathBuf {
    let p = Path::new("/sys/fs/bpf").join(format!("{prefix}-{tag}"));
    track_dir(&p);
    p
}

/// Sets `kernel.bpf_stats_enabled` to 1, remembering the previous value
/// for [`bpf_stats_restore`] (and for the signal path).
pub fn bpf_stats_enable() -> std::io::Result<()> {
    let was = std::fs::read_to_string(BPF_STATS)?.trim().to_string();
    prev().get_or_insert(was);
    std::fs::write(BPF_STATS, "1")
}

/// Puts `kernel.bpf_stats_enabled` back as it was (no-op when we never set it).
pub fn bpf_stats_restore() {
    let was = prev().take();
    if let Some(was) = was {
        if let Err(e) = std::fs::write(BPF_STATS, &was) {
            eprintln!("[bench] restoring kernel.bpf_stats_enabled={was}: {e}");
        }
    }
}

/// Everything the run made, removed; the sysctl restored.
pub fn cleanup_all() {
    lanbridge_tests::cleanup::cleanup_all();
    bpf_stats_restore();
}

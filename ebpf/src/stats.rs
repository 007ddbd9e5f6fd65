//! The per-CPU counters of (port, reason), drops included.

use aya_ebpf::bindings::BPF_NOEXIST;
use lanbridge_common::{Reason, StatKey};

use crate::maps::STATS;

/// Per-CPU packet counter of (ifindex, reason): increments the slot, creates
/// it on first use.
#[inline(always)]
pub(crate) fn count(ifindex: u32, reason: Reason) {
    let key = StatKey {
        ifindex,
        reason: reason as u32,
    };
    if let Some(slot) = STATS.get_ptr_mut(key) {
        // SAFETY: this CPU's slot; TC programs do not preempt each other on
        // one CPU.
        unsafe { *slot += 1 };
        return;
    }
    // Another CPU may have created the entry since the lookup: then it
    // exists with a zero slot for this CPU.
    if STATS.insert(key, 1, BPF_NOEXIST as u64).is_err() {
        if let Some(slot) = STATS.get_ptr_mut(key) {
            // SAFETY: as above.
            unsafe { *slot += 1 };
        }
    }
}

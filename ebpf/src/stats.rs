//! The per-CPU counters of (port, reason), drops included.

use aya_ebpf::bindings::BPF_NOEXIST;
use lanbridge_common::{port::port_slot, Reason, StatKey};

use crate::maps::{own_slot, PORT_STATS, STATS, UPLINK_STATS};

/// Per-CPU packet counter of (ifindex, reason): in the port's slot of
/// `lb_port_stats` when it holds one (array lookups), else in `lb_stats`.
#[inline(always)]
pub(crate) fn count(ifindex: u32, reason: Reason) {
    count_port(ifindex, own_slot(ifindex).is_some(), reason);
}

/// [`count`] for the network's uplink `ifindex`: in `lb_uplink_stats`.
#[inline(always)]
pub(crate) fn count_uplink(ifindex: u32, reason: Reason) {
    if let Some(counters) = UPLINK_STATS.get_ptr_mut(0) {
        // SAFETY: as in `count_port`.
        if let Some(n) = unsafe { (*counters).get_mut(reason as usize) } {
            *n += 1;
            return;
        }
    }
    count_hashed(ifindex, reason);
}

/// [`count`] for a port whose slot the caller looked up already
/// (`in_slot`: the slot is the port's).
#[inline(always)]
pub(crate) fn count_port(ifindex: u32, in_slot: bool, reason: Reason) {
    if in_slot {
        if let Some(counters) = PORT_STATS.get_ptr_mut(port_slot(ifindex)) {
            // SAFETY: this CPU's slot; TC programs do not preempt each
            // other on one CPU.
            if let Some(n) = unsafe { (*counters).get_mut(reason as usize) } {
                *n += 1;
                return;
            }
        }
    }
    count_hashed(ifindex, reason);
}

/// [`count`] in `lb_stats`: increments the entry, creates it on first use.
#[inline(always)]
fn count_hashed(ifindex: u32, reason: Reason) {
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

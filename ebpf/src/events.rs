//! Drop events into `lb_events`, within each port's rate limit.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns, programs::TcContext};
use lanbridge_common::{
    event::{self, describe, EventBucket},
    Reason,
};

use crate::maps::{EVENTS, EVENT_RATE};
use crate::skb::Loaded;

/// Reports a drop on port `ifindex`, unless the port is over its rate.
/// A subprogram of its own: its event and header reads stay off the
/// callers' stack frames. The headers are read through
/// `bpf_skb_load_bytes`: paged data too, and no packet pointers to prove.
#[inline(never)]
pub(crate) fn report(ctx: &TcContext, ifindex: u32, reason: Reason) {
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(bucket) = bucket(ifindex) else {
        return;
    };
    // SAFETY: a map value, valid for this run; two CPUs racing on one port
    // may let an event more through or count one suppression less.
    let Some(suppressed) = event::admit(unsafe { &mut *bucket }, now) else {
        return;
    };
    let Some(mut entry) = EVENTS.reserve(0) else {
        // The daemon is behind: the ring is full, the counters still count.
        return;
    };
    // Filled in place: a copy on the stack would not fit beside the
    // callers' frames.
    let ev = entry.as_mut_ptr();
    // SAFETY: the reserved entry, ours until submitted; zeroed first (ring
    // memory is not), then written field by field.
    unsafe {
        core::ptr::write_bytes(ev, 0, 1);
        (*ev).ifindex = ifindex;
        (*ev).reason = reason as u32;
        (*ev).suppressed = suppressed;
        (*ev).len = ctx.len();
        describe(&Loaded(ctx), &mut *ev);
    }
    entry.submit(0);
}

/// The port's bucket, created full on first use.
#[inline(always)]
fn bucket(ifindex: u32) -> Option<*mut EventBucket> {
    if let Some(bucket) = EVENT_RATE.get_ptr_mut(ifindex) {
        return Some(bucket);
    }
    // Another CPU may have created it since the lookup: then it stays.
    let _ = EVENT_RATE.insert(ifindex, EventBucket::default(), BPF_NOEXIST as u64);
    EVENT_RATE.get_ptr_mut(ifindex)
}

//! `lb_flows`, the flows the host stack carried, and `lb_flow_seen`, the
//! filter in front of it: the egress programs record, the fast path asks.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use lanbridge_common::{
    flow_seen_recently, flow_seen_time, frame::IPPROTO_TCP, FlowKey, FLOW_TTL_OTHER_NS,
    FLOW_TTL_TCP_NS,
};

use crate::maps::{FLOWS, FLOW_SEEN};

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// Stamps the slot of `key` (both directions) with `now`. Racing writers
/// all write a recent time.
#[inline(always)]
fn stamp(key: &FlowKey, now: u64) {
    if let Some(seen) = FLOW_SEEN.get_ptr_mut(key.slot()) {
        // SAFETY: a map value, valid for this run.
        unsafe { *seen = flow_seen_time(now) };
    }
}

/// Records that the stack carried a flow whose packets will carry `key`.
#[inline(always)]
pub(crate) fn record(key: &FlowKey) {
    let now = now();
    // An LRU map: when full, the least recently used flow goes; failure
    // costs only a fast-pathed reply, and there is nothing else to do here.
    let _recorded = FLOWS.insert(key, now, 0);
    stamp(key, now);
}

/// Whether the host stack carried this flow, either direction, recently:
/// an entry in use is refreshed, an expired one removed. A packet whose
/// slot was not stamped within the longest TTL has no entry: one array
/// read, no clock, no hash lookup.
#[inline(always)]
pub(crate) fn carried_by_stack(flow: &FlowKey) -> bool {
    let Some(seen) = FLOW_SEEN.get(flow.slot()) else {
        return false;
    };
    if *seen == 0 {
        return false;
    }
    let now = now();
    if !flow_seen_recently(*seen, flow_seen_time(now)) {
        return false;
    }
    nat_flow(flow, now) || nat_flow(&flow.reversed(), now)
}

#[inline(always)]
fn nat_flow(key: &FlowKey, now: u64) -> bool {
    let Some(seen) = FLOWS.get_ptr_mut(key) else {
        return false;
    };
    let ttl = if key.proto == IPPROTO_TCP {
        FLOW_TTL_TCP_NS
    } else {
        FLOW_TTL_OTHER_NS
    };
    // SAFETY: a map value, valid for this run; a racing update from another
    // CPU writes a timestamp too.
    unsafe {
        if now.saturating_sub(*seen) > ttl {
            let _removed = FLOWS.remove(key);
            return false;
        }
        *seen = now;
    }
    stamp(key, now);
    true
}

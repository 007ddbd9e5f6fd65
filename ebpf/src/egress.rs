//! The egress programs of lan mode record the flows the host stack carried
//! to or from a pod. Their replies must take the stack too: only conntrack
//! can reverse a NAT (a service's DNAT, a hostPort's DNAT), and conntrack
//! sees only what the stack forwards.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::TcContext};
use lanbridge_common::{
    frame::{parse_frame, Kind},
    FlowKey, FAST_PATH_MARK,
};

use crate::programs::{parse, Direct, Loaded, BY_IP, FLOWS};

/// The stack delivers to a pod: its replies, as `lb_from_pod` will see them,
/// go to the stack. (Fast-path deliveries use `bpf_redirect_peer`, which
/// skips this hook.)
#[inline(always)]
pub fn to_pod(ctx: &TcContext) {
    if let Some(key) = flow(ctx) {
        record(&key.reversed());
    }
}

/// The stack sends a pod's packet to the LAN: its replies, as
/// `lb_from_uplink` will see them, go to the stack. Fast-path packets carry
/// [`FAST_PATH_MARK`], which is cleared here.
#[inline(always)]
pub fn to_uplink(ctx: &TcContext) {
    // SAFETY: `mark` is readable by TC programs.
    let mark = unsafe { (*ctx.skb.skb).mark };
    if mark & FAST_PATH_MARK != 0 {
        ctx.set_mark(mark & !FAST_PATH_MARK);
        return;
    }
    let Some(key) = flow(ctx) else {
        return;
    };
    if BY_IP.get_ptr(key.saddr).is_some() {
        record(&key.reversed());
    }
}

#[inline(always)]
fn flow(ctx: &TcContext) -> Option<FlowKey> {
    let frame = parse!(ctx, parse_frame)?;
    match frame.kind {
        Kind::Ipv4(ip) if ip.has_ports() => Some(ip.flow()),
        _ => None,
    }
}

#[inline(always)]
fn record(key: &FlowKey) {
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // An LRU map: when full, the least recently used flow goes; failure
    // costs only a fast-pathed reply, and there is nothing else to do here.
    let _recorded = FLOWS.insert(key, now, 0);
}

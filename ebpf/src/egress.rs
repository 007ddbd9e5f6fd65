//! The egress programs. On a pod's port: `portIsolation` for what the host
//! stack routes (with the fast path off, fragments, anything the fast path
//! hands to the stack), the bridge's port flag covering what it switches.
//! In lan mode both record the flows the host stack carried to or from a
//! pod. Their replies must take the stack too: only conntrack can reverse a
//! NAT (a service's DNAT, a hostPort's DNAT), and conntrack sees only what
//! the stack forwards.

use aya_ebpf::{bindings::TC_ACT_SHOT, programs::TcContext};
use lanbridge_common::{
    frame::{parse_frame, Frame, Kind},
    ip6::IP6_SADDR_OFF,
    FlowKey, Reason, CFG_LAN_MODE, EP_ISOLATED, FAST_PATH_MARK,
};

use crate::flows::record;
use crate::maps::{config, endpoint, pod_port, BY_IP6};
use crate::skb::parse;
use crate::verdict::{Verdict, PASS};

/// The stack delivers to the pod behind `ifindex`: dropped when both are
/// isolated pods; otherwise, in lan mode, its replies, as `lb_from_pod`
/// will see them, go to the stack. (Fast-path deliveries use
/// `bpf_redirect_peer`, which skips this hook.)
#[inline(always)]
pub(crate) fn try_to_pod(ctx: &TcContext, ifindex: u32) -> Verdict {
    let Some(frame) = parse!(ctx, parse_frame) else {
        return PASS;
    };
    if from_isolated_peer(ctx, &frame, ifindex) {
        return (TC_ACT_SHOT, Reason::DropIsolated);
    }
    if config().is_some_and(|cfg| cfg.flags & CFG_LAN_MODE != 0) {
        if let Some(key) = flow(&frame) {
            record(&key.reversed());
        }
    }
    PASS
}

/// Whether the port `ifindex` is isolated and `frame` comes from another
/// isolated pod of the node (its source address is that pod's).
#[inline(always)]
fn from_isolated_peer(ctx: &TcContext, frame: &Frame, ifindex: u32) -> bool {
    let isolated = |port: u32| endpoint(port).is_some_and(|ep| ep.flags & EP_ISOLATED != 0);
    if !isolated(ifindex) {
        return false;
    }
    let source = match frame.kind {
        Kind::Ipv4(ip) => pod_port(ip.saddr),
        Kind::Ipv6(off) => match ctx.load::<[u8; 16]>(off + IP6_SADDR_OFF) {
            // SAFETY: a map value, valid for this run.
            Ok(saddr) => BY_IP6.get_ptr(saddr).map(|port| unsafe { *port }),
            Err(_) => None,
        },
        _ => None,
    };
    let Some(source) = source else {
        return false;
    };
    source != ifindex && isolated(source)
}

/// The stack sends a pod's packet to the LAN: its replies, as
/// `lb_from_uplink` will see them, go to the stack. Fast-path packets carry
/// [`FAST_PATH_MARK`], which is cleared here.
#[inline(always)]
pub(crate) fn try_to_uplink(ctx: &TcContext) {
    // SAFETY: `mark` is readable by TC programs.
    let mark = unsafe { (*ctx.skb.skb).mark };
    if mark & FAST_PATH_MARK != 0 {
        ctx.set_mark(mark & !FAST_PATH_MARK);
        return;
    }
    let Some(key) = parse!(ctx, parse_frame).and_then(|frame| flow(&frame)) else {
        return;
    };
    if pod_port(key.saddr).is_some() {
        record(&key.reversed());
    }
}

#[inline(always)]
fn flow(frame: &Frame) -> Option<FlowKey> {
    match frame.kind {
        Kind::Ipv4(ip) if ip.has_ports() => Some(ip.flow()),
        _ => None,
    }
}

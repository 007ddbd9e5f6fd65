//! The entry points the kernel runs, and nothing else: each reads the
//! port, runs its hook's pipeline and accounts for the verdict.

use aya_ebpf::{bindings::TC_ACT_UNSPEC, macros::classifier, programs::TcContext};
use lanbridge_common::{Reason, PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK};

use crate::maps::{find_port, str_eq};
use crate::skb::ifindex;
use crate::verdict::PASS;
use crate::{egress, events, pod, stats, uplink};

// The aya macros take names from the item's identifier; these checks keep
// them equal to the shared constants.
const _: () = assert!(str_eq(PROG_FROM_POD, "lb_from_pod"));
const _: () = assert!(str_eq(PROG_FROM_UPLINK, "lb_from_uplink"));
const _: () = assert!(str_eq(PROG_TO_POD, "lb_to_pod"));
const _: () = assert!(str_eq(PROG_TO_UPLINK, "lb_to_uplink"));

/// TC ingress on a pod's host-side veth (packets leaving the pod).
#[classifier]
pub fn lb_from_pod(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    // A port without an endpoint (not, or no longer, a pod of this network)
    // gets no verdict. The port is looked up once, for the verdict and the
    // counter.
    let port = find_port(ifindex);
    let (action, reason) = match port {
        Some((ep, _)) => pod::try_from_pod(&ctx, ifindex, ep).unwrap_or_else(|e| e),
        None => PASS,
    };
    stats::count_port(ifindex, port.is_some_and(|(_, in_slot)| in_slot), reason);
    report_drop(&ctx, ifindex, reason);
    action
}

/// TC ingress on the uplink (packets from the LAN). Counted under the
/// uplink's ifindex.
#[classifier]
pub fn lb_from_uplink(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    let (action, reason) = uplink::try_from_uplink(&ctx).unwrap_or_else(|e| e);
    stats::count_uplink(ifindex, reason);
    report_drop(&ctx, ifindex, reason);
    action
}

/// TC egress on a pod's host-side veth: what the host stack sends the pod.
/// Only drops are counted (this hook sees every packet of the pod).
#[classifier]
pub fn lb_to_pod(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    let (action, reason) = egress::try_to_pod(&ctx, ifindex);
    if reason.is_drop() {
        account(&ctx, ifindex, reason);
    }
    action
}

/// TC egress on the uplink: what leaves the node for the LAN.
#[classifier]
pub fn lb_to_uplink(ctx: TcContext) -> i32 {
    egress::try_to_uplink(&ctx);
    TC_ACT_UNSPEC
}

/// Counts the verdict; a drop is reported too.
#[inline(always)]
fn account(ctx: &TcContext, ifindex: u32, reason: Reason) {
    stats::count(ifindex, reason);
    report_drop(ctx, ifindex, reason);
}

#[inline(always)]
fn report_drop(ctx: &TcContext, ifindex: u32, reason: Reason) {
    if reason.is_drop() {
        events::report(ctx, ifindex, reason);
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Kernel-visible license; GPL-compatible so GPL-only helpers may be used.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

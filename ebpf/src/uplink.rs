//! `lb_from_uplink`'s pipeline: DHCP replies for pods, then the fast path
//! into pods; everything else is left to the stack.

use aya_ebpf::programs::TcContext;
use lanbridge_common::packet::parse_from_uplink;

use crate::maps::config;
use crate::skb::{parse, vlan_tagged};
use crate::verdict::{Verdict, PASS};
use crate::{dhcp, fast};

#[inline(always)]
pub(crate) fn try_from_uplink(ctx: &TcContext) -> Result<Verdict, Verdict> {
    // A tag in the skb's metadata: a frame of a VLAN of the node, see
    // `vlan_tagged`. Pods live on the untagged LAN.
    if vlan_tagged(ctx) {
        return Ok(PASS);
    }
    match parse!(ctx, parse_from_uplink) {
        Some(Some(reply)) => dhcp::to_pod(ctx, &reply),
        Some(None) => fast::from_uplink(ctx, &config()),
        None => Ok(PASS),
    }
}

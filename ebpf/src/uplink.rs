//! `lb_from_uplink`'s pipeline: DHCP replies for pods, then the fast path
//! into pods; everything else is left to the stack. The frame is parsed
//! once for both; only DHCP's ports get the DHCP parser.

use aya_ebpf::programs::TcContext;
use lanbridge_common::{
    frame::{parse_frame, Kind, IPPROTO_UDP},
    packet::{parse_from_uplink, DHCP_CLIENT_PORT, DHCP_SERVER_PORT},
};

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
    let Some(frame) = parse!(ctx, parse_frame) else {
        return Ok(PASS);
    };
    // UDP 67 -> 68: parsed again, in full, as a DHCP reply for a pod.
    if let Kind::Ipv4(ip) = frame.kind {
        if ip.proto == IPPROTO_UDP && ip.sport == DHCP_SERVER_PORT && ip.dport == DHCP_CLIENT_PORT {
            match parse!(ctx, parse_from_uplink) {
                Some(Some(reply)) => return dhcp::to_pod(ctx, &reply),
                Some(None) => {}
                None => return Ok(PASS),
            }
        }
    }
    match config() {
        Some(cfg) => fast::from_uplink(ctx, &frame, cfg),
        None => Ok(PASS),
    }
}

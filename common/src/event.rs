//! Drop events: what the programs tell the daemon (ring buffer
//! [`crate::MAP_EVENTS`]) about each dropped packet — its port, reason,
//! MACs, addresses and ports — rate limited per port in the kernel so a
//! flooding pod costs the daemon a bounded number of events, and says how
//! many it suppressed.
//!
//! [`describe`] reads the headers loop-free and bounds-checked like
//! [`crate::packet`]; a frame too short for a header keeps what came before.

use crate::frame::ETH_P_ARP;
use crate::ip6::{ETH_P_IPV6, IP6_SADDR_OFF, IPV6_HLEN};
use crate::packet::{Packet, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, VLAN_HLEN};

/// Events per port: one per [`EVENT_INTERVAL_NS`] (100 a second), bursts of
/// [`EVENT_BURST`].
pub const EVENT_INTERVAL_NS: u64 = 10_000_000;
pub const EVENT_BURST: u64 = 32;
/// The ring buffer's size: a power of two pages, room for ~3600 events.
pub const EVENTS_BYTES: u32 = 256 * 1024;

/// One dropped packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    /// The port (or uplink) the program runs on.
    pub ifindex: u32,
    /// A [`crate::Reason`].
    pub reason: u32,
    /// The port's events the rate limit suppressed before this one.
    pub suppressed: u32,
    /// The frame's length.
    pub len: u32,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// After one VLAN tag, if any.
    pub ethertype: u16,
    /// The VLAN id of an in-frame tag; 0 = none.
    pub vlan: u16,
    /// IP protocol (IPv6: the first next header); 0 for ARP and others.
    pub proto: u8,
    pub _pad: [u8; 3],
    /// Host order; 0 unless TCP or UDP (unfragmented IPv4).
    pub sport: u16,
    pub dport: u16,
    /// IPv4 (and ARP's sender/target protocol addresses): the first 4
    /// bytes; IPv6: all 16. Wire order.
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// ARP's sender and target protocol addresses (Ethernet/IPv4 ARP).
const ARP_SPA_OFF: usize = 14;
const ARP_TPA_OFF: usize = 24;

/// A port's event rate state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBucket {
    /// When the port's next event is on time ([`crate::gcra`]); 0 = none sent.
    pub due_ns: u64,
    /// Events suppressed since the last one sent.
    pub suppressed: u32,
    pub _pad: u32,
}

/// Fills `ev`'s packet fields from the frame.
#[inline(always)]
pub fn describe<P: Packet + ?Sized>(p: &P, ev: &mut DropEvent) {
    let Ok(macs) = p.read::<12>(0) else {
        return;
    };
    ev.dst_mac.copy_from_slice(&macs[..6]);
    ev.src_mac.copy_from_slice(&macs[6..]);
    let Ok(ethertype) = p.read::<2>(12).map(u16::from_be_bytes) else {
        return;
    };
    let mut off = ETH_HLEN;
    ev.ethertype = ethertype;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let Ok(tag) = p.read::<4>(ETH_HLEN) else {
            return;
        };
        ev.vlan = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
        ev.ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        off += VLAN_HLEN;
    }
    match ev.ethertype {
        ETH_P_IP => ipv4(p, off, ev),
        ETH_P_IPV6 => ipv6(p, off, ev),
        ETH_P_ARP => {
            if let (Ok(spa), Ok(tpa)) = (
                p.read::<4>(off + ARP_SPA_OFF),
                p.read::<4>(off + ARP_TPA_OFF),
            ) {
                ev.saddr[..4].copy_from_slice(&spa);
                ev.daddr[..4].copy_from_slice(&tpa);
            }
        }
        _ => {}
    }
}

#[inline(always)]
fn ipv4<P: Packet + ?Sized>(p: &P, off: usize, ev: &mut DropEvent) {
    let Ok(h) = p.read::<20>(off) else {
        return;
    };
    ev.proto = h[9];
    ev.saddr[..4].copy_from_slice(&h[12..16]);
    ev.daddr[..4].copy_from_slice(&h[16..20]);
    let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
    if !fragment {
        ports(p, off + usize::from(h[0] & 0x0f) * 4, ev);
    }
}

#[inline(always)]
fn ipv6<P: Packet + ?Sized>(p: &P, off: usize, ev: &mut DropEvent) {
    let (Ok(next), Ok(saddr), Ok(daddr)) = (
        p.read::<1>(off + 6),
        p.read::<16>(off + IP6_SADDR_OFF),
        p.read::<16>(off + IP6_SADDR_OFF + 16),
    ) else {
        return;
    };
    ev.proto = next[0];
    ev.saddr = saddr;
    ev.daddr = daddr;
    ports(p, off + IPV6_HLEN, ev);
}

#[inline(always)]
fn ports<P: Packet + ?Sized>(p: &P, off: usize, ev: &mut DropEvent) {
    if ev.proto != IPPROTO_TCP && ev.proto != IPPROTO_UDP {
        return;
    }
    if let Ok(ports) = p.read::<4>(off) {
        ev.sport = u16::from_be_bytes([ports[0], ports[1]]);
        ev.dport = u16::from_be_bytes([ports[2], ports[3]]);
    }
}

/// Takes a token from a port's event bucket at `now`: the count of events
/// suppressed since the last one sent (the event carries it) when one is
/// left; `None`, the suppression counted, when not.
#[inline(always)]
pub fn admit(bucket: &mut EventBucket, now: u64) -> Option<u32> {
    match crate::gcra(bucket.due_ns, now, EVENT_INTERVAL_NS, EVENT_BURST) {
        Some(due) => {
            bucket.due_ns = due;
            let suppressed = bucket.suppressed;
            bucket.suppressed = 0;
            Some(suppressed)
        }
        None => {
            bucket.suppressed = bucket.suppressed.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests;

//! Parsing of any frame a pod sends or the uplink receives, for the source
//! guard and the fast path; loop-free and bounds-checked like
//! [`crate::packet`], whose [`Packet`] trait it reads through.

use crate::ip6::ETH_P_IPV6;
use crate::packet::{
    mac_eq, mac_word, Packet, Short, ETH_ALEN, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP,
    VLAN_HLEN,
};
use crate::{Endpoint, FlowKey, Reason, EP_GUARD_IP};

pub const ETH_P_ARP: u16 = 0x0806;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub use crate::packet::IPPROTO_UDP;
/// Offsets in the IPv4 header.
pub const IP_TTL_OFF: usize = 8;
pub const IP_CSUM_OFF: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The MACs as [`mac_word`]s: one comparison each.
    pub dst_mac: u64,
    pub src_mac: u64,
    /// A non-zero VLAN id in the frame (see [`crate::packet::Udp4::tagged`]).
    pub tagged: bool,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ipv4(Ip4),
    Arp(Arp),
    /// IPv6, with the offset of its header: parsed and judged apart by
    /// [`crate::ip6`] (a program keeps it out of its main stack frame).
    Ipv6(usize),
    /// Everything else: only the source MAC is judged.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip4 {
    /// Offset of the IPv4 header.
    pub off: usize,
    pub proto: u8,
    pub ttl: u8,
    /// The header checksum, as the big-endian number on the wire.
    pub csum: u16,
    pub saddr: u32,
    pub daddr: u32,
    /// A fragment (MF or an offset): no ports.
    pub fragment: bool,
    /// Host order; 0 unless TCP or UDP in an unfragmented packet.
    pub sport: u16,
    pub dport: u16,
}

impl Ip4 {
    pub fn flow(&self) -> FlowKey {
        FlowKey {
            saddr: self.saddr,
            daddr: self.daddr,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            _pad: 0,
            _pad_hi: 0,
        }
    }

    /// The header's TTL, protocol and checksum after a TTL decrement, to be
    /// written at `off + IP_TTL_OFF` in one go: the checksum updated
    /// incrementally (RFC 1624), as the kernel's `ip_decrease_ttl` does.
    /// The TTL must be above 0.
    #[inline(always)]
    pub fn ttl_decremented(&self) -> [u8; 4] {
        let sum = u32::from(self.csum) + 0x0100;
        let [hi, lo] = ((sum + u32::from(sum >= 0xffff)) as u16).to_be_bytes();
        [self.ttl - 1, self.proto, hi, lo]
    }

    /// TCP or UDP with ports: what flows are made of.
    pub fn has_ports(&self) -> bool {
        !self.fragment && (self.proto == IPPROTO_TCP || self.proto == IPPROTO_UDP)
    }

    /// A DHCP client packet (UDP 68 -> 67): the one thing allowed from 0.0.0.0.
    pub fn is_dhcp_client(&self) -> bool {
        self.proto == IPPROTO_UDP && !self.fragment && self.sport == 68 && self.dport == 67
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Sender hardware and protocol address.
    pub sha: [u8; 6],
    pub spa: u32,
}

#[inline(always)]
pub fn parse_frame<P: Packet + ?Sized>(p: &P) -> Result<Frame, Short> {
    let head: [u8; ETH_HLEN] = p.read(0)?;
    let dst_mac = mac_word(&[head[0], head[1], head[2], head[3], head[4], head[5]]);
    let src_mac = mac_word(&[head[6], head[7], head[8], head[9], head[10], head[11]]);
    let mut ethertype = u16::from_be_bytes([head[2 * ETH_ALEN], head[2 * ETH_ALEN + 1]]);
    let mut l3 = ETH_HLEN;
    let mut tagged = false;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let tag: [u8; 4] = p.read(ETH_HLEN)?;
        tagged = (tag[0] & 0x0f) | tag[1] != 0;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l3 = ETH_HLEN + VLAN_HLEN;
    }
    let kind = match ethertype {
        ETH_P_IP => parse_ip4(p, l3)?.map_or(Kind::Other, Kind::Ipv4),
        ETH_P_ARP => parse_arp(p, l3)?.map_or(Kind::Other, Kind::Arp),
        ETH_P_IPV6 => Kind::Ipv6(l3),
        _ => Kind::Other,
    };
    Ok(Frame {
        dst_mac,
        src_mac,
        tagged,
        kind,
    })
}

#[inline(always)]
fn parse_ip4<P: Packet + ?Sized>(p: &P, off: usize) -> Result<Option<Ip4>, Short> {
    let ip: [u8; 20] = p.read(off)?;
    let ihl = (ip[0] & 0x0f) as usize;
    if ip[0] >> 4 != 4 || ihl < 5 {
        return Ok(None);
    }
    let fragment = (ip[6] & 0x3f) | ip[7] != 0;
    let proto = ip[9];
    let (mut sport, mut dport) = (0, 0);
    if !fragment && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        let ports: [u8; 4] = p.read(off + ihl * 4)?;
        sport = u16::from_be_bytes([ports[0], ports[1]]);
        dport = u16::from_be_bytes([ports[2], ports[3]]);
    }
    Ok(Some(Ip4 {
        off,
        proto,
        ttl: ip[IP_TTL_OFF],
        csum: u16::from_be_bytes([ip[IP_CSUM_OFF], ip[IP_CSUM_OFF + 1]]),
        saddr: u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]),
        daddr: u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]),
        fragment,
        sport,
        dport,
    }))
}

/// Ethernet/IPv4 ARP only (htype 1, ptype 0x0800, hlen 6, plen 4).
#[inline(always)]
fn parse_arp<P: Packet + ?Sized>(p: &P, off: usize) -> Result<Option<Arp>, Short> {
    let a: [u8; 18] = p.read(off)?;
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return Ok(None);
    }
    Ok(Some(Arp {
        sha: [a[8], a[9], a[10], a[11], a[12], a[13]],
        spa: u32::from_ne_bytes([a[14], a[15], a[16], a[17]]),
    }))
}

/// The source guard: `Err(reason)` when the pod sends as someone else.
/// A pod sends from its own MAC only; IPv4 from its own addresses only (once
/// IPAM gave it some), 0.0.0.0 for DHCP client packets only; ARP only for
/// itself (0.0.0.0 sender: an RFC 5227 probe). IPv6 beyond the MAC:
/// [`crate::ip6::verdict`].
#[inline(always)]
pub fn guard(frame: &Frame, ep: &Endpoint) -> Result<(), Reason> {
    if frame.src_mac != mac_word(&ep.mac) {
        return Err(Reason::DropSpoofMac);
    }
    let check_ip = ep.flags & EP_GUARD_IP != 0;
    match frame.kind {
        Kind::Ipv4(ip) => {
            let ok = if ip.saddr == 0 {
                ip.is_dhcp_client()
            } else {
                !check_ip || ep.owns(ip.saddr)
            };
            if !ok {
                return Err(Reason::DropSpoofIp);
            }
        }
        Kind::Arp(arp) => {
            if !mac_eq(&arp.sha, &ep.mac) || (check_ip && arp.spa != 0 && !ep.owns(arp.spa)) {
                return Err(Reason::DropArpSpoof);
            }
        }
        Kind::Ipv6(_) | Kind::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! Header parsing and verdicts of the TC programs, over any byte source: the
//! kernel side reads an skb (`lanbridge-ebpf`), the host-side tests read byte
//! arrays. Everything here is loop-free and panic-free so that its eBPF build
//! passes the verifier: every read goes through [`Packet::read`], which
//! bounds-checks it, and every offset is bounded by construction (one VLAN
//! tag at most, IHL at most 15 words).
//!
//! Byte orders: IPv4 addresses are `u32`s holding the wire bytes
//! (`u32::from_ne_bytes`), as in [`Endpoint::ipv4`]; ports are host order.

use crate::{Endpoint, NetConfig, Reason, CFG_LAN_MODE, EP_DHCP_RELAY};

pub const ETH_ALEN: usize = 6;
pub const ETH_HLEN: usize = 14;
/// Offset of the Ethernet source address.
pub const ETH_SRC_OFF: usize = ETH_ALEN;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPPROTO_UDP: u8 = 17;
/// 255.255.255.255, any byte order.
pub const IPV4_BROADCAST: u32 = u32::MAX;
pub const UDP_HLEN: usize = 8;
/// Offset of the checksum in the UDP header.
pub const UDP_CSUM_OFF: usize = 6;
pub const DHCP_SERVER_PORT: u16 = 67;
pub const DHCP_CLIENT_PORT: u16 = 68;
pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
/// `htype` of Ethernet.
pub const BOOTP_HTYPE_ETHER: u8 = 1;
/// Offset of `flags` in the BOOTP header.
pub const BOOTP_FLAGS_OFF: usize = 10;
/// The broadcast bit of `flags` (bit 15, the first byte's top bit on the wire).
pub const BOOTP_BROADCAST: u16 = 0x8000;
/// Offset of `chaddr` in the BOOTP header.
pub const BOOTP_CHADDR_OFF: usize = 28;

/// The frame ends before a header that the verdict needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short;

/// Bounds-checked access to a frame, starting at the Ethernet header.
pub trait Packet {
    /// The `N` bytes at `off`, or [`Short`] when the frame is shorter.
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short>;
}

impl Packet for [u8] {
    #[inline]
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short> {
        let end = off.checked_add(N).ok_or(Short)?;
        match self.get(off..end) {
            Some(bytes) => bytes.try_into().map_err(|_| Short),
            None => Err(Short),
        }
    }
}

/// Equality of two MACs without a `memcmp` call (there is no libc in BPF)
/// and without short-circuit branches.
#[inline(always)]
pub fn mac_eq(a: &[u8; 6], b: &[u8; 6]) -> bool {
    ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5]))
        == 0
}

/// The IPv4/UDP headers of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp4 {
    /// The frame carries an 802.1Q/802.1ad tag with a non-zero VLAN id
    /// (priority tags, VID 0, belong to the untagged network).
    pub tagged: bool,
    /// Offset of the IPv4 header in the frame. The addresses are read only
    /// by the verdicts that need them ([`Udp4::addrs`]): ordinary UDP
    /// traffic is judged by its ports.
    pub ip_off: usize,
    pub sport: u16,
    pub dport: u16,
    /// Offset of the UDP header in the frame.
    pub udp_off: usize,
}

impl Udp4 {
    /// Offset of the UDP payload (the BOOTP header for DHCP).
    #[inline(always)]
    pub fn payload_off(&self) -> usize {
        self.udp_off + UDP_HLEN
    }

    /// IPv4 source and destination.
    #[inline(always)]
    pub fn addrs<P: Packet + ?Sized>(&self, p: &P) -> Result<(u32, u32), Short> {
        let a: [u8; 8] = p.read(self.ip_off + 12)?;
        Ok((
            u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
            u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        ))
    }
}

/// Parses Ethernet, at most one VLAN tag, IPv4 (options skipped by IHL) and
/// UDP. `Ok(None)` for anything else: not IPv4, not UDP, a fragment (only a
/// first fragment would hold the UDP header, and DHCP never fragments), a
/// malformed IPv4 header.
#[inline(always)]
pub fn parse_udp4<P: Packet + ?Sized>(p: &P) -> Result<Option<Udp4>, Short> {
    let ethertype: [u8; 2] = p.read(2 * ETH_ALEN)?;
    let mut ethertype = u16::from_be_bytes(ethertype);
    let mut l3 = ETH_HLEN;
    let mut tagged = false;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        // TCI, then the encapsulated protocol.
        let tag: [u8; 4] = p.read(ETH_HLEN)?;
        tagged = (tag[0] & 0x0f) | tag[1] != 0;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l3 = ETH_HLEN + VLAN_HLEN;
    }
    if ethertype != ETH_P_IP {
        return Ok(None);
    }
    let ip: [u8; IPV4_MIN_HLEN] = p.read(l3)?;
    let ihl = (ip[0] & 0x0f) as usize;
    if ip[0] >> 4 != 4 || ihl < 5 || ip[9] != IPPROTO_UDP {
        return Ok(None);
    }
    // MF (0x20) or a fragment offset: not parsed as UDP. DF (0x40) is fine.
    if (ip[6] & 0x3f) | ip[7] != 0 {
        return Ok(None);
    }
    let udp_off = l3 + ihl * 4;
    let udp: [u8; UDP_HLEN] = p.read(udp_off)?;
    Ok(Some(Udp4 {
        tagged,
        ip_off: l3,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        udp_off,
    }))
}

/// What `lb_from_pod` found in a frame leaving a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromPod {
    /// Nothing this program acts on.
    Other,
    /// A DHCP server or relay speaking: UDP from port 67, or to port 68 (the
    /// client port; no client sends there, so a rogue server cannot dodge the
    /// guard by picking another source port).
    DhcpServer,
    /// A DHCP client broadcast: UDP 68 -> 67 to 255.255.255.255, BOOTREQUEST.
    ClientBroadcast(ClientBroadcast),
}

/// The fields of a DHCP client broadcast that the verdict and the relay use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientBroadcast {
    pub src_mac: [u8; 6],
    pub saddr: u32,
    /// See [`Udp4::tagged`]; the program also sets it for a tag held in the
    /// skb's metadata (`vlan_present`).
    pub tagged: bool,
    pub udp_off: usize,
    /// BOOTP `flags` as on the wire.
    pub flags: [u8; 2],
}

impl ClientBroadcast {
    /// Offset of BOOTP `flags` in the frame.
    #[inline(always)]
    pub fn flags_off(&self) -> usize {
        self.udp_off + UDP_HLEN + BOOTP_FLAGS_OFF
    }

    /// Offset of the UDP checksum in the frame.
    #[inline(always)]
    pub fn csum_off(&self) -> usize {
        self.udp_off + UDP_CSUM_OFF
    }

    /// `flags` with the broadcast bit set, or `None` when it already is.
    #[inline(always)]
    pub fn broadcast_flags(&self) -> Option<[u8; 2]> {
        // The bit is in the first byte on the wire.
        let bit = BOOTP_BROADCAST.to_be_bytes()[0];
        if self.flags[0] & bit != 0 {
            return None;
        }
        Some([self.flags[0] | bit, self.flags[1]])
    }
}

#[inline(always)]
pub fn parse_from_pod<P: Packet + ?Sized>(p: &P) -> Result<FromPod, Short> {
    let Some(udp) = parse_udp4(p)? else {
        return Ok(FromPod::Other);
    };
    if udp.sport == DHCP_SERVER_PORT || udp.dport == DHCP_CLIENT_PORT {
        return Ok(FromPod::DhcpServer);
    }
    if udp.sport != DHCP_CLIENT_PORT || udp.dport != DHCP_SERVER_PORT {
        return Ok(FromPod::Other);
    }
    let (saddr, daddr) = udp.addrs(p)?;
    if daddr != IPV4_BROADCAST {
        return Ok(FromPod::Other);
    }
    // op .. flags
    let bootp: [u8; BOOTP_FLAGS_OFF + 2] = p.read(udp.payload_off())?;
    if bootp[0] != BOOTREQUEST {
        return Ok(FromPod::Other);
    }
    let src_mac: [u8; 6] = p.read(ETH_SRC_OFF)?;
    Ok(FromPod::ClientBroadcast(ClientBroadcast {
        src_mac,
        saddr,
        tagged: udp.tagged,
        udp_off: udp.udp_off,
        flags: [bootp[BOOTP_FLAGS_OFF], bootp[BOOTP_FLAGS_OFF + 1]],
    }))
}

/// The verdict on a pod's DHCP client broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodVerdict {
    Pass,
    /// Foreign source MAC, or a source IP neither 0.0.0.0 nor the pod's.
    DropSpoof,
    /// Force the broadcast flag, Ethernet source := uplink MAC, redirect to
    /// the uplink's egress.
    Relay,
}

impl PodVerdict {
    pub fn reason(self) -> Reason {
        match self {
            PodVerdict::Pass => Reason::Passed,
            PodVerdict::DropSpoof => Reason::DropDhcpSpoof,
            PodVerdict::Relay => Reason::DhcpRelayed,
        }
    }
}

/// The source guard applies in every mode and to tagged frames too (a tag
/// must not be a way around it). Tagged broadcasts are not relayed: the
/// uplink carries the untagged LAN, and the relay has no VLAN to map a tag to;
/// they pass untouched, as on a plain bridge.
#[inline(always)]
pub fn from_pod_verdict(b: &ClientBroadcast, ep: &Endpoint, cfg: &NetConfig) -> PodVerdict {
    if !mac_eq(&b.src_mac, &ep.mac) || (b.saddr != 0 && !ep.owns(b.saddr)) {
        return PodVerdict::DropSpoof;
    }
    if !b.tagged
        && cfg.flags & CFG_LAN_MODE != 0
        && ep.flags & EP_DHCP_RELAY != 0
        && cfg.uplink_ifindex != 0
    {
        return PodVerdict::Relay;
    }
    PodVerdict::Pass
}

/// `chaddr` of a DHCP server reply (UDP 67 -> 68, BOOTREPLY, Ethernet
/// hardware address) arriving untagged on the uplink; `None` for anything
/// else. Tagged replies belong to a VLAN interface of the node, not to pods.
#[inline(always)]
pub fn parse_from_uplink<P: Packet + ?Sized>(p: &P) -> Result<Option<[u8; 6]>, Short> {
    let Some(udp) = parse_udp4(p)? else {
        return Ok(None);
    };
    if udp.tagged || udp.sport != DHCP_SERVER_PORT || udp.dport != DHCP_CLIENT_PORT {
        return Ok(None);
    }
    // op .. chaddr[0..6]
    let bootp: [u8; BOOTP_CHADDR_OFF + 6] = p.read(udp.payload_off())?;
    if bootp[0] != BOOTREPLY || bootp[1] != BOOTP_HTYPE_ETHER || bootp[2] != 6 {
        return Ok(None);
    }
    let c = BOOTP_CHADDR_OFF;
    Ok(Some([
        bootp[c],
        bootp[c + 1],
        bootp[c + 2],
        bootp[c + 3],
        bootp[c + 4],
        bootp[c + 5],
    ]))
}

#[cfg(test)]
mod tests;

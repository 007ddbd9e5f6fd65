//! Header parsing of the TC programs, over any byte source: the kernel side
//! reads an skb (`lanbridge-ebpf`), the host-side tests read byte arrays.
//! Everything here is loop-free and panic-free so that its eBPF build passes
//! the verifier: every read goes through [`Packet::read`], which
//! bounds-checks it, and every offset is bounded by construction (one VLAN
//! tag at most, IHL at most 15 words). The one loop, over DHCP options, is
//! in [`crate::snoop`] and bounded there.
//!
//! Byte orders: IPv4 addresses are `u32`s holding the wire bytes
//! (`u32::from_ne_bytes`), as in [`crate::Endpoint::ipv4`]; ports are host order.

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
/// Offsets of `ciaddr`, `yiaddr`, `giaddr` and `chaddr` in the BOOTP header.
pub const BOOTP_CIADDR_OFF: usize = 12;
pub const BOOTP_YIADDR_OFF: usize = 16;
pub const BOOTP_GIADDR_OFF: usize = 24;
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

/// Equality of two MACs without a `memcmp` call (there is no libc in BPF),
/// as two 48-bit words: no branch per byte, and where the bytes came from
/// one wide load the compiler compares the loaded word.
#[inline(always)]
pub fn mac_eq(a: &[u8; 6], b: &[u8; 6]) -> bool {
    mac_word(a) == mac_word(b)
}

/// A MAC as a 48-bit word (its bytes in order from the lowest), for
/// comparisons in one instruction.
#[inline(always)]
pub fn mac_word(m: &[u8; 6]) -> u64 {
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
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
    /// A DHCP client message: UDP 68 -> 67, broadcast or unicast; judged by
    /// [`crate::snoop::verdict`].
    Client(ClientMsg),
}

/// The headers of a DHCP client message: what the verdict judges and the
/// relay rewrites. The options are read by [`crate::snoop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientMsg {
    pub src_mac: [u8; 6],
    pub saddr: u32,
    pub daddr: u32,
    /// See [`Udp4::tagged`]; the program also sets it for a tag held in the
    /// skb's metadata (`vlan_present`).
    pub tagged: bool,
    pub udp_off: usize,
    /// The UDP length field: the options end there.
    pub udp_len: u16,
    /// BOOTP `op`, `htype`, `hlen`, `flags` (as on the wire), `ciaddr`,
    /// `giaddr`, `chaddr`.
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub flags: [u8; 2],
    pub ciaddr: u32,
    pub giaddr: u32,
    pub chaddr: [u8; 6],
}

impl ClientMsg {
    /// Sent to 255.255.255.255: the relay's business.
    #[inline(always)]
    pub fn is_broadcast(&self) -> bool {
        self.daddr == IPV4_BROADCAST
    }

    /// Offset of the BOOTP header in the frame.
    #[inline(always)]
    pub fn bootp_off(&self) -> usize {
        self.udp_off + UDP_HLEN
    }

    /// Offset of BOOTP `flags` in the frame.
    #[inline(always)]
    pub fn flags_off(&self) -> usize {
        self.bootp_off() + BOOTP_FLAGS_OFF
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
fn ipv4_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `Err(Short)` for a DHCP client message too short for its BOOTP header
/// up to `chaddr`: the caller drops it, it cannot be judged.
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
    let udp_len: [u8; 2] = p.read(udp.udp_off + 4)?;
    // op .. chaddr[0..6]
    let b: [u8; BOOTP_CHADDR_OFF + 6] = p.read(udp.payload_off())?;
    let c = BOOTP_CHADDR_OFF;
    Ok(FromPod::Client(ClientMsg {
        src_mac: p.read(ETH_SRC_OFF)?,
        saddr,
        daddr,
        tagged: udp.tagged,
        udp_off: udp.udp_off,
        udp_len: u16::from_be_bytes(udp_len),
        op: b[0],
        htype: b[1],
        hlen: b[2],
        flags: [b[BOOTP_FLAGS_OFF], b[BOOTP_FLAGS_OFF + 1]],
        ciaddr: ipv4_at(&b, BOOTP_CIADDR_OFF),
        giaddr: ipv4_at(&b, BOOTP_GIADDR_OFF),
        chaddr: [b[c], b[c + 1], b[c + 2], b[c + 3], b[c + 4], b[c + 5]],
    }))
}

/// What `lb_from_uplink` needs of a DHCP server reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Whose reply it is.
    pub chaddr: [u8; 6],
    /// The address offered or acknowledged (network byte order; 0 in a NAK).
    pub yiaddr: u32,
}

/// A DHCP server reply (UDP 67 -> 68, BOOTREPLY, Ethernet hardware
/// address) arriving untagged on the uplink; `None` for anything else.
/// Tagged replies belong to a VLAN interface of the node, not to pods.
#[inline(always)]
pub fn parse_from_uplink<P: Packet + ?Sized>(p: &P) -> Result<Option<Reply>, Short> {
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
    Ok(Some(Reply {
        chaddr: [
            bootp[c],
            bootp[c + 1],
            bootp[c + 2],
            bootp[c + 3],
            bootp[c + 4],
            bootp[c + 5],
        ],
        yiaddr: ipv4_at(&bootp, BOOTP_YIADDR_OFF),
    }))
}

#[cfg(test)]
pub(crate) mod tests;

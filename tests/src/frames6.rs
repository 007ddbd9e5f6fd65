//! IPv6 frames a hostile pod crafts (router advertisements, neighbour
//! advertisements, datagrams from foreign sources, extension header
//! chains), with valid checksums so that a real kernel would take them.

use std::net::Ipv6Addr;

pub const ETH_P_IPV6: u16 = 0x86dd;
pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_DEST: u8 = 60;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An IPv6 packet in an Ethernet frame. `chain` lists extension headers as
/// (type, body with its first byte, the next header, filled in).
pub struct Ip6Frame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub saddr: Ipv6Addr,
    pub daddr: Ipv6Addr,
    pub hop_limit: u8,
    pub chain: Vec<(u8, Vec<u8>)>,
    pub proto: u8,
    /// The upper-layer message; its checksum field is filled in for ICMPv6
    /// and UDP.
    pub payload: Vec<u8>,
}

impl Ip6Frame {
    pub fn new(
        src_mac: [u8; 6],
        saddr: Ipv6Addr,
        daddr: Ipv6Addr,
        proto: u8,
        payload: Vec<u8>,
    ) -> Ip6Frame {
        Ip6Frame {
            dst_mac: multicast_mac(&daddr).unwrap_or([0xff; 6]),
            src_mac,
            saddr,
            daddr,
            hop_limit: 255,
            chain: vec![],
            proto,
            payload,
        }
    }

    pub fn chain(mut self, chain: Vec<(u8, Vec<u8>)>) -> Ip6Frame {
        self.chain = chain;
        self
    }

    pub fn to(mut self, dst_mac: [u8; 6]) -> Ip6Frame {
        self.dst_mac = dst_mac;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut upper = self.payload.clone();
        let csum_off = match self.proto {
            IPPROTO_ICMPV6 => Some(2),
            IPPROTO_UDP => Some(6),
            _ => None,
        };
        if let Some(off) = csum_off.filter(|off| upper.len() >= off + 2) {
            upper[off..off + 2].copy_from_slice(&[0, 0]);
            let sum = checksum(&self.saddr, &self.daddr, self.proto, &upper);
            upper[off..off + 2].copy_from_slice(&sum.to_be_bytes());
        }
        let mut body = Vec::new();
        let kinds: Vec<u8> = self
            .chain
            .iter()
            .map(|(k, _)| *k)
            .chain([self.proto])
            .collect();
        for (i, (_, ext)) in self.chain.iter().enumerate() {
            let mut e = ext.clone();
            e[0] = kinds[i + 1];
            body.extend(e);
        }
        body.extend(upper);
        let mut f = Vec::new();
        f.extend(self.dst_mac);
        f.extend(self.src_mac);
        f.extend(ETH_P_IPV6.to_be_bytes());
        f.extend([0x60, 0, 0, 0]);
        f.extend((body.len() as u16).to_be_bytes());
        f.extend([kinds[0], self.hop_limit]);
        f.extend(self.saddr.octets());
        f.extend(self.daddr.octets());
        f.extend(body);
        f
    }
}

/// 33:33 + the low 32 bits of a multicast address.
fn multicast_mac(a: &Ipv6Addr) -> Option<[u8; 6]> {
    let o = a.octets();
    (o[0] == 0xff).then_some([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The ICMPv6/UDP checksum with the IPv6 pseudo header.
fn checksum(saddr: &Ipv6Addr, daddr: &Ipv6Addr, proto: u8, upper: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend(saddr.octets());
    data.extend(daddr.octets());
    data.extend((upper.len() as u32).to_be_bytes());
    data.extend([0, 0, 0, proto]);
    data.extend(upper);
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let s = !(sum as u16);
    if s == 0 && proto == IPPROTO_UDP {
        0xffff
    } else {
        s
    }
}

/// The EUI-64 link-local address of `mac`.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from(lanbridge_common::ip6::link_local(&mac))
}

/// A router advertisement: default router for 1800 s, prefix `prefix`/64
/// on-link and autonomous, the sender's MAC as source link-layer option.
pub fn router_advertisement(prefix: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend([1, 1]);
    m.extend(mac);
    // Prefix information: /64, L and A, valid and preferred 86400 s.
    m.extend([3, 4, 64, 0xc0]);
    m.extend(86400u32.to_be_bytes());
    m.extend(86400u32.to_be_bytes());
    m.extend([0; 4]);
    m.extend(prefix.octets());
    m
}

/// A neighbour advertisement for `target` (solicited clear, override set)
/// with `mac` as target link-layer option.
pub fn neighbour_advertisement(target: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    m.extend(target.octets());
    m.extend([2, 1]);
    m.extend(mac);
    m
}

/// A neighbour solicitation for `target`, with `mac` as source link-layer
/// option unless `None` (DAD).
pub fn neighbour_solicitation(target: Ipv6Addr, mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend(target.octets());
    if let Some(mac) = mac {
        m.extend([1, 1]);
        m.extend(mac);
    }
    m
}

/// A UDP datagram (header and `data`).
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + data.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(data);
    u
}

/// An 8-byte hop-by-hop or destination options header (one PadN).
pub fn pad_options() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

/// A fragment header: `offset` in 8-byte units, M flag `more`.
pub fn fragment_header(offset: u16, more: bool) -> Vec<u8> {
    let v = ((offset << 3) | u16::from(more)).to_be_bytes();
    vec![0, 0, v[0], v[1], 0, 0, 0x12, 0x34]
}

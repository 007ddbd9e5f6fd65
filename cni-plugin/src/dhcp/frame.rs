//! DHCP on the packet socket: reading replies (the IPv4 and UDP headers the
//! kernel would otherwise have stripped, and the classic BPF filter that
//! keeps everything but client-bound UDP out of that socket), and building
//! the broadcasts of a client that has no address yet, whose IPv4 source
//! must be 0.0.0.0 (RFC 2131 §4.1) whatever the pod's other interfaces hold.

use std::net::Ipv4Addr;

use std::mem::size_of;

use socket2::{SockAddr, SockAddrStorage, SockFilter};

use crate::node::mac::Mac;

/// The DHCP client port replies are sent to.
pub const CLIENT_PORT: u16 = 68;
/// The DHCP server port.
pub const SERVER_PORT: u16 = 67;

const IPPROTO_UDP: u8 = 17;

/// A UDP datagram for the client port, as received.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub source: Ipv4Addr,
    pub payload: &'a [u8],
}

/// Reads an IPv4 packet (a `SOCK_DGRAM` packet socket delivers it without the
/// link-layer header) as a UDP datagram to port 68. Fragments, other
/// protocols and inconsistent lengths are `None`. Checksums are not verified:
/// on veth and with offloads the kernel hands packet sockets UDP checksums
/// that were never filled in, so a check would reject good replies.
pub fn client_datagram(packet: &[u8]) -> Option<Datagram<'_>> {
    let version_ihl = *packet.first()?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < 20 || packet.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff;
    if total < ihl || total > packet.len() || fragment != 0 || packet[9] != IPPROTO_UDP {
        return None;
    }
    let udp = &packet[ihl..total];
    if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != CLIENT_PORT {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < 8 || udp_len > udp.len() {
        return None;
    }
    Some(Datagram {
        source: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        payload: &udp[8..udp_len],
    })
}

/// An IPv4/UDP packet from 0.0.0.0:68 to 255.255.255.255:67 carrying
/// `payload`, for a `SOCK_DGRAM` packet socket (the kernel adds the link
/// header). Sent this way because a UDP socket, even bound to the interface,
/// takes its source address from another interface when this one has none
/// (a pod's `eth0` beside the `net1` being leased), and the port's source
/// guard rightly drops a DHCP client packet from an address not its own.
pub fn unconfigured_broadcast(payload: &[u8]) -> Vec<u8> {
    const TTL: u8 = 64;
    let udp_len = 8 + payload.len();
    let total = u16::try_from(20 + udp_len).expect("a DHCP message fits a packet");
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, TTL, IPPROTO_UDP, 0, 0]);
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&Ipv4Addr::UNSPECIFIED.octets());
    p.extend_from_slice(&Ipv4Addr::BROADCAST.octets());
    let header_sum = checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&header_sum.to_be_bytes());
    let udp_len = udp_len as u16;
    let mut udp = Vec::with_capacity(8);
    udp.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    udp.extend_from_slice(&SERVER_PORT.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    // The UDP checksum covers a pseudo-header: addresses, protocol, length.
    let mut pseudo = [0u8; 12];
    pseudo[4..8].copy_from_slice(&Ipv4Addr::BROADCAST.octets());
    pseudo[9] = IPPROTO_UDP;
    pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
    let sum = match checksum(&[&pseudo, &udp, payload]) {
        0 => 0xffff, // 0 means "no checksum" in UDP over IPv4
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&udp);
    p.extend_from_slice(payload);
    p
}

/// The Internet checksum (RFC 1071) of the concatenated `parts`, each of
/// even length but the last.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// Classic BPF opcodes (linux/filter.h).
pub(super) const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const LD_H_IND: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_IND) as u16;
const LDX_B_MSH: u16 = (libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH) as u16;
pub(super) const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
pub(super) const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// `skb->pkt_type` through the ancillary area.
pub(super) const PKTTYPE: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;

/// Accepts unfragmented IPv4 UDP to port 68 that this host did not send; the
/// jump offsets count instructions skipped, `drop` is the last one.
/// Offsets are from the IPv4 header (a `SOCK_DGRAM` packet socket).
pub fn client_filter() -> [SockFilter; 11] {
    [
        SockFilter::new(LD_W_ABS, 0, 0, PKTTYPE),
        SockFilter::new(JEQ, 8, 0, u32::from(libc::PACKET_OUTGOING)),
        SockFilter::new(LD_B_ABS, 0, 0, 9), // protocol
        SockFilter::new(JEQ, 0, 6, u32::from(IPPROTO_UDP)),
        SockFilter::new(LD_H_ABS, 0, 0, 6), // flags and fragment offset
        SockFilter::new(JSET, 4, 0, 0x3fff),
        SockFilter::new(LDX_B_MSH, 0, 0, 0), // X = header length
        SockFilter::new(LD_H_IND, 0, 0, 2),  // UDP destination port
        SockFilter::new(JEQ, 0, 1, u32::from(CLIENT_PORT)),
        SockFilter::new(RET, 0, 0, 0x0004_0000),
        SockFilter::new(RET, 0, 0, 0), // drop
    ]
}

/// Drops everything: for the UDP socket that only sends (replies are read
/// from the packet socket, and would otherwise pile up in its queue).
pub fn drop_all_filter() -> [SockFilter; 1] {
    [SockFilter::new(RET, 0, 0, 0)]
}

/// `sockaddr_ll` for frames of `protocol` (an ethertype) on interface
/// `ifindex`, to link address `to` when sending.
pub fn link_address(ifindex: u32, protocol: u16, to: Option<Mac>) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: the storage is large enough and suitably aligned for any
    // sockaddr (that is its purpose), and zeroed.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = ifindex as i32;
    if let Some(mac) = to {
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(mac.as_ref());
    }
    // SAFETY: the family is AF_PACKET and the length that of sockaddr_ll,
    // matching what was written.
    unsafe { SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP packet from 192.0.2.1:67 to `dport` with `payload`.
    fn packet(dport: u16, payload: &[u8]) -> Vec<u8> {
        let udp_len = 8 + payload.len() as u16;
        let total = 20 + udp_len;
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, IPPROTO_UDP, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[192, 0, 2, 1, 255, 255, 255, 255]);
        p.extend_from_slice(&67u16.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn builds_a_broadcast_from_no_address() {
        let p = unconfigured_broadcast(b"discover");
        assert_eq!(p.len(), 20 + 8 + 8);
        assert_eq!(&p[12..20], &[0, 0, 0, 0, 255, 255, 255, 255]);
        assert_eq!(checksum(&[&p[..20]]), 0, "IPv4 header checksum");
        let mut pseudo = [0u8; 12];
        pseudo[4..8].copy_from_slice(&[255; 4]);
        pseudo[9] = IPPROTO_UDP;
        pseudo[10..12].copy_from_slice(&p[24..26]);
        assert_eq!(checksum(&[&pseudo, &p[20..]]), 0, "UDP checksum");
        assert_eq!(u16::from_be_bytes([p[20], p[21]]), CLIENT_PORT);
        assert_eq!(u16::from_be_bytes([p[22], p[23]]), SERVER_PORT);
        // What the packet socket reads back parses as a datagram (to port 67
        // here, so not a client one).
        let mut echoed = p.clone();
        echoed[22..24].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        assert_eq!(client_datagram(&echoed).unwrap().payload, b"discover");
        // An odd-length payload is checksummed with a zero pad byte.
        let odd = unconfigured_broadcast(b"odd");
        pseudo[10..12].copy_from_slice(&odd[24..26]);
        assert_eq!(checksum(&[&pseudo, &odd[20..]]), 0);
    }

    #[test]
    fn reads_a_client_datagram() {
        let p = packet(68, b"hello");
        assert_eq!(
            client_datagram(&p),
            Some(Datagram {
                source: Ipv4Addr::new(192, 0, 2, 1),
                payload: b"hello"
            })
        );
    }

    #[test]
    fn ignores_link_padding_past_the_ip_total_length() {
        let mut p = packet(68, b"hi");
        p.extend_from_slice(&[0; 20]);
        assert_eq!(client_datagram(&p).unwrap().payload, b"hi");
    }

    #[test]
    fn honours_ip_options() {
        let mut p = packet(68, b"opt");
        p[0] = 0x46;
        p.splice(20..20, [1, 1, 1, 0]); // NOP NOP NOP EOL
        let total = u16::from_be_bytes([p[2], p[3]]) + 4;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        assert_eq!(client_datagram(&p).unwrap().payload, b"opt");
    }

    #[test]
    fn rejects_what_is_not_a_whole_client_datagram() {
        assert_eq!(client_datagram(&packet(67, b"x")), None, "server port");
        let mut frag = packet(68, b"x");
        frag[6] = 0x20; // more fragments
        assert_eq!(client_datagram(&frag), None);
        let mut tcp = packet(68, b"x");
        tcp[9] = 6;
        assert_eq!(client_datagram(&tcp), None);
        let full = packet(68, b"xyz");
        assert_eq!(client_datagram(&full[..full.len() - 1]), None, "truncated");
        let mut long_udp = packet(68, b"x");
        long_udp[24..26].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(client_datagram(&long_udp), None);
        let mut v6 = packet(68, b"x");
        v6[0] = 0x65;
        assert_eq!(client_datagram(&v6), None);
        assert_eq!(client_datagram(&[]), None);
        assert_eq!(client_datagram(&[0x4f; 10]), None);
    }
}

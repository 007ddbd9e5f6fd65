extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::EP_GUARD_IP;

const POD_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OTHER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
const POD_IP: [u8; 4] = [192, 168, 77, 130];
const LAN_IP: [u8; 4] = [192, 168, 77, 50];

fn ep() -> Endpoint {
    Endpoint {
        mac: POD_MAC,
        flags: EP_GUARD_IP,
        ipv4: [u32::from_ne_bytes(POD_IP), 0, 0, 0],
        ..Endpoint::default()
    }
}

fn eth(src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend(src);
    f.extend(ethertype.to_be_bytes());
    f
}

fn ipv4(src: [u8; 6], saddr: [u8; 4], daddr: [u8; 4], proto: u8, ports: (u16, u16)) -> Vec<u8> {
    let mut f = eth(src, ETH_P_IP);
    f.extend([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, proto, 0, 0]);
    f.extend(saddr);
    f.extend(daddr);
    f.extend(ports.0.to_be_bytes());
    f.extend(ports.1.to_be_bytes());
    f.extend([0; 16]);
    f
}

fn arp(src: [u8; 6], sha: [u8; 6], spa: [u8; 4]) -> Vec<u8> {
    let mut f = eth(src, ETH_P_ARP);
    f.extend([0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend(sha);
    f.extend(spa);
    f.extend([0; 6]);
    f.extend(LAN_IP);
    f
}

fn judge(frame: &[u8]) -> Result<(), Reason> {
    guard(&parse_frame(frame).unwrap(), &ep())
}

#[test]
fn own_traffic_passes_the_guard() {
    assert_eq!(
        judge(&ipv4(POD_MAC, POD_IP, LAN_IP, IPPROTO_TCP, (40000, 80))),
        Ok(())
    );
    assert_eq!(judge(&arp(POD_MAC, POD_MAC, POD_IP)), Ok(()));
    // An RFC 5227 probe, and a DHCP client before it has an address.
    assert_eq!(judge(&arp(POD_MAC, POD_MAC, [0; 4])), Ok(()));
    assert_eq!(
        judge(&ipv4(POD_MAC, [0; 4], [255; 4], IPPROTO_UDP, (68, 67))),
        Ok(())
    );
    assert_eq!(judge(&eth(POD_MAC, 0x88cc)), Ok(()));
}

#[test]
fn spoofing_is_caught_with_its_reason() {
    assert_eq!(
        judge(&ipv4(OTHER_MAC, POD_IP, LAN_IP, IPPROTO_TCP, (1, 2))),
        Err(Reason::DropSpoofMac)
    );
    assert_eq!(judge(&eth(OTHER_MAC, 0x88cc)), Err(Reason::DropSpoofMac));
    assert_eq!(
        judge(&ipv4(
            POD_MAC,
            [192, 168, 77, 131],
            LAN_IP,
            IPPROTO_UDP,
            (5, 6)
        )),
        Err(Reason::DropSpoofIp)
    );
    assert_eq!(
        judge(&ipv4(POD_MAC, [0; 4], LAN_IP, IPPROTO_UDP, (5, 6))),
        Err(Reason::DropSpoofIp),
        "0.0.0.0 is for DHCP clients only"
    );
    assert_eq!(
        judge(&arp(POD_MAC, POD_MAC, LAN_IP)),
        Err(Reason::DropArpSpoof)
    );
    assert_eq!(
        judge(&arp(POD_MAC, OTHER_MAC, POD_IP)),
        Err(Reason::DropArpSpoof)
    );
}

#[test]
fn without_ipam_addresses_only_the_mac_is_checked() {
    let mut e = ep();
    e.flags = 0;
    let f = parse_frame(&ipv4(POD_MAC, LAN_IP, POD_IP, IPPROTO_ICMP, (0, 0))[..]).unwrap();
    assert_eq!(guard(&f, &e), Ok(()));
}

#[test]
fn ports_and_flow_keys() {
    let f = parse_frame(&ipv4(POD_MAC, POD_IP, LAN_IP, IPPROTO_UDP, (5353, 53))[..]).unwrap();
    let Kind::Ipv4(ip) = f.kind else {
        panic!("not IPv4")
    };
    assert!(ip.has_ports());
    assert_eq!((ip.sport, ip.dport, ip.ttl), (5353, 53, 64));
    let k = ip.flow();
    assert_eq!(k.reversed().reversed(), k);
    assert_eq!(k.reversed().saddr, u32::from_ne_bytes(LAN_IP));
    assert_eq!(k.reversed().sport, 53);
}

#[test]
fn fragments_have_no_ports_and_short_frames_are_short() {
    let mut frag = ipv4(POD_MAC, POD_IP, LAN_IP, IPPROTO_UDP, (1, 2));
    frag[ETH_HLEN + 7] = 8; // fragment offset 64
    let Kind::Ipv4(ip) = parse_frame(&frag[..]).unwrap().kind else {
        panic!()
    };
    assert!(ip.fragment && !ip.has_ports() && ip.sport == 0);
    let full = ipv4(POD_MAC, POD_IP, LAN_IP, IPPROTO_TCP, (1, 2));
    for len in 0..ETH_HLEN + 24 {
        assert!(parse_frame(&full[..len]).is_err(), "len {len}");
    }
}

/// The one's complement sum of 16-bit words (`skip`: a word's index left
/// out), folded.
fn ones_sum(h: &[u8], skip: Option<usize>) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, w)| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The IPv4 header checksum of `h`, computed whole (its field, word 5,
/// left out).
fn header_checksum(h: &[u8]) -> u16 {
    !ones_sum(h, Some(5))
}

#[test]
fn a_decremented_ttl_keeps_the_header_checksum_valid() {
    // Every TTL, and addresses that put the checksum at the edges of the
    // one's complement range (0x0000, 0xffff, the carries in between).
    for ttl in 1..=255u8 {
        for saddr in [
            [0, 0, 0, 0],
            [10, 0, 0, 1],
            [255, 255, 255, 254],
            [0xfe, 0xff, 0, 0xff],
        ] {
            let mut f = ipv4(POD_MAC, saddr, LAN_IP, IPPROTO_TCP, (1, 2));
            f[ETH_HLEN + IP_TTL_OFF] = ttl;
            let sum = header_checksum(&f[ETH_HLEN..ETH_HLEN + 20]);
            f[ETH_HLEN + IP_CSUM_OFF..][..2].copy_from_slice(&sum.to_be_bytes());
            let Kind::Ipv4(ip) = parse_frame(&f[..]).unwrap().kind else {
                panic!("not IPv4")
            };
            assert_eq!(ip.csum, sum);
            f[ETH_HLEN + IP_TTL_OFF..][..4].copy_from_slice(&ip.ttl_decremented());
            let h = &f[ETH_HLEN..ETH_HLEN + 20];
            assert_eq!(h[IP_TTL_OFF], ttl - 1);
            assert_eq!(ones_sum(h, None), 0xffff, "TTL {ttl}, source {saddr:?}");
        }
    }
}

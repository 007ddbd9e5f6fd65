extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::frame::{guard as frame_guard, parse_frame, Kind};

const POD_MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
const OTHER_MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x09];
/// 2001:db8::5, given by IPAM.
const POD_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
const OTHER_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
const ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn ep(flags: u16) -> Endpoint {
    Endpoint {
        mac: POD_MAC,
        flags,
        ipv6: [POD_IP6, [0; 16]],
        ..Endpoint::default()
    }
}

fn pod_ll() -> [u8; 16] {
    link_local(&POD_MAC)
}

/// An Ethernet/IPv6 frame from the pod's MAC: `chain` is a list of
/// extension headers (next header, body), the payload follows.
fn ip6(saddr: [u8; 16], chain: &[(u8, Vec<u8>)], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
    f.extend(POD_MAC);
    f.extend(ETH_P_IPV6.to_be_bytes());
    let mut body = Vec::new();
    let mut kinds: Vec<u8> = chain.iter().map(|(k, _)| *k).collect();
    kinds.push(proto);
    for (i, (_, ext)) in chain.iter().enumerate() {
        let mut e = ext.clone();
        e[0] = kinds[i + 1];
        body.extend(e);
    }
    body.extend(payload);
    let first = if chain.is_empty() { proto } else { chain[0].0 };
    f.extend([0x60, 0, 0, 0]);
    f.extend((body.len() as u16).to_be_bytes());
    f.extend([first, 255]);
    f.extend(saddr);
    f.extend(ALL_NODES);
    f.extend(body);
    f
}

/// An 8-byte hop-by-hop / destination options header (PadN).
fn opts8() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

/// A fragment header with `offset` (8-byte units) and the M flag.
fn frag(offset: u16, more: bool) -> Vec<u8> {
    let v = (offset << 3) | u16::from(more);
    let b = v.to_be_bytes();
    vec![0, 0, b[0], b[1], 0, 0, 0, 1]
}

fn icmp(kind: u8) -> Vec<u8> {
    vec![kind, 0, 0, 0, 0, 0, 0, 0]
}

/// An NS (135) or NA (136) for `target` with options.
fn nd(kind: u8, target: [u8; 16], opts: &[Vec<u8>]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0, 0x20, 0, 0, 0];
    m.extend(target);
    for o in opts {
        m.extend(o);
    }
    m
}

fn lladdr_opt(kind: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend(mac);
    o
}

fn nonce_opt() -> Vec<u8> {
    vec![14, 1, 1, 2, 3, 4, 5, 6]
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend([0, 8, 0, 0]);
    u
}

fn parsed(frame: &[u8]) -> Ip6 {
    assert_eq!(parse_frame(frame).unwrap().kind, Kind::Ipv6(14));
    parse_ip6(frame, 14, &ep(EP_GUARD_IP6))
        .unwrap()
        .expect("IPv6")
}

fn ra(frame: &[u8]) -> Result<(), Reason> {
    ra_guard(&parsed(frame))
}

/// The MAC guard, then the IPv6 verdict with `enforce`, as `lb_from_pod`.
fn judge(frame: &[u8], flags: u16) -> Result<(), Reason> {
    frame_guard(&parse_frame(frame).unwrap(), &ep(flags))?;
    let chain = chain(frame, 14).unwrap();
    assert_eq!(Chain::from_bits(chain.to_bits()), chain);
    match verdict(frame, 14, chain, &ep(flags), true).unwrap() {
        Reason::Passed => Ok(()),
        r => Err(r),
    }
}

#[test]
fn link_local_is_eui64() {
    assert_eq!(
        link_local(&POD_MAC),
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x42, 0xac, 0xff, 0xfe, 0x11, 0x00, 0x02]
    );
    let e = ep(EP_GUARD_IP6);
    assert!(e.owns6(&pod_ll()) && e.owns6(&POD_IP6));
    assert!(!e.owns6(&OTHER_IP6) && !e.owns6(&[0; 16]) && !e.owns6(&link_local(&OTHER_MAC)));
}

#[test]
fn router_advertisements_redirects_and_dhcp6_servers_are_dropped() {
    let ll = pod_ll();
    assert_eq!(
        ra(&ip6(ll, &[], IPPROTO_ICMPV6, &icmp(134))),
        Err(Reason::DropRa)
    );
    assert_eq!(
        ra(&ip6(ll, &[], IPPROTO_ICMPV6, &icmp(137))),
        Err(Reason::DropRedirect6)
    );
    for (s, d) in [(547, 546), (547, 547), (40000, 546)] {
        assert_eq!(
            ra(&ip6(ll, &[], IPPROTO_UDP, &udp(s, d))),
            Err(Reason::DropDhcp6Server),
            "{s} -> {d}"
        );
    }
    // What pods legitimately send.
    for kind in [128, 129, 133, 135, 136, 143] {
        let m = if kind == 135 || kind == 136 {
            nd(kind, ll, &[])
        } else {
            icmp(kind)
        };
        assert_eq!(ra(&ip6(ll, &[], IPPROTO_ICMPV6, &m)), Ok(()), "type {kind}");
    }
    assert_eq!(ra(&ip6(ll, &[], IPPROTO_UDP, &udp(546, 547))), Ok(()));
    assert_eq!(ra(&ip6(ll, &[], 6, &[0; 20])), Ok(()));
}

#[test]
fn extension_headers_do_not_hide_an_advertisement() {
    let ll = pod_ll();
    let ra_msg = icmp(134);
    for chain in [
        vec![(0, opts8())],
        vec![(0, opts8()), (60, opts8())],
        vec![(60, opts8()), (43, vec![0, 0, 0, 0, 0, 0, 0, 0])],
        // An atomic fragment (offset 0, no M): the whole packet.
        vec![(44, frag(0, false))],
        // A first fragment holding the ICMPv6 header.
        vec![(0, opts8()), (44, frag(0, true))],
        // AH, 12 bytes: length in 4-byte units.
        vec![(51, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
        vec![(0, opts8()), (60, opts8()), (60, opts8()), (60, opts8())],
    ] {
        assert_eq!(
            ra(&ip6(ll, &chain, IPPROTO_ICMPV6, &ra_msg)),
            Err(Reason::DropRa),
            "{chain:?}"
        );
    }
    let mut long = vec![(60, opts8()); MAX_EXT_HDRS];
    long.insert(0, (0, opts8()));
    assert_eq!(
        ra(&ip6(ll, &long, IPPROTO_ICMPV6, &ra_msg)),
        Err(Reason::DropIp6Unjudged),
        "a chain longer than the guard walks"
    );
}

#[test]
fn fragments_that_cannot_be_judged_are_dropped_and_later_ones_pass() {
    let ll = pod_ll();
    // A first fragment that ends inside the extension chain: the upper layer
    // is in the next fragment.
    let mut f = ip6(
        ll,
        &[(44, frag(0, true)), (60, opts8())],
        IPPROTO_ICMPV6,
        &[],
    );
    // Cut the destination options header's body: payload ends after 2 bytes.
    let payload = 8 + 2;
    f.truncate(14 + 40 + payload);
    f[18..20].copy_from_slice(&(payload as u16).to_be_bytes());
    assert_eq!(ra(&f), Err(Reason::DropIp6Unjudged));
    // A first fragment ending right after the chain.
    let f = ip6(ll, &[(44, frag(0, true))], IPPROTO_ICMPV6, &[]);
    assert_eq!(ra(&f), Err(Reason::DropIp6Unjudged));
    // A later fragment: nothing to look at, it passes (its first was judged).
    let f = ip6(ll, &[(44, frag(185, false))], IPPROTO_ICMPV6, &[0xaa; 64]);
    assert_eq!(parsed(&f).upper, Upper::Other);
    assert_eq!(ra(&f), Ok(()));
    // Headers claimed beyond the payload length.
    let mut f = ip6(ll, &[(0, opts8())], IPPROTO_ICMPV6, &icmp(134));
    f[14 + 40 + 1] = 10;
    assert_eq!(ra(&f), Err(Reason::DropIp6Unjudged));
    // A jumbogram (payload length 0).
    let mut f = ip6(ll, &[], IPPROTO_ICMPV6, &icmp(128));
    f[18..20].copy_from_slice(&[0, 0]);
    assert_eq!(ra(&f), Err(Reason::DropIp6Unjudged));
}

#[test]
fn sources_are_the_link_local_and_ipam_addresses() {
    let g = EP_GUARD_IP6;
    let tcp = [0u8; 20];
    assert_eq!(judge(&ip6(pod_ll(), &[], 6, &tcp), g), Ok(()));
    assert_eq!(judge(&ip6(POD_IP6, &[], 6, &tcp), g), Ok(()));
    for foreign in [OTHER_IP6, link_local(&OTHER_MAC), [0; 16]] {
        assert_eq!(
            judge(&ip6(foreign, &[], 6, &tcp), g),
            Err(Reason::DropSpoofIp6),
            "{foreign:x?}"
        );
        // Fragments carry the source too.
        assert_eq!(
            judge(&ip6(foreign, &[(44, frag(185, false))], 6, &tcp), g),
            Err(Reason::DropSpoofIp6)
        );
    }
    // Not configured by IPAM: any source but `::` outside DAD.
    assert_eq!(judge(&ip6(OTHER_IP6, &[], 6, &tcp), 0), Ok(()));
    assert_eq!(
        judge(&ip6([0; 16], &[], 6, &tcp), 0),
        Err(Reason::DropSpoofIp6)
    );
    // The MAC first, as for IPv4.
    let mut f = ip6(POD_IP6, &[], 6, &tcp);
    f[6..12].copy_from_slice(&OTHER_MAC);
    assert_eq!(judge(&f, g), Err(Reason::DropSpoofMac));
}

#[test]
fn unspecified_source_only_before_an_address() {
    let g = EP_GUARD_IP6;
    let z = [0u8; 16];
    let hop = [(0, opts8())];
    // DAD for its own addresses, with Linux's nonce option.
    for target in [pod_ll(), POD_IP6] {
        let m = nd(135, target, &[nonce_opt()]);
        assert_eq!(judge(&ip6(z, &[], IPPROTO_ICMPV6, &m), g), Ok(()));
    }
    // DAD for another's address, or with a link-layer option.
    let m = nd(135, OTHER_IP6, &[]);
    assert_eq!(
        judge(&ip6(z, &[], IPPROTO_ICMPV6, &m), g),
        Err(Reason::DropNdSpoof)
    );
    let m = nd(135, POD_IP6, &[lladdr_opt(1, POD_MAC)]);
    assert_eq!(
        judge(&ip6(z, &[], IPPROTO_ICMPV6, &m), g),
        Err(Reason::DropNdSpoof)
    );
    // Router solicitation and MLD reports.
    assert_eq!(judge(&ip6(z, &[], IPPROTO_ICMPV6, &icmp(133)), g), Ok(()));
    assert_eq!(judge(&ip6(z, &hop, IPPROTO_ICMPV6, &icmp(143)), g), Ok(()));
    // Nothing else.
    for kind in [128, 136] {
        let m = if kind == 136 {
            nd(136, POD_IP6, &[])
        } else {
            icmp(128)
        };
        assert_eq!(
            judge(&ip6(z, &[], IPPROTO_ICMPV6, &m), g),
            Err(Reason::DropSpoofIp6),
            "type {kind}"
        );
    }
}

#[test]
fn neighbour_discovery_only_for_and_with_its_own() {
    let g = EP_GUARD_IP6;
    let ll = pod_ll();
    let na = |target, opts: &[Vec<u8>]| ip6(ll, &[], IPPROTO_ICMPV6, &nd(136, target, opts));
    let ns = |target, opts: &[Vec<u8>]| ip6(ll, &[], IPPROTO_ICMPV6, &nd(135, target, opts));
    assert_eq!(judge(&na(POD_IP6, &[lladdr_opt(2, POD_MAC)]), g), Ok(()));
    assert_eq!(judge(&na(ll, &[]), g), Ok(()));
    // Claiming another's address (the override attack), or another MAC.
    assert_eq!(
        judge(&na(OTHER_IP6, &[lladdr_opt(2, POD_MAC)]), g),
        Err(Reason::DropNdSpoof)
    );
    assert_eq!(
        judge(&na(POD_IP6, &[lladdr_opt(2, OTHER_MAC)]), g),
        Err(Reason::DropNdSpoof)
    );
    // Resolving anyone, with its own MAC only.
    assert_eq!(judge(&ns(OTHER_IP6, &[lladdr_opt(1, POD_MAC)]), g), Ok(()));
    assert_eq!(
        judge(&ns(OTHER_IP6, &[nonce_opt(), lladdr_opt(1, OTHER_MAC)]), g),
        Err(Reason::DropNdSpoof)
    );
    // A second link-layer option, a zero-length option, too many options:
    // not judged.
    for opts in [
        vec![lladdr_opt(2, POD_MAC), lladdr_opt(2, OTHER_MAC)],
        vec![vec![14, 0, 0, 0, 0, 0, 0, 0]],
        vec![nonce_opt(); MAX_ND_OPTS + 1],
    ] {
        assert_eq!(
            ra(&na(POD_IP6, &opts)),
            Err(Reason::DropIp6Unjudged),
            "{opts:?}"
        );
    }
    // Without enforcement of IPv6 addresses, only the MAC is judged.
    assert_eq!(judge(&na(OTHER_IP6, &[lladdr_opt(2, POD_MAC)]), 0), Ok(()));
    assert_eq!(
        judge(&na(OTHER_IP6, &[lladdr_opt(2, OTHER_MAC)]), 0),
        Err(Reason::DropNdSpoof)
    );
}

#[test]
fn truncated_ipv6_is_short_at_every_length() {
    let m = nd(136, POD_IP6, &[lladdr_opt(2, POD_MAC)]);
    let f = ip6(pod_ll(), &[(0, opts8())], IPPROTO_ICMPV6, &m);
    for len in 14..f.len() {
        assert!(parse_ip6(&f[..len], 14, &ep(0)).is_err(), "{len} bytes");
    }
    assert!(parse_ip6(&f[..], 14, &ep(0)).is_ok());
    // Ethernet padding after the payload changes nothing.
    let mut padded = f.clone();
    padded.extend([0; 16]);
    assert_eq!(
        parse_ip6(&padded[..], 14, &ep(0)),
        parse_ip6(&f[..], 14, &ep(0))
    );
}

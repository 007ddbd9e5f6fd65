extern crate std;

use std::vec::Vec;

use super::*;

const POD_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

fn eth(ethertype: u16, vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::from(GW_MAC);
    f.extend(POD_MAC);
    if let Some(vid) = vlan {
        f.extend(ETH_P_8021Q.to_be_bytes());
        f.extend(vid.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    f
}

fn ipv4(vlan: Option<u16>, flags_frag: u16, proto: u8) -> Vec<u8> {
    let mut f = eth(ETH_P_IP, vlan);
    f.extend([0x46, 0, 0, 44, 0, 0]);
    f.extend(flags_frag.to_be_bytes());
    f.extend([64, proto, 0, 0, 10, 9, 9, 9, 192, 168, 77, 1]);
    f.extend([1, 4, 0, 0]); // an option word: IHL 6
    f.extend(40000u16.to_be_bytes());
    f.extend(53u16.to_be_bytes());
    f
}

fn described(frame: &[u8]) -> DropEvent {
    let mut ev = DropEvent::default();
    describe(frame, &mut ev);
    ev
}

#[test]
fn ipv4_events_carry_macs_addresses_and_ports_past_options_and_tags() {
    for vlan in [None, Some(7)] {
        let ev = described(&ipv4(vlan, 0x4000, IPPROTO_UDP));
        assert_eq!((ev.src_mac, ev.dst_mac), (POD_MAC, GW_MAC));
        assert_eq!((ev.ethertype, ev.vlan), (ETH_P_IP, vlan.unwrap_or(0)));
        assert_eq!(ev.proto, IPPROTO_UDP);
        assert_eq!(&ev.saddr[..4], &[10, 9, 9, 9]);
        assert_eq!(&ev.daddr[..4], &[192, 168, 77, 1]);
        assert_eq!((ev.sport, ev.dport), (40000, 53));
    }
}

#[test]
fn fragments_and_other_protocols_have_no_ports() {
    let ev = described(&ipv4(None, 0x2000, IPPROTO_UDP));
    assert_eq!((ev.sport, ev.dport, ev.proto), (0, 0, IPPROTO_UDP));
    let ev = described(&ipv4(None, 0, 1));
    assert_eq!((ev.sport, ev.dport), (0, 0));
    assert_eq!(&ev.saddr[..4], &[10, 9, 9, 9]);
}

#[test]
fn arp_and_ipv6_events_carry_their_addresses() {
    let mut f = eth(ETH_P_ARP, None);
    f.extend([0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend(POD_MAC);
    f.extend([192, 168, 77, 9]);
    f.extend([0; 6]);
    f.extend([192, 168, 77, 1]);
    let ev = described(&f);
    assert_eq!(
        (&ev.saddr[..4], &ev.daddr[..4]),
        (&[192, 168, 77, 9][..], &[192, 168, 77, 1][..])
    );

    let mut f = eth(ETH_P_IPV6, None);
    f.extend([0x60, 0, 0, 0, 0, 8, IPPROTO_TCP, 64]);
    let (src, dst) = ([0xfe; 16], [0x20; 16]);
    f.extend(src);
    f.extend(dst);
    f.extend([0x1f, 0x90, 0x00, 0x50]);
    let ev = described(&f);
    assert_eq!((ev.saddr, ev.daddr, ev.proto), (src, dst, IPPROTO_TCP));
    assert_eq!((ev.sport, ev.dport), (8080, 80));
}

#[test]
fn every_cut_keeps_what_came_before_it() {
    let whole = ipv4(Some(3), 0, IPPROTO_TCP);
    for len in 0..whole.len() {
        let ev = described(&whole[..len]);
        if len < 12 {
            assert_eq!(ev, DropEvent::default(), "{len}");
        } else if len < whole.len() {
            assert_eq!(ev.sport, 0, "{len}");
        }
    }
    assert_eq!(described(&whole).dport, 53);
}

#[test]
fn the_bucket_lets_a_burst_through_then_counts_what_it_suppresses() {
    let mut bucket = EventBucket::default();
    let t0 = 1_000_000_000;
    let sent = (0..EVENT_BURST + 5)
        .filter(|_| admit(&mut bucket, t0).is_some())
        .count();
    assert_eq!(sent as u64, EVENT_BURST);
    assert_eq!(bucket.suppressed, 5);
    assert_eq!(admit(&mut bucket, t0 + EVENT_INTERVAL_NS), Some(5));
    assert_eq!(bucket.suppressed, 0);
    assert_eq!(admit(&mut bucket, t0 + EVENT_INTERVAL_NS), None);
}

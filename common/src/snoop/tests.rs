//! Host tests of the DHCP snooping verdict on crafted client messages.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::packet::tests::{endpoint, lan, pod_verdict, Spec, OTHER_MAC, POD_IP, POD_MAC};
use crate::packet::BOOTREPLY;

const CLIENT_ID: [u8; 17] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const OTHER_IP: [u8; 4] = [192, 168, 1, 51];

/// The pod after ADD: its lease, its client id, the relay.
fn leased() -> Endpoint {
    let mut ep = endpoint(EP_DHCP_RELAY | EP_GUARD_IP);
    assert!(ep.set_client_id(&CLIENT_ID));
    ep
}

/// Options: type `t`, then `more`, then END.
fn opts(t: u8, more: &[&[u8]]) -> Vec<u8> {
    let mut o = vec![OPT_MESSAGE_TYPE, 1, t];
    for m in more {
        o.extend_from_slice(m);
    }
    o.push(OPT_END);
    o
}

fn cid(id: &[u8]) -> Vec<u8> {
    let mut o = vec![OPT_CLIENT_ID, id.len() as u8];
    o.extend_from_slice(id);
    o
}

fn requested(ip: [u8; 4]) -> Vec<u8> {
    let mut o = vec![OPT_REQUESTED_IP, 4];
    o.extend_from_slice(&ip);
    o
}

fn msg(t: u8, more: &[&[u8]]) -> Spec {
    Spec {
        options: opts(t, more),
        ..Spec::default()
    }
}

fn judge(spec: &Spec) -> PodVerdict {
    pod_verdict(spec, &leased(), &lan())
}

#[test]
fn the_pods_own_messages_pass() {
    let id = cid(&CLIENT_ID);
    let relayed = [
        msg(DHCPDISCOVER, &[&id]),
        msg(DHCPREQUEST, &[&id, &requested(OTHER_IP)]),
        msg(DHCPDECLINE, &[&id, &requested(POD_IP)]),
        // rebinding: broadcast from its address, ciaddr set
        Spec {
            saddr: POD_IP,
            ciaddr: POD_IP,
            ..msg(DHCPREQUEST, &[&id])
        },
        // no option 61: the server goes by chaddr, which is checked
        msg(DHCPDISCOVER, &[]),
        // pads between options, no END before the payload ends
        Spec {
            options: vec![
                0, 0, 53, 1, 1, 0, 61, 17, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
            ],
            ..Spec::default()
        },
    ];
    for (i, spec) in relayed.iter().enumerate() {
        assert_eq!(judge(spec), PodVerdict::Relay, "case {i}");
    }
    let unicast = |t, more: &[&[u8]]| Spec {
        saddr: POD_IP,
        daddr: [192, 168, 1, 1],
        ciaddr: POD_IP,
        ..msg(t, more)
    };
    for (i, spec) in [
        unicast(DHCPREQUEST, &[&id]),
        unicast(DHCPRELEASE, &[&id]),
        unicast(DHCPINFORM, &[&id]),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(judge(spec), PodVerdict::Pass, "unicast {i}");
    }
}

#[test]
fn a_pod_cannot_speak_for_another_client() {
    let id = cid(&CLIENT_ID);
    let mut other_id = CLIENT_ID;
    other_id[16] ^= 1;
    let cases = [
        (
            Spec {
                chaddr: OTHER_MAC,
                ..msg(DHCPDISCOVER, &[&id])
            },
            Reason::DropDhcpChaddr,
        ),
        (
            Spec {
                htype: 6,
                ..msg(DHCPDISCOVER, &[&id])
            },
            Reason::DropDhcpChaddr,
        ),
        (
            Spec {
                hlen: 16,
                ..msg(DHCPDISCOVER, &[&id])
            },
            Reason::DropDhcpChaddr,
        ),
        (
            msg(DHCPDISCOVER, &[&cid(&other_id)]),
            Reason::DropDhcpClientId,
        ),
        (
            msg(DHCPDISCOVER, &[&cid(&CLIENT_ID[..16])]),
            Reason::DropDhcpClientId,
        ),
        (
            msg(DHCPDISCOVER, &[&cid(&[1, 2, 0, 0, 0, 0, 1])]),
            Reason::DropDhcpClientId,
        ),
        // DECLINE of another address, RELEASE of another lease
        (
            msg(DHCPDECLINE, &[&id, &requested(OTHER_IP)]),
            Reason::DropDhcpAddr,
        ),
        (msg(DHCPDECLINE, &[&id]), Reason::DropDhcpAddr),
        (
            Spec {
                saddr: POD_IP,
                daddr: [192, 168, 1, 1],
                ciaddr: OTHER_IP,
                ..msg(DHCPRELEASE, &[&id])
            },
            Reason::DropDhcpAddr,
        ),
        (msg(DHCPRELEASE, &[&id]), Reason::DropDhcpAddr),
        (
            Spec {
                ciaddr: OTHER_IP,
                ..msg(DHCPREQUEST, &[&id])
            },
            Reason::DropDhcpAddr,
        ),
        // server and unknown types, no type, not a request
        (msg(2, &[&id]), Reason::DropDhcpType),
        (msg(5, &[&id]), Reason::DropDhcpType),
        (msg(6, &[&id]), Reason::DropDhcpType),
        (msg(9, &[&id]), Reason::DropDhcpType),
        (
            Spec {
                options: vec![OPT_END],
                ..Spec::default()
            },
            Reason::DropDhcpType,
        ),
        (
            Spec {
                op: BOOTREPLY,
                ..msg(DHCPDISCOVER, &[&id])
            },
            Reason::DropDhcpType,
        ),
        // a relay agent
        (
            Spec {
                giaddr: [192, 168, 1, 9],
                ..msg(DHCPDISCOVER, &[&id])
            },
            Reason::DropDhcpAgent,
        ),
        (
            msg(DHCPDISCOVER, &[&id, &[82, 2, 1, 0]]),
            Reason::DropDhcpAgent,
        ),
    ];
    for (i, (spec, reason)) in cases.iter().enumerate() {
        assert_eq!(judge(spec), PodVerdict::Drop(*reason), "case {i}");
        // unicast and in subnet mode alike
        let unicast = Spec {
            saddr: POD_IP,
            daddr: [192, 168, 1, 1],
            ..spec.clone()
        };
        let v = pod_verdict(&unicast, &leased(), &NetConfig::default());
        assert_eq!(v, PodVerdict::Drop(*reason), "unicast case {i}");
    }
}

#[test]
fn options_that_could_hide_something_are_malformed() {
    let id = cid(&CLIENT_ID);
    let mut other_id = cid(&CLIENT_ID);
    other_id[2] ^= 1;
    let raw = |options: Vec<u8>| Spec {
        options,
        ..Spec::default()
    };
    let cases = [
        // repeated options a server would concatenate
        msg(DHCPDISCOVER, &[&id, &other_id]),
        msg(DHCPDISCOVER, &[&[53, 1, 3]]),
        msg(
            DHCPDECLINE,
            &[&id, &requested(POD_IP), &requested(OTHER_IP)],
        ),
        // wrong lengths, an empty id
        raw(vec![53, 2, 1, 1, 255]),
        msg(DHCPDECLINE, &[&id, &[50, 3, 192, 168, 1]]),
        msg(DHCPDISCOVER, &[&[61, 0]]),
        // overload: options continued in sname/file
        msg(DHCPDISCOVER, &[&id, &[52, 1, 3]]),
        // an option running past the payload
        raw(vec![53, 1, 1, 12, 40, b'x']),
        raw(vec![53, 1, 1, 12]),
        // more steps than the bound before the type: 64 pads
        raw([&[0u8; 64][..], &[53, 1, 1, 255]].concat()),
    ];
    for (i, spec) in cases.iter().enumerate() {
        assert_eq!(
            judge(spec),
            PodVerdict::Drop(Reason::DropDhcpMalformed),
            "case {i}"
        );
    }
    // The cookie is checked, not assumed.
    let mut frame = msg(DHCPDISCOVER, &[]).build();
    frame[34 + 8 + DHCP_COOKIE_OFF] = 0;
    assert_eq!(
        judge_frame(&frame[..], &client(&frame)),
        PodVerdict::Drop(Reason::DropDhcpMalformed)
    );
    // Just within the bound: 60 pads, then the type and END.
    let spec = raw([&[0u8; 60][..], &[53, 1, 1, 255]].concat());
    assert_eq!(judge(&spec), PodVerdict::Relay);
}

/// The verdict on a frame as built (and maybe changed) by the test.
fn judge_frame(frame: &[u8], m: &ClientMsg) -> PodVerdict {
    verdict(frame, m, options(frame, m), &leased(), 0, &lan())
}

fn client(frame: &[u8]) -> ClientMsg {
    match crate::packet::parse_from_pod(frame) {
        Ok(crate::packet::FromPod::Client(m)) => m,
        other => panic!("not a client message: {other:?}"),
    }
}

#[test]
fn the_udp_length_bounds_the_options() {
    // Bytes past the UDP length (Ethernet padding) are not options.
    let mut frame = msg(DHCPDISCOVER, &[]).build();
    frame.extend_from_slice(&[61, 3, 9, 9, 9]);
    let m = client(&frame);
    assert_eq!(judge_frame(&frame[..], &m), PodVerdict::Relay);
    // A UDP length beyond the frame: the options cannot be read whole.
    let mut cut = Spec {
        options: vec![53, 1, 1, 0, 0, 0, 0, 0],
        ..Spec::default()
    }
    .build();
    cut.truncate(cut.len() - 4);
    assert_eq!(
        judge_frame(&cut[..], &client(&cut)),
        PodVerdict::Drop(Reason::DropDhcpMalformed)
    );
    // A UDP length too short for the BOOTP header and cookie.
    let tiny = ClientMsg { udp_len: 200, ..m };
    assert_eq!(
        judge_frame(&frame[..], &tiny),
        PodVerdict::Drop(Reason::DropDhcpMalformed)
    );
}

#[test]
fn without_ipam_addresses_or_a_client_id_those_are_not_judged() {
    // Other IPAM: no client id assigned, no addresses yet (the first lease).
    let ep = endpoint(EP_DHCP_RELAY);
    for spec in [
        msg(DHCPDISCOVER, &[&cid(&[1, 2, 3])]),
        msg(DHCPDECLINE, &[&requested(OTHER_IP)]),
    ] {
        assert_eq!(pod_verdict(&spec, &ep, &lan()), PodVerdict::Relay);
    }
    // chaddr still is.
    let spec = Spec {
        chaddr: OTHER_MAC,
        ..msg(DHCPDISCOVER, &[])
    };
    assert_eq!(
        pod_verdict(&spec, &ep, &lan()),
        PodVerdict::Drop(Reason::DropDhcpChaddr)
    );
    assert_eq!(spec.src_mac, POD_MAC);
}

#[test]
fn the_address_a_server_just_gave_counts_as_the_pods() {
    let offered = u32::from_ne_bytes(OTHER_IP);
    let decline = msg(DHCPDECLINE, &[&requested(OTHER_IP)]);
    let frame = decline.build();
    let m = client(&frame);
    let judge = |offered| {
        verdict(
            &frame[..],
            &m,
            options(&frame[..], &m),
            &leased(),
            offered,
            &lan(),
        )
    };
    assert_eq!(judge(offered), PodVerdict::Relay);
    assert_eq!(judge(0), PodVerdict::Drop(Reason::DropDhcpAddr));
    assert_eq!(
        judge(u32::from_ne_bytes([192, 168, 1, 52])),
        PodVerdict::Drop(Reason::DropDhcpAddr)
    );
}

#[test]
fn the_rate_limit_passes_a_burst_then_one_per_interval() {
    let t0 = 5_000_000_000;
    let mut due = 0;
    for i in 0..DHCP_RATE_BURST {
        due = rate_admit(due, t0).unwrap_or_else(|| panic!("message {i} of the burst"));
    }
    assert_eq!(rate_admit(due, t0), None);
    assert_eq!(rate_admit(due, t0 + DHCP_RATE_INTERVAL_NS / 2), None);
    let later = t0 + DHCP_RATE_INTERVAL_NS;
    due = rate_admit(due, later).expect("one interval later");
    assert_eq!(rate_admit(due, later), None);
    // Idle time refills the bucket, up to the burst.
    let idle = later + 3600 * 1_000_000_000;
    let mut n = 0;
    while let Some(next) = rate_admit(due, idle) {
        due = next;
        n += 1;
    }
    assert_eq!(n, DHCP_RATE_BURST);
}

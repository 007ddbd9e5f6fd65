//! Host tests of the parsers and verdicts on crafted frames.

extern crate std;

use std::vec::Vec;

use super::*;

use crate::snoop::{options, verdict, PodVerdict};
use crate::{Endpoint, NetConfig, Reason, CFG_LAN_MODE, EP_DHCP_RELAY};

pub(crate) const POD_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub(crate) const OTHER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
pub(crate) const POD_IP: [u8; 4] = [192, 168, 1, 50];

/// A frame to build; defaults: a DHCPDISCOVER broadcast from the pod.
#[derive(Clone)]
pub(crate) struct Spec {
    pub(crate) src_mac: [u8; 6],
    pub(crate) dst_mac: [u8; 6],
    pub(crate) vlan: Option<u16>,
    pub(crate) ethertype: u16,
    pub(crate) ihl: u8,
    pub(crate) frag: u16,
    pub(crate) proto: u8,
    pub(crate) saddr: [u8; 4],
    pub(crate) daddr: [u8; 4],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) op: u8,
    pub(crate) htype: u8,
    pub(crate) hlen: u8,
    pub(crate) flags: u16,
    pub(crate) chaddr: [u8; 6],
    pub(crate) ciaddr: [u8; 4],
    pub(crate) yiaddr: [u8; 4],
    pub(crate) giaddr: [u8; 4],
    /// After the magic cookie.
    pub(crate) options: Vec<u8>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            src_mac: POD_MAC,
            dst_mac: [0xff; 6],
            vlan: None,
            ethertype: ETH_P_IP,
            ihl: 5,
            frag: 0,
            proto: IPPROTO_UDP,
            saddr: [0; 4],
            daddr: [255; 4],
            sport: 68,
            dport: 67,
            op: BOOTREQUEST,
            htype: 1,
            hlen: 6,
            flags: 0,
            chaddr: POD_MAC,
            ciaddr: [0; 4],
            yiaddr: [0; 4],
            giaddr: [0; 4],
            options: std::vec![53, 1, 1, 255],
        }
    }
}

impl Spec {
    pub(crate) fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(tci) = self.vlan {
            f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        let mut bootp = std::vec![0u8; 240];
        bootp[0] = self.op;
        bootp[1] = self.htype;
        bootp[2] = self.hlen;
        bootp[10..12].copy_from_slice(&self.flags.to_be_bytes());
        bootp[12..16].copy_from_slice(&self.ciaddr);
        bootp[16..20].copy_from_slice(&self.yiaddr);
        bootp[24..28].copy_from_slice(&self.giaddr);
        bootp[28..34].copy_from_slice(&self.chaddr);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(&self.options);
        let udp_len = (UDP_HLEN + bootp.len()) as u16;
        let ip_hlen = self.ihl as usize * 4;
        f.push(0x40 | self.ihl);
        f.push(0);
        f.extend_from_slice(&(ip_hlen as u16 + udp_len).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&self.frag.to_be_bytes());
        f.push(64);
        f.push(self.proto);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&self.saddr);
        f.extend_from_slice(&self.daddr);
        // Options: NOPs.
        f.resize(f.len() + ip_hlen.saturating_sub(20), 1);
        f.extend_from_slice(&self.sport.to_be_bytes());
        f.extend_from_slice(&self.dport.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&bootp);
        f
    }
}

pub(crate) fn endpoint(flags: u16) -> Endpoint {
    Endpoint {
        mac: POD_MAC,
        flags,
        ipv4: [u32::from_ne_bytes(POD_IP), 0, 0, 0],
        ..Endpoint::default()
    }
}

pub(crate) fn lan() -> NetConfig {
    NetConfig {
        uplink_ifindex: 7,
        uplink_mac: [0x02, 0xaa, 0, 0, 0, 1],
        flags: CFG_LAN_MODE,
        ..NetConfig::default()
    }
}

/// `chaddr` of a server reply, as `lb_from_uplink` parses it.
fn chaddr_of(frame: &[u8]) -> Result<Option<[u8; 6]>, Short> {
    parse_from_uplink(frame).map(|r| r.map(|r| r.chaddr))
}

fn broadcast(spec: &Spec) -> ClientMsg {
    match parse_from_pod(&spec.build()[..]) {
        Ok(FromPod::Client(b)) => b,
        other => panic!("not a client message: {other:?}"),
    }
}

/// The snooping verdict on `spec`'s frame.
pub(crate) fn pod_verdict(spec: &Spec, ep: &Endpoint, cfg: &NetConfig) -> PodVerdict {
    let frame = spec.build();
    let m = broadcast(spec);
    verdict(&frame[..], &m, options(&frame[..], &m), ep, 0, cfg)
}

#[test]
fn read_is_bounds_checked() {
    let f = [1u8, 2, 3];
    assert_eq!(f[..].read::<2>(1), Ok([2, 3]));
    assert_eq!(f[..].read::<2>(2), Err(Short));
    assert_eq!(f[..].read::<1>(usize::MAX), Err(Short));
}

#[test]
fn discover_from_zero_is_relayed_in_lan_mode() {
    let b = broadcast(&Spec::default());
    assert_eq!(b.src_mac, POD_MAC);
    assert_eq!(b.saddr, 0);
    assert!(!b.tagged);
    assert_eq!(b.udp_off, 34);
    assert_eq!(b.flags_off(), 52);
    assert_eq!(b.csum_off(), 40);
    assert_eq!(b.flags, [0, 0]);
    assert_eq!(b.broadcast_flags(), Some([0x80, 0]));
    let v = pod_verdict(&Spec::default(), &endpoint(EP_DHCP_RELAY), &lan());
    assert_eq!(v, PodVerdict::Relay);
    assert_eq!(v.reason(), Reason::DhcpRelayed);
}

#[test]
fn discover_from_own_address_is_relayed() {
    let spec = Spec {
        saddr: POD_IP,
        ..Spec::default()
    };
    assert_eq!(
        pod_verdict(&spec, &endpoint(EP_DHCP_RELAY), &lan()),
        PodVerdict::Relay
    );
}

#[test]
fn relay_needs_lan_mode_relay_flag_and_uplink() {
    let spec = Spec::default();
    let subnet = NetConfig::default();
    assert_eq!(
        pod_verdict(&spec, &endpoint(EP_DHCP_RELAY), &subnet),
        PodVerdict::Pass
    );
    assert_eq!(pod_verdict(&spec, &endpoint(0), &lan()), PodVerdict::Pass);
    let no_uplink = NetConfig {
        uplink_ifindex: 0,
        ..lan()
    };
    assert_eq!(
        pod_verdict(&spec, &endpoint(EP_DHCP_RELAY), &no_uplink),
        PodVerdict::Pass
    );
}

#[test]
fn spoofed_sources_are_dropped_in_every_mode() {
    let wrong_mac = Spec {
        src_mac: OTHER_MAC,
        ..Spec::default()
    };
    let foreign_ip = Spec {
        saddr: [192, 168, 1, 51],
        ..Spec::default()
    };
    for spec in [wrong_mac, foreign_ip] {
        for cfg in [lan(), NetConfig::default()] {
            for ep in [endpoint(EP_DHCP_RELAY), endpoint(0)] {
                let v = pod_verdict(&spec, &ep, &cfg);
                assert_eq!(v, PodVerdict::Drop(Reason::DropDhcpSpoof));
                assert_eq!(v.reason(), Reason::DropDhcpSpoof);
            }
        }
    }
}

#[test]
fn broadcast_flag_keeps_other_bits_and_is_set_once() {
    let b = broadcast(&Spec {
        flags: 0x0001,
        ..Spec::default()
    });
    assert_eq!(b.broadcast_flags(), Some([0x80, 0x01]));
    let b = broadcast(&Spec {
        flags: 0x8000,
        ..Spec::default()
    });
    assert_eq!(b.broadcast_flags(), None);
}

#[test]
fn server_packets_from_a_pod_are_recognised() {
    for (sport, dport) in [(67, 68), (67, 67), (67, 5000), (1067, 68), (68, 68)] {
        let spec = Spec {
            sport,
            dport,
            op: BOOTREPLY,
            ..Spec::default()
        };
        assert_eq!(
            parse_from_pod(&spec.build()[..]),
            Ok(FromPod::DhcpServer),
            "{sport} -> {dport}"
        );
    }
}

#[test]
fn other_traffic_is_other() {
    let cases = [
        // DNS
        Spec {
            sport: 40000,
            dport: 53,
            ..Spec::default()
        },
        // TCP
        Spec {
            proto: 6,
            ..Spec::default()
        },
        // ARP
        Spec {
            ethertype: 0x0806,
            ..Spec::default()
        },
        // IPv6
        Spec {
            ethertype: 0x86dd,
            ..Spec::default()
        },
        // fragments: MF, an offset, both
        Spec {
            frag: 0x2000,
            ..Spec::default()
        },
        Spec {
            frag: 0x0001,
            ..Spec::default()
        },
        Spec {
            frag: 0x2100,
            ..Spec::default()
        },
        // bad IHL
        Spec {
            ihl: 4,
            ..Spec::default()
        },
        // two tags (QinQ): the inner one is not IPv4
        Spec {
            vlan: Some(10),
            ethertype: ETH_P_8021Q,
            ..Spec::default()
        },
    ];
    for (i, spec) in cases.iter().enumerate() {
        assert_eq!(
            parse_from_pod(&spec.build()[..]),
            Ok(FromPod::Other),
            "case {i}"
        );
        assert_eq!(chaddr_of(&spec.build()[..]), Ok(None), "case {i}");
    }
}

#[test]
fn dont_fragment_is_not_a_fragment() {
    let b = broadcast(&Spec {
        frag: 0x4000,
        ..Spec::default()
    });
    assert_eq!(b.udp_off, 34);
}

#[test]
fn ip_options_shift_the_udp_header() {
    for ihl in 6..=15u8 {
        let b = broadcast(&Spec {
            ihl,
            ..Spec::default()
        });
        assert_eq!(b.udp_off, 14 + ihl as usize * 4);
        assert_eq!(
            pod_verdict(
                &Spec {
                    ihl,
                    ..Spec::default()
                },
                &endpoint(EP_DHCP_RELAY),
                &lan()
            ),
            PodVerdict::Relay
        );
    }
}

#[test]
fn tagged_broadcasts_are_guarded_but_not_relayed() {
    let tagged = Spec {
        vlan: Some(100),
        ..Spec::default()
    };
    let b = broadcast(&tagged);
    assert!(b.tagged);
    assert_eq!(b.udp_off, 38);
    assert_eq!(
        pod_verdict(&tagged, &endpoint(EP_DHCP_RELAY), &lan()),
        PodVerdict::Pass
    );
    let spoofed = Spec {
        src_mac: OTHER_MAC,
        ..tagged.clone()
    };
    assert_eq!(
        pod_verdict(&spoofed, &endpoint(EP_DHCP_RELAY), &lan()),
        PodVerdict::Drop(Reason::DropDhcpSpoof)
    );
    // A priority tag (VID 0, PCP 5) is the untagged network.
    let priority = Spec {
        vlan: Some(0xa000),
        ..Spec::default()
    };
    assert!(!broadcast(&priority).tagged);
}

#[test]
fn truncated_frames_are_short_or_other_never_a_verdict() {
    let specs = [
        Spec::default(),
        Spec {
            vlan: Some(100),
            ..Spec::default()
        },
        Spec {
            ihl: 7,
            ..Spec::default()
        },
    ];
    for spec in specs {
        let frame = spec.build();
        let bootp = 14 + usize::from(spec.vlan.is_some()) * 4 + spec.ihl as usize * 4 + 8;
        for len in 0..frame.len() {
            let got = parse_from_pod(&frame[..len]);
            if len < bootp + 34 {
                assert_eq!(got, Err(Short), "len {len}");
            } else {
                assert!(matches!(got, Ok(FromPod::Client(_))), "len {len}: {got:?}");
            }
        }
        let offer = Spec {
            sport: 67,
            dport: 68,
            op: BOOTREPLY,
            ..spec.clone()
        }
        .build();
        for len in 0..offer.len() {
            let got = parse_from_pod(&offer[..len]);
            let udp_end = bootp;
            if len < udp_end {
                assert_eq!(got, Err(Short), "len {len}");
            } else {
                assert_eq!(got, Ok(FromPod::DhcpServer), "len {len}");
            }
            let got = chaddr_of(&offer[..len]);
            if len < bootp + 34 {
                if spec.vlan.is_some() && len >= udp_end {
                    assert_eq!(got, Ok(None), "len {len}");
                } else {
                    assert_eq!(got, Err(Short), "len {len}");
                }
            } else if spec.vlan.is_some() {
                assert_eq!(got, Ok(None), "len {len}");
            } else {
                assert_eq!(got, Ok(Some(POD_MAC)), "len {len}");
            }
        }
    }
}

fn offer() -> Spec {
    Spec {
        src_mac: [0x02, 0x11, 0, 0, 0, 1],
        saddr: [192, 168, 1, 1],
        sport: 67,
        dport: 68,
        op: BOOTREPLY,
        flags: 0x8000,
        ..Spec::default()
    }
}

#[test]
fn replies_yield_their_yiaddr() {
    let offer = Spec {
        yiaddr: POD_IP,
        ..offer()
    };
    let reply = parse_from_uplink(&offer.build()[..]).unwrap().unwrap();
    assert_eq!(reply.chaddr, POD_MAC);
    assert_eq!(reply.yiaddr, u32::from_ne_bytes(POD_IP));
}

#[test]
fn replies_yield_their_chaddr() {
    assert_eq!(chaddr_of(&offer().build()[..]), Ok(Some(POD_MAC)));
    let unicast = Spec {
        dst_mac: POD_MAC,
        daddr: POD_IP,
        ..offer()
    };
    assert_eq!(chaddr_of(&unicast.build()[..]), Ok(Some(POD_MAC)));
    let options = Spec { ihl: 8, ..offer() };
    assert_eq!(chaddr_of(&options.build()[..]), Ok(Some(POD_MAC)));
    let priority = Spec {
        vlan: Some(0x2000),
        ..offer()
    };
    assert_eq!(chaddr_of(&priority.build()[..]), Ok(Some(POD_MAC)));
}

#[test]
fn not_replies_or_not_ethernet_yield_nothing() {
    let cases = [
        Spec {
            op: BOOTREQUEST,
            ..offer()
        },
        Spec {
            htype: 6,
            ..offer()
        },
        Spec {
            hlen: 16,
            ..offer()
        },
        Spec {
            vlan: Some(100),
            ..offer()
        },
        Spec {
            sport: 68,
            dport: 67,
            ..offer()
        },
        Spec {
            frag: 0x2000,
            ..offer()
        },
    ];
    for (i, spec) in cases.iter().enumerate() {
        assert_eq!(chaddr_of(&spec.build()[..]), Ok(None), "case {i}");
    }
}

#[test]
fn mac_eq_compares_every_byte() {
    for i in 0..6 {
        let mut other = POD_MAC;
        other[i] ^= 0x40;
        assert!(!mac_eq(&POD_MAC, &other));
    }
    assert!(mac_eq(&POD_MAC, &POD_MAC));
}

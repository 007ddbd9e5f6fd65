use std::path::PathBuf;

use super::*;
use crate::cni::version::SUPPORTED;

/// A dual-stack result with every field set.
fn sample() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "cni0".into(),
                mac: "02:00:00:00:00:01".into(),
                mtu: Some(1500),
                sandbox: String::new(),
            },
            Interface {
                name: "lb0123456789a".into(),
                mac: "02:00:00:00:00:02".into(),
                mtu: Some(1500),
                sandbox: String::new(),
            },
            Interface {
                name: "eth0".into(),
                mac: "02:00:00:00:00:03".into(),
                mtu: Some(1500),
                sandbox: "/run/netns/pod".into(),
            },
        ],
        ips: vec![
            IpConfig {
                address: "10.244.1.2/24".parse().unwrap(),
                gateway: Some("10.244.1.1".parse().unwrap()),
                interface: Some(2),
            },
            IpConfig {
                address: "fd00::2/64".parse().unwrap(),
                gateway: Some("fd00::1".parse().unwrap()),
                interface: Some(2),
            },
        ],
        routes: vec![
            Route {
                mtu: Some(1400),
                ..Route::via(
                    "0.0.0.0/0".parse().unwrap(),
                    Some("10.244.1.1".parse().unwrap()),
                )
            },
            Route::via("::/0".parse().unwrap(), Some("fd00::1".parse().unwrap())),
        ],
        dns: Dns {
            nameservers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
            search: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        },
    }
}

fn golden(version: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/results/{version}.json"))
}

/// `LANBRIDGE_UPDATE_GOLDEN=1 cargo test` rewrites the files after a deliberate change.
#[test]
fn result_matches_golden_file_for_every_version() {
    for v in SUPPORTED {
        let wire = sample().to_wire(Version::parse(v).unwrap());
        let rendered = serde_json::to_string_pretty(&wire).unwrap() + "\n";
        if std::env::var_os("LANBRIDGE_UPDATE_GOLDEN").is_some() {
            std::fs::write(golden(v), &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(golden(v)).unwrap();
        assert_eq!(rendered, expected, "result for cniVersion {v}");
    }
}

#[test]
fn every_version_round_trips_addresses_and_routes() {
    for v in SUPPORTED {
        let wire = sample().to_wire(Version::parse(v).unwrap());
        let back = CniResult::from_wire(&wire).unwrap();
        let addrs = |r: &CniResult| r.ips.iter().map(|i| i.address).collect::<Vec<_>>();
        assert_eq!(addrs(&back), addrs(&sample()), "{v}");
        assert_eq!(back.routes.len(), 2, "{v}");
        assert_eq!(back.dns, sample().dns, "{v}");
    }
}

#[test]
fn legacy_layout_has_no_interfaces() {
    let wire = sample().to_wire(Version::parse("0.2.0").unwrap());
    assert_eq!(wire["ip4"]["ip"], "10.244.1.2/24");
    assert_eq!(wire["ip6"]["gateway"], "fd00::1");
    assert!(wire.get("interfaces").is_none());
}

#[test]
fn legacy_versions_refuse_what_they_cannot_say() {
    let legacy = Version::parse("0.2.0").unwrap();
    let mut r = sample();
    assert!(r.fits(Version::V1_0_0).is_ok());
    r.ips.push(r.ips[0].clone());
    assert_eq!(r.fits(legacy).unwrap_err().code(), 7);
    assert_eq!(CniResult::default().fits(legacy).unwrap_err().code(), 7);
    assert!(CniResult::default().fits(Version::V0_4_0).is_ok());
}

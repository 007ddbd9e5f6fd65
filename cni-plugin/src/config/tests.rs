use serde_json::json;

use ipnet::IpNet;

use super::*;

fn parse(v: Value) -> Result<NetConf> {
    NetConf::parse(v)
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "net1", "type": "lanbridge"})
}

fn with(key: &str, value: Value) -> Value {
    let mut v = base();
    v[key] = value;
    v
}

#[test]
fn defaults_match_the_reference_plugin() {
    let c = parse(base()).unwrap();
    assert_eq!(c.bridge, "cni0");
    assert!(!c.is_gateway && !c.is_default_gateway && !c.ip_masq);
    assert_eq!(c.mtu, None);
    assert_eq!(c.vlan, None);
    assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert_eq!(c.pin_root, PathBuf::from("/sys/fs/bpf/lanbridge"));
    assert!(c.enforce && c.fast_path);
    assert_eq!(
        c.service_cidrs,
        vec!["10.96.0.0/12".parse::<IpNet>().unwrap()]
    );
    assert!(c.cluster_cidrs.is_empty());
    assert!(c.ipam.is_none() && c.mac.is_none() && c.prev_result.is_none());
}

#[test]
fn every_reference_key_is_read() {
    let c = parse(json!({
        "cniVersion": "0.4.0", "name": "n", "type": "lanbridge",
        "bridge": "br7", "isGateway": true, "isDefaultGateway": true,
        "forceAddress": true, "ipMasq": true, "ipMasqBackend": "iptables",
        "mtu": 9000, "hairpinMode": true, "promiscMode": true, "vlan": 42,
        "portIsolation": true, "macspoofchk": true, "enabledad": true,
        "stateDir": "/tmp/s", "pinRoot": "/sys/fs/bpf/t", "dns": {"nameservers": ["10.96.0.10"]}, "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
        "unknownKey": {"ignored": true}
    }))
    .unwrap();
    assert_eq!(c.version, Version::V0_4_0);
    assert_eq!(c.bridge, "br7");
    assert!(c.is_gateway && c.is_default_gateway && c.force_address && c.ip_masq);
    assert_eq!(c.mtu, Some(9000));
    assert!(c.hairpin_mode && c.promisc_mode && c.port_isolation && c.enable_dad);
    assert!(c.mac_spoof_check);
    let l2 = parse(with("disableContainerInterface", json!(true))).unwrap();
    assert!(l2.disable_container_interface && l2.ipam.is_none());
    // As in the reference, an interface left down takes no IPAM; `{}` is none.
    let mut v = with("disableContainerInterface", json!(true));
    v["ipam"] = json!({"type": "host-local", "subnet": "10.1.0.0/24"});
    assert_eq!(parse(v.clone()).unwrap_err().code(), 7);
    v["ipam"] = json!({});
    assert!(parse(v).unwrap().ipam.is_none());
    assert_eq!(c.vlan, Some(42));
    assert_eq!(c.state_dir, PathBuf::from("/tmp/s"));
    assert_eq!(c.pin_root, PathBuf::from("/sys/fs/bpf/t"));
    assert_eq!(c.dns.nameservers, ["10.96.0.10"]);
    assert_eq!(c.ipam.unwrap().kind, "host-local");
}

#[test]
fn lanbridge_datapath_keys() {
    let mut v = with("enforce", json!(false));
    v["fastPath"] = json!(false);
    v["serviceCidrs"] = json!(["10.96.0.0/16", "fd00:96::/108"]);
    v["clusterCidrs"] = json!(["10.244.0.0/16"]);
    let c = parse(v).unwrap();
    assert!(!c.enforce && !c.fast_path);
    assert_eq!(c.service_cidrs.len(), 2);
    assert_eq!(
        c.cluster_cidrs,
        vec!["10.244.0.0/16".parse::<IpNet>().unwrap()]
    );
    for (key, value) in [
        ("serviceCidrs", json!(["10.96.0.0/33"])),
        ("clusterCidrs", json!("10.244.0.0/16")),
        ("enforce", json!("yes")),
        ("fastPath", json!(1)),
    ] {
        let err = parse(with(key, value)).unwrap_err();
        assert!(err.code() == 7 && err.to_string().contains(key), "{err}");
    }
}

#[test]
fn default_gateway_implies_gateway() {
    let c = parse(with("isDefaultGateway", json!(true))).unwrap();
    assert!(c.is_gateway);
}

#[test]
fn mac_from_runtime_config_wins_over_args() {
    let mut v = with(
        "args",
        json!({"cni": {"mac": "02:00:00:00:00:01", "ips": ["10.0.0.9"]}}),
    );
    let c = parse(v.clone()).unwrap();
    assert_eq!(c.mac, Some(Mac::new([2, 0, 0, 0, 0, 1])));
    assert_eq!(c.requested_ips, vec!["10.0.0.9"]);
    v["runtimeConfig"] = json!({"mac": "02:00:00:00:00:02", "ips": ["10.0.0.7/24"]});
    let c = parse(v).unwrap();
    assert_eq!(c.mac, Some(Mac::new([2, 0, 0, 0, 0, 2])));
    assert_eq!(c.requested_ips, vec!["10.0.0.7/24"]);
    // Go reads keys regardless of case; the reference's tests write this.
    let mut v = base();
    v["RuntimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    assert_eq!(parse(v).unwrap().mac, Some(Mac::new([2, 0, 0, 0, 0, 3])));
}

#[test]
fn prev_result_of_any_version_is_understood() {
    let legacy = with(
        "prevResult",
        json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "gateway": "10.0.0.1"}}),
    );
    let c = parse(legacy).unwrap();
    assert_eq!(
        c.prev_result.unwrap().ips[0].address.to_string(),
        "10.0.0.2/24"
    );
    let v03 = with(
        "prevResult",
        json!({"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.0.0.3/24"}]}),
    );
    assert_eq!(parse(v03).unwrap().prev_result.unwrap().ips.len(), 1);
}

#[test]
fn valid_attachments_for_gc() {
    let v = with(
        "cni.dev/valid-attachments",
        json!([{"containerID": "c1", "ifname": "eth0"}]),
    );
    let c = parse(v).unwrap();
    assert_eq!(c.valid_attachments.unwrap()[0].container_id, "c1");
}

/// Each malformed value is code 7 and the message names the key.
#[test]
fn malformed_values_name_their_key() {
    let cases = [
        ("mtu", json!("big"), "mtu"),
        ("mtu", json!(-1), "mtu"),
        ("mtu", json!(70000), "mtu"),
        ("vlan", json!(4095), "vlan"),
        ("vlan", json!(-2), "vlan"),
        ("isGateway", json!("yes"), "isGateway"),
        ("hairpinMode", json!(1), "hairpinMode"),
        ("bridge", json!("this-name-is-way-too-long"), "bridge"),
        ("bridge", json!("a/b"), "bridge"),
        ("name", json!(""), "name"),
        ("name", json!("a/b"), "name"),
        ("ipam", json!({"subnet": "10.0.0.0/24"}), "ipam.type"),
        ("ipMasqBackend", json!("ebtables"), "ipMasqBackend"),
        (
            "runtimeConfig",
            json!({"mac": "zz:00:00:00:00:00"}),
            "runtimeConfig.mac",
        ),
        (
            "args",
            json!({"cni": {"mac": "01:00:00:00:00:00"}}),
            "args.cni.mac",
        ),
    ];
    for (key, value, named) in cases {
        let err = parse(with(key, value.clone())).unwrap_err();
        assert_eq!(err.code(), 7, "{key}={value}: {err}");
        assert!(err.to_string().contains(named), "{key}={value}: {err}");
    }
}

#[test]
fn contradictions_and_unsupported_fields() {
    let mut v = with("vlan", json!(5));
    v["vlanTrunk"] = json!([{"id": 6}]);
    assert_eq!(
        parse(v).unwrap_err().code(),
        2,
        "a native vlan beside a trunk"
    );
    assert_eq!(
        parse(with("vlanTrunk", json!([{"id": 6}])))
            .unwrap_err()
            .code(),
        2
    );
    // lan mode needs DHCP and excludes gateway and masquerade.
    assert_eq!(parse(with("uplink", json!("eth0"))).unwrap_err().code(), 7);
    let mut lan = with("uplink", json!("eth0"));
    lan["ipam"] = json!({"type": "dhcp"});
    assert_eq!(parse(lan.clone()).unwrap().uplink.as_deref(), Some("eth0"));
    for key in ["isGateway", "isDefaultGateway", "ipMasq"] {
        let mut bad = lan.clone();
        bad[key] = json!(true);
        let err = parse(bad).unwrap_err();
        assert!(err.code() == 7 && err.to_string().contains(key), "{err}");
    }
}

#[test]
fn version_and_decode_errors() {
    assert_eq!(
        parse(with("cniVersion", json!("9.9.9")))
            .unwrap_err()
            .code(),
        1
    );
    assert_eq!(decode(b"{not json").unwrap_err().code(), 6);
    // No cniVersion: 0.1.0, as the reference plugins take it.
    let legacy = parse(json!({"name": "x", "type": "lanbridge"})).unwrap();
    assert_eq!(legacy.version.to_string(), "0.1.0");
    assert_eq!(
        parse(json!({"cniVersion": "1.0.0", "type": "lanbridge"}))
            .unwrap_err()
            .code(),
        7
    );
}

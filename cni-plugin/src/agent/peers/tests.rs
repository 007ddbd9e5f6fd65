use super::*;

const THREE: &str = r#"{"nodes": [
    {"name": "node1", "address": "192.168.1.11", "podCidr": "10.244.1.0/24"},
    {"name": "node2", "address": "192.168.1.12", "podCidr": "10.244.2.0/24"},
    {"name": "node3", "address": "192.168.1.13", "podCidr": "10.244.3.0/24"}
]}"#;

fn err(text: &str) -> String {
    Peers::parse(text.as_bytes())
        .expect_err("should be rejected")
        .to_string()
}

fn one(name: &str, address: &str, cidr: &str) -> String {
    format!(
        r#"{{"nodes": [{{"name": "node1", "address": "192.168.1.11", "podCidr": "10.244.1.0/24"}},
        {{"name": "{name}", "address": "{address}", "podCidr": "{cidr}"}}]}}"#
    )
}

#[test]
fn parses_the_documented_format() {
    let p = Peers::parse(THREE.as_bytes()).unwrap();
    assert_eq!(p.nodes.len(), 3);
    assert_eq!(
        p.nodes[1],
        Node {
            name: "node2".into(),
            address: "192.168.1.12".parse().unwrap(),
            pod_cidr: "10.244.2.0/24".parse().unwrap(),
        }
    );
    let others: Vec<&str> = p
        .others("node2")
        .unwrap()
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(others, ["node1", "node3"]);
}

#[test]
fn unknown_keys_are_ignored_and_ipv6_works() {
    let p = Peers::parse(
        br#"{"nodes": [{"name": "a", "address": "fd00::11", "podCidr": "fd10:1::/64", "zone": "x"},
                       {"name": "b", "address": "fd00::12", "podCidr": "fd10:2::/64"}], "comment": "hi"}"#,
    )
    .unwrap();
    assert_eq!(
        p.others("a").unwrap()[0].pod_cidr.to_string(),
        "fd10:2::/64"
    );
}

#[test]
fn the_own_node_must_be_listed() {
    let p = Peers::parse(THREE.as_bytes()).unwrap();
    let e = p.others("node9").unwrap_err().to_string();
    assert!(
        e.contains("\"node9\"") && e.contains("node1, node2, node3"),
        "{e}"
    );
    let empty = Peers::parse(br#"{"nodes": []}"#).unwrap();
    assert!(empty.others("n").unwrap_err().to_string().contains("none"));
}

#[test]
fn syntax_errors_say_where() {
    let e = err("{\"nodes\": [");
    assert!(e.starts_with("peers file is not valid"), "{e}");
    assert!(e.contains("line 1"), "{e}");
    let e = err("{}");
    assert!(e.contains("missing field `nodes`"), "{e}");
    let e = err(r#"{"nodes": [{"name": "a", "address": "10.0.0.1"}]}"#);
    assert!(e.contains("nodes[0]") && e.contains("podCidr"), "{e}");
    let e = err(r#"{"nodes": [{"name": "a", "address": 7, "podCidr": "10.1.0.0/16"}]}"#);
    assert!(e.contains("nodes[0].address"), "{e}");
    let e = err(r#"{"nodes": []} trailing"#);
    assert!(e.contains("trailing"), "{e}");
}

#[test]
fn a_bad_address_is_named() {
    let e = err(&one("node2", "192.168.1.300", "10.244.2.0/24"));
    assert_eq!(
        e,
        "peers file: nodes[1] (\"node2\"): address \"192.168.1.300\" is not an IP address"
    );
    for bad in ["0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255"] {
        let e = err(&one("node2", bad, "10.244.2.0/24"));
        assert!(e.contains("nodes[1] (\"node2\"): address"), "{e}");
    }
    let e = err(&one("node2", "fe80::1", "10.244.2.0/24"));
    assert!(e.contains("link-local"), "{e}");
}

#[test]
fn a_bad_cidr_is_named() {
    for (cidr, says) in [
        ("10.244.2.0", "is not a CIDR"),
        ("10.244.2.0/33", "is not a CIDR"),
        ("10.244.2.7/24", "did you mean 10.244.2.0/24"),
        ("0.0.0.0/0", "default route"),
        ("fd00::/64", "same IP family"),
        ("127.0.0.0/8", "not a unicast range"),
    ] {
        let e = err(&one("node2", "192.168.1.12", cidr));
        assert!(
            e.contains("nodes[1] (\"node2\"): podCidr") && e.contains(says),
            "{cidr}: {e}"
        );
    }
}

#[test]
fn bad_names_are_named() {
    let e = err(&one("", "192.168.1.12", "10.244.2.0/24"));
    assert!(e.contains("nodes[1]: name \"\""), "{e}");
    let e = err(&one("a b", "192.168.1.12", "10.244.2.0/24"));
    assert!(e.contains("name \"a b\""), "{e}");
}

#[test]
fn duplicates_and_overlaps_are_rejected() {
    let e = err(&one("node1", "192.168.1.12", "10.244.2.0/24"));
    assert!(
        e.contains("\"node1\" is listed twice (nodes[0] and nodes[1])"),
        "{e}"
    );
    let e = err(&one("node2", "192.168.1.11", "10.244.2.0/24"));
    assert!(
        e.contains("address 192.168.1.11 is given to two nodes"),
        "{e}"
    );
    let e = err(&one("node2", "192.168.1.12", "10.244.0.0/16"));
    assert!(
        e.contains("podCidr 10.244.1.0/24 of nodes[0] (\"node1\") overlaps podCidr 10.244.0.0/16 of nodes[1] (\"node2\")"),
        "{e}"
    );
    let e = err(&one("node2", "192.168.1.12", "192.168.0.0/16"));
    assert!(e.contains("contains the address 192.168.1.11"), "{e}");
}

//! Self-tests of the harness, run against the reference `bridge` plugin so
//! they prove the harness independently of lanbridge.

use std::process::Command;

use lanbridge_tests::probe::{ip_of, udp_ask, PeerServer};
use lanbridge_tests::process::run_ok;
use lanbridge_tests::result;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{Topology, LAN_HOST, LAN_ROUTER, NODE_ADDR};
use lanbridge_tests::{require_root, Netns, World};

fn root_links() -> Vec<String> {
    let out = run_ok(Command::new("ip").args(["-o", "link", "show"]));
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|s| s.trim().to_string()))
        .collect();
    v.sort();
    v
}

fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

#[test]
fn topology_lives_in_namespaces_only() {
    require_root();
    let before = root_links();
    let topo = Topology::new("topo");
    assert!(topo.node.ping(LAN_HOST), "node cannot reach the LAN host");
    assert!(
        topo.lan_host.ping(NODE_ADDR),
        "LAN host cannot reach the node"
    );
    assert_eq!(topo.node.default_gateway().as_deref(), Some(LAN_ROUTER));
    assert_eq!(
        topo.node.ipv4_addrs("eth0"),
        vec![format!("{NODE_ADDR}/24")]
    );
    let names: Vec<String> = [&topo.lan, &topo.lan_host, &topo.node]
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    assert_eq!(root_links(), before, "root namespace links changed");
    drop(topo);
    for n in names {
        assert!(!netns_exists(&n), "netns {n} left behind");
    }
    assert_eq!(root_links(), before, "root namespace links changed");
}

#[test]
fn netns_guard_cleans_up_on_panic() {
    require_root();
    let name = format!("{}-panic", lanbridge_tests::netns::unique_prefix());
    let n2 = name.clone();
    let r = std::panic::catch_unwind(move || {
        let _ns = Netns::create(&n2);
        assert!(netns_exists(&n2));
        panic!("on purpose");
    });
    assert!(r.is_err());
    assert!(!netns_exists(&name), "netns {name} survived a panic");
}

#[test]
fn probes_report_peer_address() {
    require_root();
    let topo = Topology::new("probe");
    let server = PeerServer::udp(&topo.lan_host, 5353);
    let seen = udp_ask(&topo.node, &format!("{LAN_HOST}:5353")).expect("udp reply");
    assert_eq!(ip_of(&seen), NODE_ADDR);
    assert_eq!(server.seen().len(), 1);
    let tcp = PeerServer::tcp(&topo.lan_host, 8000);
    let seen = lanbridge_tests::probe::tcp_ask(&topo.node, &format!("{LAN_HOST}:8000"))
        .expect("tcp reply");
    assert_eq!(ip_of(&seen), NODE_ADDR);
    drop(tcp);
}

/// The reference bridge plugin through the harness: ADD two pods, connectivity
/// (pod↔pod, pod→LAN masqueraded), CHECK, DEL, nothing left behind.
#[test]
fn reference_bridge_through_harness() {
    let w = World::reference("refh");
    let conf = w.subnet_conf("1.0.0", "10.244.1.0/24");
    let pods: Vec<Netns> = (0..2).map(|i| w.topo.pod(&format!("p{i}"))).collect();
    let atts: Vec<Attachment> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| Attachment::new(&format!("ctr{i}"), p, "eth0"))
        .collect();
    let results: Vec<_> = atts
        .iter()
        .map(|a| {
            w.rt.invoke("ADD", &conf, a, None)
                .expect_ok("reference ADD")
        })
        .collect();
    let ips: Vec<String> = results.iter().map(result::first_ip).collect();
    assert_eq!(ips, vec!["10.244.1.2", "10.244.1.3"]);
    for (p, ip) in pods.iter().zip(&ips) {
        assert_eq!(p.ipv4_addrs("eth0"), vec![format!("{ip}/24")]);
        assert_eq!(p.default_gateway().as_deref(), Some("10.244.1.1"));
    }
    assert!(pods[0].ping(&ips[1]), "pod0 -> pod1");
    assert!(pods[1].ping(LAN_HOST), "pod1 -> LAN host");
    let server = PeerServer::udp(&w.topo.lan_host, 9999);
    let seen = udp_ask(&pods[0], &format!("{LAN_HOST}:9999")).expect("udp reply from LAN host");
    assert_eq!(
        ip_of(&seen),
        NODE_ADDR,
        "LAN host must see the node's address"
    );
    drop(server);
    for (a, r) in atts.iter().zip(&results) {
        w.rt.invoke("CHECK", &conf, a, Some(r))
            .expect_ok("reference CHECK");
    }
    for (a, r) in atts.iter().zip(&results) {
        w.rt.invoke("DEL", &conf, a, Some(r))
            .expect_ok("reference DEL");
    }
    assert_eq!(w.allocations("lbtnet"), Vec::<String>::new());
    let links = w.topo.node.links();
    assert!(
        links.iter().all(|l| !l.starts_with("veth")),
        "host veths left: {links:?}"
    );
}

/// The mini runtime chains a conflist (reference bridge + portmap + tuning).
#[test]
fn reference_conflist_through_runtime() {
    let w = World::reference("refl");
    let mut list = w.subnet_list("1.0.0", "10.244.2.0/24");
    list["plugins"].as_array_mut().expect("plugins").extend([
        serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}}),
        serde_json::json!({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}}),
    ]);
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctrl", &pod, "eth0").capability(
        "portMappings",
        serde_json::json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let res = w.rt.add_list(&list, &att).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(result::first_ip(&res), "10.244.2.2");
    let arp_filter = pod.run(&["cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter"]);
    assert_eq!(arp_filter.trim(), "1");
    let server = PeerServer::tcp(&pod, 80);
    let seen = lanbridge_tests::probe::tcp_ask(&w.topo.lan_host, &format!("{NODE_ADDR}:8080"))
        .expect("LAN host reaches the pod through hostPort 8080");
    assert_eq!(ip_of(&seen), LAN_HOST);
    drop(server);
    // No CHECK here: the reference portmap 1.1.1 fails CHECK whenever ip6tables
    // has no CNI-DN chain ("could not check ipv6 dnat"), even for IPv4-only pods.
    w.rt.del_list(&list, &att, Some(&res))
        .unwrap_or_else(|f| panic!("{f}"));
    let nat = w.topo.node.run(&["iptables-save", "-t", "nat"]);
    assert!(!nat.contains("ctrl"), "nat rules left: {nat}");
}

//! The eBPF datapath's lifecycle in subnet mode: one pinned set per network,
//! a TCX link and map entries per port, gone with the port.

use std::net::UdpSocket;
use std::time::Duration;

use lanbridge_tests::bpftool::{bpftool, bpftool_json};
use lanbridge_tests::probe::PeerServer;
use lanbridge_tests::result::host_veth;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::World;
use serde_json::{json, Value};

const PROGRAMS: [&str; 2] = ["lb_from_pod", "lb_from_uplink"];
const MAPS: [&str; 5] = [
    "lb_endpoints",
    "lb_by_mac",
    "lb_by_ip",
    "lb_config",
    "lb_stats",
];

fn conf(w: &World, name: &str, bridge: &str, subnet: &str) -> Value {
    let mut c = w.subnet_conf("1.1.0", subnet);
    c["name"] = json!(name);
    c["bridge"] = json!(bridge);
    c
}

/// The `ifindex` keys of a port map, as bpftool prints them.
fn endpoint_ports(w: &World, net: &str) -> usize {
    w.map_entries(net, "lb_endpoints").len()
}

#[test]
fn each_network_gets_its_own_pins_and_ports() {
    let w = World::lanbridge("dp2net");
    let a = conf(&w, "neta", "lba", "10.244.1.0/24");
    let b = conf(&w, "netb", "lbb", "10.244.2.0/24");
    let pod = w.topo.pod("p");
    let att_a = Attachment::new("ctr-a", &pod, "eth0");
    let att_b = Attachment::new("ctr-a", &pod, "net1");
    let ra =
        w.rt.invoke("ADD", &a, &att_a, None)
            .expect_ok("ADD on neta");
    let rb =
        w.rt.invoke("ADD", &b, &att_b, None)
            .expect_ok("ADD on netb");

    for net in ["neta", "netb"] {
        let dir = w.pin_root().join(net);
        for name in PROGRAMS.iter().chain(MAPS.iter()) {
            assert!(
                dir.join(name).exists(),
                "{net}: {name} not pinned in {}",
                dir.display()
            );
        }
    }
    assert_eq!(w.link_pins("neta"), vec![host_veth(&ra, "lba")]);
    assert_eq!(w.link_pins("netb"), vec![host_veth(&rb, "lbb")]);
    assert_eq!(endpoint_ports(&w, "neta"), 1);
    assert_eq!(endpoint_ports(&w, "netb"), 1);
    // The pod's address is in its own network's IP map only.
    assert_eq!(w.map_entries("neta", "lb_by_ip").len(), 1);
    assert_eq!(w.map_entries("netb", "lb_by_ip").len(), 1);

    w.rt.invoke("DEL", &a, &att_a, Some(&ra))
        .expect_ok("DEL on neta");
    assert_eq!(w.link_pins("neta"), Vec::<String>::new());
    assert_eq!(endpoint_ports(&w, "neta"), 0);
    assert_eq!(w.link_pins("netb").len(), 1, "DEL on neta touched netb");
    w.rt.invoke("DEL", &b, &att_b, Some(&rb))
        .expect_ok("DEL on netb");
    assert_eq!(endpoint_ports(&w, "netb"), 0);
}

/// A pod that vanished without DEL (runtime crash): GC forgets its port even
/// when the runtime still lists the attachment as valid.
#[test]
fn gc_forgets_ports_whose_interface_is_gone() {
    let w = World::lanbridge("dpgc");
    let c = conf(&w, "lbtnet", "lb0", "10.244.1.0/24");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-gone", &pod, "eth0");
    let r = w.rt.invoke("ADD", &c, &att, None).expect_ok("ADD");
    let veth = host_veth(&r, "lb0");
    assert_eq!(w.link_pins("lbtnet"), vec![veth.clone()]);
    pod.delete();
    assert!(
        w.topo.node.wait_link(&veth, false),
        "{veth} outlived its pod"
    );

    let list = json!({"cniVersion": "1.1.0", "name": "lbtnet", "plugins": [{
        "type": "lanbridge", "bridge": "lb0",
        "ipam": c["ipam"],
    }]});
    w.rt.gc_list(&list, &[&att])
        .unwrap_or_else(|f| panic!("GC: {f}"));
    assert_eq!(
        w.link_pins("lbtnet"),
        Vec::<String>::new(),
        "link pin of a vanished port"
    );
    assert_eq!(
        endpoint_ports(&w, "lbtnet"),
        0,
        "endpoint of a vanished port"
    );
    assert_eq!(w.map_entries("lbtnet", "lb_by_mac").len(), 0);
    assert_eq!(w.map_entries("lbtnet", "lb_by_ip").len(), 0);
}

/// Operators see the programs and their TCX links with bpftool.
#[test]
fn bpftool_shows_the_programs_and_their_links() {
    let w = World::lanbridge("dpbpftool");
    let c = conf(&w, "lbtnet", "lb0", "10.244.1.0/24");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-b", &pod, "eth0");
    let r = w.rt.invoke("ADD", &c, &att, None).expect_ok("ADD");
    let info = bpftool_pinned("prog", &w.pin_root().join("lbtnet/lb_from_pod"));
    assert_eq!(info["name"], "lb_from_pod");
    assert_eq!(info["type"], "sched_cls");
    assert!(
        info["btf_id"].as_u64().is_some(),
        "program without BTF: {info}"
    );
    let link = bpftool_pinned(
        "link",
        &w.pin_root()
            .join(format!("lbtnet/link_{}", host_veth(&r, "lb0"))),
    );
    assert_eq!(
        link["prog_id"], info["id"],
        "the link runs another program: {link}"
    );
    w.rt.invoke("DEL", &c, &att, Some(&r)).expect_ok("DEL");
}

/// `bpftool -j <object> show pinned <path>`.
fn bpftool_pinned(object: &str, path: &std::path::Path) -> Value {
    bpftool_json(&[object, "show", "pinned", &path.display().to_string()])
}

/// Programs pinned by another build (here: one from before the version
/// marker) are replaced on the next ADD without a moment's gap: the pods'
/// links move to the new programs in place, the maps and their entries
/// stay, and a pod pinging meanwhile loses nothing.
#[test]
fn another_builds_programs_are_replaced_without_cutting_pods_off() {
    let w = World::lanbridge("dpupgrade");
    let c = conf(&w, "lbtnet", "lb0", "10.244.1.0/24");
    let pod = w.topo.pod("a");
    let att = Attachment::new("ctr-a", &pod, "eth0");
    let r = w.rt.invoke("ADD", &c, &att, None).expect_ok("ADD a");
    let dir = w.pin_root().join("lbtnet");
    let link_pin = dir.join(format!("link_{}", host_veth(&r, "lb0")));
    let old_prog = bpftool_pinned("prog", &dir.join("lb_from_pod"))["id"].clone();
    let old_link = bpftool_pinned("link", &link_pin);
    assert_eq!(old_link["prog_id"], old_prog);
    let endpoints = bpftool_pinned("map", &dir.join("lb_endpoints"))["id"].clone();
    // What a lanbridge from before the version marker left.
    std::fs::remove_file(dir.join("lb_version")).expect("version marker pinned");

    // A request every 2 ms from the pod to the node, through its port.
    let _server = PeerServer::udp(&w.topo.node, 7777);
    let traffic = pod.spawn(|| {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        (0..1500)
            .filter(|_| {
                std::thread::sleep(Duration::from_millis(2));
                sock.send_to(b"x", "10.244.1.1:7777").is_err() || sock.recv(&mut buf).is_err()
            })
            .count()
    });
    std::thread::sleep(Duration::from_millis(500));
    let pod_b = w.topo.pod("b");
    let att_b = Attachment::new("ctr-b", &pod_b, "eth0");
    let rb =
        w.rt.invoke("ADD", &c, &att_b, None)
            .expect_ok("ADD b (upgrade)");
    let lost = traffic.join().expect("traffic thread");
    assert_eq!(lost, 0, "requests lost during the upgrade");

    let new_prog = bpftool_pinned("prog", &dir.join("lb_from_pod"))["id"].clone();
    assert_ne!(new_prog, old_prog, "the old build's program stayed");
    let link = bpftool_pinned("link", &link_pin);
    assert_eq!(
        link["id"], old_link["id"],
        "the link was recreated, not updated"
    );
    assert_eq!(
        link["prog_id"], new_prog,
        "the pod's link runs the old program"
    );
    assert_eq!(
        bpftool_pinned("map", &dir.join("lb_endpoints"))["id"],
        endpoints,
        "the endpoints map was recreated"
    );
    assert_eq!(endpoint_ports(&w, "lbtnet"), 2);
    assert!(
        dir.join("lb_version").exists(),
        "no marker after the upgrade"
    );

    // The next ADD finds this build's programs and leaves them.
    let pod_c = w.topo.pod("c");
    let att_c = Attachment::new("ctr-c", &pod_c, "eth0");
    let rc = w.rt.invoke("ADD", &c, &att_c, None).expect_ok("ADD c");
    assert_eq!(
        bpftool_pinned("prog", &dir.join("lb_from_pod"))["id"],
        new_prog
    );
    for (att, r) in [(&att, &r), (&att_b, &rb), (&att_c, &rc)] {
        w.rt.invoke("DEL", &c, att, Some(r)).expect_ok("DEL");
    }
}

/// A map whose values grew in the new build (an older `lb_endpoints` with
/// 16-byte values stands in for it) is recreated with its entries carried
/// over, zero-extended, before the links move; a map the older build did not
/// have (`lb_dhcp_ports` unpinned) is created, and does not make the new
/// build take the older pins for a half-done load and start over.
#[test]
fn a_map_whose_values_grew_keeps_its_entries_across_an_upgrade() {
    let w = World::lanbridge("dpmigrate");
    let c = conf(&w, "lbtnet", "lb0", "10.244.1.0/24");
    let pod = w.topo.pod("a");
    let att = Attachment::new("ctr-a", &pod, "eth0");
    let r = w.rt.invoke("ADD", &c, &att, None).expect_ok("ADD a");
    let dir = w.pin_root().join("lbtnet");
    let older = dir.join("lb_endpoints_older");
    let older_s = older.display().to_string();
    bpftool(&[
        "map",
        "create",
        &older_s,
        "type",
        "hash",
        "key",
        "4",
        "value",
        "16",
        "entries",
        "64",
        "name",
        "lb_endpoints",
    ]);
    let mut update = vec![
        "map", "update", "pinned", &older_s, "key", "7", "0", "0", "0", "value",
    ];
    let bytes: Vec<String> = (1..=16).map(|b| b.to_string()).collect();
    update.extend(bytes.iter().map(String::as_str));
    bpftool(&update);
    std::fs::rename(&older, dir.join("lb_endpoints")).expect("bpffs rename");
    std::fs::remove_file(dir.join("lb_version")).expect("version marker pinned");
    std::fs::remove_file(dir.join("lb_dhcp_ports")).expect("lb_dhcp_ports pinned");

    let pod_b = w.topo.pod("b");
    let att_b = Attachment::new("ctr-b", &pod_b, "eth0");
    let rb =
        w.rt.invoke("ADD", &c, &att_b, None)
            .expect_ok("ADD b (upgrade)");
    assert!(rb.is_object());
    let entries = w.map_entries("lbtnet", "lb_endpoints");
    let carried = entries
        .iter()
        .map(|e| &e["formatted"])
        .find(|e| e["key"] == 7)
        .unwrap_or_else(|| panic!("entry 7 not carried over: {entries:#?}"));
    assert_eq!(
        carried["value"]["mac"],
        serde_json::json!([1, 2, 3, 4, 5, 6]),
        "{carried}"
    );
    assert_eq!(
        carried["value"]["ipv4"][2], 0,
        "not zero-extended: {carried}"
    );
    assert_eq!(
        carried["value"]["ipv4"][3], 0,
        "not zero-extended: {carried}"
    );
    assert!(
        dir.join("lb_dhcp_ports").exists(),
        "the new map is not pinned"
    );
    assert_eq!(
        bpftool_pinned("map", &dir.join("lb_endpoints"))["bytes_value"],
        std::mem::size_of::<lanbridge_common::Endpoint>()
    );
    for (att, r) in [(&att, &r), (&att_b, &rb)] {
        w.rt.invoke("DEL", &c, att, Some(r)).expect_ok("DEL");
    }
}

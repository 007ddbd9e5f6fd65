//! Subnet mode across nodes: three nodes on one LAN, pods from each node's
//! pod subnet, routes to the other nodes' subnets kept by lanbridge from a
//! peers file (`lanbridge routes sync`, or the daemon following the file),
//! pod-to-pod without NAT, masquerade only for traffic leaving the cluster.

use std::time::Duration;

use lanbridge_tests::cluster::{routes_of, Cluster, Proc};
use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf};
use lanbridge_tests::lan::k8s_args;
use lanbridge_tests::netns::scoped_defaults;
use lanbridge_tests::probe::{ip_of, udp_ask, PeerServer};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result::first_ip;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_HOST, LAN_ROUTER, NODE_UPLINK};
use serde_json::json;

const PORT: u16 = 7777;
const FOLLOW: Duration = Duration::from_secs(8);

/// Syncs every node with the CLI; each run must succeed.
fn sync_all(c: &Cluster) {
    for node in 0..c.nodes.len() {
        let out = c.routes_sync(node, &[]);
        assert!(
            out.success(),
            "routes sync in {}: {out:?}",
            c.nodes[node].name
        );
    }
}

/// Every pod asks every other pod (UDP) who it is: the answer must be the
/// asking pod's own address (no NAT inside the cluster, same node or not).
/// Every pod asks the LAN host: it must see the pod's node (masquerade).
fn assert_connectivity(c: &Cluster) {
    let servers: Vec<PeerServer> = c
        .pods
        .iter()
        .map(|p| PeerServer::udp(&p.ns, PORT))
        .collect();
    let mut failures = Vec::new();
    for from in &c.pods {
        for to in &c.pods {
            if from.ip == to.ip {
                continue;
            }
            match udp_ask(&from.ns, &format!("{}:{PORT}", to.ip)) {
                Some(seen) if ip_of(&seen) == from.ip => {}
                Some(seen) => failures.push(format!(
                    "{} -> {}: seen as {seen}, not as the pod address",
                    from.ip, to.ip
                )),
                None => failures.push(format!("{} -> {}: no answer", from.ip, to.ip)),
            }
        }
    }
    drop(servers);
    let lan = PeerServer::udp(&c.w.topo.lan_host, PORT);
    for from in &c.pods {
        let node = &c.nodes[from.node];
        match udp_ask(&from.ns, &format!("{LAN_HOST}:{PORT}")) {
            Some(seen) if ip_of(&seen) == node.addr => {}
            Some(seen) => failures.push(format!(
                "{} -> LAN host: seen as {seen}, not masqueraded behind {}",
                from.ip, node.addr
            )),
            None => failures.push(format!("{} -> LAN host: no answer", from.ip)),
        }
    }
    drop(lan);
    assert!(
        failures.is_empty(),
        "connectivity:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pods_reach_pods_on_every_node_with_their_own_address() {
    let mut c = Cluster::new("clu", 3);
    c.add_pods(2);
    c.write_peers(&[0, 1, 2]);
    let before: Vec<String> = (0..3).map(|n| c.table(n)).collect();

    for (node, before) in before.iter().enumerate() {
        let out = c.routes_sync(node, &[]);
        assert!(out.success(), "{out:?}");
        let others: Vec<usize> = (0..3).filter(|&i| i != node).collect();
        for &o in &others {
            let line = format!(
                "add {} via {} ({})",
                c.nodes[o].pod_cidr, c.nodes[o].addr, c.nodes[o].name
            );
            assert!(out.stdout.contains(&line), "no {line:?} in {}", out.stdout);
        }
        assert_eq!(
            c.lanbridge_routes(node),
            c.expected_routes(node, &[0, 1, 2])
        );
        // Only routes were added: every line of the table before is still there.
        let after = c.table(node);
        for line in before.lines() {
            assert!(after.contains(line), "{line:?} gone from {after}");
        }
        assert_eq!(c.ns(node).default_gateway().as_deref(), Some(LAN_ROUTER));
    }

    // Running it again changes nothing.
    let tables: Vec<String> = (0..3).map(|n| c.table(n)).collect();
    for (node, table) in tables.iter().enumerate() {
        let out = c.routes_sync(node, &[]);
        assert!(out.success(), "{out:?}");
        assert_eq!(
            out.stdout.trim(),
            format!(
                "{}: nothing to change (2 routes in place)",
                c.nodes[node].name
            )
        );
        assert_eq!(&c.table(node), table);
    }

    assert_connectivity(&c);
    // Pod -> other nodes' pods left every node on the eBPF fast path; every
    // node has its own pins under the default root, and `inspect` finds them.
    for node in 0..3 {
        let [pins, _, _] = scoped_defaults(c.ns(node).inode());
        assert!(
            pins.join("lbtnet/lb_endpoints").exists(),
            "{}",
            pins.display()
        );
        let out = c.lanbridge(node, &["inspect", "lbtnet", "--json"]);
        assert!(out.success(), "{out:?}");
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
        let fast: u64 = report["counters"]
            .as_array()
            .expect("counters")
            .iter()
            .filter(|c| c["reason"] == "fast_to_lan")
            .filter_map(|c| c["packets"].as_u64())
            .sum();
        assert!(
            fast > 0,
            "node{node}: no fast_to_lan packets\n{}",
            out.stdout
        );
    }
}

#[test]
fn the_daemon_follows_the_peers_file() {
    let mut c = Cluster::new("cluf", 3);
    c.add_pods(1);
    // A route someone else made, in the way of nothing: must survive everything.
    c.ns(0).ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        LAN_ROUTER,
        "proto",
        "static",
    ]);
    c.write_peers(&[0, 1, 2]);
    c.start_daemons();
    for node in 0..3 {
        let want = c.expected_routes(node, &[0, 1, 2]);
        assert!(
            c.wait_routes(node, &want, FOLLOW),
            "{}: routes {:?}, want {want:?}\n{}",
            c.nodes[node].name,
            c.lanbridge_routes(node),
            c.daemon_log(node)
        );
    }
    assert_connectivity(&c);

    // node3 leaves the cluster: the others drop their route to it. node3
    // itself is not in the file any more: it says so and keeps its routes.
    c.write_peers(&[0, 1]);
    for node in 0..2 {
        let want = c.expected_routes(node, &[0, 1]);
        assert!(
            c.wait_routes(node, &want, FOLLOW),
            "{}: routes {:?} after node3 left\n{}",
            c.nodes[node].name,
            c.lanbridge_routes(node),
            c.daemon_log(node)
        );
    }
    assert!(
        lanbridge_tests::process::wait_until(FOLLOW, || c
            .daemon_log(2)
            .contains("this node \"node3\" is not listed (nodes: node1, node2)")),
        "{}",
        c.daemon_log(2)
    );
    assert_eq!(c.lanbridge_routes(2), c.expected_routes(2, &[0, 1, 2]));

    // node4 joins (a new namespace with a pod and its own daemon).
    let n4 = c.add_node();
    c.add_pods(1);
    c.write_peers(&[0, 1, n4]);
    c.start_daemons();
    for node in [0, 1, n4] {
        let want = c.expected_routes(node, &[0, 1, n4]);
        assert!(
            c.wait_routes(node, &want, FOLLOW),
            "{}: routes {:?} after node4 joined\n{}",
            c.nodes[node].name,
            c.lanbridge_routes(node),
            c.daemon_log(node)
        );
    }
    let log = c.daemon_log(0);
    assert!(
        log.contains("routes: delete 10.244.3.0/24 via 192.168.77.13")
            && log.contains("routes: add 10.244.4.0/24 via 192.168.77.14 (node4)"),
        "changes are logged:\n{log}"
    );
    let pod1 = c.pods.iter().find(|p| p.node == 0).expect("pod on node1");
    let pod4 = c.pods.iter().find(|p| p.node == n4).expect("pod on node4");
    let server = PeerServer::udp(&pod4.ns, PORT);
    let seen = udp_ask(&pod1.ns, &format!("{}:{PORT}", pod4.ip)).expect("pod1 -> pod4");
    assert_eq!(ip_of(&seen), pod1.ip, "pod1 reaches pod4 as itself");
    drop(server);

    // A malformed file is rejected, naming the problem; the routes stay.
    let routes: Vec<Vec<String>> = (0..c.nodes.len()).map(|n| c.lanbridge_routes(n)).collect();
    c.write_peers_text(
        r#"{"nodes": [{"name": "node1", "address": "192.168.77.11", "podCidr": "10.244.1.0/24"},
                      {"name": "node2", "address": "192.168.77.300", "podCidr": "10.244.2.0/24"}]}"#,
    );
    assert!(
        lanbridge_tests::process::wait_until(FOLLOW, || {
            c.daemon_log(0).contains(
            "nodes[1] (\"node2\"): address \"192.168.77.300\" is not an IP address; the routes in place stay"
        )
        }),
        "{}",
        c.daemon_log(0)
    );
    std::thread::sleep(Duration::from_millis(1500));
    for (node, before) in routes.iter().enumerate() {
        assert_eq!(&c.lanbridge_routes(node), before, "{}", c.nodes[node].name);
    }

    // A node's pod subnet moves: replaced on the others.
    c.nodes[n4].pod_cidr = "10.244.5.0/24".into();
    c.write_peers(&[0, 1, n4]);
    let want = c.expected_routes(0, &[0, 1, n4]);
    assert!(
        c.wait_routes(0, &want, FOLLOW),
        "{:?}\n{}",
        c.lanbridge_routes(0),
        c.daemon_log(0)
    );

    // Never touched: the route someone else made, the default route.
    assert_eq!(
        routes_of(c.ns(0), &["proto", "static"]),
        ["10.99.0.0/16 via 192.168.77.1"]
    );
    assert_eq!(c.ns(0).default_gateway().as_deref(), Some(LAN_ROUTER));
}

#[test]
fn routes_sync_validates_plans_and_leaves_other_routes_alone() {
    let mut c = Cluster::new("clus", 1);
    let peers = |extra: &str| {
        format!(
            r#"{{"nodes": [
            {{"name": "node1", "address": "192.168.77.11", "podCidr": "10.244.1.0/24"}},
            {{"name": "node2", "address": "192.168.77.12", "podCidr": "10.244.2.0/24"}},
            {{"name": "node3", "address": "192.168.77.13", "podCidr": "10.244.3.0/24"}}{extra}]}}"#
        )
    };
    // Someone routes node3's subnet already; lanbridge must not take it over.
    c.ns(0)
        .ip(&["route", "add", "10.244.3.0/24", "via", LAN_ROUTER]);
    c.write_peers_text(&peers(""));
    let pristine = c.table(0);

    let dry = c.routes_sync(0, &["--dry-run"]);
    assert!(dry.success(), "{dry:?}");
    assert_eq!(
        dry.stdout.lines().collect::<Vec<_>>(),
        [
            "add 10.244.2.0/24 via 192.168.77.12 (node2)",
            "skip 10.244.3.0/24 via 192.168.77.13 (node3): a route lanbridge did not create is in the way: 10.244.3.0/24 via 192.168.77.1 proto boot",
            "node1: 1 to add, 0 to replace, 0 to delete, 0 unchanged, 1 skipped (dry run: nothing changed)",
        ]
    );
    assert_eq!(c.table(0), pristine, "--dry-run changed the table");

    let out = c.routes_sync(0, &[]);
    assert!(
        !out.success(),
        "a skipped route must fail the sync: {out:?}"
    );
    assert!(
        out.stderr
            .contains("1 of 2 routes are not as the peers file wants"),
        "{out:?}"
    );
    assert_eq!(c.lanbridge_routes(0), ["10.244.2.0/24 via 192.168.77.12"]);
    assert_eq!(
        routes_of(c.ns(0), &["proto", "boot", "10.244.3.0/24"]),
        ["10.244.3.0/24 via 192.168.77.1"]
    );

    // Each bad file: a message naming the problem, nothing changed.
    let synced = c.table(0);
    for (text, says) in [
        ("{\"nodes\": [".to_string(), "peers file is not valid"),
        (
            peers(r#", {"name": "node4", "address": "192.168.77.x", "podCidr": "10.244.4.0/24"}"#),
            "nodes[3] (\"node4\"): address \"192.168.77.x\" is not an IP address",
        ),
        (
            peers(r#", {"name": "node4", "address": "192.168.77.14", "podCidr": "10.244.4.0/33"}"#),
            "nodes[3] (\"node4\"): podCidr \"10.244.4.0/33\" is not a CIDR",
        ),
        (
            peers(r#", {"name": "node2", "address": "192.168.77.14", "podCidr": "10.244.4.0/24"}"#),
            "node name \"node2\" is listed twice (nodes[1] and nodes[3])",
        ),
        (
            peers(r#", {"name": "node4", "address": "192.168.77.14", "podCidr": "10.244.0.0/16"}"#),
            "overlaps podCidr 10.244.0.0/16 of nodes[3] (\"node4\")",
        ),
        (
            r#"{"nodes": [{"name": "node2", "address": "192.168.77.12", "podCidr": "10.244.2.0/24"}]}"#.to_string(),
            "this node \"node1\" is not listed (nodes: node2)",
        ),
    ] {
        c.write_peers_text(&text);
        for extra in [&[][..], &["--dry-run"][..]] {
            let out = c.routes_sync(0, extra);
            assert!(!out.success(), "{text}: {out:?}");
            assert!(out.stderr.contains(says), "{text}: want {says:?} in {}", out.stderr);
            assert!(out.stderr.contains("(no route changed)"), "{}", out.stderr);
            assert_eq!(c.table(0), synced, "{text}: the table changed");
        }
    }

    // node2 moves to another address, node3 leaves: replace node2's route;
    // the route to node3's subnet was never ours, so it stays.
    c.write_peers_text(
        r#"{"nodes": [{"name": "node1", "address": "192.168.77.11", "podCidr": "10.244.1.0/24"},
                      {"name": "node2", "address": "192.168.77.22", "podCidr": "10.244.2.0/24"}]}"#,
    );
    let out = c.routes_sync(0, &[]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("replace 10.244.2.0/24 via 192.168.77.22 (node2; was via 192.168.77.12)"),
        "{}",
        out.stdout
    );
    assert_eq!(c.lanbridge_routes(0), ["10.244.2.0/24 via 192.168.77.22"]);
    c.write_peers_text(
        r#"{"nodes": [{"name": "node1", "address": "192.168.77.11", "podCidr": "10.244.1.0/24"}]}"#,
    );
    let out = c.routes_sync(0, &[]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("delete 10.244.2.0/24 via 192.168.77.22 proto lanbridge"),
        "{}",
        out.stdout
    );
    assert_eq!(c.lanbridge_routes(0), Vec::<String>::new());
    assert_eq!(
        c.table(0),
        pristine,
        "everything but lanbridge's routes is as it was"
    );

    // `--watch` (the systemd unit without the daemon) follows the file too.
    let log = c.w.path().join("watch.log");
    let path = c.peers_path().display().to_string();
    let watch = c.spawn(
        0,
        &[
            "routes", "sync", "--watch", "--peers", &path, "--node", "node1",
        ],
        &log,
    );
    c.write_peers_text(&peers(""));
    let want = ["10.244.2.0/24 via 192.168.77.12".to_string()];
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        c.wait_routes(0, &want, FOLLOW),
        "{:?}\n{}",
        c.lanbridge_routes(0),
        read_log()
    );
    drop(watch);
    assert!(
        read_log().contains("routes: add 10.244.2.0/24 via 192.168.77.12 (node2)"),
        "{}",
        read_log()
    );
}

/// The same with `iptables -P FORWARD DROP` in every node (Docker's
/// default): pod traffic, same node or across nodes, must not need the
/// FORWARD chain opened for the whole node, and the policy stays DROP.
#[test]
fn pods_reach_pods_with_forward_drop_on_every_node() {
    let mut c = Cluster::new("cludrop", 3);
    for node in 0..3 {
        c.ns(node).run(&["iptables", "-P", "FORWARD", "DROP"]);
    }
    c.add_pods(2);
    c.write_peers(&[0, 1, 2]);
    sync_all(&c);
    assert_connectivity(&c);
    for node in 0..3 {
        let rules = c.ns(node).run(&["iptables", "-S", "FORWARD"]);
        assert_eq!(rules.lines().next(), Some("-P FORWARD DROP"), "{rules}");
    }
}

/// Two nodes on one machine in lan mode with lanbridge's default settings
/// and the same network name (kind-style nodes sharing bpffs, /run and
/// /var/lib): each node's daemon on the default socket and its own pins, and
/// pods on both nodes lease from the LAN's dnsmasq.
#[test]
fn two_nodes_with_default_paths_lease_in_lan_mode() {
    let c = Cluster::new("clulan", 2);
    let dnsmasq = Dnsmasq::start(
        &c.w.topo.lan,
        &c.w.path().join("dnsmasq"),
        &DnsmasqConf::lan(),
    );
    let _daemons: Vec<Proc> = (0..2)
        .map(|node| {
            let log = c.w.path().join(format!("lan-daemon-{node}.log"));
            let daemon = c.spawn(node, &["daemon"], &log);
            let [_, _, run] = scoped_defaults(c.ns(node).inode());
            let socket = run.join("lanbridge.sock");
            assert!(
                wait_until(Duration::from_secs(10), || socket.exists()),
                "node{node}: no daemon socket at {}",
                socket.display()
            );
            daemon
        })
        .collect();
    let conf = json!({
        "cniVersion": "1.0.0", "name": "lbtlan", "type": "lanbridge",
        "bridge": "lb0", "uplink": NODE_UPLINK, "ipam": {"type": "dhcp"},
    });
    let mut pods = Vec::new();
    for node in 0..2 {
        let pod = c.w.topo.pod(&format!("lan{node}"));
        let mut att = Attachment::new(&format!("ctr-lan{node}"), &pod, "eth0");
        att.args = Some(k8s_args(&format!("lanpod{node}")));
        let r = c.nodes[node]
            .rt
            .invoke("ADD", &conf, &att, None)
            .expect_ok(&format!("ADD on node{node}"));
        let ip = first_ip(&r);
        assert!(in_pool(&ip), "node{node}: {ip} is not from the LAN's pool");
        assert!(
            wait_until(Duration::from_secs(5), || dnsmasq.lease_of(&ip).is_some()),
            "node{node}: dnsmasq has no lease for {ip}"
        );
        assert!(
            pod.ping(LAN_HOST),
            "node{node}: pod {ip} cannot reach the LAN"
        );
        pods.push((node, pod, att));
    }
    let pins: Vec<_> = (0..2)
        .map(|node| scoped_defaults(c.ns(node).inode())[0].join("lbtlan"))
        .collect();
    assert_ne!(pins[0], pins[1]);
    for dir in &pins {
        assert!(dir.join("lb_endpoints").exists(), "{}", dir.display());
    }
    for (node, _pod, att) in &pods {
        c.nodes[*node]
            .rt
            .invoke("DEL", &conf, att, None)
            .expect_ok(&format!("DEL on node{node}"));
    }
}

//! Subnet mode of lanbridge: pods on a bridge with host-local addresses from
//! the node's pod subnet, masqueraded towards the LAN.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use lanbridge::commands::fault::DELETER_DELAY_ENV;
use lanbridge::commands::state::StateDir;
use lanbridge_tests::cni::plugin_command;
use lanbridge_tests::probe::{ip_of, udp_ask, PeerServer};
use lanbridge_tests::process;
use lanbridge_tests::result::{self, first_ip, host_veth};
use lanbridge_tests::runtime::{inject, Attachment};
use lanbridge_tests::topology::{LAN_HOST, NODE_ADDR, NODE_UPLINK};
use lanbridge_tests::{Netns, World};
use serde_json::Value;

const SUBNET: &str = "10.244.1.0/24";
const GATEWAY: &str = "10.244.1.1";
const BRIDGE: &str = "lb0";
const NET: &str = "lbtnet";

fn add(w: &World, conf: &Value, att: &Attachment) -> Value {
    w.rt.invoke("ADD", conf, att, None)
        .expect_ok(&format!("ADD {}", att.container_id))
}

fn del(w: &World, conf: &Value, att: &Attachment, prev: Option<&Value>) {
    w.rt.invoke("DEL", conf, att, prev)
        .expect_ok(&format!("DEL {}", att.container_id));
}

fn pods(w: &World, n: usize) -> (Vec<Netns>, Vec<Attachment>) {
    let pods: Vec<Netns> = (0..n).map(|i| w.topo.pod(&format!("p{i}"))).collect();
    let atts = pods
        .iter()
        .enumerate()
        .map(|(i, p)| Attachment::new(&format!("ctr{i}"), p, "eth0"))
        .collect();
    (pods, atts)
}

/// DEL answers once the pod is cut off and its names are free: the runtime
/// reads the plugin's output to EOF while the pair is still being destroyed
/// in the background, the same interface can be added to the same netns at
/// once, and the old pair and its link pins go soon after.
#[test]
fn del_frees_the_names_at_once_and_destroys_the_pair_in_the_background() {
    let w = World::lanbridge("delbg");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-bg", &pod, "eth0");
    let veth = host_veth(&add(&w, &conf, &att), BRIDGE);

    // A deleter slower than any DEL: the runtime must not wait for it.
    let env = w.rt.env("DEL", &att).with(DELETER_DELAY_ENV, "1500");
    let mut cmd = plugin_command(&[], Some(&w.rt.node), &w.rt.find("lanbridge"), &env);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn DEL");
    let started = Instant::now();
    let stdin = inject(&conf, &conf, &att, None).to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the config");
    let out = child.wait_with_output().expect("DEL's output");
    let took = started.elapsed();
    assert!(out.status.success(), "DEL: {out:?}");
    assert!(out.stdout.is_empty(), "DEL printed {:?}", out.stdout);
    assert!(
        took < Duration::from_millis(1000),
        "EOF only after {took:?}"
    );
    let retired = w.retired();
    assert!(
        retired.iter().any(|l| l.starts_with("lbgone")),
        "the pair was destroyed before DEL answered: {retired:?}"
    );
    assert!(!w.topo.node.has_link(&veth), "{veth} still holds its name");
    assert!(!pod.has_link("eth0"), "the pod's eth0 still holds its name");

    // Re-ADD at once, the old pair still there.
    let r = add(&w, &conf, &att);
    assert!(pod.ping(GATEWAY), "the re-added pod is cut off");
    assert!(pod.ping(LAN_HOST), "the re-added pod cannot reach the LAN");
    assert_eq!(host_veth(&r, BRIDGE), veth);
    let gone = process::wait_until(Duration::from_secs(4), || w.retired().is_empty());
    assert!(gone, "the slow deleter left {:?}", w.retired());
    assert_eq!(pod.links(), vec!["eth0", "lo"]);
    assert_eq!(w.link_pins(NET), vec![veth.clone()]);
    assert!(
        pod.ping(GATEWAY),
        "the pod lost its network with the old pair"
    );

    // The plain deleter: the pair is gone within 2 s.
    del(&w, &conf, &att, Some(&r));
    w.assert_nothing_left(&pod, &att.container_id, &first_ip(&r), "after DEL");
}

#[test]
fn three_pods_get_distinct_addresses_and_connectivity() {
    let w = World::lanbridge("sub3");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (pods, atts) = pods(&w, 3);
    let results: Vec<Value> = atts.iter().map(|a| add(&w, &conf, a)).collect();

    let ips: Vec<String> = results.iter().map(first_ip).collect();
    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), 3, "addresses not distinct: {ips:?}");
    for (r, (pod, ip)) in results.iter().zip(pods.iter().zip(&ips)) {
        assert!(ip.starts_with("10.244.1."), "{ip} not from {SUBNET}");
        let rips = result::ips(r);
        assert_eq!(rips.len(), 1, "{r}");
        assert_eq!(rips[0].address, format!("{ip}/24"));
        assert_eq!(rips[0].gateway.as_deref(), Some(GATEWAY));
        assert_eq!(rips[0].interface.as_deref(), Some("eth0"));
        assert_eq!(result::sandbox_interfaces(r), vec!["eth0"]);
        assert_eq!(pod.ipv4_addrs("eth0"), vec![format!("{ip}/24")]);
        assert_eq!(pod.default_gateway().as_deref(), Some(GATEWAY));
        let veth = host_veth(r, BRIDGE);
        assert!(
            veth.starts_with("lb") && !veth.starts_with("veth"),
            "host veth {veth}"
        );
        assert!(
            w.topo.node.has_link(&veth),
            "host veth {veth} missing in node"
        );
    }
    assert_eq!(
        w.topo.node.ipv4_addrs(BRIDGE),
        vec![format!("{GATEWAY}/24")]
    );
    for link in w.port_links(BRIDGE) {
        assert!(link.starts_with("lb"), "unexpected node link {link}");
    }

    for (i, from) in pods.iter().enumerate() {
        for (j, to) in ips.iter().enumerate() {
            if i != j {
                assert!(from.ping(to), "pod{i} cannot ping pod{j} ({to})");
            }
        }
        assert!(from.ping(GATEWAY), "pod{i} cannot ping the gateway");
        assert!(from.ping(LAN_HOST), "pod{i} cannot ping the LAN host");
    }
    let server = PeerServer::udp(&w.topo.lan_host, 7777);
    for (i, pod) in pods.iter().enumerate() {
        let seen = udp_ask(pod, &format!("{LAN_HOST}:7777"))
            .unwrap_or_else(|| panic!("pod{i}: no UDP answer from the LAN host"));
        assert_eq!(
            ip_of(&seen),
            NODE_ADDR,
            "pod{i} not masqueraded behind the node"
        );
    }
    assert_eq!(server.seen().len(), 3);
    drop(server);

    for (a, r) in atts.iter().zip(&results) {
        del(&w, &conf, a, Some(r));
    }
    w.wait_retired_gone("after the DELs");
    assert_eq!(w.port_links(BRIDGE), Vec::<String>::new());
    assert_eq!(w.allocations(NET), Vec::<String>::new());
    // Nothing per pod: the network's masquerade stays with its bridge.
    assert_eq!(
        w.nat_rules(),
        Vec::<String>::new(),
        "rules in iptables' nat"
    );
    assert_network_rules(&w, "after DEL");
}

/// The network's netfilter state, whatever pods come and go: one jump to
/// its subnet's masquerade chain (accepts for the subnet and multicast, then
/// masquerade), and the two FORWARD accepts for the bridge.
fn assert_network_rules(w: &World, context: &str) {
    let masq = w.masquerade_rules();
    let jumps: Vec<_> = masq
        .iter()
        .filter(|l| l.starts_with(&format!("ip saddr {SUBNET} jump masq-")))
        .collect();
    assert_eq!(jumps.len(), 1, "{context}: {masq:#?}");
    assert_eq!(masq.len(), 4, "{context}: {masq:#?}");
    let forward = w.forward_rules();
    let tag = format!("lanbridge:{NET} {BRIDGE}");
    assert_eq!(forward.len(), 2, "{context}: {forward:#?}");
    assert!(forward.iter().all(|l| l.contains(&tag)), "{forward:#?}");
}

/// The network's config is the last ADD's: with `ipMasq` turned off, the
/// next pod is not masqueraded (as with the reference's per-pod rules),
/// judged by the source address the LAN host sees.
#[test]
fn ip_masq_turned_off_stops_masquerading_the_next_pod() {
    let w = World::lanbridge("submasqoff");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (pods, atts) = pods(&w, 2);
    let first = add(&w, &conf, &atts[0]);
    assert_network_rules(&w, "ipMasq on");
    let mut off = conf.clone();
    off["ipMasq"] = false.into();
    let second = add(&w, &off, &atts[1]);
    assert_eq!(w.masquerade_rules(), Vec::<String>::new(), "ipMasq off");
    // The LAN host routes the pod subnet back through the node.
    w.topo
        .lan_host
        .run(&["ip", "route", "replace", SUBNET, "via", NODE_ADDR]);
    let server = PeerServer::udp(&w.topo.lan_host, 7777);
    let seen = udp_ask(&pods[1], &format!("{LAN_HOST}:7777")).expect("UDP answer");
    let address = second["ips"][0]["address"].as_str().expect("address");
    let pod_ip = address.split('/').next().expect("ip");
    assert_eq!(
        ip_of(&seen),
        pod_ip,
        "the pod's own address, not the node's"
    );
    drop(server);
    del(&w, &off, &atts[1], Some(&second));
    del(&w, &conf, &atts[0], Some(&first));
}

#[test]
fn check_passes_then_fails_after_address_removed() {
    let w = World::lanbridge("subchk");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (pods, atts) = pods(&w, 1);
    let r = add(&w, &conf, &atts[0]);
    w.rt.invoke("CHECK", &conf, &atts[0], Some(&r))
        .expect_ok("CHECK right after ADD");
    let addr = format!("{}/24", first_ip(&r));
    pods[0].ip(&["addr", "del", &addr, "dev", "eth0"]);
    let out = w.rt.invoke("CHECK", &conf, &atts[0], Some(&r));
    let code = out.expect_err("CHECK after the address was removed");
    assert!(code > 0, "{out}");
    del(&w, &conf, &atts[0], Some(&r));
}

#[test]
fn del_twice_and_del_without_add_succeed() {
    let w = World::lanbridge("subdel");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (_pods, atts) = pods(&w, 2);
    let r = add(&w, &conf, &atts[0]);
    let veth = host_veth(&r, BRIDGE);
    del(&w, &conf, &atts[0], Some(&r));
    del(&w, &conf, &atts[0], Some(&r));
    del(&w, &conf, &atts[0], None);
    assert!(!w.topo.node.has_link(&veth), "{veth} left after DEL");
    assert_eq!(w.allocations(NET), Vec::<String>::new());
    // An attachment that never had an ADD.
    del(&w, &conf, &atts[1], None);
}

/// An upgraded node: the pods an older build added have per-pod iptables
/// rules (two FORWARD accepts, a nat chain and its POSTROUTING jump, as that
/// build wrote them). DEL of one and GC of the other remove exactly theirs;
/// the network's own rules and iptables' stay.
#[test]
fn del_and_gc_remove_an_older_builds_per_pod_rules() {
    let w = World::lanbridge("sublegacy");
    let list = w.subnet_list("1.1.0", SUBNET);
    let (pods, atts) = pods(&w, 2);
    let results: Vec<Value> = atts
        .iter()
        .map(|a| w.rt.add_list(&list, a).unwrap_or_else(|f| panic!("{f}")))
        .collect();
    let node = &w.topo.node;
    let before = [w.forward_rules(), w.nat_rules()].concat();
    for (a, r) in atts.iter().zip(&results) {
        let ip = first_ip(r);
        let tag = format!("lanbridge:{NET}:{}", a.container_id);
        let chain = legacy_chain(&a.container_id);
        for dir in [["-i", "-s"], ["-o", "-d"]] {
            let pod = format!("{ip}/32");
            let rule = [
                dir[0],
                BRIDGE,
                dir[1],
                &pod,
                "-m",
                "comment",
                "--comment",
                &tag,
            ];
            let mut argv = vec!["iptables", "-w", "-A", "LANBRIDGE-FWD"];
            argv.extend(rule);
            argv.extend(["-j", "ACCEPT"]);
            node.run(&argv);
        }
        node.run(&["iptables", "-w", "-t", "nat", "-N", &chain]);
        for (dst, verdict) in [(SUBNET, "ACCEPT"), ("!224.0.0.0/4", "MASQUERADE")] {
            let mut argv = vec!["iptables", "-w", "-t", "nat", "-A", &chain];
            match dst.strip_prefix('!') {
                Some(d) => argv.extend(["!", "-d", d]),
                None => argv.extend(["-d", dst]),
            }
            argv.extend(["-j", verdict, "-m", "comment", "--comment", &tag]);
            node.run(&argv);
        }
        let jump = ["-s", &ip, "-j", &chain, "-m", "comment", "--comment", &tag];
        let mut argv = vec!["iptables", "-w", "-t", "nat", "-A", "POSTROUTING"];
        argv.extend(jump);
        node.run(&argv);
        // The record as that build wrote it: without `podRules`.
        let file = StateDir::new(&w.state_dir(), NET).path(&a.container_id, "eth0");
        let mut record: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(record["podRules"], false, "{record}");
        record.as_object_mut().unwrap().remove("podRules");
        std::fs::write(&file, record.to_string()).unwrap();
    }
    let of = |a: &Attachment| {
        let (tag, chain) = (
            format!("lanbridge:{NET}:{}", a.container_id),
            legacy_chain(&a.container_id),
        );
        [w.forward_rules(), w.nat_rules()]
            .concat()
            .into_iter()
            .filter(|l| l.contains(&tag) || l.contains(&chain))
            .count()
    };
    assert_eq!(of(&atts[0]), 6, "{:#?}", w.nat_rules());
    assert_eq!(of(&atts[1]), 6);

    w.rt.del_list(&list, &atts[0], Some(&results[0]))
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(of(&atts[0]), 0, "DEL left the old build's rules of pod 0");
    assert_eq!(of(&atts[1]), 6, "DEL of pod 0 touched pod 1's rules");
    assert!(pods[1].ping(GATEWAY), "pod 1 after pod 0's DEL");

    w.rt.gc_list(&list, &[])
        .unwrap_or_else(|f| panic!("GC: {f}"));
    assert_eq!(of(&atts[1]), 0, "GC left the old build's rules of pod 1");
    assert_eq!([w.forward_rules(), w.nat_rules()].concat(), before);
    assert_network_rules(&w, "after GC");
}

/// The older build's nat chain of an attachment (`LB-` + 20 hex of the
/// SHA-256 of `<network>/<container>`, upper case).
fn legacy_chain(container_id: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("piped")
                .write_all(format!("{NET}/{container_id}").as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("LB-{}", hex[..20].to_uppercase())
}

#[test]
fn del_after_netns_deleted_frees_everything() {
    let w = World::lanbridge("subgone");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (mut pods, atts) = pods(&w, 1);
    let r = add(&w, &conf, &atts[0]);
    let ip = first_ip(&r);
    let veth = host_veth(&r, BRIDGE);
    assert_eq!(w.allocations(NET), vec![ip.clone()]);
    pods.remove(0).delete();
    del(&w, &conf, &atts[0], Some(&r));
    assert!(w.topo.node.wait_link(&veth, false), "{veth} left after DEL");
    assert_eq!(
        w.allocations(NET),
        Vec::<String>::new(),
        "{ip} still allocated"
    );
    assert_eq!(w.nat_rules(), Vec::<String>::new(), "masquerade rules left");
    assert_eq!(w.state_files(), Vec::<std::path::PathBuf>::new());
    assert_no_datapath_entries(&w, "after DEL of a deleted pod");
}

/// Every port's TCX link pin and map entries are gone.
fn assert_no_datapath_entries(w: &World, context: &str) {
    assert_eq!(
        w.link_pins(NET),
        Vec::<String>::new(),
        "{context}: TCX links left"
    );
    for map in ["lb_endpoints", "lb_by_mac", "lb_by_ip"] {
        assert_eq!(
            w.map_entries(NET, map),
            Vec::<Value>::new(),
            "{context}: {map} entries left"
        );
    }
}

#[test]
fn gc_removes_attachments_not_listed() {
    let w = World::lanbridge("subgc");
    let list = w.subnet_list("1.1.0", SUBNET);
    let (pods, atts) = pods(&w, 3);
    let results: Vec<Value> = atts
        .iter()
        .map(|a| w.rt.add_list(&list, a).unwrap_or_else(|f| panic!("{f}")))
        .collect();
    let veths: Vec<String> = results.iter().map(|r| host_veth(r, BRIDGE)).collect();
    assert_eq!(w.allocations(NET).len(), 3);

    w.rt.gc_list(&list, &[&atts[0]])
        .unwrap_or_else(|f| panic!("GC: {f}"));

    assert_eq!(
        w.allocations(NET),
        vec![first_ip(&results[0])],
        "GC kept the wrong allocations"
    );
    assert!(
        w.topo.node.has_link(&veths[0]),
        "GC removed the valid attachment's link"
    );
    for v in &veths[1..] {
        assert!(w.topo.node.wait_link(v, false), "GC left {v}");
    }
    assert_eq!(
        w.link_pins(NET),
        vec![veths[0].clone()],
        "GC kept the wrong TCX links"
    );
    assert_eq!(
        w.map_entries(NET, "lb_endpoints").len(),
        1,
        "GC kept the wrong endpoints"
    );
    assert!(
        pods[0].ping(GATEWAY),
        "valid pod lost connectivity after GC"
    );
    w.rt.check_list(&list, &atts[0], &results[0])
        .unwrap_or_else(|f| panic!("CHECK of the valid attachment after GC: {f}"));
    assert_network_rules(&w, "after GC");
    for (a, r) in atts.iter().zip(&results) {
        w.rt.del_list(&list, a, Some(r))
            .unwrap_or_else(|f| panic!("{f}"));
    }
    assert_eq!(w.allocations(NET), Vec::<String>::new());
    assert_eq!(w.nat_rules(), Vec::<String>::new());
    assert_network_rules(&w, "after GC and DEL");
    assert_no_datapath_entries(&w, "after GC and DEL");
}

#[test]
fn twenty_concurrent_adds_then_dels_leak_nothing() {
    const N: usize = 20;
    let w = World::lanbridge("subconc");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (_pods, atts) = pods(&w, N);
    let results: Vec<Value> = thread::scope(|s| {
        let handles: Vec<_> = atts
            .iter()
            .map(|a| s.spawn(|| w.rt.invoke("ADD", &conf, a, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ADD thread").expect_ok("concurrent ADD"))
            .collect()
    });
    let ips: BTreeSet<String> = results.iter().map(first_ip).collect();
    assert_eq!(ips.len(), N, "duplicate addresses handed out: {ips:?}");
    assert_eq!(w.allocations(NET).len(), N);
    assert_eq!(w.port_links(BRIDGE).len(), N);

    thread::scope(|s| {
        let handles: Vec<_> = atts
            .iter()
            .zip(&results)
            .map(|(a, r)| s.spawn(|| w.rt.invoke("DEL", &conf, a, Some(r))))
            .collect();
        for h in handles {
            h.join().expect("DEL thread").expect_ok("concurrent DEL");
        }
    });
    let mut links = w.topo.node.links();
    links.sort();
    let mut want = vec![
        BRIDGE.to_string(),
        NODE_UPLINK.to_string(),
        "lo".to_string(),
    ];
    want.sort();
    assert_eq!(links, want, "links leaked in the node");
    assert_eq!(
        w.allocations(NET),
        Vec::<String>::new(),
        "allocations leaked"
    );
    assert_eq!(
        w.state_files(),
        Vec::<std::path::PathBuf>::new(),
        "state leaked"
    );
    assert_eq!(
        w.nat_rules(),
        Vec::<String>::new(),
        "rules in iptables' nat"
    );
    assert_no_datapath_entries(&w, "after 20 DELs");
    // 20 concurrent first ADDs installed the network's rules once.
    assert_network_rules(&w, "after 20 concurrent ADDs and DELs");
}

/// Docker flips FORWARD to DROP: lanbridge's accepts for its bridge keep
/// routed pod traffic flowing without opening FORWARD for the host's other
/// interfaces.
#[test]
fn forward_drop_in_the_node_does_not_cut_pods_off() {
    let w = World::lanbridge("subfwd");
    w.topo.node.run(&["iptables", "-P", "FORWARD", "DROP"]);
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (pods, atts) = pods(&w, 2);
    let results: Vec<Value> = atts.iter().map(|a| add(&w, &conf, a)).collect();
    let server = PeerServer::udp(&w.topo.lan_host, 7778);
    for (i, pod) in pods.iter().enumerate() {
        let seen = udp_ask(pod, &format!("{LAN_HOST}:7778"))
            .unwrap_or_else(|| panic!("pod{i}: no UDP answer through FORWARD DROP"));
        assert_eq!(ip_of(&seen), NODE_ADDR, "pod{i} not masqueraded");
    }
    assert!(pods[0].ping(&first_ip(&results[1])), "pod to pod");
    drop(server);
    // Only lanbridge's chain and its network's rules were added; the policy stays.
    let filter = w.topo.node.run(&["iptables", "-S", "FORWARD"]);
    assert!(filter.contains("-P FORWARD DROP"), "{filter}");
    assert_network_rules(&w, "after ADD");
    for (a, r) in atts.iter().zip(&results) {
        del(&w, &conf, a, Some(r));
    }
    assert_network_rules(&w, "after DEL");
}

/// Issue 15: ADD and DEL start no program. With a PATH holding only the
/// `nsenter` the harness enters the node with (no iptables, nft or ip) and Docker's `iptables -P FORWARD DROP`, the first
/// ADD installs the network's rules, the next ones find them, the pods'
/// traffic is forwarded and masqueraded as the LAN host sees it, and
/// `macspoofchk` gets its port entry; DEL removes the pods and their ports'
/// entries and leaves the network's rules. Docker's and kube-proxy's FORWARD
/// rules are there before, and after lanbridge's jump, which comes first.
#[test]
fn add_and_del_run_no_program() {
    let w = World::lanbridge("subnoexec");
    let node = &w.topo.node;
    node.run(&["iptables", "-P", "FORWARD", "DROP"]);
    for rule in [
        "-N KUBE-FORWARD",
        "-A FORWARD -m comment --comment kubernetes-forwarding-rules -j KUBE-FORWARD",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-N DOCKER-USER",
        "-A DOCKER-USER -j RETURN",
        "-A FORWARD -j DOCKER-USER",
    ] {
        let mut argv = vec!["iptables", "-w"];
        argv.extend(rule.split(' '));
        node.run(&argv);
    }
    let mut conf = w.subnet_conf("1.0.0", SUBNET);
    conf["macspoofchk"] = serde_json::json!(true);
    let empty = w.tmp.path().join("empty-path");
    std::fs::create_dir(&empty).expect("empty PATH dir");
    std::os::unix::fs::symlink("/usr/bin/nsenter", empty.join("nsenter")).expect("nsenter");
    let mut rt = w.rt.clone();
    rt.extra_env
        .push(("PATH".into(), empty.display().to_string()));
    let (pods, atts) = pods(&w, 3);
    let results: Vec<Value> = atts
        .iter()
        .map(|a| {
            rt.invoke("ADD", &conf, a, None)
                .expect_ok("ADD without PATH")
        })
        .collect();
    let server = PeerServer::udp(&w.topo.lan_host, 7779);
    for (i, pod) in pods.iter().enumerate() {
        let seen = udp_ask(pod, &format!("{LAN_HOST}:7779"))
            .unwrap_or_else(|| panic!("pod{i}: no UDP answer through FORWARD DROP"));
        assert_eq!(ip_of(&seen), NODE_ADDR, "pod{i} not masqueraded");
    }
    drop(server);
    assert!(pods[0].ping(&first_ip(&results[2])), "pod to pod");
    assert_network_rules(&w, "after ADDs without PATH");
    let forward = node.run(&["iptables", "-S", "FORWARD"]);
    let jumps: Vec<&str> = forward.lines().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(jumps.len(), 3, "{forward}");
    assert!(jumps[0].ends_with("-j LANBRIDGE-FWD"), "{forward}");
    let ports = || {
        w.topo
            .node
            .exec(&["nft", "list", "map", "bridge", "lanbridge", "ports"])
            .stdout
    };
    for r in &results {
        let veth = host_veth(r, BRIDGE);
        assert!(
            ports().contains(&veth),
            "no macspoofchk entry for {veth}: {}",
            ports()
        );
    }
    for (a, r) in atts.iter().zip(&results) {
        rt.invoke("DEL", &conf, a, Some(r))
            .expect_ok("DEL without PATH");
    }
    w.wait_retired_gone("after DELs without PATH");
    assert_eq!(w.port_links(BRIDGE), Vec::<String>::new());
    assert!(
        !ports().contains("lb"),
        "macspoofchk entries left: {}",
        ports()
    );
    assert_network_rules(&w, "after DELs without PATH");
}

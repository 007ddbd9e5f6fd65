//! `cargo xtask demo`: lanbridge in throwaway network namespaces. First lan
//! mode, what lanbridge is for: a LAN with its own DHCP server (dnsmasq), a
//! node whose uplink keeps its address, pods that lease LAN addresses
//! through the eBPF relay and that a LAN host reaches, `lanbridge status`,
//! and a spoofing pod's packets dropped and shown by `lanbridge monitor`.
//! Then subnet mode: ADD / CHECK / DEL of three pods with what each got and
//! whether it reaches the others and the LAN. Everything is torn down at
//! the end, also on Ctrl-C.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use lanbridge_tests::flows::{send_frames, udp_frame, LanNet, LanOpts};
use lanbridge_tests::probe::{ip_of, udp_ask, PeerServer};
use lanbridge_tests::result::{self, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_HOST, LAN_ROUTER, NODE_ADDR, NODE_UPLINK};
use lanbridge_tests::{binary, cleanup, require_root, Netns, World};
use serde_json::Value;

const SUBNET: &str = "10.244.1.0/24";
const BRIDGE: &str = "lb0";
const PODS: usize = 3;

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

struct Pod {
    name: String,
    ns: Netns,
    att: Attachment,
    result: Option<Value>,
}

fn describe(p: &Pod) {
    let Some(r) = &p.result else { return };
    println!("  {} (netns {}):", p.name, p.ns.name());
    for ip in result::ips(r) {
        println!(
            "    interface {:<6} address {:<16} gateway {}",
            ip.interface.as_deref().unwrap_or("?"),
            ip.address,
            ip.gateway.as_deref().unwrap_or("-")
        );
    }
    let mac = p.ns.ip_json(&["link", "show", "eth0"])[0]["address"].clone();
    println!(
        "    mac {}   host side {} on bridge {BRIDGE}",
        mac.as_str().unwrap_or("?"),
        host_veth(r, BRIDGE)
    );
    for route in p.ns.ip(&["-4", "route", "show"]).lines() {
        println!("    route {route}");
    }
}

fn main() -> ExitCode {
    require_root();
    cleanup::on_signals(|| {});
    println!(
        "lanbridge demo — plugin {}",
        binary::lanbridge_bin().display()
    );
    let failures = lan_mode() + subnet_mode();
    println!("\nTorn down: namespaces and temp files removed.");
    if failures == 0 {
        println!("demo: all steps ok");
        ExitCode::SUCCESS
    } else {
        println!("demo: {failures} step(s) failed");
        ExitCode::FAILURE
    }
}

/// Registers a world's temp dir for removal on Ctrl-C (`false`: forget it).
fn track(dir: &std::path::Path, keep: bool) {
    match keep {
        true => cleanup::track_dir(dir),
        false => cleanup::forget_dir(dir),
    }
}

/// Runs `lanbridge <args>` in `ns`, printing its output indented.
fn show(ns: &Netns, args: &[&str]) -> bool {
    let mut c = ns.command(&binary::lanbridge_bin().display().to_string());
    c.args(args);
    let out = lanbridge_tests::process::run(&mut c, None, Duration::from_secs(30));
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        println!("    {line}");
    }
    out.success()
}

const LAN_NET: &str = "lan";

/// lan mode: pods on the LAN, leased by the LAN's own DHCP server.
fn lan_mode() -> usize {
    println!("\n=== lan mode: pods on the LAN, addresses from the LAN's DHCP server ===");
    let net = LanNet::new("demolan", LAN_NET, LanOpts::default());
    track(net.w.path(), true);
    let node = net.node();
    println!("\nTopology (all in network namespaces, removed at the end):");
    println!(
        "  LAN    {}: bridge lanbr, router and dnsmasq at {LAN_ROUTER}/24",
        net.w.topo.lan.name()
    );
    println!("  host   {}: {LAN_HOST}/24", net.w.topo.lan_host.name());
    println!(
        "  node   {}: uplink {NODE_UPLINK} {NODE_ADDR}/24 (not enslaved: it keeps its \
         address), lanbridge daemon running",
        node.name()
    );
    println!(
        "\nNetwork config:\n{}",
        serde_json::to_string_pretty(&net.conf).expect("json")
    );
    let mut failures = 0;
    println!("\nADD: each pod leases an address from the LAN's dnsmasq through the relay");
    let pods: Vec<lanbridge_tests::flows::Pod> =
        (1..=2).map(|i| net.add(&format!("lanpod{i}"))).collect();
    for p in &pods {
        let leased = net.dns.lease_of(&p.ip).is_some();
        failures += usize::from(!leased);
        println!(
            "  {}: {} (mac {}, port {}); in dnsmasq's lease file: {}",
            p.ns.name(),
            p.ip,
            p.mac,
            p.port,
            mark(leased)
        );
    }
    let kept = node
        .ipv4_addrs(NODE_UPLINK)
        .iter()
        .any(|a| a.starts_with(NODE_ADDR));
    failures += usize::from(!kept);
    println!(
        "  the node's {NODE_UPLINK} still has {NODE_ADDR}: {}",
        mark(kept)
    );

    println!("\nConnectivity");
    for p in &pods {
        let ok = net.lan_host().ping(&p.ip);
        let back = p.ns.ping(LAN_HOST);
        failures += usize::from(!ok) + usize::from(!back);
        println!(
            "  LAN host {LAN_HOST} -> {} {}: {}; back: {}",
            p.ns.name(),
            p.ip,
            mark(ok),
            mark(back)
        );
    }

    println!("\n$ lanbridge status   (in the node)");
    failures += usize::from(!show(node, &["status"]));

    println!("\nA hostile pod sends from an address not its own; `lanbridge monitor` shows it:");
    let watching = net.daemon.wait_log(
        &format!("watching drop events of network {LAN_NET}"),
        Duration::from_secs(10),
    );
    let monitor = net.daemon.monitor(&[]);
    thread::sleep(Duration::from_millis(500));
    let spoof = udp_frame(
        "ff:ff:ff:ff:ff:ff",
        &pods[0].mac,
        ("192.168.77.250", 5353),
        (LAN_HOST, 7777),
        b"spoofed",
    );
    send_frames(&pods[0].ns, "eth0", vec![spoof]);
    let shown = watching && monitor.wait_log("drop_spoof_ip", Duration::from_secs(10));
    failures += usize::from(!shown);
    println!("$ lanbridge monitor");
    for line in monitor.log().lines() {
        println!("    {line}");
    }
    println!("  spoofed packet dropped and shown: {}", mark(shown));
    drop(monitor);

    println!("\nDEL: the leases are released at the LAN's server");
    for p in &pods {
        let out = net.w.rt.invoke("DEL", &net.conf, &p.att, None);
        let released = out.success()
            && lanbridge_tests::process::wait_until(Duration::from_secs(5), || {
                net.dns.lease_of(&p.ip).is_none()
            });
        failures += usize::from(!released);
        println!(
            "  {}: DEL {}; {} gone from dnsmasq's lease file: {}",
            p.ns.name(),
            mark(out.success()),
            p.ip,
            mark(released)
        );
    }
    let path = net.w.path().to_path_buf();
    drop(pods);
    drop(net);
    track(&path, false);
    failures
}

/// subnet mode: pods in the node's pod subnet, routed and masqueraded.
fn subnet_mode() -> usize {
    println!("\n=== subnet mode: pods in the node's pod subnet {SUBNET} ===");
    let w = World::lanbridge("demo");
    track(w.path(), true);
    println!("\nTopology (all in network namespaces, removed at the end):");
    println!(
        "  LAN    {}: bridge lanbr, router {LAN_ROUTER}/24",
        w.topo.lan.name()
    );
    println!("  host   {}: {LAN_HOST}/24", w.topo.lan_host.name());
    println!(
        "  node   {}: {NODE_UPLINK} {NODE_ADDR}/24, default via {LAN_ROUTER}",
        w.topo.node.name()
    );
    let conf = w.subnet_conf("1.0.0", SUBNET);
    println!(
        "\nNetwork config:\n{}",
        serde_json::to_string_pretty(&conf).expect("json")
    );

    let mut failures = 0;
    let mut pods: Vec<Pod> = (0..PODS)
        .map(|i| {
            let name = format!("pod{i}");
            let ns = w.topo.pod(&name);
            let att = Attachment::new(&format!("demo-ctr-{i}"), &ns, "eth0");
            Pod {
                name,
                ns,
                att,
                result: None,
            }
        })
        .collect();

    println!("\nADD");
    for p in &mut pods {
        let out = w.rt.invoke("ADD", &conf, &p.att, None);
        println!("  {}: ADD {}", p.name, mark(out.success()));
        if out.success() {
            p.result = out.json();
        } else {
            failures += 1;
            println!("{out}");
        }
    }
    println!("\nWhat each pod got");
    pods.iter().for_each(describe);

    println!("\nCHECK");
    for p in pods.iter().filter(|p| p.result.is_some()) {
        let out = w.rt.invoke("CHECK", &conf, &p.att, p.result.as_ref());
        println!("  {}: CHECK {}", p.name, mark(out.success()));
        if !out.success() {
            failures += 1;
            println!("{out}");
        }
    }

    println!("\nConnectivity (ping)");
    let up: Vec<&Pod> = pods.iter().filter(|p| p.result.is_some()).collect();
    let server = PeerServer::udp(&w.topo.lan_host, 7777);
    for p in &up {
        let mut line = format!("  {:<5} ->", p.name);
        for q in up.iter().filter(|q| q.name != p.name) {
            let ip = result::first_ip(q.result.as_ref().expect("result"));
            let ok = p.ns.ping(&ip);
            failures += usize::from(!ok);
            line += &format!("  {} {ip} {}", q.name, mark(ok));
        }
        let ok = p.ns.ping(LAN_HOST);
        failures += usize::from(!ok);
        line += &format!("  LAN host {LAN_HOST} {}", mark(ok));
        println!("{line}");
        match udp_ask(&p.ns, &format!("{LAN_HOST}:7777")) {
            Some(seen) => println!(
                "          the LAN host sees {} as {} (masqueraded)",
                p.name,
                ip_of(&seen)
            ),
            None => {
                failures += 1;
                println!("          no UDP answer from the LAN host");
            }
        }
    }
    drop(server);

    println!("\nDEL");
    for p in &pods {
        let out = w.rt.invoke("DEL", &conf, &p.att, p.result.as_ref());
        println!("  {}: DEL {}", p.name, mark(out.success()));
        if !out.success() {
            failures += 1;
            println!("{out}");
        }
    }
    let left = w.port_links(BRIDGE);
    let allocs = w.allocations("lbtnet");
    println!("  host-side links left: {left:?}; addresses still allocated: {allocs:?}");
    failures += usize::from(!left.is_empty()) + usize::from(!allocs.is_empty());

    let path = w.path().to_path_buf();
    drop(pods);
    drop(w);
    track(&path, false);
    failures
}

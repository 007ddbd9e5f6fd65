//! Issue 13, operating a node: the programs' drops reach `lanbridge
//! monitor` and the daemon's log with the packet's MACs, addresses, ports
//! and reason; a failed lease shows in the daemon's log; Prometheus metrics
//! and probes; `lanbridge status`.

use std::process::Command;
use std::time::Duration;

use lanbridge_tests::background::Background;
use lanbridge_tests::binary::lanbridge_bin;
use lanbridge_tests::flows::{send_frames, udp_frame, LanNet, LanOpts};
use lanbridge_tests::lan::{lan_conf, LAN_NET_BRIDGE};
use lanbridge_tests::process::{self, wait_until, Finished};
use lanbridge_tests::topology::{LAN_ROUTER, NODE_UPLINK};
use lanbridge_tests::Netns;
use serde_json::Value;

const NET: &str = "lbtobs";
/// Not the pod's: what a hostile pod claims to be.
const SPOOFED: &str = "10.66.66.66";

/// The JSON lines `monitor --json` wrote so far.
fn events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn monitor_and_the_daemon_log_show_a_spoofing_pods_drops() {
    let net = LanNet::new("obsmon", NET, LanOpts::default());
    let pod = net.add("obs1");
    // The daemon finds the network's ring once ADD loaded the programs.
    assert!(
        net.daemon.wait_log(
            &format!("watching drop events of network {NET}"),
            Duration::from_secs(10)
        ),
        "{}",
        net.daemon.run_log()
    );
    let mut monitor = net.daemon.monitor(&["--json", "--network", NET]);
    let mut all = net.daemon.monitor(&[]);
    // Subscribed once the request is in: give it a moment before the drops.
    std::thread::sleep(Duration::from_millis(500));
    let spoof = udp_frame(
        "ff:ff:ff:ff:ff:ff",
        &pod.mac,
        (SPOOFED, 4444),
        (LAN_ROUTER, 9999),
        b"not me",
    );
    send_frames(&pod.ns, "eth0", vec![spoof; 3]);

    let seen = wait_until(Duration::from_secs(10), || {
        events(&monitor.log()).iter().any(|e| e["src"] == SPOOFED)
    });
    assert!(seen, "monitor printed no drop:\n{}", monitor.log());
    let drop = events(&monitor.log())
        .into_iter()
        .find(|e| e["src"] == SPOOFED)
        .unwrap();
    assert_eq!(drop["event"], "drop", "{drop}");
    assert_eq!(drop["network"], NET, "{drop}");
    assert_eq!(drop["reason"], "drop_spoof_ip", "{drop}");
    assert_eq!(drop["interface"], pod.port.as_str(), "{drop}");
    assert_eq!(drop["srcMac"], pod.mac.as_str(), "{drop}");
    assert_eq!(drop["dstMac"], "ff:ff:ff:ff:ff:ff", "{drop}");
    assert_eq!(drop["protocol"], "udp", "{drop}");
    assert_eq!(drop["dst"], LAN_ROUTER, "{drop}");
    assert_eq!(
        (drop["srcPort"].as_u64(), drop["dstPort"].as_u64()),
        (Some(4444), Some(9999))
    );
    // The text form, on every network, and the daemon's log.
    let line = format!(
        "drop_spoof_ip: {} > ff:ff:ff:ff:ff:ff udp {SPOOFED}:4444 > {LAN_ROUTER}:9999",
        pod.mac
    );
    assert!(
        all.wait_log(&line, Duration::from_secs(5)),
        "monitor (text) printed no {line:?}:\n{}",
        all.log()
    );
    assert!(
        net.daemon.wait_log(&line, Duration::from_secs(5)),
        "the daemon logged no {line:?}:\n{}",
        net.daemon.run_log()
    );
    // The counters agree: three drops of the pod.
    assert_eq!(net.count(&pod.port, "drop_spoof_ip"), 3, "{}", net.table());
    monitor.kill();
    all.kill();

    // An unknown network is an error, not an empty stream.
    let mut unknown = net.daemon.monitor(&["--network", "nosuchnet"]);
    assert!(
        wait_until(Duration::from_secs(5), || !unknown.running()),
        "monitor --network nosuchnet kept running"
    );
    assert!(
        unknown
            .log()
            .contains("no network \"nosuchnet\" on this node"),
        "{}",
        unknown.log()
    );
}

#[test]
fn a_failed_lease_is_in_the_daemons_log() {
    let mut net = LanNet::new("obslease", NET, LanOpts::default());
    net.dns.kill();
    let (_ns, att) = net.pod_ns("obs2");
    let code = net
        .w
        .rt
        .invoke("ADD", &lan_conf(NET, 1.0), &att, None)
        .expect_err("ADD without a DHCP server");
    assert_ne!(code, 0);
    let needle = format!("no lease for {}/eth0 on network {NET}", att.container_id);
    assert!(
        net.daemon.wait_log(&needle, Duration::from_secs(5)),
        "the daemon logged no {needle:?}:\n{}",
        net.daemon.run_log()
    );
}

const METRICS: &str = "127.0.0.1:9465";

/// The value of the sample of `name` whose labels include `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_packets_drops_leases_dhcp_and_the_plugins_commands() {
    let mut net = LanNet::new("obsmet", NET, LanOpts::default());
    net.daemon
        .restart_with_args(&["--metrics-address", METRICS]);
    assert_eq!(
        net.daemon.http_get(METRICS, "/healthz"),
        (200, "ok\n".into())
    );
    assert_eq!(
        net.daemon.http_get(METRICS, "/readyz"),
        (200, "ready\n".into())
    );
    assert_eq!(net.daemon.http_get(METRICS, "/nothing").0, 404);

    let pod = net.add("obs3");
    let spoof = udp_frame(
        "ff:ff:ff:ff:ff:ff",
        &pod.mac,
        (SPOOFED, 4444),
        (LAN_ROUTER, 9999),
        b"not me",
    );
    send_frames(&pod.ns, "eth0", vec![spoof; 2]);
    let (status, text) = net.daemon.http_get(METRICS, "/metrics");
    assert_eq!(status, 200, "{text}");
    let net_ = ("network", NET);
    let drops = [net_, ("reason", "drop_spoof_ip")];
    let port = [
        net_,
        ("interface", pod.port.as_str()),
        ("reason", "drop_spoof_ip"),
    ];
    assert_eq!(
        sample(&text, "lanbridge_packets_total", &port),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "lanbridge_drops_total", &drops),
        Some(2.0),
        "{text}"
    );
    let relayed = [
        net_,
        ("interface", pod.port.as_str()),
        ("reason", "dhcp_relayed"),
    ];
    assert!(
        sample(&text, "lanbridge_packets_total", &relayed) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "lanbridge_leases", &[net_, ("state", "bound")]),
        Some(1.0),
        "{text}"
    );
    let acquired = [net_, ("exchange", "acquire"), ("outcome", "ok")];
    assert_eq!(
        sample(&text, "lanbridge_dhcp_exchange_seconds_count", &acquired),
        Some(1.0),
        "{text}"
    );
    let added = [("command", "ADD"), net_, ("code", "0")];
    assert_eq!(
        sample(&text, "lanbridge_cni_operations_total", &added),
        Some(1.0),
        "{text}"
    );

    // After DEL the pod's rows are gone, the network's drops stay.
    net.w
        .rt
        .invoke("DEL", &net.conf, &pod.att, None)
        .expect_ok("DEL");
    let (_, text) = net.daemon.http_get(METRICS, "/metrics");
    assert_eq!(
        sample(&text, "lanbridge_packets_total", &port),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, "lanbridge_drops_total", &drops),
        Some(2.0),
        "{text}"
    );
    let departed = [net_, ("interface", "departed"), ("reason", "drop_spoof_ip")];
    assert_eq!(
        sample(&text, "lanbridge_packets_total", &departed),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "lanbridge_leases", &[net_]), None, "{text}");
    let deleted = [("command", "DEL"), net_, ("code", "0")];
    assert_eq!(
        sample(&text, "lanbridge_cni_operations_total", &deleted),
        Some(1.0),
        "{text}"
    );
}

/// `lanbridge <args>` in `ns`.
fn lanbridge(ns: &Netns, args: &[&str]) -> Finished {
    let mut c = ns.command(&lanbridge_bin().display().to_string());
    c.args(args);
    process::run(&mut c, None, Duration::from_secs(30))
}

#[test]
fn status_shows_the_node_and_every_pods_lease_with_absolute_times() {
    let net = LanNet::new("obsstat", NET, LanOpts::default());
    let pods = [net.add("obs4"), net.add("obs5")];
    let out = lanbridge(net.node(), &["status", "--json"]);
    assert!(out.success(), "{out:?}");
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(status["daemon"]["reachable"], true, "{status:#}");
    let network = &status["networks"][0];
    assert_eq!(network["name"], NET, "{status:#}");
    assert_eq!(network["mode"], "lan");
    assert_eq!(network["bridge"], LAN_NET_BRIDGE);
    assert_eq!(network["uplink"], NODE_UPLINK);
    assert_eq!(network["programs"].as_array().map(Vec::len), Some(4));
    let attached = network["attachments"].as_array().expect("attachments");
    assert!(attached.iter().any(|a| a == NODE_UPLINK), "{network:#}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let later = utc_string(now);
    for pod in &pods {
        let view = network["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == pod.port.as_str())
            .unwrap_or_else(|| panic!("no {} in {network:#}", pod.port));
        assert!(
            attached.iter().any(|a| *a == pod.port.as_str()),
            "{network:#}"
        );
        assert_eq!(view["mac"], pod.mac.as_str());
        let lease = &view["lease"];
        assert_eq!(lease["state"], "bound", "{view:#}");
        assert_eq!(lease["server"], LAN_ROUTER, "{view:#}");
        assert_eq!(lease["address"], format!("{}/24", pod.ip), "{view:#}");
        assert_eq!(lease["containerId"], pod.att.container_id.as_str());
        assert_eq!(lease["mac"], pod.mac.as_str());
        assert!(
            lease["clientId"]
                .as_str()
                .is_some_and(|id| id.contains(':')),
            "{view:#}"
        );
        // Absolute UTC times, in the future (dnsmasq's leases are minutes).
        for t in ["renewAt", "rebindAt", "expiresAt"] {
            let at = lease[t].as_str().unwrap_or_else(|| panic!("{t}: {view:#}"));
            assert!(
                at.ends_with('Z') && at > later.as_str(),
                "{t} {at} is not after {later}"
            );
        }
    }
    // The tables fit a terminal.
    let out = lanbridge(net.node(), &["status"]);
    assert!(out.success(), "{out:?}");
    for pod in &pods {
        assert!(out.stdout.contains(&pod.port), "{}", out.stdout);
    }
    assert!(out.stdout.contains("bound"), "{}", out.stdout);
    let widest = out.stdout.lines().map(str::len).max().unwrap_or(0);
    assert!(widest <= 100, "a line of {widest} columns:\n{}", out.stdout);

    // Unknown networks are errors, for status and inspect alike.
    for args in [
        &["status", "--network", "nosuchnet"][..],
        &["inspect", "nosuchnet"],
    ] {
        let out = lanbridge(net.node(), args);
        assert!(!out.success(), "{args:?}: {out:?}");
        assert!(out.stderr.contains("nosuchnet"), "{args:?}: {}", out.stderr);
    }
    // From a namespace where the ports do not exist, names are blank: said.
    let elsewhere = net.w.topo.pod("obsempty");
    let [pins, state] = [net.w.pin_root(), net.w.state_dir()].map(|p| p.display().to_string());
    let out = lanbridge(
        &elsewhere,
        &["status", "--pin-root", &pins, "--state-dir", &state],
    );
    assert!(out.success(), "{out:?}");
    assert!(out.stderr.contains("network namespace"), "{out:?}");
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, by `date`.
fn utc_string(unix: u64) -> String {
    let out = process::run_ok(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{unix}"),
        "+%Y-%m-%dT%H:%M:%SZ",
    ]));
    out.trim().to_string()
}

#[test]
fn the_daemon_takes_the_socket_systemd_passes() {
    let w = lanbridge_tests::World::lanbridge("obsact");
    let socket = w.path().join("activated.sock");
    let log = w.path().join("activated.log");
    let mut cmd = w.topo.node.command("systemd-socket-activate");
    // It passes only the environment it is told to.
    cmd.args(["-E", "LANBRIDGE_LOG=info", "-l"])
        .arg(&socket)
        .arg(lanbridge_bin())
        .args(["daemon", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(w.path().join("state"));
    let mut activator = Background::spawn("systemd-socket-activate", cmd, &log);
    assert!(
        wait_until(Duration::from_secs(10), || socket.exists()),
        "no socket: {}",
        activator.log()
    );
    // The first connection starts the daemon on the passed socket.
    let out = lanbridge(
        &w.topo.node,
        &[
            "status",
            "--json",
            "--socket",
            &socket.display().to_string(),
        ],
    );
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    assert_eq!(
        status["daemon"]["reachable"],
        true,
        "{status:#}\n{}",
        activator.log()
    );
    assert!(
        activator.wait_log("socket systemd passed", Duration::from_secs(5)),
        "{}",
        activator.log()
    );
    activator.stop(Duration::from_secs(5));
    // systemd owns the socket's file: the daemon leaves it.
    assert!(socket.exists(), "{}", activator.log());
}

//! The lease lifecycle owned by the daemon, judged from the LAN's side: the
//! node claims a pod's address (the pod's address, the /32 route and so
//! proxy ARP, the endpoint's IPs) exactly while a lease
//! for it is live; an expired or NAKed lease is withdrawn and re-acquired
//! (one REQUEST per NAK), a new address moves everything; GC releases; and
//! the daemon survives corrupt files, descriptor exhaustion and idle
//! clients, while the plugin answers code 11 when the daemon dies mid-ADD.
//! Kea serves the short leases (seconds), dnsmasq the rest.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{in_pool, nft, DnsmasqConf, Kea, KeaTimers, Readdresser};
use lanbridge_tests::flows::{arp_answered, Capture, LanNet, LanOpts, Pod};
use lanbridge_tests::lan::{
    endpoint, inspect, inspect_table, k8s_args, lan_conf, lease_file, release_queue, LAN_NET_BRIDGE,
};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_BRIDGE, LAN_ROUTER};
use lanbridge_tests::World;
use serde_json::Value;

const NET: &str = "lbtlife";

/// A lan-mode network whose LAN server is Kea. Drop order: daemon, server, world.
struct KeaNet {
    daemon: LanbridgeDaemon,
    kea: Kea,
    timers: KeaTimers,
    conf: Value,
    w: World,
}

impl KeaNet {
    fn new(tag: &str, timers: KeaTimers) -> KeaNet {
        let w = World::lanbridge(tag);
        let kea = Kea::start(&w.topo.lan, &w.path().join("kea"), timers);
        let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
        let conf = lan_conf(NET, 5.0);
        KeaNet {
            daemon,
            kea,
            timers,
            conf,
            w,
        }
    }

    fn add(&self, name: &str) -> Pod {
        let ns = self.w.topo.pod(name);
        let mut att = Attachment::new(&format!("{name}-ctr"), &ns, "eth0");
        att.args = Some(k8s_args(name));
        let result = self
            .w
            .rt
            .invoke("ADD", &self.conf, &att, None)
            .expect_ok(&format!("ADD {name}"));
        let pod = Pod::new(ns, att, result);
        assert!(in_pool(&pod.ip), "{} not from Kea's pool", pod.ip);
        pod
    }

    fn evidence(&self) -> String {
        format!(
            "--- daemon log ---\n{}\n--- kea leases ---\n{}",
            self.daemon.log(),
            lanbridge_tests::background::read_log(&self.kea.lease_file()),
        )
    }
}

/// What the node does for `ip` of `pod`, each part on its own.
#[derive(Debug, PartialEq)]
struct Claim {
    pod_address: bool,
    route: bool,
    endpoint_ip: bool,
}

impl Claim {
    const ALL: Claim = Claim {
        pod_address: true,
        route: true,
        endpoint_ip: true,
    };
    const NONE: Claim = Claim {
        pod_address: false,
        route: false,
        endpoint_ip: false,
    };
}

fn claim(w: &World, pod: &Pod, ip: &str) -> Claim {
    let report = inspect(w, NET);
    let ips = endpoint(&report, &pod.port).map(|e| e["ips"].clone());
    Claim {
        pod_address: pod.ns.ipv4_addrs("eth0").contains(&format!("{ip}/24")),
        route: w
            .topo
            .node
            .routes4()
            .iter()
            .any(|r| r["dst"] == ip && r["dev"] == LAN_NET_BRIDGE),
        endpoint_ip: ips
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .any(|i| i == ip),
    }
}

/// CHECK's error text (it must fail with code 103).
fn check_fails(w: &World, conf: &Value, pod: &Pod) -> String {
    let out = w.rt.invoke("CHECK", conf, &pod.att, Some(&pod.result));
    assert_eq!(out.expect_err("CHECK"), 103, "{}", out.error_text());
    out.error_text()
}

/// A Kea paused (SIGSTOP) past the lease's end: the node withdraws every part
/// of its claim and a LAN host's ARP for the address goes unanswered; CHECK
/// says the lease expired and is being re-acquired. Resumed: the pod is back
/// with an address, the node claims it again and the LAN host reaches it.
#[test]
fn expiry_withdraws_the_claim_and_a_returning_server_restores_it() {
    const T: KeaTimers = KeaTimers {
        valid: 4,
        renew: 1,
        rebind: 2,
    };
    let s = KeaNet::new("lcexp", T);
    let pod = s.add("p0");
    let ip = pod.ip.clone();
    assert_eq!(claim(&s.w, &pod, &ip), Claim::ALL, "{}", s.evidence());
    assert!(arp_answered(&s.w.topo.lan_host, "eth0", &ip));

    s.kea.pause();
    let gone = wait_until(Duration::from_secs(u64::from(T.valid) + 4), || {
        claim(&s.w, &pod, &ip) == Claim::NONE
    });
    assert!(
        gone,
        "claim after expiry: {:?}\n{}",
        claim(&s.w, &pod, &ip),
        s.evidence()
    );
    assert!(
        !arp_answered(&s.w.topo.lan_host, "eth0", &ip),
        "the node still answers ARP for expired {ip}"
    );
    let text = check_fails(&s.w, &s.conf, &pod);
    assert!(
        text.contains(&format!("lease of {ip} expired at")) && text.contains("re-acquiring"),
        "CHECK: {text}"
    );
    let table = inspect_table(&s.w, NET);
    assert!(table.contains("(lost: withdrawn, re-acquiring)"), "{table}");

    s.kea.resume();
    let back = wait_until(Duration::from_secs(25), || {
        pod.ns.ipv4_addrs("eth0").len() == 1
    });
    assert!(
        back,
        "no address after the server came back\n{}",
        s.evidence()
    );
    let now = pod.ns.ipv4_addrs("eth0")[0]
        .trim_end_matches("/24")
        .to_string();
    assert!(
        wait_until(Duration::from_secs(3), || claim(&s.w, &pod, &now)
            == Claim::ALL),
        "claim of {now}: {:?}\n{}",
        claim(&s.w, &pod, &now),
        s.evidence()
    );
    assert!(s.w.topo.lan_host.ping(&now), "LAN host cannot reach {now}");
    let log = s.daemon.log();
    assert!(log.contains(&format!("re-acquired {now}/24")), "{log}");
    assert_eq!(
        log.matches("expired without renewal").count(),
        1,
        "one line per state change:\n{log}"
    );
    s.w.rt
        .invoke("DEL", &s.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
}

/// Kea restarted with an empty lease database and the pod's MAC reserved to
/// another address: the renewal is NAKed, the node withdraws the old
/// address at once (one REQUEST per NAK, no storm: the next client message
/// after a NAK is a DISCOVER), and the pod and the node move to the new one.
#[test]
fn kea_nak_withdraws_once_and_everything_moves_to_the_new_address() {
    const T: KeaTimers = KeaTimers {
        valid: 8,
        renew: 2,
        rebind: 6,
    };
    let mut s = KeaNet::new("lcnak", T);
    let pod = s.add("p0");
    let new = another_address(&pod.ip);
    let capture = lan_dhcp_capture(&s.w);
    s.kea
        .restart_empty(&s.w.topo.lan, s.timers, &[(&pod.mac, new)]);
    let moved = Move {
        w: &s.w,
        conf: &s.conf,
        pod: &pod,
        new,
        daemon: &s.daemon,
        capture: &capture,
        server_log: s.kea.log(),
    };
    moved.assert_after_a_nak(Duration::from_secs(20));
    let row = s.kea.last_row(new).expect("Kea's row of the new address");
    assert_eq!(row.hwaddr, pod.mac);
    s.w.rt
        .invoke("DEL", &s.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
}

/// The same with dnsmasq (its shortest lease, 2 min: T1 after a minute):
/// restarted with an empty lease file and a `dhcp-host` for the pod's MAC,
/// it NAKs the renewal.
#[test]
fn dnsmasq_nak_withdraws_once_and_everything_moves_to_the_new_address() {
    let mut server = DnsmasqConf::lan();
    server.lease = "2m".into();
    let mut n = LanNet::with_server("lcdnak", NET, LanOpts::default(), &server);
    let pod = n.add("p0");
    let new = another_address(&pod.ip);
    let capture = lan_dhcp_capture(&n.w);
    server.extra.push(format!("--dhcp-host={},{new}", pod.mac));
    n.dns.restart_empty(&n.w.topo.lan, &server);
    let moved = Move {
        w: &n.w,
        conf: &n.conf,
        pod: &pod,
        new,
        daemon: &n.daemon,
        capture: &capture,
        server_log: n.dns.log(),
    };
    moved.assert_after_a_nak(Duration::from_secs(80));
    assert!(
        n.dns.lease_of(new).is_some_and(|l| l.mac == pod.mac),
        "{:?}",
        n.dns.leases()
    );
    n.w.rt
        .invoke("DEL", &n.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
}

/// A renewal answered with another address (the server's pool renumbered):
/// the pod and the node (address, route, endpoint IPs) move
/// to it, the LAN host reaches the pod there, and CHECK says where it went.
#[test]
fn a_renewal_granting_another_address_moves_everything() {
    const T: KeaTimers = KeaTimers {
        valid: 20,
        renew: 2,
        rebind: 15,
    };
    moves_to_another_address("lcmove", T, "renewed");
}

/// The same from a rebind: the granting server no longer answers renewals
/// (unicast to it is dropped on the LAN), and at T2 another server answers
/// the broadcast REQUEST with another address.
#[test]
fn a_rebind_granting_another_address_moves_everything() {
    const T: KeaTimers = KeaTimers {
        valid: 20,
        renew: 2,
        rebind: 5,
    };
    moves_to_another_address("lcrebind", T, "rebound");
}

/// After `how` ("renewed", "rebound") grants another address, everything
/// moves to it, the pod's default route keeping the config's metric
/// (`priority`); a DEL with the daemon down then leaves neither address
/// claimed.
fn moves_to_another_address(tag: &str, timers: KeaTimers, how: &str) {
    let mut s = KeaNet::new(tag, timers);
    s.conf["ipam"]["priority"] = serde_json::json!(300);
    let pod = s.add("p0");
    let (old, new) = (pod.ip.clone(), another_address(&pod.ip));
    s.kea.kill();
    if how == "rebound" {
        // Renewals go to the granting server by unicast: none arrive.
        nft(
            &s.w.topo.lan,
            "table ip lbt_rebind {\n chain input {\n type filter hook input priority 0;\n \
             ip daddr != 255.255.255.255 udp dport 67 drop\n }\n}\n",
        );
    }
    let mut server = Readdresser::start(&s.w.topo.lan, LAN_ROUTER, new, 30);
    let moved = wait_until(Duration::from_secs(15), || {
        claim(&s.w, &pod, new) == Claim::ALL
    });
    assert!(
        moved,
        "claim of {new}: {:?}\n{}",
        claim(&s.w, &pod, new),
        s.evidence()
    );
    assert_eq!(claim(&s.w, &pod, &old), Claim::NONE, "{}", s.evidence());
    assert_eq!(pod.ns.ipv4_addrs("eth0"), vec![format!("{new}/24")]);
    let routes = pod.ns.routes4();
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == LAN_ROUTER && r["metric"] == 300),
        "the pod's default route after the move, metric 300: {routes:?}"
    );
    assert!(
        s.daemon
            .log()
            .contains(&format!("{how} {old} of p0-ctr/eth0 as {new}: moving")),
        "{}",
        s.evidence()
    );
    assert!(s.w.topo.lan_host.ping(new), "LAN host cannot reach {new}");
    assert!(!arp_answered(&s.w.topo.lan_host, "eth0", &old));
    let text = check_fails(&s.w, &s.conf, &pod);
    assert!(
        text.contains(&format!("moved to {new} bound since")),
        "{text}"
    );
    assert!(server.stop() >= 1);
    // DEL with the daemon down: the node's claim of the address the pod has
    // now goes all the same (the record and prevResult name the first one).
    s.daemon.kill();
    s.w.rt
        .invoke("DEL", &s.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL (daemon down)");
    let routes = s.w.topo.node.routes4();
    assert!(
        !routes.iter().any(|r| r["dst"] == new || r["dst"] == old),
        "a /32 of the pod left: {routes:#?}"
    );
    assert!(!arp_answered(&s.w.topo.lan_host, "eth0", new));
}

/// An address of the pool other than `ip`, for a reservation.
fn another_address(ip: &str) -> &'static str {
    match ip {
        "192.168.77.140" => "192.168.77.141",
        _ => "192.168.77.140",
    }
}

/// DHCP on the LAN's bridge, as the server sees it.
fn lan_dhcp_capture(w: &World) -> Capture {
    Capture::start(
        &w.topo.lan,
        LAN_BRIDGE,
        "udp port 67 or udp port 68",
        &w.path().join("lan-dhcp.txt"),
    )
}

/// A pod whose lease is to move to `new` after the server refuses the old one.
struct Move<'a> {
    w: &'a World,
    conf: &'a Value,
    pod: &'a Pod,
    new: &'a str,
    daemon: &'a LanbridgeDaemon,
    capture: &'a Capture,
    server_log: String,
}

impl Move<'_> {
    /// The claim moved whole from the pod's old address to `new`, after one
    /// NAK (two if the server also refused a rebind) each followed by a
    /// DISCOVER; the daemon logged the refusal once; CHECK says where it went.
    fn assert_after_a_nak(&self, within: Duration) {
        let (w, pod, new, old) = (self.w, self.pod, self.new, &self.pod.ip);
        let evidence = || {
            format!(
                "--- daemon ---\n{}\n--- server ---\n{}\n--- LAN ---\n{}",
                self.daemon.log(),
                self.server_log,
                self.capture.text()
            )
        };
        let moved = wait_until(within, || claim(w, pod, new) == Claim::ALL);
        assert!(
            moved,
            "claim of {new}: {:?}\n{}",
            claim(w, pod, new),
            evidence()
        );
        assert_eq!(claim(w, pod, old), Claim::NONE, "{}", evidence());
        assert_eq!(pod.ns.ipv4_addrs("eth0"), vec![format!("{new}/24")]);
        let log = self.daemon.log();
        assert_eq!(log.matches(&format!("lease {old} of ")).count(), 1, "{log}");
        assert!(log.contains("was refused"), "{log}");

        let kinds = message_kinds(&self.capture.text());
        let naks = kinds.iter().filter(|k| *k == "NACK").count();
        assert!((1..=2).contains(&naks), "NAKs: {kinds:?}");
        for (i, k) in kinds.iter().enumerate() {
            if k == "NACK" {
                let next = kinds[i + 1..].iter().find(|k| CLIENT.contains(&k.as_str()));
                assert_eq!(
                    next.map(String::as_str),
                    Some("Discover"),
                    "a NAK must send the client back to DISCOVER: {kinds:?}"
                );
            }
        }
        let text = check_fails(w, self.conf, pod);
        assert!(
            text.contains(&format!("moved to {new} bound since")),
            "{text}"
        );
    }
}

const CLIENT: [&str; 5] = ["Discover", "Request", "Decline", "Release", "Inform"];

/// DHCP message types in tcpdump's `-v` text, in capture order.
fn message_kinds(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split("DHCP-Message (53), length 1: ").nth(1))
        .map(|k| k.trim().to_string())
        .collect()
}

/// GC of a lan-mode network releases the leases of the attachments it
/// removes (dnsmasq logs the RELEASE and drops the lease), before their
/// state goes; the valid attachment keeps its lease.
#[test]
fn gc_releases_the_leases_of_removed_attachments() {
    let mut n = LanNet::new("lcgc", NET, LanOpts::default());
    n.conf["cniVersion"] = "1.1.0".into();
    let gone = n.add("gca");
    let kept = n.add("gcb");
    n.w.rt
        .gc_list(&n.conflist(&[]), &[&kept.att])
        .unwrap_or_else(|e| panic!("GC: {e}"));
    assert!(
        n.dns.wait_log(
            &format!("DHCPRELEASE({LAN_BRIDGE}) {} {}", gone.ip, gone.mac),
            Duration::from_secs(3)
        ),
        "{}",
        n.dns.log()
    );
    assert!(n.dns.lease_of(&gone.ip).is_none(), "{:?}", n.dns.leases());
    assert!(n.dns.lease_of(&kept.ip).is_some());
    assert!(!n
        .dns
        .log()
        .contains(&format!("DHCPRELEASE({LAN_BRIDGE}) {}", kept.ip)));
    assert!(!lease_file(&n.w, NET, &gone.att.container_id, "eth0").exists());
    assert!(lease_file(&n.w, NET, &kept.att.container_id, "eth0").exists());
    n.w.rt
        .invoke("DEL", &n.conf, &kept.att, Some(&kept.result))
        .expect_ok("DEL");
}

/// A truncated lease file and a truncated release-queue file: the restarted
/// daemon moves each aside, names it in its log, and resumes the other lease
/// (DEL then releases it at dnsmasq).
#[test]
fn truncated_lease_and_queue_files_are_set_aside_and_the_others_resume() {
    let mut n = LanNet::new("lctrunc", NET, LanOpts::default());
    let bad = n.add("tra");
    let good = n.add("trb");
    let queued = n.add("trc");
    n.daemon.kill();
    n.w.rt
        .invoke("DEL", &n.conf, &queued.att, Some(&queued.result))
        .expect_ok("DEL with the daemon down (release queued)");
    let queue = release_queue(&n.w);
    assert_eq!(queue.len(), 1, "{queue:?}");
    let lease = lease_file(&n.w, NET, &bad.att.container_id, "eth0");
    for file in [&lease, &queue[0]] {
        let data = std::fs::read(file).expect("state file");
        std::fs::write(file, &data[..data.len() / 2]).expect("truncate");
    }
    n.daemon.restart();
    assert!(
        n.daemon.wait_log(
            &format!("lease record {} is corrupt", queue[0].display()),
            Duration::from_secs(2)
        ),
        "{}",
        n.daemon.run_log()
    );
    let log = n.daemon.run_log();
    assert!(
        log.contains(&format!("lease record {} is corrupt", lease.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("resuming lease {}", good.ip)),
        "{log}"
    );
    for file in [&lease, &queue[0]] {
        let mut aside = file.clone().into_os_string();
        aside.push(".corrupt");
        assert!(std::path::Path::new(&aside).is_file(), "{aside:?}");
    }
    let left = release_queue(&n.w);
    assert!(
        left.iter()
            .all(|f| f.extension().is_some_and(|x| x == "corrupt")),
        "{left:?}"
    );
    assert!(n.daemon.running());
    n.w.rt
        .invoke("DEL", &n.conf, &good.att, Some(&good.result))
        .expect_ok("DEL of the resumed lease");
    assert!(n.dns.wait_log(
        &format!("DHCPRELEASE({LAN_BRIDGE}) {}", good.ip),
        Duration::from_secs(3)
    ));
    n.w.rt
        .invoke("DEL", &n.conf, &bad.att, Some(&bad.result))
        .expect_ok("DEL of the attachment with the corrupt lease");
}

/// A daemon limited to 40 descriptors under 100 connections: accept fails
/// with EMFILE, the daemon backs off, stays up, and serves an ADD after the
/// clients are gone.
#[test]
fn the_daemon_survives_descriptor_exhaustion() {
    let mut n = LanNet::new("lcfd", NET, LanOpts::default());
    n.daemon.restart_with_nofile(40);
    let conns: Vec<UnixStream> = (0..100)
        .filter_map(|_| UnixStream::connect(n.daemon.socket()).ok())
        .collect();
    assert!(conns.len() > 40, "only {} connections", conns.len());
    assert!(
        n.daemon
            .wait_log("accepting on the daemon socket:", Duration::from_secs(5)),
        "{}",
        n.daemon.run_log()
    );
    assert!(n.daemon.running(), "{}", n.daemon.run_log());
    drop(conns);
    let pod = n.add("fd0");
    assert!(in_pool(&pod.ip));
    assert!(n.daemon.running());
    assert!(n
        .daemon
        .run_log()
        .contains("accepting on the daemon socket again"));
    assert_eq!(
        n.daemon
            .run_log()
            .matches("accepting on the daemon socket:")
            .count(),
        n.daemon
            .run_log()
            .matches("accepting on the daemon socket again")
            .count(),
        "one line per failure run, not per retry:\n{}",
        n.daemon.run_log()
    );
    n.w.rt
        .invoke("DEL", &n.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
}

/// A client that connects and sends nothing is closed after the daemon's
/// read timeout (5 s), one that sends an endless line is cut off at the
/// size limit, the daemon says so for each and serves an ADD afterwards.
#[test]
fn idle_and_oversized_requests_are_cut_off() {
    let n = LanNet::new("lcidle", NET, LanOpts::default());
    let mut big = UnixStream::connect(n.daemon.socket()).expect("connect");
    let sent = std::io::Write::write_all(&mut big, &vec![b'x'; 5 << 20]);
    assert!(sent.is_err(), "the daemon read 5 MiB without a newline");
    assert!(
        n.daemon
            .wait_log("message longer than 4194304 bytes", Duration::from_secs(3)),
        "{}",
        n.daemon.log()
    );
    let mut c = UnixStream::connect(n.daemon.socket()).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let read = c
        .read(&mut buf)
        .expect("read: the daemon must close, not hang");
    let after = t.elapsed();
    assert_eq!(read, 0);
    assert!(
        after >= Duration::from_secs(4) && after <= Duration::from_secs(8),
        "closed after {after:?}"
    );
    // Logged once the connection is gone.
    assert!(
        n.daemon.wait_log("none within 5s", Duration::from_secs(2)),
        "{}",
        n.daemon.log()
    );
    let pod = n.add("idle0");
    n.w.rt
        .invoke("DEL", &n.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
}

/// The daemon SIGKILLed while an ADD waits for its lease: the plugin answers
/// code 11 (try again later) saying the daemon went away, and leaves nothing.
#[test]
fn a_daemon_killed_during_add_gives_code_11() {
    let mut n = LanNet::new("lckill", NET, LanOpts::default());
    // A first pod loads the network's programs (seconds on a slow machine),
    // so the next ADD goes from its eth0 to the daemon in milliseconds.
    let warm = n.add("warm");
    n.w.rt
        .invoke("DEL", &n.conf, &warm.att, Some(&warm.result))
        .expect_ok("DEL");
    n.dns.kill(); // no offer: the ADD waits inside the daemon
    let (ns, att) = n.pod_ns("k0");
    let pid = n.daemon.pid().expect("daemon pid");
    let out = std::thread::scope(|sc| {
        let add = sc.spawn(|| n.w.rt.invoke("ADD", &n.conf, &att, None));
        // The pod's eth0 comes right before IPAM asks the daemon: kill once
        // the request is in flight, however slow the machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ns.has_link("eth0") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: SIGKILL to the PID of the daemon this test started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        add.join().expect("ADD thread")
    });
    n.daemon.kill(); // reap
    assert_eq!(out.expect_err("ADD"), 11, "{}", out.error_text());
    assert!(
        out.error_text().contains("went away"),
        "{}",
        out.error_text()
    );
    assert!(!ns.has_link("eth0"));
    assert!(
        n.w.port_links(LAN_NET_BRIDGE).is_empty(),
        "{:?}",
        n.w.topo.node.links()
    );
}

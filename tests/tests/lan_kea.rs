//! Lan mode against ISC Kea with lifetimes of a few seconds: renewal at T1,
//! rebind at T2 when unicast renewals are lost, leases surviving a SIGKILLed
//! daemon, expiry when the server is gone, and releases on DEL (also a DEL
//! while the daemon is down, sent once it is back).

use std::time::{Duration, Instant};

use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{in_pool, nft, Kea, KeaTimers};
use lanbridge_tests::lan::{
    counter, inspect, k8s_args, lan_conf, lease_file, release_queue, LAN_NET_BRIDGE,
};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result::{first_ip, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::LAN_ROUTER;
use lanbridge_tests::{Netns, World};
use serde_json::Value;

const NET: &str = "lbtkea";

/// T1 2 s, T2 4 s, lease 6 s.
const SHORT: KeaTimers = KeaTimers {
    valid: 6,
    renew: 2,
    rebind: 4,
};

/// Long enough that nothing renews during the test.
const LONG: KeaTimers = KeaTimers {
    valid: 600,
    renew: 300,
    rebind: 500,
};

struct Setup {
    // Drop order: pod, daemon, server, world.
    pod: Netns,
    att: Attachment,
    conf: Value,
    daemon: LanbridgeDaemon,
    kea: Kea,
    w: World,
}

fn setup(tag: &str, timers: KeaTimers) -> Setup {
    let w = World::lanbridge(tag);
    let kea = Kea::start(&w.topo.lan, &w.path().join("kea"), timers);
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let conf = lan_conf(NET, 5.0);
    let pod = w.topo.pod("p0");
    let mut att = Attachment::new(&format!("{tag}ctr0"), &pod, "eth0");
    att.args = Some(k8s_args(&format!("{tag}pod0")));
    Setup {
        pod,
        att,
        conf,
        daemon,
        kea,
        w,
    }
}

impl Setup {
    fn add(&self) -> (Value, String) {
        let r = self
            .w
            .rt
            .invoke("ADD", &self.conf, &self.att, None)
            .expect_ok("ADD");
        let ip = first_ip(&r);
        assert!(in_pool(&ip), "{ip} not from Kea's pool");
        assert_eq!(self.pod.ipv4_addrs("eth0"), vec![format!("{ip}/24")]);
        (r, ip)
    }

    fn del(&self, r: &Value) {
        self.w
            .rt
            .invoke("DEL", &self.conf, &self.att, Some(r))
            .expect_ok("DEL");
    }

    /// `dhcp_relayed` packets counted on the pod's port of ADD result `r`.
    fn relayed(&self, r: &Value) -> u64 {
        let port = host_veth(r, LAN_NET_BRIDGE);
        counter(&inspect(&self.w, NET), &port, "dhcp_relayed")
    }

    fn lease_file(&self) -> std::path::PathBuf {
        lease_file(&self.w, NET, &self.att.container_id, "eth0")
    }

    /// Everything worth seeing when an assertion fails.
    fn evidence(&self) -> String {
        format!(
            "--- daemon log ---\n{}\n--- kea leases ---\n{}\n--- kea log (tail) ---\n{}",
            self.daemon.log(),
            lanbridge_tests::background::read_log(&self.kea.lease_file()),
            tail(&self.kea.log(), 40)
        )
    }

    /// Waits until the pod still holds `ip` at `until` (checked every poll).
    fn holds_until(&self, ip: &str, until: Instant) {
        let want = vec![format!("{ip}/24")];
        while Instant::now() < until {
            assert_eq!(
                self.pod.ipv4_addrs("eth0"),
                want,
                "the pod lost {ip}\n{}",
                self.evidence()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Renewal at T1: the daemon logs "renewed", the renewal is unicast (routed,
/// not relayed: `dhcp_relayed` unchanged), Kea's CSV shows the same address
/// with a later expiry, and the pod keeps the address past the first lease's end.
#[test]
fn kea_renews_at_t1() {
    let s = setup("kren", SHORT);
    let added = Instant::now();
    let (r, ip) = s.add();
    let first = s.kea.last_row(&ip).expect("kea row after ADD");
    let relayed = s.relayed(&r);
    assert!(relayed > 0, "ADD relayed nothing");
    assert!(
        s.daemon.wait_log("renewed", Duration::from_secs(5)),
        "no renewal within 5 s of a 6 s lease (T1 2 s)\n{}",
        s.evidence()
    );
    assert_eq!(
        s.relayed(&r),
        relayed,
        "the T1 renewal was relayed: it should be unicast, routed by the node\n{}",
        s.evidence()
    );
    s.holds_until(&ip, added + Duration::from_secs(u64::from(SHORT.valid) + 1));
    let last = s.kea.last_row(&ip).expect("kea row");
    assert!(
        last.expire > first.expire,
        "Kea's lease of {ip} not extended: first {first:?} last {last:?}\n{}",
        s.evidence()
    );
    assert!(
        s.pod.ping(LAN_ROUTER),
        "pod cannot ping the router after renewal"
    );
    s.del(&r);
}

/// Rebind at T2: unicast renewals to the server are dropped on the LAN (a
/// bridge-family nft rule in the LAN namespace, ahead of Kea's raw socket),
/// so the daemon's renewals fail and the lease is extended by a broadcast
/// REBIND relayed through the eBPF program (`dhcp_relayed` grows). Kea reads
/// with a raw socket, so an iptables INPUT rule would not hide the renewals
/// from it; the bridge `input` hook runs before the packet reaches `lanbr`.
#[test]
fn kea_rebinds_when_unicast_renewals_are_lost() {
    let s = setup("kreb", SHORT);
    nft(
        &s.w.topo.lan,
        &format!(
            "table bridge lbtrebind {{\n\
               chain in {{\n\
                 type filter hook input priority 0; policy accept;\n\
                 ip daddr {LAN_ROUTER} udp dport 67 counter drop\n\
               }}\n\
             }}\n"
        ),
    );
    let added = Instant::now();
    let (r, ip) = s.add();
    let first = s.kea.last_row(&ip).expect("kea row after ADD");
    let relayed = s.relayed(&r);
    assert!(
        s.daemon
            .wait_log(&format!("rebound {ip}"), Duration::from_secs(6)),
        "lease not extended by rebind before it expired\n{}",
        s.evidence()
    );
    let log = s.daemon.log();
    assert!(
        log.contains(&format!("Renew of {ip}")),
        "the daemon logged no failed unicast renewal before rebinding\n{}",
        s.evidence()
    );
    let dropped =
        s.w.topo
            .lan
            .run(&["nft", "list", "table", "bridge", "lbtrebind"]);
    assert!(
        !dropped.contains("counter packets 0 "),
        "the nft rule dropped no unicast renewal:\n{dropped}"
    );
    assert!(
        s.relayed(&r) > relayed,
        "the extension did not go through the relay (no broadcast REBIND counted)\n{}",
        s.evidence()
    );
    s.holds_until(&ip, added + Duration::from_secs(u64::from(SHORT.valid) + 1));
    let last = s.kea.last_row(&ip).expect("kea row");
    assert!(
        last.expire > first.expire,
        "Kea's lease of {ip} not extended by the rebind: first {first:?} last {last:?}\n{}",
        s.evidence()
    );
    s.del(&r);
}

/// The daemon SIGKILLed right after ADD and restarted after T1 passed: the
/// persisted lease is resumed (same address) and renewed, and the pod keeps
/// it past the first lease's end.
#[test]
fn kea_lease_survives_daemon_sigkill() {
    let mut s = setup("kkill", SHORT);
    let added = Instant::now();
    let (r, ip) = s.add();
    let first = s.kea.last_row(&ip).expect("kea row after ADD");
    s.daemon.kill();
    assert!(s.lease_file().is_file(), "lease file gone after SIGKILL");
    // Down across T1 (2 s).
    std::thread::sleep(
        (added + Duration::from_millis(2500)).saturating_duration_since(Instant::now()),
    );
    s.daemon.restart();
    assert!(
        s.daemon
            .wait_log(&format!("resuming lease {ip}"), Duration::from_secs(2)),
        "restarted daemon did not resume {ip}\n{}",
        s.evidence()
    );
    assert!(
        s.daemon
            .wait_log(&format!("renewed {ip}"), Duration::from_secs(3)),
        "restarted daemon did not renew {ip}\n{}",
        s.evidence()
    );
    s.holds_until(&ip, added + Duration::from_secs(u64::from(SHORT.valid) + 1));
    let last = s.kea.last_row(&ip).expect("kea row");
    assert!(
        last.expire > first.expire,
        "Kea's lease of {ip} not extended after the restart: first {first:?} last {last:?}\n{}",
        s.evidence()
    );
    let record: Value = serde_json::from_slice(&std::fs::read(s.lease_file()).expect("lease file"))
        .expect("lease file JSON");
    assert_eq!(
        record["lease"]["address"].as_str(),
        Some(ip.as_str()),
        "{record}"
    );
    s.del(&r);
}

/// With the server gone, the lease runs out: the daemon takes the address
/// off the pod at expiry, logs it and keeps the record marked as lost. "At expiry" allows a second early: the
/// daemon keeps its timers in whole unix seconds.
#[test]
fn kea_lease_expires_when_the_server_is_gone() {
    const TIMERS: KeaTimers = KeaTimers {
        valid: 4,
        renew: 1,
        rebind: 2,
    };
    let mut s = setup("kexp", TIMERS);
    let added = Instant::now();
    let (r, ip) = s.add();
    s.kea.kill();
    let gone = wait_until(Duration::from_secs(u64::from(TIMERS.valid) + 4), || {
        s.pod.ipv4_addrs("eth0").is_empty()
    });
    let after = added.elapsed();
    assert!(
        gone,
        "the pod still has {ip} {after:?} after ADD with a {} s lease\n{}",
        TIMERS.valid,
        s.evidence()
    );
    assert!(
        after >= Duration::from_secs(u64::from(TIMERS.valid) - 1),
        "address removed after {after:?}, before the lease's end"
    );
    assert!(
        s.daemon.run_log().contains(&format!("lease {ip}"))
            && s.daemon.run_log().contains("expired"),
        "expiry not logged\n{}",
        s.evidence()
    );
    // Kept, marked lost: a restarted daemon goes on re-acquiring.
    let record: Value = serde_json::from_slice(&std::fs::read(s.lease_file()).expect("lease file"))
        .expect("lease file JSON");
    assert_eq!(record["withdrawn"], true, "{record}");
    s.del(&r);
}

/// DEL releases at Kea (a CSV row with valid_lifetime 0, "released properly"
/// in its log); DEL with the daemon down succeeds, queues the release, and the
/// restarted daemon sends it from the node although the pod is gone.
#[test]
fn kea_del_releases_also_with_the_daemon_down() {
    let mut s = setup("kdel", LONG);
    let (r, ip) = s.add();
    s.del(&r);
    let released = |ip: &str| {
        s.kea
            .last_row(ip)
            .is_some_and(|row| row.valid_lifetime == 0)
    };
    assert!(
        wait_until(Duration::from_secs(3), || released(&ip)),
        "Kea shows no release of {ip}\n{}",
        s.evidence()
    );
    assert!(
        s.kea
            .log()
            .contains(&format!("address {ip} was released properly")),
        "{}",
        s.evidence()
    );
    assert!(!s.lease_file().exists(), "lease file left after DEL");
    assert!(release_queue(&s.w).is_empty());

    // Second pod, daemon down at DEL.
    let pod2 = s.w.topo.pod("p1");
    let mut att2 = Attachment::new("kdelctr1", &pod2, "eth0");
    att2.args = Some(k8s_args("kdelpod1"));
    let r2 =
        s.w.rt
            .invoke("ADD", &s.conf, &att2, None)
            .expect_ok("ADD pod 2");
    let ip2 = first_ip(&r2);
    assert!(in_pool(&ip2));
    assert!(s
        .kea
        .last_row(&ip2)
        .is_some_and(|row| row.valid_lifetime > 0));
    s.daemon.kill();
    s.w.rt
        .invoke("DEL", &s.conf, &att2, Some(&r2))
        .expect_ok("DEL with the daemon down");
    assert!(
        !lease_file(&s.w, NET, "kdelctr1", "eth0").exists(),
        "lease file not moved at DEL"
    );
    assert_eq!(release_queue(&s.w).len(), 1, "release not queued");
    assert!(!pod2.has_link("eth0"), "pod interface left after DEL");
    pod2.delete();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !released(&ip2),
        "Kea released {ip2} before the daemon was back"
    );
    s.daemon.restart();
    assert!(
        wait_until(Duration::from_secs(3), || released(&ip2)),
        "queued release of {ip2} never reached Kea\n{}",
        s.evidence()
    );
    assert!(
        wait_until(Duration::from_secs(2), || release_queue(&s.w).is_empty()),
        "release queue not drained: {:?}",
        release_queue(&s.w)
    );
    assert!(
        s.daemon.run_log().contains(&format!("released {ip2}")),
        "{}",
        s.evidence()
    );
}

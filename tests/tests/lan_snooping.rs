//! Issue 10, DHCP snooping: a pod speaks DHCP only as a client and only for
//! itself, broadcast and unicast alike, and not faster than its rate limit.
//! The attacks are frames a pod crafts (raw AF_PACKET, or a UDP socket bound
//! in the pod); the verdict is the LAN server's own view, its lease file and
//! its log, against dnsmasq and ISC Kea. The pods' own ADD, renewals and DEL
//! releases keep working meanwhile.

use std::time::{Duration, Instant};

use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{Kea, KeaTimers};
use lanbridge_tests::flows::{
    dhcp_client_msg, send_frames, udp_frame, udp_send_and_collect, LanNet, LanOpts, Pod,
};
use lanbridge_tests::lan::{
    attachment_client_id, counter, endpoint, inspect, k8s_args, lan_conf, mac_of, LAN_NET_BRIDGE,
};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result::{first_ip, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::LAN_ROUTER;
use lanbridge_tests::World;

const NET: &str = "lbtsnoop";
/// dnsmasq and Kea serve on the LAN bridge, which holds the router's address.
const SERVER: &str = LAN_ROUTER;
const DISCOVER: u8 = 1;
const REQUEST: u8 = 3;
const DECLINE: u8 = 4;
const RELEASE: u8 = 7;
/// `lb_from_pod`'s bucket: 8 at once, then one per 250 ms.
const BURST: u64 = 8;
const PER_SECOND: f64 = 4.0;

/// `n` distinct locally administered unicast MACs (xorshift from `seed`).
fn random_macs(n: usize, mut seed: u64) -> Vec<String> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = seed.to_be_bytes();
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                (b[0] & 0xfc) | 0x02,
                b[1],
                b[2],
                b[3],
                b[4],
                b[5]
            )
        })
        .collect()
}

/// Option `code` holding IPv4 `ip` (50: requested address, 54: server).
fn ip_option(code: u8, ip: &str) -> Vec<u8> {
    let ip: std::net::Ipv4Addr = ip.parse().expect("IPv4");
    [&[code, 4][..], &ip.octets()].concat()
}

/// A DHCP client message from `chaddr` asking about `addr` (option 50) of
/// the LAN's server (option 54).
fn about(kind: u8, chaddr: &str, xid: u32, addr: &str) -> Vec<u8> {
    let options = [ip_option(50, addr), ip_option(54, SERVER)].concat();
    dhcp_client_msg(chaddr, xid, kind, "0.0.0.0", &options)
}

/// Option 61 holding `id`, written as servers log it (`00:1f:..`).
fn client_id_option(id: &str) -> Vec<u8> {
    let id: Vec<u8> = id
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect();
    [&[61, id.len() as u8][..], &id].concat()
}

/// A RELEASE of the lease of `ciaddr` in the name of `chaddr`.
fn release(chaddr: &str, ciaddr: &str) -> Vec<u8> {
    dhcp_client_msg(chaddr, 0x5e1e, RELEASE, ciaddr, &ip_option(54, SERVER))
}

/// `payload` as a client broadcast from `pod`'s own MAC and address: the
/// source guard has nothing to object to.
fn broadcast_from(pod: &Pod, payload: &[u8]) -> Vec<u8> {
    udp_frame(
        "ff:ff:ff:ff:ff:ff",
        &pod.mac,
        (&pod.ip, 68),
        ("255.255.255.255", 67),
        payload,
    )
}

/// Sends `payload` from UDP port 68 of `pod` to the server, unicast.
fn unicast_from(pod: &Pod, payload: Vec<u8>) {
    udp_send_and_collect(
        &pod.ns,
        68,
        &format!("{SERVER}:67"),
        payload,
        Duration::from_millis(100),
    );
}

/// The attacks of the issue from `attacker`: `n` DISCOVER + REQUEST pairs
/// with random `chaddr`s, a DECLINE of the victim's address in the victim's
/// name and in its own, a unicast RELEASE of the third pod's lease in the
/// third pod's name and in its own. Returns the random MACs.
fn attack(attacker: &Pod, victim: (&str, &str), third: (&str, &str), n: usize) -> Vec<String> {
    let macs = random_macs(n, 0x1b5e_ed00_c0ff_ee01);
    let mut frames = Vec::new();
    for (i, mac) in macs.iter().enumerate() {
        let addr = format!("192.168.77.{}", 100 + i % 50);
        let xid = 0x7a00 + i as u32;
        frames.push(broadcast_from(
            attacker,
            &dhcp_client_msg(mac, xid, DISCOVER, "0.0.0.0", &[]),
        ));
        frames.push(broadcast_from(attacker, &about(REQUEST, mac, xid, &addr)));
    }
    let (victim_mac, victim_ip) = victim;
    frames.push(broadcast_from(
        attacker,
        &about(DECLINE, victim_mac, 0xdec1, victim_ip),
    ));
    frames.push(broadcast_from(
        attacker,
        &about(DECLINE, &attacker.mac, 0xdec2, victim_ip),
    ));
    send_frames(&attacker.ns, "eth0", frames);
    let (third_mac, third_ip) = third;
    unicast_from(attacker, release(third_mac, third_ip));
    unicast_from(attacker, release(&attacker.mac, third_ip));
    macs
}

/// Issue 10 against dnsmasq: 20 DISCOVER + REQUEST pairs with random
/// `chaddr`s lease nothing, a DECLINE and a unicast RELEASE for other pods'
/// leases never reach the server, each drop counted with its reason; the
/// pods' own leases stay and DEL still releases.
#[test]
fn dnsmasq_never_hears_a_pod_speak_for_others() {
    let net = LanNet::new("snp", NET, LanOpts::default());
    let attacker = net.add("atk");
    let victim = net.add("vic");
    let third = net.add("thd");
    // ADD gave the endpoint the client id the lease was taken with.
    let report = net.report();
    let ep = endpoint(&report, &attacker.port).expect("the attacker's endpoint");
    let id = attachment_client_id(&attacker.att.container_id, &attacker.att.ifname);
    assert_eq!(ep["client_id"], id.as_str(), "{}", net.table());
    let lease = net
        .dns
        .lease_of(&attacker.ip)
        .expect("the attacker's lease");
    assert_eq!(lease.client_id, id);
    let relayed = net.count(&attacker.port, "dhcp_relayed");
    let macs = attack(
        &attacker,
        (&victim.mac, &victim.ip),
        (&third.mac, &third.ip),
        20,
    );
    // Anything relayed would be in the server's log well within this.
    std::thread::sleep(Duration::from_millis(1500));

    let log = net.dns.log();
    let leases = net.dns.leases();
    for mac in &macs {
        assert!(
            !log.contains(mac.as_str()),
            "dnsmasq heard of {mac}:\n{log}"
        );
        assert!(
            leases.iter().all(|l| l.mac != *mac),
            "dnsmasq leased to {mac}: {leases:?}"
        );
    }
    assert!(!log.contains("DHCPDECLINE"), "{log}");
    assert!(!log.contains("DHCPRELEASE"), "{log}");
    for pod in [&victim, &third] {
        let lease = net.dns.lease_of(&pod.ip);
        assert!(
            lease.as_ref().is_some_and(|l| l.mac == pod.mac),
            "{} lost its lease {}: {leases:?}",
            pod.mac,
            pod.ip
        );
    }
    let port = &attacker.port;
    let counters = net.counters_of(port);
    assert_eq!(
        net.count(port, "drop_dhcp_chaddr"),
        2 * 20 + 2,
        "{counters}"
    );
    assert_eq!(net.count(port, "drop_dhcp_addr"), 2, "{counters}");
    assert_eq!(net.count(port, "dhcp_relayed"), relayed, "{counters}");

    // The same crafted frames in the attacker's own name do reach the
    // server: the drops above were snooping, not broken frames.
    let own = dhcp_client_msg(&attacker.mac, 0x0c0c, DISCOVER, "0.0.0.0", &[]);
    send_frames(&attacker.ns, "eth0", vec![broadcast_from(&attacker, &own)]);
    let discover = format!("DHCPDISCOVER(lanbr) {}", attacker.mac);
    assert!(
        net.dns.wait_log(&discover, Duration::from_secs(3)),
        "{}",
        net.dns.log()
    );
    unicast_from(&attacker, release(&attacker.mac, &attacker.ip));
    let released = format!("DHCPRELEASE(lanbr) {} {}", attacker.ip, attacker.mac);
    assert!(
        net.dns.wait_log(&released, Duration::from_secs(3)),
        "{}",
        net.dns.log()
    );

    // The pods' own DHCP goes on: DEL releases at the server.
    net.w
        .rt
        .invoke("DEL", &net.conf, &third.att, Some(&third.result))
        .expect_ok("DEL third");
    assert!(
        wait_until(Duration::from_secs(3), || net
            .dns
            .lease_of(&third.ip)
            .is_none()),
        "DEL did not release {}:\n{}",
        third.ip,
        net.dns.log()
    );
    assert!(net.dns.log().contains("DHCPRELEASE(lanbr)"));
}

/// Issue 10: 2000 DISCOVERs from one pod (its own, well-formed) reach the
/// server at most as fast as the bucket lets them; the rest are counted as
/// `drop_dhcp_rate`, and the pod's DEL release still gets through.
#[test]
fn a_discover_storm_is_held_to_the_rate_limit() {
    let net = LanNet::new("stm", NET, LanOpts::default());
    let pod = net.add("stm");
    // Let the bucket fill up again after ADD's exchange.
    std::thread::sleep(Duration::from_millis(2 * BURST * 250));
    let heard = || {
        net.dns
            .log()
            .lines()
            .filter(|l| l.contains("DHCPDISCOVER(lanbr)") && l.contains(pod.mac.as_str()))
            .count() as u64
    };
    let before = heard();
    let frames: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| {
            broadcast_from(
                &pod,
                &dhcp_client_msg(&pod.mac, 0x5000 + i, DISCOVER, "0.0.0.0", &[]),
            )
        })
        .collect();
    let start = Instant::now();
    send_frames(&pod.ns, "eth0", frames);
    let took = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    let storm = heard() - before;
    let limit = BURST + (took * PER_SECOND).ceil() as u64;
    let counters = net.counters_of(&pod.port);
    assert!(
        storm >= 1 && storm <= limit,
        "dnsmasq saw {storm} of 2000 DISCOVERs sent in {took:.2} s (limit {limit}); {counters}"
    );
    let dropped = net.count(&pod.port, "drop_dhcp_rate");
    assert!(dropped >= 2000 - limit, "{counters}");
    net.w
        .rt
        .invoke("DEL", &net.conf, &pod.att, Some(&pod.result))
        .expect_ok("DEL");
    assert!(
        wait_until(Duration::from_secs(3), || net
            .dns
            .lease_of(&pod.ip)
            .is_none()),
        "DEL after the storm did not release {}:\n{}",
        pod.ip,
        net.dns.log()
    );
}

/// Kea with a 2 s T1, so the pods renew during the test: no lease for a
/// random `chaddr`, no DECLINE or RELEASE of another pod's lease reaching
/// Kea, while the victims' renewals (unicast, with their client identifier)
/// go on and DEL releases.
#[test]
fn kea_never_hears_a_pod_speak_for_others() {
    let w = World::lanbridge("snk");
    let kea = Kea::start(
        &w.topo.lan,
        &w.path().join("kea"),
        KeaTimers {
            valid: 60,
            renew: 2,
            rebind: 45,
        },
    );
    let _daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let conf = lan_conf(NET, 5.0);
    let add = |name: &str| {
        let ns = w.topo.pod(name);
        let mut att = Attachment::new(&format!("{name}-ctr"), &ns, "eth0");
        att.args = Some(k8s_args(name));
        let result = w.rt.invoke("ADD", &conf, &att, None).expect_ok(name);
        Pod {
            ip: first_ip(&result),
            port: host_veth(&result, LAN_NET_BRIDGE),
            mac: mac_of(&ns, "eth0"),
            ns,
            att,
            result,
        }
    };
    let attacker = add("katk");
    let victim = add("kvic");
    let third = add("kthd");
    let macs = attack(
        &attacker,
        (&victim.mac, &victim.ip),
        (&third.mac, &third.ip),
        10,
    );
    // Kea knows a client by its identifier: in the attacker's own name but
    // with the victim's identifier, a REQUEST would move the victim's lease.
    let victim_id = attachment_client_id(&victim.att.container_id, &victim.att.ifname);
    let hijack = [client_id_option(&victim_id), ip_option(50, &victim.ip)].concat();
    let hijack = dhcp_client_msg(&attacker.mac, 0x41ac, REQUEST, "0.0.0.0", &hijack);
    send_frames(
        &attacker.ns,
        "eth0",
        vec![broadcast_from(&attacker, &hijack)],
    );
    // Past T1: both victims renew meanwhile.
    std::thread::sleep(Duration::from_secs(3));

    let log = kea.log();
    let rows = kea.lease_rows();
    for mac in &macs {
        assert!(rows.iter().all(|r| r.hwaddr != *mac), "Kea leased to {mac}");
        assert!(!log.contains(mac.as_str()), "Kea heard of {mac}:\n{log}");
    }
    assert!(!log.contains("DHCP4_DECLINE"), "{log}");
    assert!(!log.contains("released properly"), "{log}");
    for pod in [&victim, &third] {
        let rows = kea.rows_of(&pod.ip);
        let last = rows.last().expect("a lease row");
        assert_eq!(last.hwaddr, pod.mac);
        assert_ne!(last.valid_lifetime, 0, "{} released: {rows:?}", pod.ip);
        assert!(rows.len() >= 2, "{} never renewed: {rows:?}", pod.ip);
    }
    let report = inspect(&w, NET);
    let port = &attacker.port;
    assert_eq!(counter(&report, port, "drop_dhcp_chaddr"), 2 * 10 + 2);
    assert_eq!(counter(&report, port, "drop_dhcp_addr"), 2);
    assert_eq!(counter(&report, port, "drop_dhcp_client_id"), 1);
    assert!(!log.contains("tid=0x41ac"), "{log}");
    // The same crafted frames in the attacker's own name do reach Kea.
    let own = dhcp_client_msg(&attacker.mac, 0xc0ca1, DISCOVER, "0.0.0.0", &[]);
    send_frames(&attacker.ns, "eth0", vec![broadcast_from(&attacker, &own)]);
    assert!(
        kea.wait_log("tid=0xc0ca1", Duration::from_secs(3)),
        "{}",
        kea.log()
    );

    // A storm of its own DISCOVERs reaches Kea at the bucket's pace.
    std::thread::sleep(Duration::from_millis(2 * BURST * 250));
    let frames = (0..2000u32)
        .map(|i| {
            let m = dhcp_client_msg(&attacker.mac, 0xabc0_0000 + i, DISCOVER, "0.0.0.0", &[]);
            broadcast_from(&attacker, &m)
        })
        .collect();
    let start = Instant::now();
    send_frames(&attacker.ns, "eth0", frames);
    let took = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    let heard: std::collections::BTreeSet<String> = kea
        .log()
        .split("tid=0xabc")
        .skip(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_hexdigit).collect())
        .collect();
    let limit = BURST + (took * PER_SECOND).ceil() as u64;
    assert!(
        !heard.is_empty() && heard.len() as u64 <= limit,
        "Kea heard {} of 2000 DISCOVERs sent in {took:.2} s (limit {limit})",
        heard.len()
    );
    let report = inspect(&w, NET);
    assert!(counter(&report, port, "drop_dhcp_rate") >= 2000 - limit);

    w.rt.invoke("DEL", &conf, &third.att, Some(&third.result))
        .expect_ok("DEL third");
    let released = format!("address {} was released properly", third.ip);
    assert!(
        kea.wait_log(&released, Duration::from_secs(3)),
        "{}",
        kea.log()
    );
}

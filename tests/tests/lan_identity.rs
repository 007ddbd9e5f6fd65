//! `"clientId": "pod"`: a pod restarted under the same name (DEL, then ADD
//! with a new container ID, a new namespace and a new MAC) asks with the
//! same client identifier and gets the same LAN address and name, judged by
//! the lease files of dnsmasq and Kea.

use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf, Kea, KeaTimers};
use lanbridge_tests::lan::{k8s_args, lan_conf, mac_of, pod_client_id};
use lanbridge_tests::result::first_ip;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::{Netns, World};
use serde_json::Value;

const NET: &str = "lbtid";
const POD: &str = "server-0";

fn conf() -> Value {
    let mut conf = lan_conf(NET, 5.0);
    conf["ipam"]["clientId"] = "pod".into();
    conf
}

/// One incarnation of the pod: its own namespace and container ID.
fn incarnation(w: &World, n: u32) -> (Netns, Attachment) {
    let pod = w.topo.pod(&format!("inc{n}"));
    let mut att = Attachment::new(&format!("ctr-{POD}-{n}"), &pod, "eth0");
    att.args = Some(k8s_args(POD));
    (pod, att)
}

/// ADD, then DEL of the first incarnation (its namespace goes), then ADD of
/// the second: the two addresses and the second pod's MAC.
fn restart(w: &World, daemon: &LanbridgeDaemon) -> (String, String, String) {
    let conf = conf();
    let (pod1, att1) = incarnation(w, 1);
    let r1 = w.rt.invoke("ADD", &conf, &att1, None).expect_ok("ADD 1");
    let ip1 = first_ip(&r1);
    assert!(in_pool(&ip1), "{ip1}");
    w.rt.invoke("DEL", &conf, &att1, Some(&r1))
        .expect_ok("DEL 1");
    pod1.delete();
    assert!(
        daemon.log().contains("not releasing"),
        "DEL of a pod-named lease must keep it at the server:\n{}",
        daemon.log()
    );

    let (pod2, att2) = incarnation(w, 2);
    let r2 = w.rt.invoke("ADD", &conf, &att2, None).expect_ok("ADD 2");
    let ip2 = first_ip(&r2);
    assert_eq!(pod2.ipv4_addrs("eth0"), vec![format!("{ip2}/24")]);
    let mac2 = mac_of(&pod2, "eth0");
    w.rt.invoke("DEL", &conf, &att2, Some(&r2))
        .expect_ok("DEL 2");
    (ip1, ip2, mac2)
}

/// Issue 12, item 3, against dnsmasq: one lease, the same address, the
/// pod's name as hostname, the new MAC.
#[test]
fn a_restarted_pod_keeps_its_address_at_dnsmasq() {
    let w = World::lanbridge("idd");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let (ip1, ip2, mac2) = restart(&w, &daemon);
    assert_eq!(ip1, ip2, "the restarted pod got another address");
    let leases = dns.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let lease = &leases[0];
    assert_eq!(lease.ip, ip1);
    assert_eq!(lease.client_id, pod_client_id("default", POD, "eth0"));
    assert_eq!(lease.hostname, POD);
    assert_eq!(lease.mac, mac2, "the lease follows the new incarnation");
}

/// The same against Kea: every row of its lease file is the one address,
/// the latest with the pod's identifier and the new MAC.
#[test]
fn a_restarted_pod_keeps_its_address_at_kea() {
    let w = World::lanbridge("idk");
    let timers = KeaTimers {
        valid: 600,
        renew: 300,
        rebind: 500,
    };
    let kea = Kea::start(&w.topo.lan, &w.path().join("kea"), timers);
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let (ip1, ip2, mac2) = restart(&w, &daemon);
    assert_eq!(ip1, ip2, "the restarted pod got another address");
    let rows = kea.lease_rows();
    assert!(
        rows.iter().all(|r| r.address == ip1),
        "Kea holds other leases: {rows:?}"
    );
    let last = rows.last().expect("a lease row");
    assert_eq!(last.client_id, pod_client_id("default", POD, "eth0"));
    assert_eq!(last.hwaddr, mac2);
    assert_eq!(last.state, 0, "{rows:?}");
}

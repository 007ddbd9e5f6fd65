//! Secondary networks, called the way Multus calls a delegate: the pod
//! already has `eth0` with an address and a default route made by the
//! reference `bridge` + `host-local`, and lanbridge's conflist is run for
//! `net1` with the `K8S_POD_*` arguments. Judged by the pod's routes, the
//! LAN server's lease file and a LAN host reaching `net1`'s address.

use std::time::Duration;

use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf};
use lanbridge_tests::lan::{attachment_client_id, k8s_args, lan_conf, lease_file};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result::{self, first_ip};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::LAN_HOST;
use lanbridge_tests::{Netns, World};
use serde_json::{json, Value};

/// The primary network's gateway (reference bridge `cni0`, host-local).
const PRIMARY_GW: &str = "10.244.1.1";

/// The primary CNI's attachment on `eth0`: the reference bridge with a
/// default route through its gateway.
fn primary(w: &World, pod: &Netns, container_id: &str) -> (Value, Attachment) {
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "primary",
        "type": "bridge",
        "bridge": "cni0",
        "isDefaultGateway": true,
        "ipam": {
            "type": "host-local",
            "subnet": "10.244.1.0/24",
            "dataDir": w.data_dir().display().to_string(),
        }
    });
    let mut att = Attachment::new(container_id, pod, "eth0");
    att.args = Some(k8s_args("web-0"));
    w.rt.invoke("ADD", &conf, &att, None)
        .expect_ok("primary ADD on eth0");
    (conf, att)
}

/// `conf` as the one-plugin conflist a NetworkAttachmentDefinition holds.
fn conflist(conf: &Value) -> Value {
    let mut plugin = conf.clone();
    let obj = plugin.as_object_mut().expect("object");
    let name = obj.remove("name").expect("name");
    let version = obj.remove("cniVersion").expect("cniVersion");
    json!({"cniVersion": version, "name": name, "plugins": [plugin]})
}

/// The pod's IPv4 default routes as (gateway, device).
fn default_routes(pod: &Netns) -> Vec<(String, String)> {
    pod.routes4()
        .iter()
        .filter(|r| r["dst"] == "default")
        .map(|r| {
            (
                r["gateway"].as_str().unwrap_or_default().to_string(),
                r["dev"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Strict reverse-path filtering in the pod, as hardened images set it:
/// nothing may depend on the pod's routing accepting the server's replies.
fn strict_rp_filter(pod: &Netns) {
    for key in ["all", "default"] {
        pod.run(&["sysctl", "-qw", &format!("net.ipv4.conf.{key}.rp_filter=1")]);
    }
}

/// Issue 12, item 4: lan mode on `net1` leases from the LAN's dnsmasq
/// through `net1` although `eth0` holds an address and the default route;
/// `eth0`'s routes stay as the primary CNI made them; the LAN reaches
/// `net1`'s address; DEL releases at the server and leaves `eth0` alone.
#[test]
fn lan_mode_on_net1_beside_a_primary_eth0() {
    let w = World::lanbridge("sec");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let _daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let pod = w.topo.pod("web0");
    strict_rp_filter(&pod);
    let (primary_conf, primary_att) = primary(&w, &pod, "ctr-web0");
    let before = default_routes(&pod);
    assert_eq!(before, vec![(PRIMARY_GW.to_string(), "eth0".to_string())]);

    let list = conflist(&lan_conf("lan-net1", 5.0));
    let mut att = Attachment::new("ctr-web0", &pod, "net1");
    att.args = Some(k8s_args("web-0"));
    let r =
        w.rt.add_list(&list, &att)
            .unwrap_or_else(|e| panic!("ADD on net1 beside eth0: {e}"));
    let ip = first_ip(&r);
    assert!(in_pool(&ip), "{ip} is not from dnsmasq's pool: {r}");
    assert_eq!(pod.ipv4_addrs("net1"), vec![format!("{ip}/24")]);
    assert_eq!(
        default_routes(&pod),
        before,
        "the pod's default route must stay on eth0"
    );
    assert!(
        !result::routes(&r).iter().any(|(dst, _)| dst == "0.0.0.0/0"),
        "the result reports a default route that was not added: {r}"
    );

    let lease = dns
        .lease_of(&ip)
        .unwrap_or_else(|| panic!("dnsmasq has no lease of {ip}: {:?}", dns.leases()));
    assert_eq!(lease.hostname, "web-0");
    assert_eq!(
        lease.client_id,
        attachment_client_id("ctr-web0", "net1"),
        "net1's own client identifier"
    );
    assert!(lease_file(&w, "lan-net1", "ctr-web0", "net1").is_file());

    assert!(w.topo.lan_host.ping(&ip), "the LAN host cannot reach {ip}");
    assert!(pod.ping(LAN_HOST), "net1 cannot reach the LAN host");
    assert!(pod.ping(PRIMARY_GW), "eth0 stopped working");

    w.rt.del_list(&list, &att, Some(&r))
        .unwrap_or_else(|e| panic!("DEL on net1: {e}"));
    assert!(
        wait_until(Duration::from_secs(5), || dns.lease_of(&ip).is_none()),
        "dnsmasq still holds {ip} after DEL: {:?}",
        dns.leases()
    );
    assert!(!pod.has_link("net1"));
    assert_eq!(default_routes(&pod), before, "DEL touched eth0's routes");
    w.rt.invoke("DEL", &primary_conf, &primary_att, None)
        .expect_ok("primary DEL");
}

/// Subnet mode on `net1` beside the primary `eth0`: the second network's
/// address and gateway work and the pod's default route stays on `eth0`.
#[test]
fn subnet_mode_on_net1_beside_a_primary_eth0() {
    let w = World::lanbridge("sub2");
    let pod = w.topo.pod("db0");
    let (primary_conf, primary_att) = primary(&w, &pod, "ctr-db0");
    let before = default_routes(&pod);

    let list = json!({
        "cniVersion": "1.0.0",
        "name": "storage",
        "plugins": [{
            "type": "lanbridge",
            "bridge": "lb1",
            "isGateway": true,
            "ipam": {
                "type": "host-local",
                "subnet": "10.250.0.0/24",
                "dataDir": w.data_dir().display().to_string(),
            }
        }]
    });
    let mut att = Attachment::new("ctr-db0", &pod, "net1");
    att.args = Some(k8s_args("db-0"));
    let r =
        w.rt.add_list(&list, &att)
            .unwrap_or_else(|e| panic!("ADD on net1: {e}"));
    let ip = first_ip(&r);
    assert_eq!(pod.ipv4_addrs("net1"), vec![format!("{ip}/24")]);
    assert_eq!(default_routes(&pod), before);
    assert!(pod.ping("10.250.0.1"), "net1 cannot reach its gateway");
    assert!(pod.ping(PRIMARY_GW), "eth0 stopped working");

    w.rt.del_list(&list, &att, Some(&r))
        .unwrap_or_else(|e| panic!("DEL on net1: {e}"));
    assert_eq!(default_routes(&pod), before);
    w.rt.invoke("DEL", &primary_conf, &primary_att, None)
        .expect_ok("primary DEL");
}

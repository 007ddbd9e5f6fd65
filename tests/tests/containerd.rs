//! A second real runtime: Debian's containerd 1.6, with `ctr run --cni`, runs
//! a busybox container on a lanbridge network in subnet mode and in lan mode.
//! `ctr` gives the plugin `/proc/<pid>/ns/net` at ADD and no netns at all at
//! DEL (the task has exited: the namespace is gone).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use lanbridge_tests::background::Background;
use lanbridge_tests::binary::lanbridge_plugin_dir;
use lanbridge_tests::containerd::{busybox_image, Containerd};
use lanbridge_tests::daemon::LanbridgeDaemon;
use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf};
use lanbridge_tests::lan::{lan_conf, lease_file, LAN_NET_BRIDGE};
use lanbridge_tests::process::{self, wait_until};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_BRIDGE, LAN_HOST, LAN_ROUTER, NODE_UPLINK};
use lanbridge_tests::World;
use serde_json::{json, Value};

const IMAGE: &str = "localhost/lbt-busybox:1";
/// go-cni names the first interface so; `ctr` runs in namespace "default".
const IFNAME: &str = "eth0";
const CONTAINER: &str = "lbt1";
const CONTAINER_ID: &str = "default-lbt1";

/// A world with containerd running in its node, `conflist` as the only
/// network config, the busybox image imported.
fn containerd(w: &World, conflist: &Value) -> Containerd {
    let net_d = w.path().join("net.d");
    std::fs::create_dir_all(&net_d).unwrap();
    std::fs::write(net_d.join("10-lbt.conflist"), conflist.to_string()).unwrap();
    let image = busybox_image(&w.path().join("image"), IMAGE);
    let c = Containerd::start(
        &w.path().join("containerd"),
        &w.topo.node,
        &lanbridge_plugin_dir(w.path()),
        &net_d,
    );
    c.import(&image);
    c
}

/// `ip -j <args>` in the container's namespace, read from the node's side.
fn ip_in(pid: u32, args: &[&str]) -> Value {
    let mut c = std::process::Command::new("nsenter");
    c.arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["--", "ip", "-j"])
        .args(args);
    serde_json::from_str(&process::run_ok(&mut c)).expect("ip -j")
}

/// The container's IPv4 address on its interface.
fn address_of(pid: u32) -> String {
    let j = ip_in(pid, &["-4", "addr", "show", "dev", IFNAME]);
    j[0]["addr_info"][0]["local"]
        .as_str()
        .unwrap_or_else(|| panic!("no IPv4 address on {IFNAME}: {j}"))
        .to_string()
}

fn ping_from_container(c: &Containerd, dst: &str) {
    let out = c.exec(
        CONTAINER,
        &["/bin/busybox", "ping", "-c", "1", "-W", "2", dst],
    );
    assert!(out.success(), "container pings {dst}: {out:?}");
}

#[test]
fn ctr_runs_a_container_on_a_subnet_mode_network() {
    let w = World::lanbridge("ctrsub");
    let mut c = containerd(&w, &w.subnet_list("1.0.0", "10.244.9.0/24"));
    let pid = c.run_cni(IMAGE, CONTAINER, &["/bin/busybox", "sleep", "600"]);

    let ip = address_of(pid);
    assert!(ip.starts_with("10.244.9."), "{ip}");
    let routes = ip_in(pid, &["-4", "route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], "10.244.9.1", "{routes}");
    let ports = w.port_links("lb0");
    assert_eq!(ports.len(), 1, "one port on the bridge: {ports:?}");
    // Both ways: the node reaches it, it reaches its gateway and, masqueraded
    // by the node, the LAN.
    assert!(w.topo.node.ping(&ip), "node pings the container at {ip}");
    ping_from_container(&c, "10.244.9.1");
    ping_from_container(&c, LAN_HOST);
    assert_eq!(w.allocations("lbtnet"), [ip.as_str()]);

    let run_log = c.kill_and_remove(CONTAINER);
    assert!(
        !run_log.contains("network review"),
        "DEL failed:\n{run_log}"
    );
    w.wait_retired_gone("after the container went");
    assert_eq!(w.port_links("lb0"), Vec::<String>::new(), "port left");
    assert_eq!(
        w.allocations("lbtnet"),
        Vec::<String>::new(),
        "allocation left"
    );
    assert_eq!(
        w.state_files(),
        Vec::<std::path::PathBuf>::new(),
        "state left"
    );
    assert_eq!(
        w.link_pins("lbtnet"),
        Vec::<String>::new(),
        "TCX links left"
    );
    for map in ["lb_endpoints", "lb_by_mac", "lb_by_ip"] {
        assert_eq!(w.map_entries("lbtnet", map), Vec::<Value>::new(), "{map}");
    }
    assert_eq!(w.nat_rules(), Vec::<String>::new(), "masquerade left");
}

#[test]
fn ctr_runs_a_container_that_leases_a_lan_address() {
    let w = World::lanbridge("ctrlan");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let mut plugin = lan_conf("lbtlan", 10.0);
    let plugin_obj = plugin.as_object_mut().unwrap();
    plugin_obj.remove("cniVersion");
    plugin_obj.remove("name");
    let conflist = json!({"cniVersion": "1.0.0", "name": "lbtlan", "plugins": [plugin]});
    let mut c = containerd(&w, &conflist);
    let pid = c.run_cni(IMAGE, CONTAINER, &["/bin/busybox", "sleep", "600"]);

    // The LAN's server leased it an address, to its MAC.
    let ip = address_of(pid);
    assert!(in_pool(&ip), "{ip} is not from the LAN's pool");
    let mac = ip_in(pid, &["link", "show", "dev", IFNAME])[0]["address"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let lease = dns
        .lease_of(&ip)
        .unwrap_or_else(|| panic!("no lease of {ip}: {:?}", dns.leases()));
    assert_eq!(lease.mac, mac);
    let routes = ip_in(pid, &["-4", "route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], LAN_ROUTER, "{routes}");
    // The daemon holds it by the path ctr gave: /proc/<pid>/ns/net.
    let record: Value = serde_json::from_slice(
        &std::fs::read(lease_file(&w, "lbtlan", CONTAINER_ID, IFNAME)).expect("lease file"),
    )
    .unwrap();
    assert_eq!(record["netns"], format!("/proc/{pid}/ns/net"), "{record}");
    // The LAN reaches it, it reaches the LAN.
    assert!(
        w.topo.lan_host.ping(&ip),
        "LAN host pings the container at {ip}"
    );
    ping_from_container(&c, LAN_HOST);
    ping_from_container(&c, LAN_ROUTER);

    // DEL comes without a netns (the task is gone): the daemon releases from
    // the node, the server drops the lease, nothing of the pod stays.
    let run_log = c.kill_and_remove(CONTAINER);
    assert!(
        !run_log.contains("network review"),
        "DEL failed:\n{run_log}"
    );
    assert!(
        dns.wait_log(
            &format!("DHCPRELEASE({LAN_BRIDGE}) {ip} {mac}"),
            Duration::from_secs(5)
        ),
        "{}",
        dns.log()
    );
    assert!(
        wait_until(Duration::from_secs(3), || dns.lease_of(&ip).is_none()),
        "{:?}",
        dns.leases()
    );
    assert!(
        daemon.log().contains(&format!("released {ip}")),
        "{}",
        daemon.log()
    );
    assert!(!lease_file(&w, "lbtlan", CONTAINER_ID, IFNAME).exists());
    w.wait_retired_gone("after the lan-mode container went");
    assert_eq!(
        w.port_links(LAN_NET_BRIDGE),
        Vec::<String>::new(),
        "port left"
    );
    assert_eq!(
        w.state_files(),
        Vec::<std::path::PathBuf>::new(),
        "state left"
    );
    assert_eq!(
        w.link_pins("lbtlan"),
        [NODE_UPLINK],
        "only the uplink's link stays"
    );
    for map in ["lb_endpoints", "lb_by_mac", "lb_by_ip"] {
        assert_eq!(w.map_entries("lbtlan", map), Vec::<Value>::new(), "{map}");
    }
    // The network's FORWARD accepts stay with its bridge; none is the pod's.
    assert_eq!(
        w.pod_forward_rules(),
        Vec::<String>::new(),
        "the pod's FORWARD accepts left"
    );
    let routes = w.topo.node.routes4();
    assert!(
        !routes.iter().any(|r| r["dst"] == ip.as_str()),
        "the pod's /32 left: {routes:?}"
    );
}

/// A `/proc/<pid>/ns/net` path outlives its pod: once the PID is reused it
/// names another namespace. A DEL given such a path removes the attachment
/// and leaves that namespace's interfaces alone: the node's own `eth0` (a
/// process of the node got the PID) or another pod's.
#[test]
fn del_leaves_alone_the_namespace_a_reused_pid_names() {
    let w = World::lanbridge("ctrpid");
    let conf = w.subnet_conf("1.0.0", "10.244.8.0/24");
    let pod = w.topo.pod("p0");
    let att = Attachment::new("pid0", &pod, IFNAME);
    w.rt.invoke("ADD", &conf, &att, None).expect_ok("ADD");
    let mut sleep = w.topo.node.command("sleep");
    sleep.arg("600");
    let node_process = Background::spawn("sleep in the node", sleep, &w.path().join("sleep.log"));
    let reused = format!("/proc/{}/ns/net", node_process.pid().unwrap());
    let out = w.rt.invoke(
        "DEL",
        &conf,
        &Attachment::with_path("pid0", &reused, IFNAME),
        None,
    );
    out.expect_ok("DEL");
    assert!(
        w.topo.node.has_link(NODE_UPLINK),
        "DEL removed the node's {NODE_UPLINK}"
    );
    assert!(out.stderr.contains("the node's own namespace"), "{out}");
    w.wait_retired_gone("after DEL with a reused netns path");
    assert_eq!(w.port_links("lb0"), Vec::<String>::new(), "port left");
    assert_eq!(w.allocations("lbtnet"), Vec::<String>::new());
    assert_eq!(w.state_files(), Vec::<std::path::PathBuf>::new());

    // Another pod got the PID: its interface stays.
    let (p1, p2) = (w.topo.pod("p1"), w.topo.pod("p2"));
    let (a1, a2) = (
        Attachment::new("pid1", &p1, IFNAME),
        Attachment::new("pid2", &p2, IFNAME),
    );
    w.rt.invoke("ADD", &conf, &a1, None).expect_ok("ADD p1");
    let added = w.rt.invoke("ADD", &conf, &a2, None).expect_ok("ADD p2");
    let ip2 = added["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let out = w.rt.invoke(
        "DEL",
        &conf,
        &Attachment::with_path("pid1", &p2.path_str(), IFNAME),
        None,
    );
    out.expect_ok("DEL p1 by p2's path");
    assert!(p2.has_link(IFNAME), "DEL of p1 removed p2's {IFNAME}");
    assert!(
        out.stderr.contains("another namespace than at ADD"),
        "{out}"
    );
    assert!(!p1.has_link(IFNAME), "p1's veth went with its port");
    assert_eq!(w.port_links("lb0").len(), 1, "p2's port stays");
    w.rt.invoke("DEL", &conf, &a2, None).expect_ok("DEL p2");
    w.assert_nothing_left(&p2, "pid2", &ip2, "after both DELs");
}

/// The plugin tells the daemon which namespace it means (its inode): a
/// daemon that resolves the path to another one (run without hostPID, a
/// PID reused in between) refuses with code 3 instead of leasing there,
/// here on the node's own uplink.
#[test]
fn the_daemon_refuses_a_path_that_names_another_namespace_than_the_plugins() {
    let w = World::lanbridge("ctrino");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let pod = w.topo.pod("p0");
    let request = json!({
        "op": "acquire",
        "key": {"network": "lbtlan", "containerId": "ino0", "ifname": NODE_UPLINK},
        "netns": w.topo.node.path_str(),
        "netnsInode": pod.inode(),
        "mac": [2, 0, 0, 0, 0, 1],
        "clientId": [1, 2, 0, 0, 0, 0, 1],
        "hostname": null,
        "timeoutMs": 2000,
    });
    let mut c = UnixStream::connect(daemon.socket()).expect("connect");
    writeln!(c, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).unwrap();
    let response: Value = serde_json::from_str(&line).expect("response JSON");
    assert_eq!(response["result"], "error", "{response}");
    assert_eq!(response["code"], 3, "{response}");
    assert!(
        response["msg"]
            .as_str()
            .unwrap()
            .contains("names another namespace"),
        "{response}"
    );
    assert!(!dns.log().contains("DHCPDISCOVER"), "{}", dns.log());
}

//! Issue 4: in lan mode a pod behaves like a host of the LAN (both
//! directions, no NAT, the LAN's router as its gateway), like a pod to the
//! node and to its neighbours, like a pod to the cluster's services (the
//! node's iptables DNAT applies, the NAT-ed replies stay on the host stack),
//! keeps working under `iptables -P FORWARD DROP`, with or without the eBPF
//! fast path, and cannot impersonate anyone. Every world has the LAN's
//! dnsmasq and the node's daemon; peers report the source address they saw.

use std::net::SocketAddr;
use std::time::Duration;

use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf};
use lanbridge_tests::flows::{
    arp_frame, counters_of, dhcp_discover, iptables, neigh_lladdr, ping_ttl, send_frames, sysctl,
    tcp_exchange, udhcpc, udp_exchange, udp_send, udp_send_and_collect, Capture, LanNet, LanOpts,
    Pod, UPLINK,
};
use lanbridge_tests::lan::{mac_of, LAN_NET_BRIDGE};
use lanbridge_tests::probe::{ip_of, PeerServer};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result;
use lanbridge_tests::topology::{LAN_HOST, LAN_ROUTER, NODE_ADDR};
use lanbridge_tests::Netns;
use serde_json::json;

const NET: &str = "lbtflow";
const UDP_PORT: u16 = 7001;
const TCP_PORT: u16 = 7002;
/// How long a UDP probe waits for each answer.
const UDP_WAIT: Duration = Duration::from_millis(700);
/// How long a TCP probe waits to connect, and then for the line.
const TCP_WAIT: Duration = Duration::from_secs(3);
/// For probes that must fail.
const SHORT: Duration = Duration::from_millis(600);
/// A LAN address nobody was given.
const SPOOFED_IP: &str = "192.168.77.222";

/// Every drop reason: legitimate traffic (the pods' own IPv6 chatter, DAD,
/// router solicitations, MLD, included) must count none of them.
const DROPS: [&str; 20] = [
    "drop_dhcp_server",
    "drop_dhcp_spoof",
    "drop_error",
    "drop_spoof_mac",
    "drop_spoof_ip",
    "drop_arp_spoof",
    "drop_isolated",
    "drop_ra",
    "drop_redirect6",
    "drop_dhcp6_server",
    "drop_ip6_unjudged",
    "drop_spoof_ip6",
    "drop_nd_spoof",
    "drop_dhcp_chaddr",
    "drop_dhcp_client_id",
    "drop_dhcp_type",
    "drop_dhcp_addr",
    "drop_dhcp_agent",
    "drop_dhcp_malformed",
    "drop_dhcp_rate",
];

/// A UDP and a TCP peer server in one namespace.
struct Peers {
    udp: PeerServer,
    tcp: PeerServer,
}

impl Peers {
    fn start(ns: &Netns) -> Peers {
        Peers {
            udp: PeerServer::udp(ns, UDP_PORT),
            tcp: PeerServer::tcp(ns, TCP_PORT),
        }
    }
}

fn saw(server: &PeerServer, ip: &str) -> bool {
    server.seen().iter().any(|a| a.ip().to_string() == ip)
}

fn ips_seen(server: &PeerServer) -> Vec<String> {
    server.seen().iter().map(|a| a.ip().to_string()).collect()
}

/// `client` (whose address is `client_ip`) talks UDP and TCP to the peers
/// `server` at `server_ip`: both answer, the server saw `client_ip` as the
/// source and the UDP answer came from `server_ip` itself (no NAT either way).
fn talk(n: &LanNet, what: &str, client: &Netns, client_ip: &str, server: &Peers, server_ip: &str) {
    let dst = format!("{server_ip}:{UDP_PORT}");
    let got = udp_exchange(client, "0.0.0.0:0", &dst, 4, UDP_WAIT);
    let Some((text, from)) = got else {
        panic!(
            "{what}: UDP to {dst}: no answer; the server saw {:?}\n{}",
            ips_seen(&server.udp),
            n.table()
        );
    };
    assert_eq!(
        ip_of(&text),
        client_ip,
        "{what}: UDP: the server saw {text}"
    );
    assert_eq!(
        from,
        dst.parse::<SocketAddr>().expect("addr"),
        "{what}: UDP: the answer came from {from}, not from the server's own address"
    );
    assert!(saw(&server.udp, client_ip), "{what}: UDP server's record");

    let dst = format!("{server_ip}:{TCP_PORT}");
    match tcp_exchange(client, None, &dst, TCP_WAIT) {
        Ok(text) => assert_eq!(
            ip_of(&text),
            client_ip,
            "{what}: TCP: the server saw {text}"
        ),
        Err(e) => panic!(
            "{what}: TCP to {dst}: {e}; the server saw {:?}\n{}",
            ips_seen(&server.tcp),
            n.table()
        ),
    }
    assert!(saw(&server.tcp, client_ip), "{what}: TCP server's record");
}

/// Pod ↔ LAN host (both ways; the LAN host opening connections to servers
/// in the pods is the game-server case), pod → router, pod ↔ pod, pod ↔
/// node, with the addresses each side saw checked; TTLs show one routed hop.
fn all_flows(n: &LanNet, a: &Pod, b: &Pod) {
    for p in [a, b] {
        assert!(in_pool(&p.ip), "{} is not from dnsmasq's pool", p.ip);
        assert!(
            n.dns.lease_of(&p.ip).is_some(),
            "dnsmasq has no lease for {}",
            p.ip
        );
        assert_eq!(
            p.ns.default_gateway().as_deref(),
            Some(LAN_ROUTER),
            "the pod's default gateway is not the LAN router from DHCP"
        );
        assert!(
            result::routes(&p.result).contains(&("0.0.0.0/0".into(), Some(LAN_ROUTER.into()))),
            "no default route via the router in {}",
            p.result
        );
    }
    let lan = Peers::start(n.lan_host());
    let in_a = Peers::start(&a.ns);
    let in_b = Peers::start(&b.ns);
    let node = Peers::start(n.node());

    talk(n, "pod a -> LAN host", &a.ns, &a.ip, &lan, LAN_HOST);
    talk(n, "pod b -> LAN host", &b.ns, &b.ip, &lan, LAN_HOST);
    talk(n, "LAN host -> pod a", n.lan_host(), LAN_HOST, &in_a, &a.ip);
    talk(n, "LAN host -> pod b", n.lan_host(), LAN_HOST, &in_b, &b.ip);
    for p in [a, b] {
        assert!(p.ns.ping(LAN_ROUTER), "{} cannot ping the router", p.ip);
    }
    // One routed hop each way (the node), whichever path forwards.
    assert_eq!(
        ping_ttl(&a.ns, LAN_HOST),
        Some(63),
        "pod a -> LAN host: reply TTL"
    );
    assert_eq!(
        ping_ttl(n.lan_host(), &a.ip),
        Some(63),
        "LAN host -> pod a: reply TTL"
    );

    talk(n, "pod a -> pod b", &a.ns, &a.ip, &in_b, &b.ip);
    talk(n, "pod b -> pod a", &b.ns, &b.ip, &in_a, &a.ip);

    talk(n, "pod a -> node", &a.ns, &a.ip, &node, NODE_ADDR);
    talk(n, "node -> pod a", n.node(), NODE_ADDR, &in_a, &a.ip);
}

fn assert_no_drops(n: &LanNet, interfaces: &[&str]) {
    let report = n.report();
    for i in interfaces {
        for reason in DROPS {
            assert_eq!(
                lanbridge_tests::lan::counter(&report, i, reason),
                0,
                "legitimate traffic counted {reason} on {i}:\n{}",
                n.table()
            );
        }
    }
}

/// `iptables -S <chain>` in the node.
fn rules(n: &LanNet, chain: &str) -> Vec<String> {
    iptables(n.node(), &["-S", chain])
        .lines()
        .map(str::to_string)
        .collect()
}

/// FORWARD is still DROP, jumps first to LANBRIDGE-FWD, and that chain
/// holds only the network's two accepts, in and out on its bridge, however
/// many pods: nothing opens the host's other interfaces.
fn assert_forward_narrow(n: &LanNet) {
    let forward = rules(n, "FORWARD");
    assert!(
        forward.contains(&"-P FORWARD DROP".to_string()),
        "{forward:?}"
    );
    let jumps: Vec<&String> = forward.iter().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(
        jumps.len(),
        1,
        "FORWARD has more than lanbridge's jump: {forward:?}"
    );
    assert!(jumps[0].ends_with("-j LANBRIDGE-FWD"), "{forward:?}");
    let chain: Vec<String> = rules(n, "LANBRIDGE-FWD")
        .into_iter()
        .filter(|l| l.starts_with("-A"))
        .collect();
    let tag = format!("lanbridge:{NET} {LAN_NET_BRIDGE}");
    for dir in ["-i", "-o"] {
        let on_bridge = format!("-A LANBRIDGE-FWD {dir} {LAN_NET_BRIDGE} ");
        assert!(
            chain
                .iter()
                .any(|r| r.starts_with(&on_bridge) && r.contains(&tag)),
            "no {dir} accept for the bridge: {chain:?}"
        );
    }
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert!(chain.iter().all(|r| r.ends_with("-j ACCEPT")), "{chain:?}");
}

/// Packets the LANBRIDGE-FWD accepts matched (the stack forwarded).
fn forward_packets(n: &LanNet) -> u64 {
    iptables(n.node(), &["-L", "LANBRIDGE-FWD", "-v", "-n", "-x"])
        .lines()
        .filter(|l| l.contains("ACCEPT"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Issue 4, default config (fast path on, FORWARD ACCEPT): every flow works
/// without NAT, the pods' LAN traffic and the LAN's traffic to them took
/// the fast path, pod → pod too, and nothing legitimate was dropped.
#[test]
fn pods_talk_to_lan_hosts_pods_and_node_on_the_fast_path() {
    let n = LanNet::new("fl1", NET, LanOpts::default());
    let a = n.add("fa");
    let b = n.add("fb");
    all_flows(&n, &a, &b);

    let report = n.report();
    let c = |i: &str, r: &str| lanbridge_tests::lan::counter(&report, i, r);
    let diag = || {
        format!(
            "{}\n{}\n{}",
            counters_of(&report, &a.port),
            counters_of(&report, &b.port),
            counters_of(&report, UPLINK)
        )
    };
    for p in [&a, &b] {
        assert!(
            c(&p.port, "fast_to_lan") > 0,
            "no fast_to_lan for {}:\n{}",
            p.ip,
            diag()
        );
        assert!(
            c(&p.port, "fast_to_pod") > 0,
            "no pod -> pod fast_to_pod from {}:\n{}",
            p.ip,
            diag()
        );
    }
    assert!(
        c(UPLINK, "fast_to_pod") > 0,
        "LAN -> pod not fast-pathed:\n{}",
        diag()
    );
    assert_eq!(c(&a.port, "slow_service"), 0, "{}", diag());
    assert_no_drops(&n, &[&a.port, &b.port, UPLINK]);
}

/// Issue 4: the same flows with `iptables -P FORWARD DROP` in the node (set
/// before ADD); lanbridge opens FORWARD only on its bridge.
#[test]
fn all_flows_work_under_forward_drop() {
    let n = LanNet::new(
        "fl2",
        NET,
        LanOpts {
            forward_drop: true,
            extra: None,
        },
    );
    let a = n.add("da");
    let b = n.add("db");
    assert_forward_narrow(&n);
    all_flows(&n, &a, &b);
    assert_forward_narrow(&n);
    let report = n.report();
    assert!(
        lanbridge_tests::lan::counter(&report, &a.port, "fast_to_lan") > 0
            && lanbridge_tests::lan::counter(&report, UPLINK, "fast_to_pod") > 0,
        "fast path not used:\n{}",
        n.table()
    );
    assert_no_drops(&n, &[&a.port, &b.port, UPLINK]);
}

/// Issue 4: `"fastPath": false` under FORWARD DROP: the host stack routes
/// everything (lanbridge's FORWARD accepts matched packets), no
/// packet of the pods is counted as fast-pathed, and all flows still work.
#[test]
fn all_flows_work_through_the_stack_without_fast_path_under_forward_drop() {
    let n = LanNet::new(
        "fl3",
        NET,
        LanOpts {
            forward_drop: true,
            extra: Some(json!({"fastPath": false})),
        },
    );
    let a = n.add("sa");
    let b = n.add("sb");
    assert_forward_narrow(&n);
    all_flows(&n, &a, &b);
    let report = n.report();
    for i in [a.port.as_str(), b.port.as_str(), UPLINK] {
        for r in ["fast_to_lan", "fast_to_pod"] {
            assert_eq!(
                lanbridge_tests::lan::counter(&report, i, r),
                0,
                "{r} on {i} with fastPath off:\n{}",
                n.table()
            );
        }
    }
    // Both pods' flows worked under DROP with nothing fast-pathed: the
    // bridge's accepts let the stack forward them.
    assert!(
        forward_packets(&n) > 0,
        "the stack forwarded nothing (LANBRIDGE-FWD counters):\n{}",
        iptables(n.node(), &["-L", "LANBRIDGE-FWD", "-v", "-n", "-x"])
    );
    assert_no_drops(&n, &[&a.port, &b.port, UPLINK]);
}

/// Service VIPs of the kube-proxy stand-in and their backends on the LAN
/// host: TCP 10.96.0.1:443 → :8443, UDP 10.96.0.10:53 → :7001 (kube-dns).
const TCP_VIP: &str = "10.96.0.1:443";
const UDP_VIP: &str = "10.96.0.10:53";
const TCP_BACKEND_PORT: u16 = 8443;
/// Fixed pod source ports for the service flows (reused for direct ones).
const TCP_SRC_PORT: u16 = 40443;
const UDP_SRC_PORT: u16 = 40053;

/// A world with the kube-proxy stand-in under FORWARD DROP: DNAT rules in
/// the node's PREROUTING (no `-m conntrack --ctstate DNAT -j ACCEPT` in
/// FORWARD: lanbridge's accepts are enough, the tests pass without
/// it), the backends on the LAN host (TCP and UDP servers reporting the
/// peer they saw), and a pod.
fn service_world(tag: &str, fast_path: bool) -> (LanNet, PeerServer, PeerServer, Pod) {
    let n = LanNet::new(
        tag,
        NET,
        LanOpts {
            forward_drop: true,
            extra: Some(json!({"fastPath": fast_path})),
        },
    );
    for (proto, vip, port) in [
        ("tcp", TCP_VIP, TCP_BACKEND_PORT),
        ("udp", UDP_VIP, UDP_PORT),
    ] {
        let (ip, vport) = vip.split_once(':').expect("vip");
        iptables(
            n.node(),
            &[
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-d",
                &format!("{ip}/32"),
                "-p",
                proto,
                "--dport",
                vport,
                "-j",
                "DNAT",
                "--to-destination",
                &format!("{LAN_HOST}:{port}"),
            ],
        );
    }
    let tcp_backend = PeerServer::tcp(n.lan_host(), TCP_BACKEND_PORT);
    let udp_backend = PeerServer::udp(n.lan_host(), UDP_PORT);
    let a = n.add("kp");
    (n, tcp_backend, udp_backend, a)
}

fn service_diag(n: &LanNet, a: &Pod) -> String {
    let r = n.report();
    format!("{}\n{}", counters_of(&r, &a.port), counters_of(&r, UPLINK))
}

/// The pod uses both services from its fixed source ports: the backend
/// sees the pod's own address and port (nothing SNATs), the UDP answer
/// comes back from the service address (conntrack reversed the DNAT).
fn use_services(n: &LanNet, a: &Pod, tcp_backend: &PeerServer, udp_backend: &PeerServer) {
    let tcp_src = format!("{}:{TCP_SRC_PORT}", a.ip);
    match tcp_exchange(&a.ns, Some(&tcp_src), TCP_VIP, TCP_WAIT) {
        Ok(text) => assert_eq!(text, tcp_src, "the backend saw the pod as {text}"),
        Err(e) => panic!("pod -> {TCP_VIP}: {e}\n{}", service_diag(n, a)),
    }
    assert!(saw(tcp_backend, &a.ip), "{:?}", tcp_backend.seen());

    let udp_src = format!("{}:{UDP_SRC_PORT}", a.ip);
    let got = udp_exchange(&a.ns, &udp_src, UDP_VIP, 4, UDP_WAIT);
    let Some((text, from)) = got else {
        panic!(
            "pod -> {UDP_VIP} (UDP): no answer; backend saw {:?}\n{}",
            udp_backend.seen(),
            service_diag(n, a)
        );
    };
    assert_eq!(text, udp_src, "the UDP backend saw the pod as {text}");
    assert_eq!(
        from,
        UDP_VIP.parse::<SocketAddr>().expect("addr"),
        "the service's answer did not come back from the service address (reverse NAT skipped)"
    );
}

/// Issue 4, kube-proxy stand-in under FORWARD DROP (fast path on): the pod
/// reaches a TCP and a UDP service whose backends are on the LAN; the
/// service traffic is `slow_service` on the pod's port, the backend's
/// replies `slow_flow` on the uplink and never fast-pathed, while the same
/// pod's plain LAN traffic is `fast_to_lan`.
#[test]
fn service_dnat_applies_to_pods_and_nat_replies_stay_on_the_stack() {
    let (n, tcp_backend, udp_backend, a) = service_world("svc", true);
    use_services(&n, &a, &tcp_backend, &udp_backend);

    let report = n.report();
    let c = |i: &str, r: &str| lanbridge_tests::lan::counter(&report, i, r);
    let diag = || service_diag(&n, &a);
    assert!(
        c(&a.port, "slow_service") > 0,
        "service traffic not counted slow_service:\n{}",
        diag()
    );
    assert!(
        c(UPLINK, "slow_flow") > 0,
        "the backend's replies were not kept on the stack:\n{}",
        diag()
    );
    assert_eq!(
        c(&a.port, "fast_to_lan"),
        0,
        "service traffic fast-pathed:\n{}",
        diag()
    );
    assert_eq!(
        c(UPLINK, "fast_to_pod"),
        0,
        "a NAT-ed reply fast-pathed:\n{}",
        diag()
    );

    // The same pod's plain LAN traffic takes the fast path.
    let lan = format!("{LAN_HOST}:{UDP_PORT}");
    let got = udp_exchange(&a.ns, &format!("{}:0", a.ip), &lan, 4, UDP_WAIT);
    assert_eq!(
        got.as_ref().map(|(t, f)| (ip_of(t), *f)),
        Some((a.ip.clone(), lan.parse().expect("addr"))),
        "pod -> LAN host (UDP)"
    );
    let report = n.report();
    let c = |i: &str, r: &str| lanbridge_tests::lan::counter(&report, i, r);
    assert!(
        c(&a.port, "fast_to_lan") > 0,
        "LAN traffic not fast-pathed:\n{}",
        diag()
    );
    assert!(
        c(UPLINK, "fast_to_pod") > 0,
        "LAN replies not fast-pathed:\n{}",
        diag()
    );
    assert_no_drops(&n, &[&a.port, UPLINK]);
}

/// After using the services from fixed source ports, the pod connects
/// from the same ports directly to the backends (TCP with SO_REUSEADDR,
/// UDP from the same bound port), within conntrack's lifetime of the
/// service flows: both must work, and the answer must come from the
/// backend itself. Failures are reported together with what the pod's
/// eth0 received.
fn direct_after_service(tag: &str, fast_path: bool) {
    let (n, tcp_backend, udp_backend, a) = service_world(tag, fast_path);
    use_services(&n, &a, &tcp_backend, &udp_backend);

    let capture = Capture::start(
        &a.ns,
        "eth0",
        "tcp or udp",
        &n.w.path().join("pod-eth0.txt"),
    );
    let mut failures = vec![];
    let tcp_src = format!("{}:{TCP_SRC_PORT}", a.ip);
    let backend = format!("{LAN_HOST}:{TCP_BACKEND_PORT}");
    match tcp_exchange(&a.ns, Some(&tcp_src), &backend, Duration::from_secs(5)) {
        // The port the backend sees may differ: on the stack, conntrack
        // remaps a source port whose reply tuple the service flow holds.
        Ok(text) if ip_of(&text) == a.ip => {
            eprintln!("direct TCP {tcp_src}: the backend saw {text}")
        }
        Ok(text) => failures.push(format!("direct TCP: the backend saw {text}")),
        Err(e) => failures.push(format!(
            "direct TCP {tcp_src} -> {backend} after the service connection: {e}"
        )),
    }
    let udp_src = format!("{}:{UDP_SRC_PORT}", a.ip);
    let lan = format!("{LAN_HOST}:{UDP_PORT}");
    match udp_exchange(&a.ns, &udp_src, &lan, 4, UDP_WAIT) {
        Some((text, from)) if ip_of(&text) == a.ip && from.to_string() == lan => {}
        Some((text, from)) => failures.push(format!(
            "direct UDP {udp_src} -> {lan}: answer {text:?} from {from}, want it from {lan}"
        )),
        None => failures.push(format!("direct UDP {udp_src} -> {lan}: no answer")),
    }
    assert!(
        failures.is_empty(),
        "fastPath {fast_path}:\n{}\n{}\n--- what the pod's eth0 saw ---\n{}",
        failures.join("\n"),
        service_diag(&n, &a),
        capture.text()
    );
    assert_no_drops(&n, &[&a.port, UPLINK]);
}

/// Issue 4: "a later direct connection from the same pod port to a LAN
/// host still works", with the fast path on.
#[test]
fn direct_connection_from_a_port_just_used_for_a_service_works() {
    direct_after_service("svd", true);
}

/// The same with `"fastPath": false`: the reference behaviour (the stack
/// and conntrack carry everything), a control for the test above.
#[test]
fn direct_connection_from_a_port_just_used_for_a_service_works_without_fast_path() {
    direct_after_service("svs", false);
}

/// Issue 4, hostPort: the reference `portmap` plugin chained after
/// lanbridge, under FORWARD DROP. Pod `hp` maps hostPort 8080 → 80 with
/// portmap's defaults, pod `hq` hostPort 8081 → 80 with `"snat": false`
/// (TCP and UDP each). A LAN host reaches each pod's servers via the node's
/// address; the UDP answer comes from 192.168.77.11:<hostPort> (reverse
/// NAT); the pods' replies are `slow_flow`, never fast-pathed.
///
/// Source address the pod sees: portmap's hairpin rule masquerades
/// connections from the pod's own subnet (`-s 192.168.77.0/24 ... -j
/// CNI-HOSTPORT-SETMARK`), and in lan mode that subnet is the whole LAN:
/// with the defaults every LAN client arrives as the bridge's link-local
/// address; with `"snat": false` as itself.
///
/// No CHECK: portmap 1.1's CHECK fails for a v4-only result (known).
#[test]
fn host_port_through_chained_portmap_reaches_the_pod_and_replies_reverse_nat() {
    let n = LanNet::new(
        "hp",
        NET,
        LanOpts {
            forward_drop: true,
            extra: None,
        },
    );
    let mappings = |host: u16| {
        json!([
            {"hostPort": host, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": host, "containerPort": 80, "protocol": "udp"},
        ])
    };
    let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
    let mut no_snat = portmap.clone();
    no_snat["snat"] = json!(false);
    let list = n.conflist(&[portmap]);
    let list_no_snat = n.conflist(&[no_snat]);
    let a = n.add_list("hp", &list, &[("portMappings", mappings(8080))]);
    let b = n.add_list("hq", &list_no_snat, &[("portMappings", mappings(8081))]);
    let bridge_addr = n
        .node()
        .ipv4_addrs(LAN_NET_BRIDGE)
        .first()
        .and_then(|a| a.split('/').next().map(str::to_string))
        .expect("the bridge's link-local address");

    for (p, host_port, pod_sees) in [(&a, 8080, bridge_addr.as_str()), (&b, 8081, LAN_HOST)] {
        let tcp80 = PeerServer::tcp(&p.ns, 80);
        let udp80 = PeerServer::udp(&p.ns, 80);
        let diag = || {
            let r = n.report();
            format!(
                "{}\n{}\nnat:\n{}",
                counters_of(&r, &p.port),
                counters_of(&r, UPLINK),
                n.w.nat_rules().join("\n")
            )
        };
        let dst = format!("{NODE_ADDR}:{host_port}");
        match tcp_exchange(n.lan_host(), None, &dst, TCP_WAIT) {
            Ok(text) => assert_eq!(
                ip_of(&text),
                pod_sees,
                "TCP {dst}: the pod saw the client as {text}"
            ),
            Err(e) => panic!(
                "LAN host -> {dst} (TCP): {e}; pod saw {:?}\n{}",
                tcp80.seen(),
                diag()
            ),
        }
        assert!(saw(&tcp80, pod_sees));
        let got = udp_exchange(n.lan_host(), "0.0.0.0:0", &dst, 4, UDP_WAIT);
        let Some((text, from)) = got else {
            panic!(
                "LAN host -> {dst} (UDP): no answer; pod saw {:?}\n{}",
                udp80.seen(),
                diag()
            );
        };
        assert_eq!(
            ip_of(&text),
            pod_sees,
            "UDP {dst}: the pod saw the client as {text}"
        );
        assert_eq!(
            from,
            dst.parse::<SocketAddr>().expect("addr"),
            "UDP {dst}: the answer came from {from} (reverse NAT skipped)"
        );
        let report = n.report();
        let c = |i: &str, r: &str| lanbridge_tests::lan::counter(&report, i, r);
        assert!(
            c(&p.port, "slow_flow") > 0,
            "{dst}: the pod's replies were not kept on the stack:\n{}",
            diag()
        );
        assert_eq!(
            c(&p.port, "fast_to_lan"),
            0,
            "{dst}: a reply of a DNAT-ed flow was fast-pathed:\n{}",
            diag()
        );

        // The pod is also directly reachable on its own address.
        match tcp_exchange(n.lan_host(), None, &format!("{}:80", p.ip), TCP_WAIT) {
            Ok(text) => assert_eq!(ip_of(&text), LAN_HOST),
            Err(e) => panic!("LAN host -> {}:80 directly: {e}\n{}", p.ip, diag()),
        }
    }
    assert_no_drops(&n, &[&a.port, &b.port, UPLINK]);

    for (l, p) in [(&list, &a), (&list_no_snat, &b)] {
        n.w.rt
            .del_list(l, &p.att, Some(&p.result))
            .unwrap_or_else(|e| panic!("DEL (conflist): {e}"));
    }
    assert!(
        !n.w.nat_rules().iter().any(|r| r.contains("808")),
        "portmap's rules remain after DEL: {:?}",
        n.w.nat_rules()
    );
}

/// Issue 4, enforcement: a changed source IP, a changed MAC, forged ARP and
/// a rogue DHCP server in a pod are dropped and counted with their reason;
/// nothing of it reaches the LAN host or the other pod, and the pod's
/// legitimate traffic keeps flowing.
#[test]
fn spoofing_from_a_pod_is_dropped_and_counted() {
    let n = LanNet::new("spf", NET, LanOpts::default());
    let a = n.add("atk");
    let b = n.add("vic");
    let lan = Peers::start(n.lan_host());
    let in_b = Peers::start(&b.ns);
    let count = |r: &str| n.count(&a.port, r);
    talk(&n, "attacker -> LAN host", &a.ns, &a.ip, &lan, LAN_HOST);

    // 1. Another source address: the pod adds a LAN address it was not
    // given and sends from it (ARP keeps using its own address).
    sysctl(&a.ns, "net.ipv4.conf.eth0.arp_announce", "2");
    a.ns.ip(&["addr", "add", &format!("{SPOOFED_IP}/32"), "dev", "eth0"]);
    let before = count("drop_spoof_ip");
    udp_send(
        &a.ns,
        &format!("{SPOOFED_IP}:0"),
        &format!("{LAN_HOST}:{UDP_PORT}"),
        5,
    );
    udp_send(
        &a.ns,
        &format!("{SPOOFED_IP}:0"),
        &format!("{}:{UDP_PORT}", b.ip),
        3,
    );
    let tcp = tcp_exchange(
        &a.ns,
        Some(&format!("{SPOOFED_IP}:0")),
        &format!("{LAN_HOST}:{TCP_PORT}"),
        SHORT,
    );
    assert!(
        tcp.is_err(),
        "TCP from the spoofed address got through: {tcp:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    for (who, p) in [("LAN host", &lan), ("other pod", &in_b)] {
        assert!(
            !saw(&p.udp, SPOOFED_IP) && !saw(&p.tcp, SPOOFED_IP),
            "the {who} received packets from the spoofed {SPOOFED_IP}"
        );
    }
    let dropped = count("drop_spoof_ip") - before;
    assert!(
        dropped >= 9,
        "drop_spoof_ip rose by {dropped}, want >= 9:\n{}",
        n.counters_of(&a.port)
    );
    talk(
        &n,
        "attacker (own address, spoofed one present) -> LAN host",
        &a.ns,
        &a.ip,
        &lan,
        LAN_HOST,
    );
    a.ns.ip(&["addr", "del", &format!("{SPOOFED_IP}/32"), "dev", "eth0"]);

    // 2. Another MAC.
    let before = count("drop_spoof_mac");
    let lan_heard = lan.udp.seen().len();
    a.ns.ip(&["link", "set", "eth0", "address", "02:00:00:de:ad:01"]);
    let got = udp_exchange(
        &a.ns,
        "0.0.0.0:0",
        &format!("{LAN_HOST}:{UDP_PORT}"),
        2,
        SHORT,
    );
    assert_eq!(got, None, "traffic with a changed MAC got an answer");
    let got = udp_exchange(
        &a.ns,
        "0.0.0.0:0",
        &format!("{}:{UDP_PORT}", b.ip),
        1,
        SHORT,
    );
    assert_eq!(
        got, None,
        "traffic with a changed MAC reached the other pod"
    );
    assert_eq!(
        lan.udp.seen().len(),
        lan_heard,
        "the LAN host heard the changed MAC"
    );
    assert!(
        !saw(&in_b.udp, &a.ip),
        "the other pod heard the changed MAC"
    );
    let dropped = count("drop_spoof_mac") - before;
    assert!(
        dropped > 0,
        "nothing counted as drop_spoof_mac:\n{}",
        n.counters_of(&a.port)
    );
    a.ns.ip(&["link", "set", "eth0", "address", &a.mac]);
    talk(
        &n,
        "attacker (MAC restored) -> LAN host",
        &a.ns,
        &a.ip,
        &lan,
        LAN_HOST,
    );

    // 3. Forged ARP: claims for the router's address (gratuitous request
    // and reply, broadcast; replies to the other pod and to the LAN host)
    // and a reply for its own address with a foreign sender MAC. The
    // victims' entries for the router are fresh and older than the
    // neighbour lock time (1 s), so a forged reply would replace them (the
    // enforce-off test shows it does for the other pod; the LAN host is out
    // of the pods' ARP reach anyway, the uplink not being bridged).
    assert!(b.ns.ping(LAN_ROUTER) && n.lan_host().ping(LAN_ROUTER));
    let b_router =
        neigh_lladdr(&b.ns, LAN_ROUTER, "eth0").expect("victim pod's entry for the router");
    let host_router =
        neigh_lladdr(n.lan_host(), LAN_ROUTER, "eth0").expect("LAN host's entry for the router");
    std::thread::sleep(Duration::from_millis(1100));
    let host_mac = mac_of(n.lan_host(), "eth0");
    let (bc, zero) = ("ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00");
    let frames = vec![
        arp_frame(bc, &a.mac, 1, &a.mac, LAN_ROUTER, zero, LAN_ROUTER),
        arp_frame(bc, &a.mac, 2, &a.mac, LAN_ROUTER, bc, LAN_ROUTER),
        arp_frame(&b.mac, &a.mac, 2, &a.mac, LAN_ROUTER, &b.mac, &b.ip),
        arp_frame(
            &host_mac, &a.mac, 2, &a.mac, LAN_ROUTER, &host_mac, LAN_HOST,
        ),
        arp_frame(&b.mac, &a.mac, 2, "02:00:00:00:00:99", &a.ip, &b.mac, &b.ip),
    ];
    let before = count("drop_arp_spoof");
    send_frames(&a.ns, "eth0", frames);
    std::thread::sleep(Duration::from_millis(300));
    let dropped = count("drop_arp_spoof") - before;
    assert!(
        dropped >= 5,
        "drop_arp_spoof rose by {dropped}, want >= 5:\n{}",
        n.counters_of(&a.port)
    );
    assert_eq!(
        neigh_lladdr(&b.ns, LAN_ROUTER, "eth0").as_deref(),
        Some(b_router.as_str()),
        "the other pod's entry for the router changed (attacker's MAC is {})",
        a.mac
    );
    assert_ne!(b_router, a.mac);
    assert_eq!(
        neigh_lladdr(n.lan_host(), LAN_ROUTER, "eth0").as_deref(),
        Some(host_router.as_str()),
        "the LAN host's entry for the router changed"
    );
    assert_eq!(
        neigh_lladdr(&b.ns, &a.ip, "eth0").filter(|m| m == "02:00:00:00:00:99"),
        None
    );
    // Its own ARP (a fresh resolution) still works.
    a.ns.ip(&["neigh", "flush", "dev", "eth0"]);
    talk(
        &n,
        "attacker (after ARP flush) -> LAN host",
        &a.ns,
        &a.ip,
        &lan,
        LAN_HOST,
    );
    talk(&n, "attacker -> other pod", &a.ns, &a.ip, &in_b, &b.ip);

    // 4. A rogue DHCP server in the pod, found by a LAN client (a unicast
    // DISCOVER: broadcasts of the LAN never reach pods).
    let rogue = Dnsmasq::start(
        &a.ns,
        &n.w.path().join("rogue-dnsmasq"),
        &DnsmasqConf {
            interface: "eth0".into(),
            range_start: "192.168.77.200".into(),
            range_end: "192.168.77.210".into(),
            lease: "1h".into(),
            router: Some(a.ip.clone()),
            ping: false,
            extra: vec!["--dhcp-authoritative".into()],
        },
    );
    let before = count("drop_dhcp_server");
    let got = udp_send_and_collect(
        n.lan_host(),
        68,
        &format!("{}:67", a.ip),
        dhcp_discover(&host_mac, 0x4c42_0406),
        Duration::from_millis(1500),
    );
    assert!(
        rogue.wait_log("DHCPOFFER(eth0)", Duration::from_secs(3)),
        "the rogue dnsmasq never answered (test setup):\n{}",
        rogue.log()
    );
    assert!(
        !got.iter().any(|s| s.ip().to_string() == a.ip),
        "the LAN host received the rogue's answer: {got:?}"
    );
    let dropped = count("drop_dhcp_server") - before;
    assert!(
        dropped > 0,
        "the rogue's OFFER was not counted:\n{}",
        n.counters_of(&a.port)
    );
    let client = udhcpc(n.lan_host(), "eth0", 3);
    let out = format!("{}{}", client.stdout, client.stderr);
    assert!(
        client.success(),
        "the LAN host's udhcpc got no lease:\n{out}\n{}",
        n.dns.log()
    );
    assert!(
        out.contains(&format!("obtained from {LAN_ROUTER},"))
            && !out.contains(&format!("from {},", a.ip)),
        "the LAN host's lease is not the LAN server's:\n{out}"
    );
    talk(
        &n,
        "attacker (rogue server running) -> LAN host",
        &a.ns,
        &a.ip,
        &lan,
        LAN_HOST,
    );

    let report = n.report();
    for r in DROPS {
        assert_eq!(
            lanbridge_tests::lan::counter(&report, &b.port, r),
            0,
            "{r} on the victim's port"
        );
    }
}

/// Issue 4, `portIsolation`: two isolated pods cannot reach each other,
/// not even with static neighbour entries (the drop in `lb_from_pod` is
/// counted `drop_isolated`), but both reach the LAN host and the router.
#[test]
fn isolated_pods_reach_the_lan_but_not_each_other() {
    let n = LanNet::new(
        "iso",
        NET,
        LanOpts {
            forward_drop: false,
            extra: Some(json!({"portIsolation": true})),
        },
    );
    let a = n.add("ia");
    let b = n.add("ib");
    let lan = Peers::start(n.lan_host());
    let in_a = Peers::start(&a.ns);
    let in_b = Peers::start(&b.ns);
    for (p, peers) in [(&a, &in_a), (&b, &in_b)] {
        talk(&n, "isolated pod -> LAN host", &p.ns, &p.ip, &lan, LAN_HOST);
        talk(
            &n,
            "LAN host -> isolated pod",
            n.lan_host(),
            LAN_HOST,
            peers,
            &p.ip,
        );
        assert!(p.ns.ping(LAN_ROUTER), "{} cannot ping the router", p.ip);
    }

    let blocked = |from: &Pod, to: &Pod| {
        let udp = udp_exchange(
            &from.ns,
            "0.0.0.0:0",
            &format!("{}:{UDP_PORT}", to.ip),
            1,
            SHORT,
        );
        assert_eq!(udp, None, "{} reached {} over UDP", from.ip, to.ip);
        let tcp = tcp_exchange(&from.ns, None, &format!("{}:{TCP_PORT}", to.ip), SHORT);
        assert!(
            tcp.is_err(),
            "{} reached {} over TCP: {tcp:?}",
            from.ip,
            to.ip
        );
    };
    // The bridge keeps isolated ports apart: ARP for the other pod goes
    // unanswered...
    blocked(&a, &b);
    // ...and a pod that skips ARP (static entries) is stopped by lb_from_pod.
    a.ns.ip(&["neigh", "replace", &b.ip, "lladdr", &b.mac, "dev", "eth0"]);
    b.ns.ip(&["neigh", "replace", &a.ip, "lladdr", &a.mac, "dev", "eth0"]);
    blocked(&a, &b);
    blocked(&b, &a);
    assert!(
        !saw(&in_b.udp, &a.ip) && !saw(&in_b.tcp, &a.ip),
        "b heard from a"
    );
    assert!(
        !saw(&in_a.udp, &b.ip) && !saw(&in_a.tcp, &b.ip),
        "a heard from b"
    );
    let report = n.report();
    for p in [&a, &b] {
        assert!(
            lanbridge_tests::lan::counter(&report, &p.port, "drop_isolated") > 0,
            "no drop_isolated on {}:\n{}",
            p.port,
            n.table()
        );
    }
    // Still fine afterwards.
    talk(
        &n,
        "isolated pod a -> LAN host",
        &a.ns,
        &a.ip,
        &lan,
        LAN_HOST,
    );
}

/// Issue 4, `"enforce": false`: the same spoofed source address is no
/// longer dropped (the LAN host receives it, `drop_spoof_ip` stays 0), and
/// a forged ARP reply now does poison the other pod's entry for the router
/// (which shows the ARP check of the enforcing test can fail).
#[test]
fn without_enforcement_spoofed_packets_pass() {
    let n = LanNet::new(
        "noenf",
        NET,
        LanOpts {
            forward_drop: false,
            extra: Some(json!({"enforce": false})),
        },
    );
    let a = n.add("na");
    let b = n.add("nb");
    let lan = Peers::start(n.lan_host());
    talk(&n, "pod -> LAN host", &a.ns, &a.ip, &lan, LAN_HOST);

    sysctl(&a.ns, "net.ipv4.conf.eth0.arp_announce", "2");
    a.ns.ip(&["addr", "add", &format!("{SPOOFED_IP}/32"), "dev", "eth0"]);
    udp_send(
        &a.ns,
        &format!("{SPOOFED_IP}:0"),
        &format!("{LAN_HOST}:{UDP_PORT}"),
        5,
    );
    assert!(
        wait_until(Duration::from_secs(2), || saw(&lan.udp, SPOOFED_IP)),
        "with enforce off the LAN host still got nothing from {SPOOFED_IP}:\n{}",
        n.counters_of(&a.port)
    );
    assert_eq!(
        n.count(&a.port, "drop_spoof_ip"),
        0,
        "{}",
        n.counters_of(&a.port)
    );

    assert!(b.ns.ping(LAN_ROUTER));
    let b_router = neigh_lladdr(&b.ns, LAN_ROUTER, "eth0").expect("entry for the router");
    assert_ne!(b_router, a.mac);
    std::thread::sleep(Duration::from_millis(1100));
    send_frames(
        &a.ns,
        "eth0",
        vec![arp_frame(
            &b.mac, &a.mac, 2, &a.mac, LAN_ROUTER, &b.mac, &b.ip,
        )],
    );
    assert!(
        wait_until(Duration::from_secs(1), || {
            neigh_lladdr(&b.ns, LAN_ROUTER, "eth0").as_deref() == Some(a.mac.as_str())
        }),
        "control: without enforcement the forged reply did not reach the other pod \
         (its entry: {:?}); the enforcing test's ARP check would prove nothing",
        neigh_lladdr(&b.ns, LAN_ROUTER, "eth0")
    );
    assert_eq!(n.count(&a.port, "drop_arp_spoof"), 0);
}

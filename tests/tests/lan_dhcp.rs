//! Lan mode against dnsmasq: pods lease LAN addresses from the LAN's own
//! DHCP server through the eBPF relay while the node's uplink stays out of
//! the bridge; a pod cannot act as a DHCP server; the reference bridge +
//! dhcp recipe on the same topology never gets a lease; config errors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lanbridge::node::mac::Mac;
use lanbridge_tests::binary::lanbridge_bin;
use lanbridge_tests::bpftool::bpftool;
use lanbridge_tests::daemon::{LanbridgeDaemon, ReferenceDhcp};
use lanbridge_tests::dhcp_server::{in_pool, udhcpc_once, Dnsmasq, DnsmasqConf};
use lanbridge_tests::lan::{
    attachment_client_id, counter, endpoint, inspect, inspect_table, k8s_args, lan_conf,
    lease_file, mac_of, master_of, program_names, LAN_NET_BRIDGE,
};
use lanbridge_tests::process::{self, wait_until};
use lanbridge_tests::result::{self, first_ip, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_ROUTER, NODE_ADDR, NODE_UPLINK};
use lanbridge_tests::{Netns, World};
use serde_json::{json, Value};

const NET: &str = "lbtlan";

fn add(w: &World, conf: &Value, att: &Attachment) -> Value {
    w.rt.invoke("ADD", conf, att, None)
        .expect_ok(&format!("ADD {}", att.container_id))
}

fn del(w: &World, conf: &Value, att: &Attachment, prev: Option<&Value>) {
    w.rt.invoke("DEL", conf, att, prev)
        .expect_ok(&format!("DEL {}", att.container_id));
}

/// `n` pod namespaces with attachments `<prefix><i>`/eth0 named as Kubernetes pods.
fn pods(w: &World, prefix: &str, n: usize) -> (Vec<Netns>, Vec<Attachment>) {
    let pods: Vec<Netns> = (0..n)
        .map(|i| w.topo.pod(&format!("{prefix}{i}")))
        .collect();
    let atts = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut a = Attachment::new(&format!("{prefix}ctr{i}"), p, "eth0");
            a.args = Some(k8s_args(&format!("{prefix}pod{i}")));
            a
        })
        .collect();
    (pods, atts)
}

fn node_default_route(w: &World) -> Option<(String, String)> {
    w.topo
        .node
        .routes4()
        .iter()
        .find(|r| r["dst"] == "default")
        .map(|r| {
            (
                r["gateway"].as_str().unwrap_or_default().to_string(),
                r["dev"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Issue 3: three pods lease distinct addresses from dnsmasq on the LAN, with
/// their MACs and attachment-derived client ids; the node keeps its uplink
/// address, default route and its own DHCP client; pods reach the router;
/// inspect and bpftool show the datapath; DEL releases at the server.
#[test]
fn three_pods_lease_from_dnsmasq_and_release_on_del() {
    let w = World::lanbridge("dm3");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let conf = lan_conf(NET, 5.0);
    let (pods, atts) = pods(&w, "d", 3);

    let started = Instant::now();
    let results: Vec<Value> = atts.iter().map(|a| add(&w, &conf, a)).collect();
    eprintln!("3 ADDs took {:?}", started.elapsed());

    let ips: Vec<String> = results.iter().map(first_ip).collect();
    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), 3, "leases not distinct: {ips:?}");
    let leases = dns.leases();
    for (i, ((r, pod), ip)) in results.iter().zip(&pods).zip(&ips).enumerate() {
        assert!(in_pool(ip), "pod{i}: {ip} not from dnsmasq's pool");
        let rips = result::ips(r);
        assert_eq!(rips.len(), 1, "{r}");
        assert_eq!(rips[0].address, format!("{ip}/24"), "{r}");
        assert_eq!(rips[0].gateway.as_deref(), Some(LAN_ROUTER), "{r}");
        assert!(
            result::routes(r).contains(&("0.0.0.0/0".to_string(), Some(LAN_ROUTER.to_string()))),
            "pod{i}: no default route via the router in {r}"
        );
        assert_eq!(pod.ipv4_addrs("eth0"), vec![format!("{ip}/24")]);
        assert_eq!(pod.default_gateway().as_deref(), Some(LAN_ROUTER));

        let mac = mac_of(pod, "eth0");
        let lease = leases
            .iter()
            .find(|l| &l.ip == ip)
            .unwrap_or_else(|| panic!("pod{i}: dnsmasq has no lease for {ip}: {leases:?}"));
        assert_eq!(lease.mac, mac, "pod{i}: lease MAC");
        assert_eq!(
            lease.client_id,
            attachment_client_id(&atts[i].container_id, "eth0"),
            "pod{i}: client id (00 + SHA-256(containerID/ifname)[..16])"
        );
        assert_eq!(
            lease.hostname,
            format!("dpod{i}"),
            "pod{i}: hostname option"
        );
        assert!(
            lease_file(&w, NET, &atts[i].container_id, "eth0").is_file(),
            "pod{i}: the daemon did not persist its lease"
        );
    }
    // The exact bytes for pod0, spelled out: 0x00, then the first 16 bytes of
    // SHA-256("dctr0/eth0") = 9c1d89c1 5a821a3b b529ffc7 34b94383 ...
    assert_eq!(
        leases
            .iter()
            .find(|l| l.ip == ips[0])
            .map(|l| l.client_id.as_str()),
        Some("00:9c:1d:89:c1:5a:82:1a:3b:b5:29:ff:c7:34:b9:43:83"),
        "pod0's client id as dnsmasq recorded it"
    );

    // The node is undisturbed: uplink address, default route, no master.
    assert_eq!(
        w.topo.node.ipv4_addrs(NODE_UPLINK),
        vec![format!("{NODE_ADDR}/24")]
    );
    assert_eq!(
        node_default_route(&w),
        Some((LAN_ROUTER.to_string(), NODE_UPLINK.to_string()))
    );
    assert_eq!(
        master_of(&w.topo.node, NODE_UPLINK),
        None,
        "uplink enslaved"
    );

    // The node's own DHCP client still gets its answers.
    let node_mac = mac_of(&w.topo.node, NODE_UPLINK);
    let udhcpc = udhcpc_once(&w.topo.node, NODE_UPLINK, 3);
    assert!(
        udhcpc.success(),
        "the node's own udhcpc got no lease while pods exist:\n{}\n{}\n--- dnsmasq ---\n{}",
        udhcpc.stdout,
        udhcpc.stderr,
        dns.log()
    );
    assert!(
        dns.log()
            .lines()
            .any(|l| l.contains("DHCPACK(lanbr)") && l.contains(&node_mac)),
        "dnsmasq never acked the node's MAC {node_mac}:\n{}",
        dns.log()
    );
    assert!(
        dns.leases().iter().any(|l| l.mac == node_mac),
        "no lease of the node's MAC in dnsmasq's lease file"
    );
    assert_eq!(
        w.topo.node.ipv4_addrs(NODE_UPLINK),
        vec![format!("{NODE_ADDR}/24")],
        "udhcpc changed the node"
    );

    for (i, pod) in pods.iter().enumerate() {
        assert!(pod.ping(LAN_ROUTER), "pod{i} cannot ping the LAN router");
    }

    // inspect: endpoints with the leased IPs, relay counters, programs.
    let report = inspect(&w, NET);
    let names = program_names(&report);
    for p in ["lb_from_pod", "lb_from_uplink"] {
        assert!(
            names.iter().any(|n| n == p),
            "inspect lists no {p}: {names:?}"
        );
    }
    for (i, (r, ip)) in results.iter().zip(&ips).enumerate() {
        let veth = host_veth(r, LAN_NET_BRIDGE);
        let ep = endpoint(&report, &veth)
            .unwrap_or_else(|| panic!("pod{i}: no endpoint {veth} in inspect: {report:#}"));
        assert_eq!(ep["ips"], serde_json::json!([ip]), "pod{i} endpoint: {ep}");
        assert_eq!(
            ep["mac"].as_str().map(str::to_lowercase),
            Some(mac_of(&pods[i], "eth0"))
        );
        assert!(
            counter(&report, &veth, "dhcp_relayed") > 0,
            "pod{i}: no dhcp_relayed on {veth}:\n{}",
            inspect_table(&w, NET)
        );
        assert!(
            counter(&report, &veth, "dhcp_to_pod") > 0
                || counter(&report, NODE_UPLINK, "dhcp_to_pod") > 0,
            "no dhcp_to_pod counted:\n{}",
            inspect_table(&w, NET)
        );
        assert_eq!(counter(&report, &veth, "drop_dhcp_server"), 0);
        assert_eq!(counter(&report, &veth, "drop_dhcp_spoof"), 0);
    }
    let leases_reported = report["leases"].as_array().map_or(0, Vec::len);
    assert_eq!(leases_reported, 3, "inspect leases: {report:#}");

    let shown = bpftool(&["prog", "show"]);
    for p in ["lb_from_pod", "lb_from_uplink"] {
        assert!(
            shown.contains(&format!("name {p}")),
            "bpftool prog show lacks {p}"
        );
    }

    // DEL releases: dnsmasq forgets the lease, the daemon its file.
    for (i, (a, r)) in atts.iter().zip(&results).enumerate() {
        del(&w, &conf, a, Some(r));
        let ip = &ips[i];
        assert!(
            wait_until(Duration::from_secs(3), || dns.lease_of(ip).is_none()),
            "pod{i}: dnsmasq still lists {ip} after DEL (RELEASE not honoured):\n{:?}\n--- dnsmasq ---\n{}\n--- daemon ---\n{}",
            dns.leases(),
            dns.log(),
            daemon.log()
        );
        assert!(
            !lease_file(&w, NET, &a.container_id, "eth0").exists(),
            "pod{i}: daemon lease file left after DEL"
        );
    }
    assert!(dns.log().contains("DHCPRELEASE(lanbr)"), "{}", dns.log());
    w.wait_retired_gone("after the DELs");
    assert_eq!(w.port_links(LAN_NET_BRIDGE), Vec::<String>::new());
    eprintln!("total {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// A rogue DHCP server in a pod.

/// A BOOTP message: `op` 1 request / 2 reply, DHCP message type `kind`
/// (1 DISCOVER, 2 OFFER), broadcast flag as given, options 54/51/1/3 for replies.
fn bootp(
    op: u8,
    kind: u8,
    broadcast: bool,
    yiaddr: [u8; 4],
    server: [u8; 4],
    chaddr: [u8; 6],
) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = op;
    m[1] = 1; // Ethernet
    m[2] = 6;
    m[4..8].copy_from_slice(&0x4c42_5254u32.to_be_bytes()); // xid "LBRT"
    if broadcast {
        m[10] = 0x80;
    }
    m[16..20].copy_from_slice(&yiaddr);
    m[28..34].copy_from_slice(&chaddr);
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(&[53, 1, kind]);
    if op == 2 {
        m.extend_from_slice(&[54, 4]);
        m.extend_from_slice(&server);
        m.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 255, 255, 0, 3, 4]);
        m.extend_from_slice(&server);
    }
    m.push(255);
    m
}

fn octets(ip: &str) -> [u8; 4] {
    ip.parse::<std::net::Ipv4Addr>().expect("IPv4").octets()
}

/// Binds a UDP socket in the calling thread's namespace with SO_REUSEADDR
/// and SO_BROADCAST, optionally to a device.
fn udp_socket(port: u16, device: Option<&str>) -> std::net::UdpSocket {
    use std::os::fd::AsRawFd;
    // Create unbound first so the options apply before bind.
    // SAFETY: plain socket syscalls on a descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh socket; ownership moves into the UdpSocket.
    let sock = unsafe { <std::net::UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_BROADCAST] {
        // SAFETY: valid fd, pointer to a c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(
            rc,
            0,
            "setsockopt {opt}: {}",
            std::io::Error::last_os_error()
        );
    }
    if let Some(dev) = device {
        // SAFETY: valid fd, pointer to the device name bytes of the given length.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as libc::socklen_t,
            )
        };
        assert_eq!(
            rc,
            0,
            "SO_BINDTODEVICE {dev}: {}",
            std::io::Error::last_os_error()
        );
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    // SAFETY: valid fd and a sockaddr_in of the given size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind :{port}: {}", std::io::Error::last_os_error());
    sock
}

/// Sends datagrams from `ns` (source port `from_port`, bound to `device`).
fn send_from(ns: &Netns, from_port: u16, device: &'static str, packets: Vec<(String, Vec<u8>)>) {
    ns.within(move || {
        let sock = udp_socket(from_port, Some(device));
        for (dst, payload) in packets {
            sock.send_to(&payload, dst.as_str())
                .unwrap_or_else(|e| panic!("send to {dst}: {e}"));
        }
    });
}

/// A datagram a [`Listener`] received: its local port, source and payload.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u16, std::net::SocketAddr, Vec<u8>)>>>;

/// The DHCP client port the rogue aims at, and a control port.
const CLIENT_PORT: u16 = 68;
const CONTROL_PORT: u16 = 6868;

/// Records every datagram reaching UDP ports 68 and 6868 on `eth0` of a
/// namespace; it can also send from port 68 (a client's DISCOVER).
struct Listener {
    seen: Seen,
    outbox: std::sync::mpsc::Sender<(String, Vec<u8>)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(ns: &Netns) -> Listener {
        use std::sync::atomic::Ordering;
        let seen: Seen = Default::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (outbox, inbox) = std::sync::mpsc::channel::<(String, Vec<u8>)>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let handle = ns.spawn(move || {
            let socks: Vec<(u16, std::net::UdpSocket)> = [CLIENT_PORT, CONTROL_PORT]
                .into_iter()
                .map(|port| {
                    let s = udp_socket(port, Some("eth0"));
                    s.set_nonblocking(true).expect("nonblocking");
                    (port, s)
                })
                .collect();
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::SeqCst) {
                while let Ok((dst, payload)) = inbox.try_recv() {
                    socks[0]
                        .1
                        .send_to(&payload, dst.as_str())
                        .unwrap_or_else(|e| panic!("send to {dst}: {e}"));
                }
                for (port, sock) in &socks {
                    while let Ok((n, from)) = sock.recv_from(&mut buf) {
                        seen2
                            .lock()
                            .expect("seen")
                            .push((*port, from, buf[..n].to_vec()));
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listener did not start");
        Listener {
            seen,
            outbox,
            stop,
            handle: Some(handle),
        }
    }

    /// Sends `payload` from port 68 to `dst`.
    fn send(&self, dst: &str, payload: Vec<u8>) {
        self.outbox
            .send((dst.to_string(), payload))
            .expect("outbox");
    }

    /// What arrived on local `port` from address `ip`: the sources.
    fn got(&self, port: u16, ip: &str) -> Vec<std::net::SocketAddr> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|(p, from, _)| *p == port && from.ip().to_string() == ip)
            .map(|(_, from, _)| *from)
            .collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                eprintln!("listener thread panicked");
            }
        }
    }
}

/// Issue 3: a pod running its own DHCP server (dnsmasq on its eth0, and
/// hand-made OFFERs) cannot reach another pod or the LAN with server
/// packets: everything from UDP source port 67 is dropped at its port and
/// counted as `drop_dhcp_server`, while the same datagrams from another
/// source port arrive, and the pod's ordinary traffic keeps flowing.
#[test]
fn rogue_dhcp_server_in_a_pod_is_dropped_and_counted() {
    let w = World::lanbridge("rog");
    let mut dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let _daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let conf = lan_conf(NET, 5.0);
    let (pods, atts) = pods(&w, "r", 2);
    let results: Vec<Value> = atts.iter().map(|a| add(&w, &conf, a)).collect();
    let (rogue, victim) = (&pods[0], &pods[1]);
    let rogue_ip = first_ip(&results[0]);
    let victim_ip = first_ip(&results[1]);
    let rogue_port = host_veth(&results[0], LAN_NET_BRIDGE);
    let victim_port = host_veth(&results[1], LAN_NET_BRIDGE);
    let lan_host_ip = lanbridge_tests::topology::LAN_HOST;

    let lan_listener = Listener::start(&w.topo.lan_host);
    let pod_listener = Listener::start(victim);

    // Hand-made OFFERs from the rogue: broadcast, and unicast to the LAN
    // host and to the other pod; from the server port 67 and from 1067 (to
    // the client port: a server or relay speaking either way), and the same
    // datagrams from 1067 to a control port, which must arrive.
    let offer = |to: [u8; 6]| bootp(2, 2, true, octets("192.168.77.222"), octets(&rogue_ip), to);
    let victim_mac = mac(&mac_of(victim, "eth0"));
    let to = |port: u16| {
        vec![
            (format!("255.255.255.255:{port}"), offer(victim_mac)),
            (
                format!("{lan_host_ip}:{port}"),
                offer([2, 0, 0, 0, 0, 0x50]),
            ),
            (format!("{victim_ip}:{port}"), offer(victim_mac)),
        ]
    };
    send_from(rogue, 67, "eth0", to(CLIENT_PORT));
    send_from(rogue, 1067, "eth0", to(CLIENT_PORT));
    send_from(rogue, 1067, "eth0", to(CONTROL_PORT));
    let control = |l: &Listener, n: usize| {
        wait_until(Duration::from_secs(3), || {
            l.got(CONTROL_PORT, &rogue_ip).len() >= n
        })
    };
    assert!(
        control(&lan_listener, 1),
        "control datagram from the rogue (1067 -> {CONTROL_PORT}) never reached the LAN host; \
         rogue pings it: {}",
        rogue.ping(lan_host_ip)
    );
    assert!(
        control(&pod_listener, 2),
        "control datagrams (broadcast + unicast, 1067 -> {CONTROL_PORT}) never reached the other pod: {:?}",
        pod_listener.got(CONTROL_PORT, &rogue_ip)
    );

    let hand_made = counter(&inspect(&w, NET), &rogue_port, "drop_dhcp_server");
    assert!(
        hand_made >= 6,
        "expected ≥ 6 drop_dhcp_server on {rogue_port} for the hand-made server packets, got {hand_made}:\n{}",
        inspect_table(&w, NET)
    );

    // A real server in the rogue pod, answering a client on the LAN that
    // found it (unicast DISCOVER from the LAN host's port 68).
    let rogue_dns = Dnsmasq::start(
        rogue,
        &w.path().join("rogue-dnsmasq"),
        &DnsmasqConf {
            interface: "eth0".into(),
            range_start: "192.168.77.200".into(),
            range_end: "192.168.77.210".into(),
            lease: "1h".into(),
            router: Some(rogue_ip.clone()),
            ping: false,
            extra: vec!["--dhcp-authoritative".into()],
        },
    );
    let lan_host_mac = mac(&mac_of(&w.topo.lan_host, "eth0"));
    lan_listener.send(
        &format!("{rogue_ip}:67"),
        bootp(1, 1, true, [0; 4], [0; 4], lan_host_mac),
    );
    assert!(
        rogue_dns.wait_log("DHCPOFFER(eth0)", Duration::from_secs(3)),
        "the rogue dnsmasq never answered (test setup):\n{}",
        rogue_dns.log()
    );
    std::thread::sleep(Duration::from_millis(300));

    assert_eq!(
        lan_listener.got(CLIENT_PORT, &rogue_ip),
        vec![],
        "the LAN host received DHCP server packets from the rogue pod"
    );
    assert_eq!(
        pod_listener.got(CLIENT_PORT, &rogue_ip),
        vec![],
        "the other pod received DHCP server packets from the rogue pod"
    );
    drop(lan_listener);
    drop(pod_listener);

    let report = inspect(&w, NET);
    let dropped = counter(&report, &rogue_port, "drop_dhcp_server");
    assert!(
        dropped > hand_made,
        "the rogue dnsmasq's OFFER was not counted as drop_dhcp_server on {rogue_port} \
         ({hand_made} before, {dropped} after):\n{}",
        inspect_table(&w, NET)
    );
    eprintln!("drop_dhcp_server on {rogue_port}: {hand_made} hand-made, {dropped} in all");
    assert_eq!(counter(&report, &victim_port, "drop_dhcp_server"), 0);

    // Ordinary traffic of the rogue pod still flows.
    assert!(rogue.ping(LAN_ROUTER), "rogue pod cannot ping the router");
    assert!(victim.ping(LAN_ROUTER), "other pod cannot ping the router");

    // With the LAN's server gone, another pod's DHCP client gets nothing,
    // although the rogue server is running.
    dns.kill();
    let udhcpc = udhcpc_once(victim, "eth0", 2);
    assert!(
        !udhcpc.success(),
        "the other pod got a lease with only the rogue server up:\n{}\n{}\n--- rogue ---\n{}",
        udhcpc.stdout,
        udhcpc.stderr,
        rogue_dns.log()
    );
    assert!(
        !rogue_dns.log().contains(&mac_of(victim, "eth0")),
        "the rogue server saw the other pod's client:\n{}",
        rogue_dns.log()
    );
    drop(rogue_dns);
    for (a, r) in atts.iter().zip(&results) {
        del(&w, &conf, a, Some(r));
    }
}

/// The octets of `ip link`'s text form of a MAC, for a crafted frame.
fn mac(s: &str) -> [u8; 6] {
    s.parse::<Mac>().expect("a MAC").octets()
}

// ---------------------------------------------------------------------------
// Side by side with the reference recipe.

/// How long the reference bridge + dhcp ADD may try before the test calls it.
const REFERENCE_PATIENCE: Duration = Duration::from_secs(8);

/// Issue 3: on the same node, LAN and dnsmasq, the reference `bridge` plugin
/// with the reference `dhcp` IPAM (and its daemon) never gets a lease (its
/// DISCOVERs stay on the bridge: dnsmasq never hears the pod), while a
/// lanbridge pod, added meanwhile, gets one.
#[test]
fn reference_bridge_and_dhcp_never_lease_while_lanbridge_does() {
    let w = World::lanbridge("side");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let mut ref_daemon = ReferenceDhcp::start(&w.topo.node, &w.path().join("cni-dhcp"));
    let ref_conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "refnet",
        "type": "bridge",
        "bridge": "cni0",
        "ipam": {"type": "dhcp", "daemonSocketPath": ref_daemon.socket.display().to_string()}
    });
    let ref_pod = w.topo.pod("ref");
    let ref_att = Attachment::new("refctr", &ref_pod, "eth0");

    // The reference ADD runs on its own thread with a deadline; lanbridge's
    // ADD happens meanwhile.
    let reference = {
        let (rt, conf, att) = (w.rt.clone(), ref_conf.clone(), ref_att.clone());
        std::thread::spawn(move || {
            let conf = lanbridge_tests::runtime::inject(&conf, &conf, &att, None);
            let env = rt.env("ADD", &att);
            let mut cmd = std::process::Command::new("nsenter");
            cmd.arg(format!("--net={}", rt.node.display()))
                .arg("--")
                .arg(rt.find("bridge"))
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            for (k, v) in [
                ("CNI_COMMAND", env.command),
                ("CNI_CONTAINERID", env.container_id),
                ("CNI_NETNS", env.netns),
                ("CNI_IFNAME", env.ifname),
                ("CNI_PATH", env.path),
            ] {
                if let Some(v) = v {
                    cmd.env(k, v);
                }
            }
            let started = Instant::now();
            let out = lanbridge_tests::process::run(
                &mut cmd,
                Some(conf.to_string().as_bytes()),
                REFERENCE_PATIENCE,
            );
            (out, started.elapsed())
        })
    };

    let conf = lan_conf(NET, 5.0);
    let lb_pod = w.topo.pod("lb");
    let lb_att = Attachment::new("lbctr", &lb_pod, "eth0");
    let started = Instant::now();
    let r = add(&w, &conf, &lb_att);
    let lb_took = started.elapsed();
    let lb_ip = first_ip(&r);
    assert!(
        in_pool(&lb_ip),
        "lanbridge pod: {lb_ip} not from dnsmasq's pool"
    );
    assert_eq!(lb_pod.ipv4_addrs("eth0"), vec![format!("{lb_ip}/24")]);
    assert!(
        dns.lease_of(&lb_ip).is_some(),
        "dnsmasq does not list {lb_ip}"
    );
    assert!(
        lb_pod.ping(LAN_ROUTER),
        "lanbridge pod cannot ping the router"
    );

    let (out, ref_took) = reference.join().expect("reference ADD thread");
    eprintln!(
        "lanbridge ADD: {lb_took:?}; reference ADD: {ref_took:?}, timed out: {}, exit {:?}",
        out.timed_out, out.code
    );
    assert!(
        !out.success(),
        "the reference bridge + dhcp got a lease:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let ref_addrs: Vec<String> = ref_pod
        .ipv4_addrs("eth0")
        .into_iter()
        .filter(|a| in_pool(a.split('/').next().unwrap_or_default()))
        .collect();
    assert_eq!(
        ref_addrs,
        Vec::<String>::new(),
        "reference pod has a LAN address"
    );
    if ref_pod.has_link("eth0") {
        let ref_mac = mac_of(&ref_pod, "eth0");
        assert!(
            !dns.log().contains(&ref_mac),
            "dnsmasq heard the reference pod ({ref_mac}):\n{}",
            dns.log()
        );
    }

    // Clean up the reference attachment while its daemon is up (its DEL
    // fails without it), then stop the daemon: the orphaned `dhcp` client of
    // the killed ADD then gets an error and exits.
    let ref_del = w.rt.invoke("DEL", &ref_conf, &ref_att, None);
    assert!(ref_del.success(), "reference DEL: {ref_del}");
    ref_daemon.proc.kill();
    let daemon_pid = daemon.pid().map(|p| p.to_string());
    let strays = || -> Vec<String> {
        lanbridge_tests::process::run(
            std::process::Command::new("ip").args(["netns", "pids", w.topo.node.name()]),
            None,
            Duration::from_secs(5),
        )
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .filter(|p| Some(p) != daemon_pid.as_ref())
        .collect()
    };
    assert!(
        wait_until(Duration::from_secs(5), || strays().is_empty()),
        "processes left in the node after the reference run: {:?}",
        strays()
    );
    del(&w, &conf, &lb_att, Some(&r));
}

// ---------------------------------------------------------------------------
// Config errors.

/// `uplink` with any IPAM but dhcp is rejected (code 7, naming `uplink`);
/// an uplink that does not exist gives an error naming it and leaves no
/// port, pod interface, pins or state behind.
#[test]
fn uplink_config_errors_leave_nothing_behind() {
    let w = World::lanbridge("upl");
    let pod = w.topo.pod("p");
    let att = Attachment::new("uplctr", &pod, "eth0");

    let mut host_local = lan_conf(NET, 5.0);
    host_local["ipam"] = serde_json::json!({
        "type": "host-local",
        "subnet": "192.168.77.0/24",
        "dataDir": w.data_dir().display().to_string(),
    });
    let out = w.rt.invoke("ADD", &host_local, &att, None);
    assert_eq!(out.expect_err("uplink + host-local"), 7, "{out}");
    assert!(
        out.error_text().contains("uplink"),
        "error does not name uplink: {out}"
    );

    let mut missing = lan_conf(NET, 5.0);
    missing["uplink"] = serde_json::json!("nosuch0");
    let out = w.rt.invoke("ADD", &missing, &att, None);
    let code = out.expect_err("nonexistent uplink");
    let text = out.error_text();
    assert!(
        text.contains("nosuch0") && text.contains("uplink"),
        "error (code {code}) does not name the uplink: {out}"
    );

    // Nothing left: no port in the node, no interface in the pod, no pins
    // of a port, no endpoints, no state.
    assert_eq!(w.port_links(LAN_NET_BRIDGE), Vec::<String>::new());
    assert_eq!(pod.links(), vec!["lo".to_string()]);
    assert_eq!(w.link_pins(NET), Vec::<String>::new());
    assert_eq!(w.map_entries(NET, "lb_endpoints"), Vec::<Value>::new());
    assert_eq!(w.state_files(), Vec::<std::path::PathBuf>::new());
    assert_eq!(master_of(&w.topo.node, NODE_UPLINK), None);
    assert_eq!(
        w.topo.node.ipv4_addrs(NODE_UPLINK),
        vec![format!("{NODE_ADDR}/24")]
    );
    // DEL of the failed attachment is fine (runtimes retry it).
    w.rt.invoke("DEL", &missing, &att, None)
        .expect_ok("DEL after failed ADD");
}

/// Names with dots, which bpffs refuses as they are: a network `lbt.lan`
/// and a VLAN-style uplink `eth0.lan` (renamed in the node). A pod leases
/// through the relay, its pins are there (dots as colons), DEL and cleanup
/// leave none.
#[test]
fn dotted_network_and_uplink_names_work() {
    const DOTTED_NET: &str = "lbt.lan";
    const UPLINK: &str = "eth0.lan";
    let w = World::lanbridge("dot");
    let node = &w.topo.node;
    let gateway = node.default_gateway();
    node.ip(&["link", "set", NODE_UPLINK, "down"]);
    node.ip(&["link", "set", NODE_UPLINK, "name", UPLINK]);
    node.ip(&["link", "set", UPLINK, "up"]);
    if let Some(gw) = &gateway {
        node.ip(&["route", "replace", "default", "via", gw, "dev", UPLINK]);
    }
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let _daemon = LanbridgeDaemon::start(node, &w.path().join("daemon"));
    let mut conf = lan_conf(DOTTED_NET, 5.0);
    conf["uplink"] = json!(UPLINK);
    let (_pods, atts) = pods(&w, "dt", 1);
    let r = add(&w, &conf, &atts[0]);
    let ip = first_ip(&r);
    assert!(
        dns.lease_of(&ip).is_some(),
        "no lease for {ip} at dnsmasq: {:?}",
        dns.leases()
    );
    let pins = w.pin_root().join("lbt:lan");
    assert!(
        pins.join("link_eth0:lan").exists() && pins.join("lb_from_pod").exists(),
        "pins of {DOTTED_NET} / {UPLINK}: {:?}",
        std::fs::read_dir(&pins).map(|d| d.count())
    );
    del(&w, &conf, &atts[0], Some(&r));
    let out = process::run(
        node.command(&lanbridge_bin().display().to_string()).args([
            "cleanup",
            "--network",
            DOTTED_NET,
        ]),
        None,
        process::DEFAULT_TIMEOUT,
    );
    assert!(out.success(), "cleanup: {}", out.stderr);
    assert!(!pins.exists(), "pins left after cleanup: {}", out.stdout);
}

/// Issue 12, item 5: time to a lease (one warm ADD) with dnsmasq as
/// shipped (its ping check on) and with `--no-ping`. dnsmasq answers a
/// DISCOVER for a new address only after 3 s without an echo reply, deaf to
/// everything else meanwhile, and then answers the first DISCOVER; the
/// client listens for an OFFER to any of its DISCOVERs the whole time, so it
/// loses nothing past the server's wait.
#[test]
fn time_to_lease_with_dnsmasq_ping_check_on_and_off() {
    let w = World::lanbridge("ping");
    let _daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let conf = lan_conf(NET, 10.0);
    let (_pods, atts) = pods(&w, "t", 3);
    let timed = |dir: &str, dnsmasq: DnsmasqConf, att: &[Attachment]| {
        let mut dns = Dnsmasq::start(&w.topo.lan, &w.path().join(dir), &dnsmasq);
        let mut took = Duration::ZERO;
        for att in att {
            let started = Instant::now();
            let r = add(&w, &conf, att);
            took = started.elapsed();
            assert!(dns.lease_of(&first_ip(&r)).is_some(), "{dir}: no lease");
            del(&w, &conf, att, Some(&r));
        }
        dns.kill();
        took
    };
    // The first ADD of the network loads its programs: not timed.
    let no_ping = timed("dnsmasq-no-ping", DnsmasqConf::lan(), &atts[..2]);
    let ping = timed("dnsmasq-ping", DnsmasqConf::lan_pinging(), &atts[2..]);
    eprintln!("time to lease: dnsmasq ping check on {ping:?}, --no-ping {no_ping:?}");
    assert!(
        ping >= Duration::from_millis(2900),
        "dnsmasq's ping check did not run: {ping:?}"
    );
    assert!(
        ping < no_ping + Duration::from_millis(3300),
        "the client lost time past dnsmasq's 3 s ping wait: {ping:?} vs {no_ping:?}"
    );
}

/// Issue 12, item 2: the reference dhcp IPAM's `provide` and `request` keep
/// their meaning, judged by dnsmasq: the provided hostname in its lease
/// file, the provided vendor class and exactly the requested options
/// (`skipDefault`) in its log; `priority` is the metric of the lease's
/// routes in the pod and in the result; a key lanbridge cannot honour is
/// code 7 naming it, and leaves nothing behind.
#[test]
fn reference_provide_and_request_reach_the_server() {
    let w = World::lanbridge("prov");
    let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), &DnsmasqConf::lan());
    let _daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
    let mut conf = lan_conf(NET, 5.0);
    conf["ipam"]["provide"] = json!([
        {"option": "host-name", "fromArg": "K8S_POD_INFRA_CONTAINER_ID"},
        {"option": "vendor-class-identifier", "value": "lanbridge-test"}
    ]);
    conf["ipam"]["request"] = json!([
        {"skipDefault": true},
        {"option": "subnet-mask"},
        {"option": "routers"},
        {"option": 42}
    ]);
    conf["ipam"]["priority"] = json!(300);
    // Route attributes beyond dst and gw are cniVersion 1.1.0's.
    conf["cniVersion"] = json!("1.1.0");
    let (pods, atts) = pods(&w, "v", 1);
    let mut att = atts[0].clone();
    att.args = Some(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=infra-7"
            .into(),
    );
    let r = add(&w, &conf, &att);
    let ip = first_ip(&r);
    let lease = dns.lease_of(&ip).expect("a lease");
    assert_eq!(lease.hostname, "infra-7", "provide host-name fromArg");
    let log = dns.log();
    assert!(log.contains("vendor class: lanbridge-test"), "{log}");
    assert!(
        log.contains("requested options: 1:netmask, 3:router, 42:ntp-server\n"),
        "the parameter request list is not exactly the requested one:\n{log}"
    );
    let routes = pods[0].routes4();
    let default = routes.iter().find(|r| r["dst"] == "default");
    assert_eq!(
        default.map(|r| (r["gateway"].clone(), r["metric"].clone())),
        Some((json!(LAN_ROUTER), json!(300))),
        "the pod's default route: {routes:?}"
    );
    assert!(
        r["routes"].as_array().is_some_and(|rs| rs
            .iter()
            .any(|r| r["dst"] == "0.0.0.0/0" && r["priority"] == 300)),
        "the result's default route has no priority 300: {r}"
    );
    w.rt.invoke("CHECK", &conf, &att, Some(&r))
        .expect_ok("CHECK with priority");
    del(&w, &conf, &att, Some(&r));

    conf["ipam"]["provide"] = json!([{"option": "dhcp-client-identifier", "value": "x"}]);
    let out = w.rt.invoke("ADD", &conf, &att, None);
    assert_eq!(out.expect_err("provide of option 61"), 7, "{out}");
    assert!(out.error_text().contains("ipam.provide[0].option"), "{out}");
    assert_eq!(w.port_links(LAN_NET_BRIDGE), Vec::<String>::new());
}

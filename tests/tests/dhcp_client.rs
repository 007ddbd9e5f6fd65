//! lanbridge's DHCP client (the library's `dhcp` module) against real
//! dnsmasq and a scripted server, from namespaces bridged straight onto the
//! harness's LAN (root required: these fail, not skip, without it).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use lanbridge::dhcp::{
    acquire, rebind, release, renew, DhcpError, DhcpSocket, Lease, Params, Phase, PROBE_TIME,
};
use lanbridge::node::mac::{colon_hex, Mac};
use lanbridge::node::netns::NetNs;
use lanbridge_tests::dhcp_server::{in_pool, Dnsmasq, DnsmasqConf, DnsmasqLease};
use lanbridge_tests::netns::{require_root, Netns};
use lanbridge_tests::process::wait_until;
use lanbridge_tests::topology::{Topology, LAN_BRIDGE, LAN_ROUTER};
use socket2::{Domain, Protocol, Socket, Type};

/// dnsmasq serves from the LAN bridge's address, which is also the router.
const SERVER: &str = LAN_ROUTER;
const DNS: &str = "192.168.77.53";
const DOMAIN: &str = "lan.test";
const LEASE_SECS: u32 = 600;

const MAC_A: Mac = Mac::new([0x02, 0x1b, 0xd0, 0, 0, 0x0a]);
const MAC_B: Mac = Mac::new([0x02, 0x1b, 0xd0, 0, 0, 0x0b]);
/// A host on the LAN that already holds an address.
const SQUATTER: Mac = Mac::new([0x02, 0x1b, 0xd0, 0, 0, 0x0c]);

/// The harness's LAN, maybe with dnsmasq on its bridge; clients are bridged
/// onto it directly (no lanbridge in between). Dropped in field order.
struct Lan {
    dnsmasq: Option<Dnsmasq>,
    topo: Topology,
    dir: tempfile::TempDir,
}

impl Lan {
    fn new(tag: &str) -> Lan {
        require_root();
        Lan {
            dnsmasq: None,
            topo: Topology::new(tag),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Starts dnsmasq on the LAN bridge: the pool, a DNS server, a domain,
    /// LEASE_SECS leases, plus `extra`.
    fn start_dnsmasq(&mut self, extra: &[&str]) {
        let mut conf = DnsmasqConf {
            lease: format!("{}m", LEASE_SECS / 60),
            router: None,
            ..DnsmasqConf::lan()
        };
        conf.extra = [
            format!("--dhcp-option=option:dns-server,{DNS}"),
            format!("--dhcp-option=option:domain-name,{DOMAIN}"),
        ]
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        let dir: PathBuf = self.dir.path().join("dnsmasq");
        self.dnsmasq = Some(Dnsmasq::start(&self.topo.lan, &dir, &conf));
    }

    fn server(&self) -> &Dnsmasq {
        self.dnsmasq.as_ref().expect("dnsmasq started")
    }

    fn log(&self) -> String {
        self.server().log()
    }

    fn leases(&self) -> Vec<DnsmasqLease> {
        self.server().leases()
    }

    /// A client namespace with `eth0` (MAC `mac`, up, no address) on the LAN.
    fn pod(&self, mac: Mac) -> Netns {
        self.topo
            .lan_client(&format!("m{:02x}", mac.octets()[5]), &mac.to_string())
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn params(mac: Mac, name: &str) -> Params {
    let mut client_id = vec![0];
    client_id.extend_from_slice(name.as_bytes());
    Params {
        mac,
        client_id,
        hostname: Some(name.to_string()),
        timeout: Duration::from_secs(10),
        requested_ip: None,
        options: Default::default(),
    }
}

fn open(pod: &Netns) -> DhcpSocket {
    let netns = NetNs::open(&pod.path()).expect("open pod netns");
    DhcpSocket::open(&netns, "eth0").expect("open DHCP socket in the pod")
}

fn in_range(a: Ipv4Addr) -> bool {
    in_pool(&a.to_string())
}

/// A namespace on the LAN with `address`/24 configured: its kernel answers
/// ARP probes for it.
fn squatter(lan: &Lan, address: &str) -> Netns {
    let ns = lan.pod(SQUATTER);
    ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"]);
    ns
}

/// dnsmasq's lease of `mac`, if any.
fn lease_line(lan: &Lan, mac: Mac) -> Option<DnsmasqLease> {
    let mac = mac.to_string();
    lan.leases().into_iter().find(|l| l.mac == mac)
}

#[tokio::test]
async fn acquires_renews_rebinds_releases_against_dnsmasq() {
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&[]);
    let pod = lan.pod(MAC_A);
    let sock = open(&pod);
    let p = params(MAC_A, "web-0");

    let t = Instant::now();
    let lease = acquire(&sock, &p).await.unwrap();
    eprintln!("acquire against dnsmasq took {:?}", t.elapsed());
    assert!(in_range(lease.address), "{lease:?}");
    assert_eq!(lease.prefix_len, 24);
    assert_eq!(lease.router, Some(ip(SERVER)));
    assert_eq!(lease.dns_servers, [ip(DNS)]);
    assert_eq!(lease.domain.as_deref(), Some(DOMAIN));
    assert_eq!(lease.server_id, ip(SERVER));
    assert_eq!(
        (lease.lease_time, lease.t1, lease.t2),
        (LEASE_SECS, LEASE_SECS / 2, LEASE_SECS * 7 / 8)
    );
    let now = unix_now();
    assert!(lease.acquired_at <= now && lease.acquired_at + 5 > now);

    let line = lease_line(&lan, MAC_A).expect("dnsmasq recorded the lease");
    assert_eq!(line.ip, lease.address.to_string());
    assert_eq!(line.hostname, "web-0");
    assert_eq!(line.client_id, colon_hex(&p.client_id), "client id");

    // As the daemon does after ACK: the address goes on the pod's interface,
    // which unicast renewals and the release need.
    pod.ip(&["addr", "add", &lease.network().to_string(), "dev", "eth0"]);
    let t = Instant::now();
    let renewed = renew(&sock, &p, &lease).await.unwrap();
    eprintln!("renew (unicast) took {:?}", t.elapsed());
    assert_eq!(renewed.address, lease.address);
    assert_eq!(renewed.server_id, ip(SERVER));
    assert!(renewed.acquired_at >= lease.acquired_at);
    assert!(
        lan.log()
            .contains(&format!("DHCPACK({LAN_BRIDGE}) {} ", lease.address)),
        "{}",
        lan.log()
    );

    let rebound = rebind(&sock, &p, &renewed).await.unwrap();
    assert_eq!(rebound.address, lease.address);

    release(sock.unicast_socket(), &p, &rebound).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || lease_line(&lan, MAC_A).is_none()),
        "dnsmasq still holds the lease after RELEASE: {:?}\n{}",
        lan.leases(),
        lan.log()
    );
}

#[tokio::test]
async fn two_pods_on_one_lan_get_distinct_leases_side_by_side() {
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&[]);
    let (pod_a, pod_b) = (lan.pod(MAC_A), lan.pod(MAC_B));
    let (sock_a, sock_b) = (open(&pod_a), open(&pod_b));
    let p_a = params(MAC_A, "pod-a");
    let p_b = Params {
        requested_ip: Some(ip("192.168.77.120")),
        options: Default::default(),
        ..params(MAC_B, "pod-b")
    };
    // Concurrently: each pod sees the other's broadcast replies and must
    // skip them (xid and chaddr).
    let (a, b) = tokio::join!(acquire(&sock_a, &p_a), acquire(&sock_b, &p_b));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.address, b.address);
    assert!(in_range(a.address));
    assert_eq!(
        b.address,
        ip("192.168.77.120"),
        "option 50 honoured; a: {a:?}\n{}",
        lan.log()
    );
    assert_eq!(lease_line(&lan, MAC_A).unwrap().ip, a.address.to_string());
    assert_eq!(lease_line(&lan, MAC_B).unwrap().ip, b.address.to_string());
}

#[tokio::test]
async fn two_pods_asking_for_the_same_address_both_get_one() {
    // dnsmasq offers the address to both (an OFFER reserves nothing); the
    // second REQUEST is NAKed ("address in use") and that client discovers
    // again.
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&[]);
    let (pod_a, pod_b) = (lan.pod(MAC_A), lan.pod(MAC_B));
    let (sock_a, sock_b) = (open(&pod_a), open(&pod_b));
    let wanted = ip("192.168.77.130");
    let ask = |mac, name| Params {
        requested_ip: Some(wanted),
        options: Default::default(),
        ..params(mac, name)
    };
    let (p_a, p_b) = (ask(MAC_A, "pod-a"), ask(MAC_B, "pod-b"));
    let (a, b) = tokio::join!(acquire(&sock_a, &p_a), acquire(&sock_b, &p_b));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.address, b.address, "{}", lan.log());
    assert!(a.address == wanted || b.address == wanted);
    assert!(in_range(a.address) && in_range(b.address));
}

#[tokio::test]
async fn acquires_when_the_pod_has_strict_rp_filter() {
    // Without an address or route in the pod, rp_filter drops the server's
    // broadcast replies before any UDP socket: the packet socket still sees them.
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&[]);
    let pod = lan.pod(MAC_A);
    pod.run(&["sysctl", "-w", "net.ipv4.conf.all.rp_filter=1"]);
    pod.run(&["sysctl", "-w", "net.ipv4.conf.eth0.rp_filter=1"]);
    let lease = acquire(&open(&pod), &params(MAC_A, "strict"))
        .await
        .unwrap();
    assert!(in_range(lease.address));
}

#[tokio::test]
async fn acquire_without_a_server_fails_with_no_offer_within_the_timeout() {
    let lan = Lan::new("dhcpc");
    let pod = lan.pod(MAC_A);
    let p = Params {
        timeout: Duration::from_millis(1500),
        ..params(MAC_A, "alone")
    };
    let t = Instant::now();
    let err = acquire(&open(&pod), &p).await.unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(err, DhcpError::NoOffer { discovers, .. } if discovers >= 3),
        "{err:?}"
    );
    assert!(
        took >= p.timeout && took < p.timeout + Duration::from_millis(500),
        "{took:?}"
    );
    assert!(
        err.to_string().starts_with("no DHCPOFFER seen on eth0"),
        "{err}"
    );
}

#[tokio::test]
async fn renewing_a_lease_the_server_does_not_know_is_nakked() {
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&["--dhcp-authoritative"]);
    let pod = lan.pod(MAC_A);
    pod.ip(&["addr", "add", "192.168.77.77/24", "dev", "eth0"]);
    let forged = Lease {
        address: ip("192.168.77.77"),
        prefix_len: 24,
        router: None,
        dns_servers: vec![],
        domain: None,
        classless_routes: vec![],
        server_id: ip(SERVER),
        lease_time: 600,
        t1: 300,
        t2: 525,
        acquired_at: unix_now(),
    };
    let err = renew(&open(&pod), &params(MAC_A, "forged"), &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DhcpError::Nak { server, address, .. }
            if *server == ip(SERVER) && *address == forged.address),
        "{err:?}"
    );
}

/// A scripted DHCP server on the LAN bridge: `respond` turns each client
/// message into the replies it broadcasts. Stopped and joined on drop.
struct FakeServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<MessageType>>>,
}

impl FakeServer {
    fn start(
        lan: &Lan,
        mut respond: impl FnMut(&Message) -> Vec<Message> + Send + 'static,
    ) -> FakeServer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = lan.topo.lan.spawn(move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_broadcast(true).unwrap();
            s.bind_device(Some(LAN_BRIDGE.as_bytes())).unwrap();
            s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67).into())
                .unwrap();
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let s = std::net::UdpSocket::from(s);
            ready_tx.send(()).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::SeqCst) {
                let Ok(n) = s.recv(&mut buf) else { continue };
                let Ok(m) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                    continue;
                };
                if m.opcode() != Opcode::BootRequest {
                    continue;
                }
                seen.extend(m.opts().msg_type());
                for reply in respond(&m) {
                    let mut out = Vec::new();
                    reply.encode(&mut Encoder::new(&mut out)).unwrap();
                    s.send_to(&out, (Ipv4Addr::BROADCAST, 68)).unwrap();
                }
            }
            seen
        });
        ready_rx.recv().expect("fake server started");
        FakeServer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the server; the message types it received, in order.
    fn stop(mut self) -> Vec<MessageType> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("fake server panicked")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // Already failing if it panicked; don't panic again in drop.
            t.join().ok();
        }
    }
}

/// A reply of `kind` to `req`, offering `yiaddr`, with lease options.
fn answer(req: &Message, kind: MessageType, yiaddr: &str) -> Message {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(req.xid(), u, ip(yiaddr), u, u, req.chaddr());
    m.set_opcode(Opcode::BootReply).set_flags(req.flags());
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(ip(SERVER)));
    if kind != MessageType::Nak {
        o.insert(DhcpOption::AddressLeaseTime(300));
        o.insert(DhcpOption::SubnetMask(ip("255.255.255.0")));
        o.insert(DhcpOption::Router(vec![ip(SERVER)]));
    }
    m
}

#[tokio::test]
async fn nak_restarts_discovery_and_replies_for_others_are_skipped() {
    let lan = Lan::new("dhcpc");
    let pod = lan.pod(MAC_A);
    let mut discovers = 0;
    let mut requests = 0;
    let server = FakeServer::start(&lan, move |req| match req.opts().msg_type() {
        Some(MessageType::Discover) => {
            discovers += 1;
            let offered = if discovers == 1 {
                "192.168.77.120"
            } else {
                "192.168.77.121"
            };
            let mut other_xid = answer(req, MessageType::Offer, "192.168.77.200");
            other_xid.set_xid(req.xid().wrapping_add(1));
            let mut other_mac = answer(req, MessageType::Offer, "192.168.77.201");
            other_mac.set_chaddr(MAC_B.as_ref());
            vec![
                other_xid,
                other_mac,
                answer(req, MessageType::Offer, offered),
            ]
        }
        Some(MessageType::Request) => {
            requests += 1;
            if requests == 1 {
                let mut nak = answer(req, MessageType::Nak, "0.0.0.0");
                nak.opts_mut()
                    .insert(DhcpOption::Message("address taken".to_string()));
                vec![nak]
            } else {
                vec![answer(req, MessageType::Ack, "192.168.77.121")]
            }
        }
        _ => vec![],
    });
    let lease = acquire(&open(&pod), &params(MAC_A, "nakked"))
        .await
        .unwrap();
    assert_eq!(lease.address, ip("192.168.77.121"));
    assert_eq!(lease.lease_time, 300);
    let mut seen = server.stop();
    seen.dedup(); // retransmissions under load
    use MessageType::{Discover, Request};
    assert_eq!(seen, [Discover, Request, Discover, Request]);
}

#[tokio::test]
async fn an_offer_without_ack_fails_naming_the_server_and_address() {
    let lan = Lan::new("dhcpc");
    let pod = lan.pod(MAC_A);
    let _server = FakeServer::start(&lan, |req| match req.opts().msg_type() {
        Some(MessageType::Discover) => vec![answer(req, MessageType::Offer, "192.168.77.130")],
        _ => vec![],
    });
    let p = Params {
        timeout: Duration::from_secs(2),
        ..params(MAC_A, "no-ack")
    };
    let err = acquire(&open(&pod), &p).await.unwrap_err();
    assert!(
        matches!(&err, DhcpError::NoAck { phase: Phase::Selecting, address, server: Some(s), requests, .. }
            if *address == ip("192.168.77.130") && *s == ip(SERVER) && *requests >= 3),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("no DHCPACK on eth0 for 192.168.77.130 from server 192.168.77.1"),
        "{err}"
    );
}

#[tokio::test]
async fn probe_finds_the_holder_at_once_and_hears_silence_in_probe_time() {
    let lan = Lan::new("dhcpc");
    let _squatter = squatter(&lan, "192.168.77.110");
    let pod = lan.pod(MAC_A);
    let sock = open(&pod);

    let t = Instant::now();
    let free = sock.probe(MAC_A, ip("192.168.77.111")).await.unwrap();
    let took = t.elapsed();
    eprintln!("probe of a free address took {took:?}");
    assert_eq!(free, None);
    // PROBE_TIME by design; the margin is for a loaded test machine.
    assert!(
        took >= PROBE_TIME && took < PROBE_TIME + Duration::from_secs(1),
        "{took:?}"
    );

    let t = Instant::now();
    let taken = sock.probe(MAC_A, ip("192.168.77.110")).await.unwrap();
    let took = t.elapsed();
    eprintln!("probe of a taken address took {took:?}");
    assert_eq!(taken, Some(SQUATTER));
    assert!(took < Duration::from_millis(100), "{took:?}");

    // The socket is reusable, and a probe's own frames are no conflict.
    assert_eq!(sock.probe(MAC_A, ip("192.168.77.112")).await.unwrap(), None);
}

#[tokio::test]
async fn declines_an_address_in_use_and_leases_another_from_dnsmasq() {
    // dnsmasq reserves the squatter's address for the pod, so its first
    // offer is the conflict.
    let taken = "192.168.77.110";
    let mut lan = Lan::new("dhcpc");
    lan.start_dnsmasq(&[&format!("--dhcp-host={MAC_A},{taken}")]);
    let _squatter = squatter(&lan, taken);
    let pod = lan.pod(MAC_A);
    let sock = open(&pod);

    let t = Instant::now();
    let lease = acquire(&sock, &params(MAC_A, "declining")).await.unwrap();
    eprintln!("acquire with one DHCPDECLINE took {:?}", t.elapsed());
    assert_ne!(lease.address, ip(taken), "{}", lan.log());
    assert!(in_range(lease.address), "{lease:?}");
    let log = lan.log();
    assert!(
        log.contains(&format!(
            "DHCPDECLINE({LAN_BRIDGE}) {taken} {MAC_A} address in use by {SQUATTER} (ARP)"
        )),
        "{log}"
    );
    assert_eq!(
        lease_line(&lan, MAC_A).unwrap().ip,
        lease.address.to_string()
    );
}

/// A fake server's received messages, shared with the test.
type Inbox = Arc<Mutex<Vec<Message>>>;

#[tokio::test]
async fn a_server_offering_only_an_address_in_use_fails_with_address_in_use() {
    let taken = "192.168.77.120";
    let lan = Lan::new("dhcpc");
    let _squatter = squatter(&lan, taken);
    let pod = lan.pod(MAC_A);
    let inbox = Inbox::default();
    let got = inbox.clone();
    let server = FakeServer::start(&lan, move |req| {
        got.lock().unwrap().push(req.clone());
        match req.opts().msg_type() {
            Some(MessageType::Discover) => vec![answer(req, MessageType::Offer, taken)],
            Some(MessageType::Request) => vec![answer(req, MessageType::Ack, taken)],
            _ => vec![],
        }
    });
    let p = Params {
        timeout: Duration::from_secs(2),
        ..params(MAC_A, "unlucky")
    };
    let t = Instant::now();
    let err = acquire(&open(&pod), &p).await.unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(&err, DhcpError::AddressInUse { address, server, mac, declines: 1, .. }
            if *address == ip(taken) && *server == ip(SERVER) && *mac == SQUATTER),
        "{err:?}"
    );
    assert!(took >= p.timeout && took < p.timeout + Duration::from_millis(500));
    assert!(
        err.to_string().starts_with(
            "no usable lease on eth0 in 2.0s: 192.168.77.120 from DHCP server 192.168.77.1 is \
             already in use on the link (ARP from 02:1b:d0:00:00:0c), so it was declined"
        ),
        "{err}"
    );

    let mut seen = server.stop();
    seen.dedup();
    use MessageType::{Decline, Discover, Request};
    // The re-offers of the declined address are not requested.
    assert_eq!(seen, [Discover, Request, Decline, Discover], "{err}");
    let declines: Vec<_> = inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.opts().msg_type() == Some(Decline))
        .cloned()
        .collect();
    let [decline] = &declines[..] else {
        panic!("{declines:?}")
    };
    assert_eq!(decline.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        decline.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ip(taken)))
    );
    assert_eq!(
        decline.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(ip(SERVER)))
    );
}

#[tokio::test]
async fn a_rebind_granting_another_address_in_use_declines_it() {
    let lan = Lan::new("dhcpc");
    let _squatter = squatter(&lan, "192.168.77.121");
    let pod = lan.pod(MAC_A);
    pod.ip(&["addr", "add", "192.168.77.120/24", "dev", "eth0"]);
    let server = FakeServer::start(&lan, |req| match req.opts().msg_type() {
        Some(MessageType::Request) => vec![answer(req, MessageType::Ack, "192.168.77.121")],
        _ => vec![],
    });
    let lease = Lease {
        address: ip("192.168.77.120"),
        prefix_len: 24,
        router: None,
        dns_servers: vec![],
        domain: None,
        classless_routes: vec![],
        server_id: ip(SERVER),
        lease_time: 300,
        t1: 150,
        t2: 262,
        acquired_at: unix_now(),
    };
    let err = rebind(&open(&pod), &params(MAC_A, "moved"), &lease)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DhcpError::AddressInUse { address, mac, declines: 1, .. }
            if *address == ip("192.168.77.121") && *mac == SQUATTER),
        "{err:?}"
    );
    let mut seen = server.stop();
    seen.dedup();
    assert_eq!(seen, [MessageType::Request, MessageType::Decline]);
}

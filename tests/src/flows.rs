//! Lan-mode traffic tests: a world with the LAN's dnsmasq and the node's
//! daemon, pods added through lanbridge (alone or chained), probes that
//! bind a chosen source (address and port) and report the peer's answer and
//! address, raw frames (forged ARP), iptables and sysctls in a namespace.
//! Everything happens inside the namespaces of the world.

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::daemon::LanbridgeDaemon;
use crate::dhcp_server::{Dnsmasq, DnsmasqConf};
use crate::fixture::World;
use crate::lan::{self, k8s_args, lan_conf, mac_of, LAN_NET_BRIDGE};
use crate::netns::Netns;
use crate::process;
use crate::result::{first_ip, host_veth};
use crate::runtime::Attachment;
use crate::topology::NODE_UPLINK;

/// How a [`LanNet`] is set up.
#[derive(Debug, Clone, Default)]
pub struct LanOpts {
    /// `iptables -P FORWARD DROP` in the node before the first ADD.
    pub forward_drop: bool,
    /// Keys merged into the lanbridge config (e.g. `{"fastPath": false}`).
    pub extra: Option<Value>,
}

/// One lan-mode network in its own world: the LAN's dnsmasq, the node's
/// daemon, the lanbridge config. Field order is drop order: processes
/// first, the world (namespaces, pins, temp dir) last.
pub struct LanNet {
    pub daemon: LanbridgeDaemon,
    pub dns: Dnsmasq,
    pub net: String,
    /// The single-plugin config of the network.
    pub conf: Value,
    pub w: World,
}

/// A pod attached by lanbridge: its namespace, attachment, result, leased
/// address, host-side port and MAC.
pub struct Pod {
    pub ns: Netns,
    pub att: Attachment,
    pub result: Value,
    pub ip: String,
    pub port: String,
    pub mac: String,
}

impl Pod {
    /// The pod an ADD of a lan-mode network on `eth0` gave `result`.
    pub fn new(ns: Netns, att: Attachment, result: Value) -> Pod {
        let ip = first_ip(&result);
        let port = host_veth(&result, LAN_NET_BRIDGE);
        let mac = mac_of(&ns, "eth0");
        Pod {
            ns,
            att,
            result,
            ip,
            port,
            mac,
        }
    }
}

impl LanNet {
    pub fn new(tag: &str, net: &str, opts: LanOpts) -> LanNet {
        LanNet::with_server(tag, net, opts, &DnsmasqConf::lan())
    }

    /// [`LanNet::new`] with the LAN's dnsmasq serving `server`.
    pub fn with_server(tag: &str, net: &str, opts: LanOpts, server: &DnsmasqConf) -> LanNet {
        let w = World::lanbridge(tag);
        if opts.forward_drop {
            iptables(&w.topo.node, &["-P", "FORWARD", "DROP"]);
        }
        let dns = Dnsmasq::start(&w.topo.lan, &w.path().join("dnsmasq"), server);
        let daemon = LanbridgeDaemon::start(&w.topo.node, &w.path().join("daemon"));
        let mut conf = lan_conf(net, 5.0);
        if let Some(Value::Object(extra)) = opts.extra {
            for (k, v) in extra {
                conf[k] = v;
            }
        }
        LanNet {
            daemon,
            dns,
            net: net.to_string(),
            conf,
            w,
        }
    }

    /// A new pod namespace `name` and its attachment (`<name>-ctr`/eth0,
    /// named as a Kubernetes pod).
    pub fn pod_ns(&self, name: &str) -> (Netns, Attachment) {
        let ns = self.w.topo.pod(name);
        let mut att = Attachment::new(&format!("{name}-ctr"), &ns, "eth0");
        att.args = Some(k8s_args(name));
        (ns, att)
    }

    /// ADD of the network's config for a new pod `name`.
    pub fn add(&self, name: &str) -> Pod {
        let (ns, att) = self.pod_ns(name);
        let result = self
            .w
            .rt
            .invoke("ADD", &self.conf, &att, None)
            .expect_ok(&format!("ADD {name}"));
        self.pod(ns, att, result)
    }

    /// ADD of the conflist `list` (lanbridge first) for a new pod `name`,
    /// with capability arguments `caps` (e.g. `portMappings`).
    pub fn add_list(&self, name: &str, list: &Value, caps: &[(&str, Value)]) -> Pod {
        let (ns, mut att) = self.pod_ns(name);
        for (cap, v) in caps {
            att = att.capability(cap, v.clone());
        }
        let result = self
            .w
            .rt
            .add_list(list, &att)
            .unwrap_or_else(|e| panic!("ADD (conflist) {name}: {e}"));
        self.pod(ns, att, result)
    }

    fn pod(&self, ns: Netns, att: Attachment, result: Value) -> Pod {
        Pod::new(ns, att, result)
    }

    /// The network's config as the one lanbridge entry of a conflist
    /// followed by `more` plugins.
    pub fn conflist(&self, more: &[Value]) -> Value {
        let mut first = self.conf.clone();
        let obj = first.as_object_mut().expect("object");
        let version = obj.remove("cniVersion").expect("cniVersion");
        obj.remove("name");
        let mut plugins = vec![first];
        plugins.extend_from_slice(more);
        json!({"cniVersion": version, "name": self.net, "plugins": plugins})
    }

    /// `lanbridge inspect --json` of the network.
    pub fn report(&self) -> Value {
        lan::inspect(&self.w, &self.net)
    }

    /// The inspect table (for failure messages).
    pub fn table(&self) -> String {
        lan::inspect_table(&self.w, &self.net)
    }

    /// Packets counted for `reason` on `interface` (a port or the uplink).
    pub fn count(&self, interface: &str, reason: &str) -> u64 {
        lan::counter(&self.report(), interface, reason)
    }

    /// Every counter of `interface` as `reason=packets`, for messages.
    pub fn counters_of(&self, interface: &str) -> String {
        counters_of(&self.report(), interface)
    }

    pub fn node(&self) -> &Netns {
        &self.w.topo.node
    }

    pub fn lan_host(&self) -> &Netns {
        &self.w.topo.lan_host
    }
}

/// Every counter of `interface` in an inspect report as `reason=packets`.
pub fn counters_of(report: &Value, interface: &str) -> String {
    let mut v: Vec<String> = report["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["interface"] == interface)
        .map(|c| format!("{}={}", c["reason"].as_str().unwrap_or("?"), c["packets"]))
        .collect();
    v.sort();
    format!("{interface}: [{}]", v.join(" "))
}

/// The uplink's name (the lan-mode counters of `lb_from_uplink` are kept
/// under it).
pub const UPLINK: &str = NODE_UPLINK;

/// `iptables -w <args>` in `ns`; panics unless it succeeds.
pub fn iptables(ns: &Netns, args: &[&str]) -> String {
    let mut argv = vec!["iptables", "-w"];
    argv.extend_from_slice(args);
    ns.run(&argv)
}

/// `sysctl -w key=value` in `ns` (its own /proc/sys/net).
pub fn sysctl(ns: &Netns, key: &str, value: &str) {
    ns.run(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
}

/// The link-layer address `ns` holds for `ip` on `dev` (lowercase), if any.
pub fn neigh_lladdr(ns: &Netns, ip: &str, dev: &str) -> Option<String> {
    let j = ns.ip_json(&["-4", "neigh", "show", ip, "dev", dev]);
    j.as_array()?
        .iter()
        .find_map(|n| n["lladdr"].as_str().map(str::to_lowercase))
}

/// The TTL busybox ping reports for a reply from `dst` (one echo, retried
/// a few times for ARP), or `None` when nothing came back.
pub fn ping_ttl(ns: &Netns, dst: &str) -> Option<u8> {
    for _ in 0..3 {
        let out = ns.exec(&["busybox", "ping", "-c", "1", "-W", "1", dst]);
        if out.success() {
            return out
                .stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ttl="))
                .and_then(|t| t.parse().ok());
        }
    }
    None
}

/// One UDP exchange from `ns`: a socket bound to `bind` sends "who am i" to
/// `dst` up to `tries` times and waits `wait` each time for an answer.
/// Returns the answer's text and the address it came from.
pub fn udp_exchange(
    ns: &Netns,
    bind: &str,
    dst: &str,
    tries: u32,
    wait: Duration,
) -> Option<(String, SocketAddr)> {
    let bind: SocketAddr = bind.parse().expect("bind address");
    let dst: SocketAddr = dst.parse().expect("destination");
    ns.within(move || {
        let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind udp {bind}: {e}"));
        sock.set_read_timeout(Some(wait)).expect("read timeout");
        let mut buf = [0u8; 512];
        for _ in 0..tries {
            if sock.send_to(b"who am i", dst).is_err() {
                std::thread::sleep(wait);
                continue;
            }
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                return Some((String::from_utf8_lossy(&buf[..n]).trim().to_string(), from));
            }
        }
        None
    })
}

/// Sends `n` datagrams from a socket bound to `bind` to `dst` without
/// waiting for answers.
pub fn udp_send(ns: &Netns, bind: &str, dst: &str, n: usize) {
    let bind: SocketAddr = bind.parse().expect("bind address");
    let dst: SocketAddr = dst.parse().expect("destination");
    ns.within(move || {
        let sock = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind udp {bind}: {e}"));
        for _ in 0..n {
            // A send error (no route, no neighbour) is a lost datagram.
            sock.send_to(b"spoof", dst).ok();
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// One TCP connection from `ns` to `dst`, from the local address `bind`
/// (`SO_REUSEADDR`, so a port used a moment ago can be bound again) or an
/// ephemeral one; waits `timeout` for the connection and again for the
/// server's line. Returns the line, or what went wrong.
pub fn tcp_exchange(
    ns: &Netns,
    bind: Option<&str>,
    dst: &str,
    timeout: Duration,
) -> Result<String, String> {
    let bind: Option<SocketAddrV4> = bind.map(|b| b.parse().expect("bind address"));
    let dst: SocketAddrV4 = dst.parse().expect("destination");
    ns.within(move || {
        let mut s = connect(bind, dst, timeout)?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        match s.read_to_string(&mut text) {
            Ok(_) if !text.is_empty() => Ok(text.trim().to_string()),
            Ok(_) => Err("connected, but the server sent nothing".into()),
            Err(e) => Err(format!("connected, reading: {e}")),
        }
    })
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

const SOCKADDR_IN_LEN: libc::socklen_t =
    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

/// A TCP connection in the calling thread's namespace, optionally from a
/// fixed local address, within `timeout`.
fn connect(
    bind: Option<SocketAddrV4>,
    dst: SocketAddrV4,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let Some(local) = bind else {
        return TcpStream::connect_timeout(&SocketAddr::V4(dst), timeout)
            .map_err(|e| e.to_string());
    };
    // SAFETY: plain socket syscalls on a descriptor we own; ownership moves
    // into the TcpStream right away, which closes it.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh socket descriptor, owned by nothing else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!("SO_REUSEADDR: {}", std::io::Error::last_os_error()));
    }
    let la = sockaddr(local);
    // SAFETY: valid fd and a sockaddr_in of the given size.
    if unsafe {
        libc::bind(
            fd,
            (&la as *const libc::sockaddr_in).cast(),
            SOCKADDR_IN_LEN,
        )
    } != 0
    {
        return Err(format!("bind {local}: {}", std::io::Error::last_os_error()));
    }
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    let ra = sockaddr(dst);
    // SAFETY: as above.
    let rc = unsafe {
        libc::connect(
            fd,
            (&ra as *const libc::sockaddr_in).cast(),
            SOCKADDR_IN_LEN,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(format!("connect {local} -> {dst}: {e}"));
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 50) };
        if n > 0 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return Err(format!("poll: {}", std::io::Error::last_os_error()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "connect {local} -> {dst}: timed out after {timeout:?}"
            ));
        }
    }
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(e)) => return Err(format!("connect {local} -> {dst}: {e}")),
        Err(e) => return Err(format!("SO_ERROR: {e}")),
    }
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// A MAC address `aa:bb:..` as bytes.
pub fn mac_bytes(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("MAC {s}: {e}")))
        .collect();
    v.try_into()
        .unwrap_or_else(|_| panic!("MAC {s}: not 6 bytes"))
}

fn ip_bytes(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>()
        .unwrap_or_else(|e| panic!("IPv4 {s}: {e}"))
        .octets()
}

/// An ARP frame (Ethernet header included, padded to 60 bytes): `op` 1
/// request / 2 reply, from Ethernet source `eth_src` to `eth_dst`.
#[allow(clippy::too_many_arguments)]
pub fn arp_frame(
    eth_dst: &str,
    eth_src: &str,
    op: u16,
    sha: &str,
    spa: &str,
    tha: &str,
    tpa: &str,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&mac_bytes(eth_dst));
    f.extend_from_slice(&mac_bytes(eth_src));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&mac_bytes(sha));
    f.extend_from_slice(&ip_bytes(spa));
    f.extend_from_slice(&mac_bytes(tha));
    f.extend_from_slice(&ip_bytes(tpa));
    f.resize(60, 0);
    f
}

/// Sends raw Ethernet frames out of `ifname` in `ns` (an `AF_PACKET`
/// socket in a thread inside the namespace).
pub fn send_frames(ns: &Netns, ifname: &str, frames: Vec<Vec<u8>>) {
    let ifname = ifname.to_string();
    ns.within(move || {
        let name = std::ffi::CString::new(ifname.clone()).expect("ifname");
        // SAFETY: a valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(
            ifindex != 0,
            "no {ifname}: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: plain socket syscall; the descriptor is owned by `sock` below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor owned by nothing else (closed on drop).
        let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        for frame in frames {
            // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            // SAFETY: valid fd, buffer and sockaddr_ll of the given sizes.
            let n = unsafe {
                libc::sendto(
                    sock.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(
                n,
                frame.len() as isize,
                "sendto on {ifname}: {}",
                std::io::Error::last_os_error()
            );
        }
    })
}

/// A DHCPDISCOVER (BOOTP request, broadcast flag set) from client `chaddr`.
pub fn dhcp_discover(chaddr: &str, xid: u32) -> Vec<u8> {
    dhcp_client_msg(chaddr, xid, 1, "0.0.0.0", &[])
}

/// A DHCP client message (BOOTP request, broadcast flag set) of type
/// `kind` from client `chaddr` with `ciaddr`: option 53, then `options`
/// (whole TLVs), then END.
pub fn dhcp_client_msg(chaddr: &str, xid: u32, kind: u8, ciaddr: &str, options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 1;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10] = 0x80;
    m[12..16].copy_from_slice(&ip_bytes(ciaddr));
    m[28..34].copy_from_slice(&mac_bytes(chaddr));
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(&[53, 1, kind]);
    m.extend_from_slice(options);
    m.push(255);
    m
}

/// An Ethernet frame carrying `payload` in UDP `sport` -> `dport` over
/// IPv4 `saddr` -> `daddr` (header checksum set, no UDP checksum).
pub fn udp_frame(
    eth_dst: &str,
    eth_src: &str,
    (saddr, sport): (&str, u16),
    (daddr, dport): (&str, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&mac_bytes(eth_dst));
    f.extend_from_slice(&mac_bytes(eth_src));
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ip_bytes(saddr));
    ip[16..20].copy_from_slice(&ip_bytes(daddr));
    let mut sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = !(sum as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A UDP socket in the calling thread's namespace on `0.0.0.0:port` with
/// `SO_REUSEADDR` and `SO_BROADCAST` (e.g. a DHCP client's port 68).
pub fn udp_any_port(port: u16) -> UdpSocket {
    // SAFETY: plain socket syscall; ownership moves into the UdpSocket.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor owned by nothing else.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_BROADCAST] {
        // SAFETY: valid fd, pointer to a c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
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
    let a = sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    // SAFETY: valid fd and a sockaddr_in of the given size.
    let rc = unsafe { libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), SOCKADDR_IN_LEN) };
    assert_eq!(rc, 0, "bind :{port}: {}", std::io::Error::last_os_error());
    sock
}

/// From `ns`, sends `payload` from UDP port `from_port` to `dst` and collects
/// every datagram arriving on that port for `listen`: their sources.
pub fn udp_send_and_collect(
    ns: &Netns,
    from_port: u16,
    dst: &str,
    payload: Vec<u8>,
    listen: Duration,
) -> Vec<SocketAddr> {
    let dst: SocketAddr = dst.parse().expect("destination");
    ns.within(move || {
        let sock = udp_any_port(from_port);
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        sock.send_to(&payload, dst)
            .unwrap_or_else(|e| panic!("send to {dst}: {e}"));
        let deadline = Instant::now() + listen;
        let mut seen = vec![];
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                seen.push(from);
            }
        }
        seen
    })
}

/// Whether anyone answers an ARP request for `ip` sent from `ifname` in
/// `ns` (two requests, two seconds).
pub fn arp_answered(ns: &Netns, ifname: &str, ip: &str) -> bool {
    ns.exec(&[
        "busybox", "arping", "-f", "-c", "2", "-w", "2", "-I", ifname, ip,
    ])
    .success()
}

/// `busybox udhcpc -f -n -q -t <tries> -T 1 -s /bin/true -i <ifname>` in
/// `ns` (the interface is left alone).
pub fn udhcpc(ns: &Netns, ifname: &str, tries: u32) -> process::Finished {
    let mut c = ns.command("busybox");
    c.args(["udhcpc", "-f", "-n", "-q", "-s", "/bin/true", "-i", ifname])
        .args(["-t", &tries.to_string(), "-T", "1"]);
    process::run(&mut c, None, Duration::from_secs(u64::from(tries) * 3 + 10))
}

/// `tcpdump -n -l -v` on an interface of a namespace, for failure
/// messages; killed by PID on drop.
pub struct Capture {
    proc: crate::background::Background,
}

impl Capture {
    /// Starts capturing `filter` (tcpdump syntax) on `ifname` in `ns`, the
    /// output going to `log`; waits until tcpdump listens.
    pub fn start(ns: &Netns, ifname: &str, filter: &str, log: &std::path::Path) -> Capture {
        let mut c = ns.command("tcpdump");
        c.args(["-n", "-l", "-v", "-i", ifname])
            .args(filter.split_whitespace());
        let proc = crate::background::Background::spawn("tcpdump", c, log);
        let up = proc.wait_log("listening on", Duration::from_secs(5));
        assert!(
            up,
            "tcpdump in {} did not start:\n{}",
            ns.name(),
            proc.log()
        );
        Capture { proc }
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        // Let tcpdump flush the last packets (it writes line-buffered).
        std::thread::sleep(Duration::from_millis(100));
        self.proc.log()
    }
}

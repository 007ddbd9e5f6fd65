//! `lb_from_pod` and `lb_from_uplink` run by the kernel on crafted frames
//! with BPF_PROG_TEST_RUN: loaded from target/bpf/lanbridge.bpf.o (so they
//! pass the verifier), maps filled through aya, nothing attached anywhere.
//!
//! The programs key their endpoints and counters by the skb's ifindex. A
//! test run's skb belongs to the loopback device of the caller's network
//! namespace unless the `__sk_buff` context passed in names another
//! `ifindex`, which must then exist in that namespace
//! (net/bpf/test_run.c, `bpf_prog_test_run_skb`). So each test runs on a
//! thread of its own that first moves into a fresh network namespace
//! (`unshare(CLONE_NEWNET)`, which affects only that thread) and creates
//! veth devices there to stand for the ports and the uplink; they vanish
//! with the namespace when the thread ends. The machine's own namespace is
//! never touched. A redirect in a test run only sets the verdict
//! (TC_ACT_REDIRECT): no frame is sent.

use std::ffi::CString;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use std::mem::size_of;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, MapData, PerCpuHashMap, RingBuf};
use aya::programs::SchedClassifier;
use aya::{Ebpf, TestRun, TestRunOptions};
use std::net::Ipv6Addr;

use lanbridge_common::{
    event::{DropEvent, EVENT_BURST, EVENT_INTERVAL_NS},
    ip_slots::{self, ip_slot, IpSlot, IP_SLOTS_HEADER, MAP_IP_SLOTS},
    port::{table, MAP_PORTS, MAP_PORT_STATS, MAP_UPLINK_STATS, PORT_SLOTS},
    prefix::{PrefixSet, Prefixes, MAP_PREFIXES},
    DhcpPort, Endpoint, MacKey, NetConfig, Reason, StatKey, CFG_ENFORCE, CFG_FAST_PATH,
    CFG_LAN_MODE, EP_DHCP_RELAY, EP_GUARD_IP, EP_GUARD_IP6, EP_ISOLATED, MAP_BY_IP, MAP_BY_IP6,
    MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG, MAP_DHCP_PORTS, MAP_ENDPOINTS, MAP_EVENTS, MAP_SLOW_CIDRS,
    MAP_STATS, PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD,
};
use lanbridge_tests::frames6::{
    self, fragment_header, link_local, neighbour_advertisement, neighbour_solicitation,
    pad_options, router_advertisement, Ip6Frame, ALL_NODES, IPPROTO_ICMPV6, NEXTHDR_DEST,
    NEXTHDR_FRAGMENT, NEXTHDR_HOP,
};
use lanbridge_tests::require_root;

/// The programs pass with TC_ACT_UNSPEC (-1): "next program, then the stack".
const TC_ACT_UNSPEC: u32 = -1i32 as u32;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const POD_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const POD2_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const OTHER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
const UPLINK_MAC: [u8; 6] = [0x02, 0xaa, 0x00, 0x00, 0x00, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0x11, 0x00, 0x00, 0x00, 0x01];
const POD_IP: [u8; 4] = [192, 168, 1, 50];
const SERVER_IP: [u8; 4] = [192, 168, 1, 1];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const CLIENT_ID: [u8; 17] = [0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6];

/// `offsetof(struct __sk_buff, ifindex)` and `sizeof(struct __sk_buff)`.
const SKB_IFINDEX_OFF: usize = 40;
const SKB_SIZE: usize = 192;

/// The shortest input BPF_PROG_TEST_RUN takes for `spec`'s frames: more than
/// an Ethernet header, and (kernel 6.18) an IPv4 header whole when the
/// EtherType says IPv4 (EINVAL otherwise). A tagged frame's EtherType is
/// 802.1Q, so cuts inside its IPv4 header do run. The host tests in
/// lanbridge-common cover every length.
fn min_test_run_len(spec: &Frame) -> usize {
    if spec.vlan.is_none() && spec.ethertype == 0x0800 {
        14 + 20
    } else {
        15
    }
}

// ---------------------------------------------------------------------------
// Frames

/// A DHCP-shaped frame; the defaults make a pod's DHCPDISCOVER broadcast.
#[derive(Clone)]
struct Frame {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    /// An 802.1Q TCI: one tag in the frame.
    vlan: Option<u16>,
    ethertype: u16,
    /// IPv4 header length in 32-bit words (5 = no options).
    ihl: u8,
    /// Flags and fragment offset.
    frag: u16,
    proto: u8,
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: u16,
    dport: u16,
    /// Whether to fill in the UDP checksum (0 = none otherwise).
    udp_csum: bool,
    op: u8,
    htype: u8,
    hlen: u8,
    flags: u16,
    chaddr: [u8; 6],
    /// DHCP message type (option 53).
    msg_type: u8,
    ciaddr: [u8; 4],
    yiaddr: [u8; 4],
    /// Options after option 53, before END.
    options: Vec<u8>,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            dst_mac: BROADCAST_MAC,
            src_mac: POD_MAC,
            vlan: None,
            ethertype: 0x0800,
            ihl: 5,
            frag: 0,
            proto: 17,
            saddr: [0; 4],
            daddr: [255; 4],
            sport: 68,
            dport: 67,
            udp_csum: true,
            op: 1,
            htype: 1,
            hlen: 6,
            flags: 0,
            chaddr: POD_MAC,
            msg_type: 1,
            ciaddr: [0; 4],
            yiaddr: [0; 4],
            options: Vec::new(),
        }
    }
}

fn discover() -> Frame {
    Frame::default()
}

/// A broadcast DHCPOFFER for the pod, as the LAN's server sends it.
fn offer() -> Frame {
    Frame {
        dst_mac: BROADCAST_MAC,
        src_mac: SERVER_MAC,
        saddr: SERVER_IP,
        daddr: [255; 4],
        sport: 67,
        dport: 68,
        op: 2,
        flags: 0x8000,
        msg_type: 2,
        ..Frame::default()
    }
}

impl Frame {
    fn l3_off(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 }
    }

    fn udp_off(&self) -> usize {
        self.l3_off() + self.ihl as usize * 4
    }

    fn bootp_off(&self) -> usize {
        self.udp_off() + 8
    }

    fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(tci) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());

        // BOOTP: fixed part, magic cookie, options, padded to 300 bytes.
        let mut bootp = vec![0u8; 300.max(244 + self.options.len())];
        bootp[0] = self.op;
        bootp[1] = self.htype;
        bootp[2] = self.hlen;
        bootp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        bootp[10..12].copy_from_slice(&self.flags.to_be_bytes());
        bootp[12..16].copy_from_slice(&self.ciaddr);
        bootp[16..20].copy_from_slice(&self.yiaddr);
        bootp[28..34].copy_from_slice(&self.chaddr);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        let options = [&[53, 1, self.msg_type][..], &self.options, &[255]].concat();
        bootp[240..240 + options.len()].copy_from_slice(&options);

        let mut udp = Vec::new();
        udp.extend_from_slice(&self.sport.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&((8 + bootp.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&bootp);
        if self.udp_csum {
            let sum = udp_checksum(self.saddr, self.daddr, &udp);
            udp[6..8].copy_from_slice(&sum.to_be_bytes());
        }

        // At least 20 bytes, whatever the IHL says (broken headers are tests too).
        let ip_hlen = (self.ihl as usize * 4).max(20);
        let mut ip = vec![0u8; ip_hlen];
        ip[0] = 0x40 | self.ihl;
        ip[2..4].copy_from_slice(&((ip_hlen + udp.len()) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&self.frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = self.proto;
        ip[12..16].copy_from_slice(&self.saddr);
        ip[16..20].copy_from_slice(&self.daddr);
        // Options: Router Alert (4 bytes), then NOPs.
        if ip_hlen > 20 {
            ip[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]);
            for b in &mut ip[24..] {
                *b = 1;
            }
        }
        let sum = !fold(sum16(0, &ip));
        ip[10..12].copy_from_slice(&sum.to_be_bytes());

        f.extend_from_slice(&ip);
        f.extend_from_slice(&udp);
        f
    }
}

/// An ARP request from `mac`.
fn arp(mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BROADCAST_MAC);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&POD_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SERVER_IP);
    f.resize(60, 0);
    f
}

fn sum16(mut sum: u32, bytes: &[u8]) -> u32 {
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn pseudo_sum(saddr: [u8; 4], daddr: [u8; 4], udp_len: usize) -> u32 {
    let mut sum = sum16(0, &saddr);
    sum = sum16(sum, &daddr);
    sum + 17 + udp_len as u32
}

/// The UDP checksum of `udp` (whose checksum field is zero).
fn udp_checksum(saddr: [u8; 4], daddr: [u8; 4], udp: &[u8]) -> u16 {
    let sum = !fold(sum16(pseudo_sum(saddr, daddr, udp.len()), udp));
    if sum == 0 {
        0xffff
    } else {
        sum
    }
}

/// Whether the UDP checksum of the frame verifies (sums to 0xffff).
fn udp_checksum_ok(frame: &[u8], spec: &Frame) -> bool {
    let udp = &frame[spec.udp_off()..];
    fold(sum16(pseudo_sum(spec.saddr, spec.daddr, udp.len()), udp)) == 0xffff
}

fn udp_checksum_field(frame: &[u8], spec: &Frame) -> u16 {
    let off = spec.udp_off() + 6;
    u16::from_be_bytes([frame[off], frame[off + 1]])
}

fn bootp_flags(frame: &[u8], spec: &Frame) -> u16 {
    let off = spec.bootp_off() + 10;
    u16::from_be_bytes([frame[off], frame[off + 1]])
}

/// The offsets where `a` and `b` differ.
fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "lengths differ");
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

// ---------------------------------------------------------------------------
// Harness

fn object_path() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/bpf/lanbridge.bpf.o"
    ));
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo xtask build-ebpf` (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// The programs loaded from the object, their maps, and the devices of the
/// test's namespace.
struct Datapath {
    ebpf: Ebpf,
    endpoints: HashMap<MapData, u32, Endpoint>,
    ports: table::Ports,
    port_counters: table::Counters,
    uplink_counters: table::Counters,
    by_mac: HashMap<MapData, MacKey, u32>,
    ip_slots: ip_slots::table::Slots,
    config: Array<MapData, NetConfig>,
    stats: PerCpuHashMap<MapData, StatKey, u64>,
    dhcp_ports: HashMap<MapData, u32, DhcpPort>,
    /// A pod's port, with an endpoint (POD_MAC, POD_IP, relay).
    pod: u32,
    /// A second pod's port (POD2_MAC, no address yet, relay).
    pod2: u32,
    /// A port without an endpoint.
    stranger: u32,
    uplink: u32,
}

/// A run's outcome.
struct Run {
    retval: u32,
    out: Vec<u8>,
}

impl Datapath {
    /// Loads the programs, creates the devices, and writes a lan-mode
    /// network with two pods.
    fn new() -> Datapath {
        let mut ebpf = Ebpf::load_file(object_path()).expect("loading the eBPF object");
        for name in [PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .unwrap_or_else(|| panic!("no program {name} in the object"))
                .try_into()
                .unwrap_or_else(|e| panic!("{name} is not a classifier: {e}"));
            // The verifier runs here.
            prog.load()
                .unwrap_or_else(|e| panic!("loading {name}: {e:?}"));
        }
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name)
                .unwrap_or_else(|| panic!("no map {name} in the object"))
        };
        let endpoints = take(&mut ebpf, MAP_ENDPOINTS).try_into().unwrap();
        let ports = take(&mut ebpf, MAP_PORTS).try_into().unwrap();
        let port_counters = take(&mut ebpf, MAP_PORT_STATS).try_into().unwrap();
        let uplink_counters = take(&mut ebpf, MAP_UPLINK_STATS).try_into().unwrap();
        let by_mac = take(&mut ebpf, MAP_BY_MAC).try_into().unwrap();
        let mut ip_slots = take(&mut ebpf, MAP_IP_SLOTS).try_into().unwrap();
        // Complete, as the loader leaves a new network's table.
        ip_slots::table::rebuild(&mut ip_slots, [], false).expect("writing lb_ip_slots");
        let config = take(&mut ebpf, MAP_CONFIG).try_into().unwrap();
        let stats = take(&mut ebpf, MAP_STATS).try_into().unwrap();
        let dhcp_ports = take(&mut ebpf, MAP_DHCP_PORTS).try_into().unwrap();
        let mut dp = Datapath {
            ebpf,
            endpoints,
            ports,
            port_counters,
            uplink_counters,
            by_mac,
            ip_slots,
            config,
            stats,
            dhcp_ports,
            pod: device("lbtpod1"),
            pod2: device("lbtpod2"),
            stranger: device("lbtpod3"),
            uplink: device("lbtup"),
        };
        dp.set_config(CFG_LAN_MODE);
        dp.put_endpoint(
            dp.pod,
            POD_MAC,
            [u32::from_ne_bytes(POD_IP), 0, 0, 0],
            EP_DHCP_RELAY,
        );
        dp.put_endpoint(dp.pod2, POD2_MAC, [0; 4], EP_DHCP_RELAY);
        dp
    }

    fn set_config(&mut self, flags: u16) {
        let cfg = NetConfig {
            uplink_ifindex: self.uplink,
            uplink_mac: UPLINK_MAC,
            flags,
            ..NetConfig::default()
        };
        self.config.set(0, cfg, 0).expect("writing lb_config");
    }

    fn put_endpoint(&mut self, port: u32, mac: [u8; 6], ipv4: [u32; 4], flags: u16) {
        let ep = Endpoint {
            mac,
            flags,
            ipv4,
            ..Endpoint::default()
        };
        self.write_endpoint(port, ep);
        self.by_mac
            .insert(MacKey::new(mac), port, 0)
            .expect("writing lb_by_mac");
    }

    /// `port`'s endpoint, written as the loader writes it: into
    /// `lb_endpoints`, then into the port's slot of `lb_ports`.
    fn write_endpoint(&mut self, port: u32, ep: Endpoint) {
        self.endpoints
            .insert(port, ep, 0)
            .expect("writing lb_endpoints");
        table::put(&mut self.ports, &mut self.port_counters, port, ep).expect("writing lb_ports");
    }

    /// The endpoint of `port`, changed by `f`.
    fn update_endpoint(&mut self, port: u32, f: impl FnOnce(&mut Endpoint)) {
        let mut ep = self.endpoints.get(&port, 0).expect("reading lb_endpoints");
        f(&mut ep);
        self.write_endpoint(port, ep);
    }

    /// `lb_by_ip` and `lb_by_ip6` entries: the pod behind `port` has `ip`
    /// (written as the loader writes them: `lb_by_ip`, then its slot).
    fn index_ip(&mut self, ip: [u8; 4], port: u32) {
        let mut map: HashMap<&mut MapData, u32, u32> =
            self.ebpf.map_mut(MAP_BY_IP).unwrap().try_into().unwrap();
        map.insert(u32::from_ne_bytes(ip), port, 0).unwrap();
        ip_slots::table::put(&mut self.ip_slots, u32::from_ne_bytes(ip), port).unwrap();
    }

    /// Removes `ip -> port` as the loader does: its slot, then `lb_by_ip`.
    fn unindex_ip(&mut self, ip: [u8; 4], port: u32) {
        ip_slots::table::remove(&mut self.ip_slots, u32::from_ne_bytes(ip), port).unwrap();
        let mut map: HashMap<&mut MapData, u32, u32> =
            self.ebpf.map_mut(MAP_BY_IP).unwrap().try_into().unwrap();
        map.remove(&u32::from_ne_bytes(ip)).unwrap();
    }

    fn index_ip6(&mut self, ip: Ipv6Addr, port: u32) {
        let mut map: HashMap<&mut MapData, [u8; 16], u32> =
            self.ebpf.map_mut(MAP_BY_IP6).unwrap().try_into().unwrap();
        map.insert(ip.octets(), port, 0).unwrap();
    }

    /// The pod's endpoint as lanbridge's DHCP IPAM leaves it after ADD: its
    /// address guarded, its client identifier recorded.
    fn lease_pod(&mut self) {
        let mut ep = Endpoint {
            mac: POD_MAC,
            flags: EP_DHCP_RELAY | EP_GUARD_IP,
            ipv4: [u32::from_ne_bytes(POD_IP), 0, 0, 0],
            ..Endpoint::default()
        };
        assert!(ep.set_client_id(&CLIENT_ID));
        self.write_endpoint(self.pod, ep);
    }

    /// Gives `port` a full DHCP token bucket again.
    fn refill(&mut self, port: u32) {
        if self.dhcp_ports.get(&port, 0).is_ok() {
            self.dhcp_ports
                .remove(&port)
                .expect("clearing lb_dhcp_ports");
        }
    }

    /// Runs program `name` on `frame` as if it arrived on device `ifindex`.
    fn run(&self, name: &str, ifindex: u32, frame: &[u8]) -> Run {
        self.run_repeat(name, ifindex, frame, 1).0
    }

    /// Runs program `name` `repeat` times on `frame` (on the same skb, so
    /// a rewrite is seen by the next run); also returns the kernel's
    /// average time per run.
    fn run_repeat(&self, name: &str, ifindex: u32, frame: &[u8], repeat: u32) -> (Run, Duration) {
        let prog: &SchedClassifier = self
            .ebpf
            .program(name)
            .expect("program")
            .try_into()
            .expect("classifier");
        let mut ctx = [0u8; SKB_SIZE];
        ctx[SKB_IFINDEX_OFF..SKB_IFINDEX_OFF + 4].copy_from_slice(&ifindex.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                repeat,
                ..TestRunOptions::default()
            })
            .unwrap_or_else(|e| {
                panic!(
                    "BPF_PROG_TEST_RUN of {name} on {} bytes: {e:?}",
                    frame.len()
                )
            });
        out.truncate(result.data_size_out as usize);
        let run = Run {
            retval: result.return_value,
            out,
        };
        (run, result.duration)
    }

    fn ports_with_endpoint(&self) -> Vec<u32> {
        let keys = self.endpoints.keys();
        keys.collect::<Result<_, _>>()
            .expect("reading lb_endpoints")
    }

    fn run_pod(&self, port: u32, frame: &[u8]) -> Run {
        self.run(PROG_FROM_POD, port, frame)
    }

    fn run_uplink(&self, frame: &[u8]) -> Run {
        self.run(PROG_FROM_UPLINK, self.uplink, frame)
    }

    /// Packets counted for (ifindex, reason), summed over the CPUs.
    fn count(&self, ifindex: u32, reason: Reason) -> u64 {
        self.counters()
            .into_iter()
            .find(|(i, r, _)| (*i, *r) == (ifindex, reason))
            .map_or(0, |(_, _, n)| n)
    }

    /// Every non-zero counter, sorted: those in `lb_stats`, in the ports'
    /// slots and in `lb_uplink_stats`.
    fn counters(&self) -> Vec<(u32, Reason, u64)> {
        let mut all: Vec<(u32, Reason, u64)> = self
            .stats
            .iter()
            .map(|entry| {
                let (key, values) = entry.expect("iterating lb_stats");
                let reason = Reason::from_u32(key.reason).expect("a known reason");
                (key.ifindex, reason, values.iter().sum())
            })
            .collect();
        let mut slots =
            table::counted(&self.ports, &self.port_counters, self.ports_with_endpoint())
                .expect("reading lb_ports");
        let uplink = table::sum(&self.uplink_counters, 0).expect("reading lb_uplink_stats");
        slots.push((self.uplink, uplink));
        for (port, counted) in slots {
            for (reason, n) in counted.iter().enumerate() {
                let reason = Reason::from_u32(reason as u32);
                all.extend(reason.map(|r| (port, r, *n)));
            }
        }
        all.retain(|(_, _, n)| *n != 0);
        all.sort_by_key(|(i, r, _)| (*i, *r as u32));
        all
    }
}

/// Creates device `name` (one end of a veth pair: this kernel may lack the
/// dummy driver) in the current (the test thread's own) namespace and
/// returns its ifindex.
fn device(name: &str) -> u32 {
    let peer = format!("{name}p");
    let out = Command::new("ip")
        .args(["link", "add", name, "type", "veth", "peer", "name", &peer])
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip link add {name} type veth: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let cname = CString::new(name).unwrap();
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    assert_ne!(index, 0, "no ifindex for {name}");
    index
}

/// Runs `test` on a thread of its own in a fresh network namespace, with the
/// programs loaded.
fn with_datapath(test: impl FnOnce(&mut Datapath) + Send + 'static) {
    require_root();
    // Fail with the build hint before anything else.
    object_path();
    let handle = thread::spawn(move || {
        // SAFETY: plain syscall; CLONE_NEWNET moves only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        let mut dp = Datapath::new();
        test(&mut dp);
    });
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

fn assert_untouched(run: &Run, frame: &[u8], what: &str) {
    assert_eq!(run.out, frame, "{what}: the frame was changed");
}

// ---------------------------------------------------------------------------
// lb_from_pod

#[test]
fn both_programs_pass_the_verifier() {
    with_datapath(|dp| {
        for name in [PROG_FROM_POD, PROG_FROM_UPLINK] {
            let prog: &SchedClassifier = dp.ebpf.program(name).unwrap().try_into().unwrap();
            let info = prog.info().expect("program info");
            assert_eq!(info.name_as_str(), Some(name));
            eprintln!(
                "{name}: {} bytes xlated ({} instructions), {} instructions verified",
                info.size_translated().unwrap_or(0),
                info.size_translated().unwrap_or(0) / 8,
                info.verified_instruction_count().unwrap_or(0)
            );
        }
        // Not a benchmark (that comes later), a sanity check of the cost
        // per packet as the kernel's test runner measures it.
        let tcp = Frame {
            proto: 6,
            ..discover()
        }
        .build();
        let dns = Frame {
            sport: 40000,
            dport: 53,
            ..discover()
        }
        .build();
        let udp6 = Ip6Frame::new(
            POD_MAC,
            link_local(POD_MAC),
            ALL_NODES,
            17,
            frames6::udp(40000, 53, &[0; 32]),
        )
        .build();
        let cases = [
            ("lb_from_pod, TCP", PROG_FROM_POD, dp.pod, tcp.clone()),
            ("lb_from_pod, DNS", PROG_FROM_POD, dp.pod, dns),
            ("lb_from_pod, IPv6 UDP", PROG_FROM_POD, dp.pod, udp6),
            (
                // The runs share one skb: the first relays, the others see
                // the uplink's MAC as the source and drop it as spoofed.
                "lb_from_pod, DHCPDISCOVER (spoof drop)",
                PROG_FROM_POD,
                dp.pod,
                discover().build(),
            ),
            ("lb_from_uplink, TCP", PROG_FROM_UPLINK, dp.uplink, tcp),
            (
                "lb_from_uplink, DHCPOFFER",
                PROG_FROM_UPLINK,
                dp.uplink,
                offer().build(),
            ),
        ];
        for (what, name, ifindex, frame) in cases {
            let (run, per_run) = dp.run_repeat(name, ifindex, &frame, 100_000);
            assert!(
                matches!(run.retval, TC_ACT_UNSPEC | TC_ACT_REDIRECT | TC_ACT_SHOT),
                "{what}: {}",
                run.retval
            );
            eprintln!("{what}: {} ns per run", per_run.as_nanos());
        }
    });
}

#[test]
fn discover_is_relayed_with_broadcast_flag_and_uplink_mac() {
    with_datapath(|dp| {
        let spec = discover();
        let frame = spec.build();
        assert!(udp_checksum_ok(&frame, &spec));
        let run = dp.run_pod(dp.pod, &frame);
        assert_eq!(run.retval, TC_ACT_REDIRECT);
        assert_eq!(run.out.len(), frame.len());
        assert_eq!(run.out[0..6], BROADCAST_MAC, "destination kept");
        assert_eq!(run.out[6..12], UPLINK_MAC, "source := uplink MAC");
        assert_eq!(bootp_flags(&run.out, &spec), 0x8000);
        assert!(udp_checksum_ok(&run.out, &spec), "UDP checksum after relay");
        // The pod's MAC stays in chaddr; nothing else changed.
        assert_eq!(run.out[spec.bootp_off() + 28..][..6], POD_MAC);
        let changed = diff(&frame, &run.out);
        let csum = spec.udp_off() + 6;
        let flags = spec.bootp_off() + 10;
        assert!(
            changed
                .iter()
                .all(|&i| (6..12).contains(&i) || i == csum || i == csum + 1 || i == flags),
            "unexpected changes at {changed:?}"
        );
        assert_eq!(dp.counters(), vec![(dp.pod, Reason::DhcpRelayed, 1)]);
    });
}

#[test]
fn discover_variants_are_relayed() {
    with_datapath(|dp| {
        let cases = [
            // REQUEST broadcast from the pod's own address (rebinding)
            Frame {
                saddr: POD_IP,
                msg_type: 3,
                ..discover()
            },
            // IP options: the UDP header moves
            Frame {
                ihl: 6,
                ..discover()
            },
            Frame {
                ihl: 15,
                ..discover()
            },
            // broadcast flag already set: payload and checksum unchanged
            Frame {
                flags: 0x8000,
                ..discover()
            },
            // other flag bits kept
            Frame {
                flags: 0x0001,
                ..discover()
            },
            // no UDP checksum: stays 0
            Frame {
                udp_csum: false,
                ..discover()
            },
            // DF is not a fragment
            Frame {
                frag: 0x4000,
                ..discover()
            },
            // a priority tag (VID 0) is the untagged network: offsets shift by 4
            Frame {
                vlan: Some(0xa000),
                ..discover()
            },
        ];
        for (i, spec) in cases.iter().enumerate() {
            let frame = spec.build();
            let run = dp.run_pod(dp.pod, &frame);
            assert_eq!(run.retval, TC_ACT_REDIRECT, "case {i}");
            assert_eq!(run.out[6..12], UPLINK_MAC, "case {i}");
            assert_eq!(bootp_flags(&run.out, spec), spec.flags | 0x8000, "case {i}");
            if spec.udp_csum {
                assert!(udp_checksum_ok(&run.out, spec), "case {i}: checksum");
            } else {
                assert_eq!(udp_checksum_field(&run.out, spec), 0, "case {i}");
            }
            if spec.flags & 0x8000 != 0 {
                let changed = diff(&frame, &run.out);
                assert!(changed.iter().all(|b| (6..12).contains(b)), "{changed:?}");
            }
        }
        // A pod without an address yet relays from 0.0.0.0 as well.
        let spec = Frame {
            src_mac: POD2_MAC,
            chaddr: POD2_MAC,
            ..discover()
        };
        assert_eq!(dp.run_pod(dp.pod2, &spec.build()).retval, TC_ACT_REDIRECT);
        assert_eq!(
            dp.counters(),
            vec![
                (dp.pod, Reason::DhcpRelayed, cases.len() as u64),
                (dp.pod2, Reason::DhcpRelayed, 1)
            ]
        );
    });
}

#[test]
fn spoofed_client_broadcasts_are_dropped() {
    with_datapath(|dp| {
        let cases = [
            // another MAC than the pod's
            Frame {
                src_mac: OTHER_MAC,
                ..discover()
            },
            // the other pod's MAC
            Frame {
                src_mac: POD2_MAC,
                ..discover()
            },
            // an address that is not the pod's
            Frame {
                saddr: [192, 168, 1, 51],
                ..discover()
            },
            // tagged: the guard still applies
            Frame {
                src_mac: OTHER_MAC,
                vlan: Some(100),
                ..discover()
            },
        ];
        for (i, spec) in cases.iter().enumerate() {
            let frame = spec.build();
            let run = dp.run_pod(dp.pod, &frame);
            assert_eq!(run.retval, TC_ACT_SHOT, "case {i}");
            assert_untouched(&run, &frame, &format!("case {i}"));
        }
        // pod2 has no address: its own old address is not accepted either
        let spec = Frame {
            src_mac: POD2_MAC,
            saddr: POD_IP,
            ..discover()
        };
        assert_eq!(dp.run_pod(dp.pod2, &spec.build()).retval, TC_ACT_SHOT);
        // in subnet mode too
        dp.set_config(0);
        assert_eq!(dp.run_pod(dp.pod, &cases[0].build()).retval, TC_ACT_SHOT);
        assert_eq!(
            dp.counters(),
            vec![
                (dp.pod, Reason::DropDhcpSpoof, cases.len() as u64 + 1),
                (dp.pod2, Reason::DropDhcpSpoof, 1)
            ]
        );
    });
}

#[test]
fn dhcp_server_packets_from_pods_are_dropped_in_every_mode() {
    with_datapath(|dp| {
        let cases = [
            // an OFFER from a DHCP server in the pod
            offer(),
            // unicast ACK
            Frame {
                dst_mac: POD2_MAC,
                daddr: [192, 168, 1, 60],
                msg_type: 5,
                ..offer()
            },
            // to the client port from another source port
            Frame {
                sport: 1067,
                ..offer()
            },
            // a relay agent's packet to a server
            Frame {
                sport: 67,
                dport: 67,
                op: 1,
                ..offer()
            },
            // tagged
            Frame {
                vlan: Some(100),
                ..offer()
            },
            // with IP options
            Frame { ihl: 9, ..offer() },
        ];
        for mode in [CFG_LAN_MODE, 0] {
            dp.set_config(mode);
            for (i, spec) in cases.iter().enumerate() {
                let frame = spec.build();
                let run = dp.run_pod(dp.pod, &frame);
                assert_eq!(run.retval, TC_ACT_SHOT, "mode {mode} case {i}");
                assert_untouched(&run, &frame, &format!("case {i}"));
            }
        }
        assert_eq!(
            dp.counters(),
            vec![(dp.pod, Reason::DropDhcpServer, 2 * cases.len() as u64)]
        );
    });
}

#[test]
fn client_broadcasts_pass_when_not_relayed() {
    with_datapath(|dp| {
        let frame = discover().build();
        // subnet mode
        dp.set_config(0);
        let run = dp.run_pod(dp.pod, &frame);
        assert_eq!(run.retval, TC_ACT_UNSPEC);
        assert_untouched(&run, &frame, "subnet mode");
        // lan mode, but an endpoint without the relay flag
        dp.set_config(CFG_LAN_MODE);
        dp.put_endpoint(dp.pod, POD_MAC, [u32::from_ne_bytes(POD_IP), 0, 0, 0], 0);
        let run = dp.run_pod(dp.pod, &frame);
        assert_eq!(run.retval, TC_ACT_UNSPEC);
        assert_untouched(&run, &frame, "no relay flag");
        // tagged (VID 100): guarded, not relayed (the uplink is untagged)
        dp.put_endpoint(
            dp.pod,
            POD_MAC,
            [u32::from_ne_bytes(POD_IP), 0, 0, 0],
            EP_DHCP_RELAY,
        );
        let tagged = Frame {
            vlan: Some(100),
            ..discover()
        }
        .build();
        let run = dp.run_pod(dp.pod, &tagged);
        assert_eq!(run.retval, TC_ACT_UNSPEC);
        assert_untouched(&run, &tagged, "tagged");
        assert_eq!(dp.counters(), vec![(dp.pod, Reason::Passed, 3)]);
    });
}

#[test]
fn ports_without_endpoint_pass_everything() {
    with_datapath(|dp| {
        for frame in [discover().build(), offer().build(), arp(OTHER_MAC)] {
            let run = dp.run_pod(dp.stranger, &frame);
            assert_eq!(run.retval, TC_ACT_UNSPEC);
            assert_untouched(&run, &frame, "stranger");
        }
        assert_eq!(dp.counters(), vec![(dp.stranger, Reason::Passed, 3)]);
    });
}

/// Two ports whose ifindexes share a slot of `lb_ports`: the first holds
/// it, the second is found in `lb_endpoints`; each is judged by its own
/// endpoint and counted apart, also after the first leaves.
#[test]
fn ports_sharing_a_slot_are_each_judged_by_their_own_endpoint() {
    with_datapath(|dp| {
        dp.set_config(CFG_LAN_MODE | CFG_ENFORCE);
        let twin = dp.pod + PORT_SLOTS;
        ip(&format!(
            "link add lbttwin index {twin} type veth peer name lbttwinp"
        ));
        dp.put_endpoint(twin, OTHER_MAC, [0; 4], 0);
        let ports = [(dp.pod, POD_MAC), (twin, OTHER_MAC)];
        let judge = |dp: &Datapath| {
            for (port, mac) in ports {
                assert_eq!(dp.run_pod(port, &arp(mac)).retval, TC_ACT_UNSPEC);
                for (_, other) in ports.iter().filter(|(p, _)| *p != port) {
                    assert_eq!(dp.run_pod(port, &arp(*other)).retval, TC_ACT_SHOT);
                }
            }
        };
        judge(dp);
        let held: Vec<u32> = table::counted(&dp.ports, &dp.port_counters, dp.ports_with_endpoint())
            .unwrap()
            .into_iter()
            .map(|(port, _)| port)
            .collect();
        assert!(held.contains(&dp.pod) && !held.contains(&twin), "{held:?}");
        // The first leaves its slot (as DEL does, before its endpoint)
        // with what it counted there.
        let counted = table::release(&mut dp.ports, &mut dp.port_counters, dp.pod).unwrap();
        let mut expected = [0; 16];
        (
            expected[Reason::Passed as usize],
            expected[Reason::DropSpoofMac as usize],
        ) = (1, 1);
        assert_eq!(counted, Some(expected));
        judge(dp);
        assert_eq!(
            dp.counters(),
            vec![
                (dp.pod, Reason::Passed, 1),
                (dp.pod, Reason::DropSpoofMac, 1),
                (twin, Reason::Passed, 2),
                (twin, Reason::DropSpoofMac, 2),
            ]
        );
    });
}

#[test]
fn other_pod_traffic_passes_untouched() {
    with_datapath(|dp| {
        let frames = [
            // unicast renewal to the server: ordinary routed traffic
            Frame {
                dst_mac: SERVER_MAC,
                saddr: POD_IP,
                daddr: SERVER_IP,
                msg_type: 3,
                ..discover()
            }
            .build(),
            // DNS
            Frame {
                sport: 40000,
                dport: 53,
                daddr: SERVER_IP,
                ..discover()
            }
            .build(),
            // TCP
            Frame {
                proto: 6,
                ..discover()
            }
            .build(),
            // fragments that look like DHCP: MF, an offset, both
            Frame {
                frag: 0x2000,
                ..discover()
            }
            .build(),
            Frame {
                frag: 0x0010,
                ..offer()
            }
            .build(),
            Frame {
                frag: 0x2010,
                ..offer()
            }
            .build(),
            // not IPv4
            arp(POD_MAC),
            Frame {
                ethertype: 0x86dd,
                ..discover()
            }
            .build(),
            // QinQ: the inner tag is not parsed
            Frame {
                vlan: Some(100),
                ethertype: 0x8100,
                ..offer()
            }
            .build(),
            // broken IPv4 header length
            Frame { ihl: 4, ..offer() }.build(),
        ];
        for (i, frame) in frames.iter().enumerate() {
            let run = dp.run_pod(dp.pod, frame);
            assert_eq!(run.retval, TC_ACT_UNSPEC, "case {i}");
            assert_untouched(&run, frame, &format!("case {i}"));
        }
        assert_eq!(
            dp.counters(),
            vec![(dp.pod, Reason::Passed, frames.len() as u64)]
        );
    });
}

#[test]
fn truncated_frames_from_pods_pass_at_every_length() {
    with_datapath(|dp| {
        let specs = [
            discover(),
            Frame {
                ihl: 7,
                ..discover()
            },
            Frame {
                vlan: Some(0x2000),
                ..discover()
            },
        ];
        let mut relayed = 0;
        let mut malformed = 0;
        let mut dropped = 0;
        let mut passed = 0;
        for spec in specs {
            let frame = spec.build();
            for len in min_test_run_len(&spec)..frame.len() {
                let cut = &frame[..len];
                dp.refill(dp.pod);
                let run = dp.run_pod(dp.pod, cut);
                // Known as DHCP by its ports; judged once whole up to END
                // (after option 53); cut before that, it cannot be judged.
                if len < spec.udp_off() + 4 {
                    assert_eq!(run.retval, TC_ACT_UNSPEC, "len {len}");
                    assert_untouched(&run, cut, &format!("len {len}"));
                    passed += 1;
                } else if len < spec.bootp_off() + 244 {
                    assert_eq!(run.retval, TC_ACT_SHOT, "len {len}");
                    assert_untouched(&run, cut, &format!("len {len}"));
                    malformed += 1;
                } else {
                    assert_eq!(run.retval, TC_ACT_REDIRECT, "len {len}");
                    relayed += 1;
                }
            }
            let frame = Frame {
                src_mac: POD_MAC,
                ..offer()
            };
            let bytes = frame.build();
            for len in min_test_run_len(&frame)..bytes.len() {
                let cut = &bytes[..len];
                let run = dp.run_pod(dp.pod, cut);
                // A server packet is known by its UDP ports.
                if len < frame.udp_off() + 4 {
                    assert_eq!(run.retval, TC_ACT_UNSPEC, "len {len}");
                    passed += 1;
                } else {
                    assert_eq!(run.retval, TC_ACT_SHOT, "len {len}");
                    dropped += 1;
                }
            }
        }
        assert_eq!(
            dp.counters(),
            vec![
                (dp.pod, Reason::Passed, passed),
                (dp.pod, Reason::DhcpRelayed, relayed),
                (dp.pod, Reason::DropDhcpServer, dropped),
                (dp.pod, Reason::DropDhcpMalformed, malformed),
            ]
        );
    });
}

/// Option 61 with `id`.
fn client_id(id: &[u8]) -> Vec<u8> {
    [&[61, id.len() as u8][..], id].concat()
}

fn requested_ip(ip: [u8; 4]) -> Vec<u8> {
    [&[50, 4][..], &ip].concat()
}

/// A unicast message to the server from the pod's address.
fn unicast(msg_type: u8, ciaddr: [u8; 4], options: Vec<u8>) -> Frame {
    Frame {
        dst_mac: SERVER_MAC,
        saddr: POD_IP,
        daddr: SERVER_IP,
        msg_type,
        ciaddr,
        options,
        ..discover()
    }
}

#[test]
fn the_pods_own_client_messages_pass_broadcast_and_unicast() {
    with_datapath(|dp| {
        dp.lease_pod();
        let id = client_id(&CLIENT_ID);
        let relayed = [
            Frame {
                options: id.clone(),
                ..discover()
            },
            Frame {
                msg_type: 3,
                options: [id.clone(), requested_ip([192, 168, 1, 77])].concat(),
                ..discover()
            },
            Frame {
                msg_type: 4,
                options: [id.clone(), requested_ip(POD_IP)].concat(),
                ..discover()
            },
            // 60 pads before END: within the scan's bound
            Frame {
                options: [id.clone(), vec![0; 60]].concat(),
                ..discover()
            },
        ];
        for (i, spec) in relayed.iter().enumerate() {
            let run = dp.run_pod(dp.pod, &spec.build());
            assert_eq!(run.retval, TC_ACT_REDIRECT, "case {i}");
        }
        let passed = [
            unicast(3, POD_IP, id.clone()),
            unicast(7, POD_IP, id.clone()),
            unicast(8, POD_IP, id.clone()),
        ];
        for (i, spec) in passed.iter().enumerate() {
            let frame = spec.build();
            let run = dp.run_pod(dp.pod, &frame);
            assert_eq!(run.retval, TC_ACT_UNSPEC, "unicast {i}");
            assert_untouched(&run, &frame, &format!("unicast {i}"));
        }
        assert_eq!(
            dp.counters(),
            vec![
                (dp.pod, Reason::Passed, passed.len() as u64),
                (dp.pod, Reason::DhcpRelayed, relayed.len() as u64),
            ]
        );
    });
}

#[test]
fn client_messages_for_others_are_dropped_with_their_reason() {
    with_datapath(|dp| {
        dp.lease_pod();
        let id = client_id(&CLIENT_ID);
        let mut other = CLIENT_ID;
        other[3] ^= 0x10;
        let other_ip = [192, 168, 1, 60];
        let cases = [
            (
                Frame {
                    chaddr: OTHER_MAC,
                    options: id.clone(),
                    ..discover()
                },
                Reason::DropDhcpChaddr,
            ),
            (
                Frame {
                    hlen: 16,
                    ..discover()
                },
                Reason::DropDhcpChaddr,
            ),
            (
                Frame {
                    options: client_id(&other),
                    ..discover()
                },
                Reason::DropDhcpClientId,
            ),
            (
                Frame {
                    options: client_id(&[1, 2, 0, 0, 0, 0, 0x99]),
                    ..discover()
                },
                Reason::DropDhcpClientId,
            ),
            // DECLINE of another pod's address; RELEASE of another lease
            (
                Frame {
                    msg_type: 4,
                    options: [id.clone(), requested_ip(other_ip)].concat(),
                    ..discover()
                },
                Reason::DropDhcpAddr,
            ),
            (unicast(7, other_ip, id.clone()), Reason::DropDhcpAddr),
            (unicast(3, other_ip, id.clone()), Reason::DropDhcpAddr),
            // server types; a BOOTREPLY from the client port
            (
                Frame {
                    msg_type: 5,
                    ..discover()
                },
                Reason::DropDhcpType,
            ),
            (
                Frame {
                    op: 2,
                    ..discover()
                },
                Reason::DropDhcpType,
            ),
            // a relay agent's option; overload; a repeated client id
            (
                Frame {
                    options: vec![82, 2, 1, 0],
                    ..discover()
                },
                Reason::DropDhcpAgent,
            ),
            (
                Frame {
                    options: vec![52, 1, 3],
                    ..discover()
                },
                Reason::DropDhcpMalformed,
            ),
            (
                Frame {
                    options: [id.clone(), client_id(&other)].concat(),
                    ..discover()
                },
                Reason::DropDhcpMalformed,
            ),
            // 64 pads: past the scan's bound
            (
                Frame {
                    options: vec![0; 64],
                    ..discover()
                },
                Reason::DropDhcpMalformed,
            ),
        ];
        for mode in [CFG_LAN_MODE, 0] {
            dp.set_config(mode);
            for (i, (spec, _)) in cases.iter().enumerate() {
                let frame = spec.build();
                let run = dp.run_pod(dp.pod, &frame);
                assert_eq!(run.retval, TC_ACT_SHOT, "mode {mode} case {i}");
                assert_untouched(&run, &frame, &format!("case {i}"));
            }
        }
        for (_, reason) in &cases {
            let n = cases.iter().filter(|(_, r)| r == reason).count() as u64;
            assert_eq!(dp.count(dp.pod, *reason), 2 * n, "{reason:?}");
        }
        // Only the judged drops: no relay, no pass, no rate limit touched.
        assert!(dp
            .counters()
            .iter()
            .all(|(_, r, _)| r.is_drop() && *r != Reason::DropDhcpRate));
    });
}

#[test]
fn a_pod_may_decline_what_a_server_just_gave_it() {
    with_datapath(|dp| {
        dp.lease_pod();
        let new_ip = [192, 168, 1, 61];
        let decline = |ip| {
            Frame {
                msg_type: 4,
                options: requested_ip(ip),
                ..discover()
            }
            .build()
        };
        // Not the pod's address (yet).
        assert_eq!(dp.run_pod(dp.pod, &decline(new_ip)).retval, TC_ACT_SHOT);
        // A server offers it to the pod: lb_from_uplink notes it.
        let offer = Frame {
            yiaddr: new_ip,
            ..offer()
        };
        assert_eq!(dp.run_uplink(&offer.build()).retval, TC_ACT_REDIRECT);
        assert_eq!(dp.run_pod(dp.pod, &decline(new_ip)).retval, TC_ACT_REDIRECT);
        // Only that one, only for that pod.
        let other = [192, 168, 1, 62];
        assert_eq!(dp.run_pod(dp.pod, &decline(other)).retval, TC_ACT_SHOT);
        let pod2 = Frame {
            src_mac: POD2_MAC,
            chaddr: POD2_MAC,
            msg_type: 4,
            options: requested_ip(new_ip),
            ..discover()
        };
        dp.put_endpoint(
            dp.pod2,
            POD2_MAC,
            [u32::from_ne_bytes([192, 168, 1, 70]), 0, 0, 0],
            EP_DHCP_RELAY | EP_GUARD_IP,
        );
        assert_eq!(dp.run_pod(dp.pod2, &pod2.build()).retval, TC_ACT_SHOT);
        assert_eq!(dp.count(dp.pod, Reason::DropDhcpAddr), 2);
        assert_eq!(dp.count(dp.pod2, Reason::DropDhcpAddr), 1);
    });
}

#[test]
fn dhcp_is_rate_limited_per_port_broadcast_and_unicast_alike() {
    with_datapath(|dp| {
        dp.lease_pod();
        let discover = discover().build();
        let renew = unicast(3, POD_IP, Vec::new()).build();
        let mut verdicts = Vec::new();
        for i in 0..20 {
            let frame = if i % 2 == 0 { &discover } else { &renew };
            verdicts.push(dp.run_pod(dp.pod, frame).retval);
        }
        // The burst passes (relayed or passed on), then everything is dropped.
        assert!(
            verdicts[..8].iter().all(|v| *v != TC_ACT_SHOT),
            "{verdicts:?}"
        );
        assert!(
            verdicts[8..].iter().all(|v| *v == TC_ACT_SHOT),
            "{verdicts:?}"
        );
        assert_eq!(dp.count(dp.pod, Reason::DropDhcpRate), 12);
        // Another pod has a bucket of its own.
        let pod2 = Frame {
            src_mac: POD2_MAC,
            chaddr: POD2_MAC,
            ..self::discover()
        }
        .build();
        assert_eq!(dp.run_pod(dp.pod2, &pod2).retval, TC_ACT_REDIRECT);
        // Dropped messages take no token: one interval later, one passes.
        thread::sleep(Duration::from_millis(260));
        assert_eq!(dp.run_pod(dp.pod, &discover).retval, TC_ACT_REDIRECT);
        assert_eq!(dp.run_pod(dp.pod, &discover).retval, TC_ACT_SHOT);
    });
}

// ---------------------------------------------------------------------------
// lb_from_pod: IPv6

const POD_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 5);
const POD2_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 6);
const ROGUE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 0);

/// The first pod with its IPv6 address, as ADD leaves it after IPAM.
fn with_ipv6(dp: &mut Datapath) {
    dp.update_endpoint(dp.pod, |ep| {
        ep.ipv6[0] = POD_IP6.octets();
        ep.flags |= EP_GUARD_IP | EP_GUARD_IP6;
    });
}

fn from_pod6(saddr: Ipv6Addr, proto: u8, payload: Vec<u8>) -> Ip6Frame {
    Ip6Frame::new(POD_MAC, saddr, ALL_NODES, proto, payload)
}

#[test]
fn router_advertisements_redirects_and_dhcp6_servers_are_dropped_in_every_mode() {
    with_datapath(|dp| {
        with_ipv6(dp);
        let ll = link_local(POD_MAC);
        let ra = router_advertisement(ROGUE_PREFIX, POD_MAC);
        let mut redirect = vec![137, 0, 0, 0, 0, 0, 0, 0];
        redirect.extend(POD2_IP6.octets());
        redirect.extend(POD_IP6.octets());
        let hidden = vec![(NEXTHDR_HOP, pad_options()), (NEXTHDR_DEST, pad_options())];
        let cases = [
            (from_pod6(ll, IPPROTO_ICMPV6, ra.clone()), Reason::DropRa),
            (
                from_pod6(ll, IPPROTO_ICMPV6, ra.clone()).chain(hidden.clone()),
                Reason::DropRa,
            ),
            (
                from_pod6(ll, IPPROTO_ICMPV6, ra.clone())
                    .chain(vec![(NEXTHDR_FRAGMENT, fragment_header(0, false))]),
                Reason::DropRa,
            ),
            (
                from_pod6(ll, IPPROTO_ICMPV6, redirect),
                Reason::DropRedirect6,
            ),
            (
                from_pod6(ll, 17, frames6::udp(547, 546, &[2, 0, 0, 1])),
                Reason::DropDhcp6Server,
            ),
            // Five extension headers: more than the guard walks.
            (
                from_pod6(ll, IPPROTO_ICMPV6, ra.clone())
                    .chain(vec![(NEXTHDR_DEST, pad_options()); 5]),
                Reason::DropIp6Unjudged,
            ),
            // A first fragment without the ICMPv6 header.
            (
                from_pod6(ll, NEXTHDR_DEST, pad_options())
                    .chain(vec![(NEXTHDR_FRAGMENT, fragment_header(0, true))]),
                Reason::DropIp6Unjudged,
            ),
        ];
        for flags in [0, CFG_LAN_MODE, CFG_LAN_MODE | CFG_ENFORCE] {
            dp.set_config(flags);
            for (frame, reason) in &cases {
                let run = dp.run_pod(dp.pod, &frame.build());
                assert_eq!(run.retval, TC_ACT_SHOT, "flags {flags}: {reason:?}");
            }
        }
        // What a pod does send passes: an echo request, a DHCPv6 client
        // message, a solicitation, a later fragment.
        let passing = [
            from_pod6(ll, IPPROTO_ICMPV6, vec![128, 0, 0, 0, 0, 1, 0, 1]),
            from_pod6(POD_IP6, 17, frames6::udp(546, 547, &[1, 0, 0, 1])),
            from_pod6(
                ll,
                IPPROTO_ICMPV6,
                neighbour_solicitation(POD2_IP6, Some(POD_MAC)),
            ),
            from_pod6(POD_IP6, 17, vec![0xaa; 64])
                .chain(vec![(NEXTHDR_FRAGMENT, fragment_header(185, false))]),
        ];
        for frame in &passing {
            let run = dp.run_pod(dp.pod, &frame.build());
            assert_eq!(run.retval, TC_ACT_UNSPEC);
        }
        let n = |r| dp.count(dp.pod, r);
        assert_eq!(n(Reason::DropRa), 9);
        assert_eq!(n(Reason::DropRedirect6), 3);
        assert_eq!(n(Reason::DropDhcp6Server), 3);
        assert_eq!(n(Reason::DropIp6Unjudged), 6);
        assert_eq!(n(Reason::Passed), 4);
    });
}

#[test]
fn ipv6_sources_and_neighbour_discovery_are_the_pods_own() {
    with_datapath(|dp| {
        with_ipv6(dp);
        dp.set_config(CFG_LAN_MODE | CFG_ENFORCE);
        let ll = link_local(POD_MAC);
        let data = || frames6::udp(40000, 7, b"spoof");
        let cases = [
            (from_pod6(ll, 17, data()), TC_ACT_UNSPEC, Reason::Passed),
            (
                from_pod6(POD_IP6, 17, data()),
                TC_ACT_UNSPEC,
                Reason::Passed,
            ),
            (
                from_pod6(POD2_IP6, 17, data()),
                TC_ACT_SHOT,
                Reason::DropSpoofIp6,
            ),
            (
                from_pod6(link_local(POD2_MAC), 17, data()),
                TC_ACT_SHOT,
                Reason::DropSpoofIp6,
            ),
            (
                from_pod6(Ipv6Addr::UNSPECIFIED, 17, data()),
                TC_ACT_SHOT,
                Reason::DropSpoofIp6,
            ),
            // The override attack: an NA for another pod's address.
            (
                from_pod6(
                    ll,
                    IPPROTO_ICMPV6,
                    neighbour_advertisement(POD2_IP6, POD_MAC),
                ),
                TC_ACT_SHOT,
                Reason::DropNdSpoof,
            ),
            (
                from_pod6(
                    ll,
                    IPPROTO_ICMPV6,
                    neighbour_advertisement(POD_IP6, POD2_MAC),
                ),
                TC_ACT_SHOT,
                Reason::DropNdSpoof,
            ),
            (
                from_pod6(
                    ll,
                    IPPROTO_ICMPV6,
                    neighbour_advertisement(POD_IP6, POD_MAC),
                ),
                TC_ACT_UNSPEC,
                Reason::Passed,
            ),
            // DAD: for its own address only.
            (
                from_pod6(
                    Ipv6Addr::UNSPECIFIED,
                    IPPROTO_ICMPV6,
                    neighbour_solicitation(POD_IP6, None),
                ),
                TC_ACT_UNSPEC,
                Reason::Passed,
            ),
            (
                from_pod6(
                    Ipv6Addr::UNSPECIFIED,
                    IPPROTO_ICMPV6,
                    neighbour_solicitation(POD2_IP6, None),
                ),
                TC_ACT_SHOT,
                Reason::DropNdSpoof,
            ),
        ];
        for (frame, retval, reason) in &cases {
            let before = dp.count(dp.pod, *reason);
            let run = dp.run_pod(dp.pod, &frame.build());
            assert_eq!(run.retval, *retval, "{reason:?}");
            assert_eq!(dp.count(dp.pod, *reason), before + 1, "{reason:?}");
        }
        // Without enforcement only the RA guard applies.
        dp.set_config(CFG_LAN_MODE);
        let run = dp.run_pod(dp.pod, &from_pod6(POD2_IP6, 17, data()).build());
        assert_eq!(run.retval, TC_ACT_UNSPEC);
    });
}

// ---------------------------------------------------------------------------
// lb_to_pod

#[test]
fn to_pod_drops_what_another_isolated_pod_sent_through_the_stack() {
    with_datapath(|dp| {
        const POD2_IP: [u8; 4] = [192, 168, 1, 51];
        dp.set_config(CFG_LAN_MODE);
        dp.index_ip(POD2_IP, dp.pod2);
        dp.index_ip6(POD2_IP6, dp.pod2);
        let udp4 = |saddr, frag| {
            Frame {
                dst_mac: POD_MAC,
                src_mac: UPLINK_MAC,
                saddr,
                daddr: POD_IP,
                sport: 40000,
                dport: 7,
                frag,
                ..discover()
            }
            .build()
        };
        let udp6 = |saddr| {
            Ip6Frame::new(UPLINK_MAC, saddr, POD_IP6, 17, frames6::udp(40000, 7, b"x"))
                .to(POD_MAC)
                .build()
        };
        let from_peer = [
            udp4(POD2_IP, 0),
            // First and later fragments of a large datagram.
            udp4(POD2_IP, 0x2000),
            udp4(POD2_IP, 0x00b9),
            udp6(POD2_IP6),
        ];
        let to_pod = |dp: &Datapath, frame: &[u8]| dp.run(PROG_TO_POD, dp.pod, frame).retval;
        // Not isolated: everything passes.
        for frame in &from_peer {
            assert_eq!(to_pod(dp, frame), TC_ACT_UNSPEC);
        }
        for port in [dp.pod, dp.pod2] {
            dp.update_endpoint(port, |ep| ep.flags |= EP_ISOLATED);
        }
        for frame in &from_peer {
            assert_eq!(to_pod(dp, frame), TC_ACT_SHOT);
        }
        // The LAN, the node, and the pod's own packets (hairpin) pass.
        dp.index_ip(POD_IP, dp.pod);
        for frame in [
            udp4(SERVER_IP, 0),
            udp4(POD_IP, 0),
            udp6(link_local(SERVER_MAC)),
        ] {
            assert_eq!(to_pod(dp, &frame), TC_ACT_UNSPEC);
        }
        // Only one of the two isolated: passes.
        dp.update_endpoint(dp.pod2, |ep| ep.flags &= !EP_ISOLATED);
        assert_eq!(to_pod(dp, &from_peer[0]), TC_ACT_UNSPEC);
        assert_eq!(
            dp.counters(),
            vec![(dp.pod, Reason::DropIsolated, from_peer.len() as u64)]
        );
    });
}

// ---------------------------------------------------------------------------
// lb_from_uplink

#[test]
fn replies_for_pods_are_steered_to_their_port() {
    with_datapath(|dp| {
        let cases = [
            (offer(), POD_MAC),
            // unicast ACK to the pod's address
            (
                Frame {
                    dst_mac: POD_MAC,
                    daddr: POD_IP,
                    flags: 0,
                    msg_type: 5,
                    ..offer()
                },
                POD_MAC,
            ),
            // with IP options
            (Frame { ihl: 8, ..offer() }, POD_MAC),
            // for the second pod
            (
                Frame {
                    chaddr: POD2_MAC,
                    ..offer()
                },
                POD2_MAC,
            ),
            // priority-tagged
            (
                Frame {
                    vlan: Some(0x2000),
                    ..offer()
                },
                POD_MAC,
            ),
        ];
        for (i, (spec, mac)) in cases.iter().enumerate() {
            let frame = spec.build();
            let run = dp.run_uplink(&frame);
            assert_eq!(run.retval, TC_ACT_REDIRECT, "case {i}");
            assert_eq!(run.out[0..6], *mac, "case {i}: destination := chaddr");
            let changed = diff(&frame, &run.out);
            assert!(changed.iter().all(|&b| b < 6), "case {i}: {changed:?}");
            assert!(udp_checksum_ok(&run.out, spec), "case {i}");
        }
        assert_eq!(
            dp.counters(),
            vec![(dp.uplink, Reason::DhcpToPod, cases.len() as u64)]
        );
    });
}

#[test]
fn everything_else_on_the_uplink_passes_untouched() {
    with_datapath(|dp| {
        let frames = [
            // a reply for someone else (the node's own DHCP client)
            Frame {
                chaddr: OTHER_MAC,
                ..offer()
            }
            .build(),
            // another node's DISCOVER on the LAN
            Frame {
                src_mac: OTHER_MAC,
                chaddr: POD_MAC,
                ..discover()
            }
            .build(),
            // not Ethernet hardware addresses
            Frame {
                htype: 6,
                ..offer()
            }
            .build(),
            Frame {
                hlen: 16,
                ..offer()
            }
            .build(),
            // a BOOTREQUEST from port 67 (a relay agent)
            Frame { op: 1, ..offer() }.build(),
            // tagged with a VLAN id: for a VLAN interface of the node
            Frame {
                vlan: Some(100),
                ..offer()
            }
            .build(),
            // fragments
            Frame {
                frag: 0x2000,
                ..offer()
            }
            .build(),
            Frame {
                frag: 0x0020,
                ..offer()
            }
            .build(),
            // other UDP, TCP, ARP, IPv6
            Frame {
                sport: 53,
                dport: 40000,
                ..offer()
            }
            .build(),
            Frame {
                proto: 6,
                ..offer()
            }
            .build(),
            arp(SERVER_MAC),
            Frame {
                ethertype: 0x86dd,
                ..offer()
            }
            .build(),
        ];
        for (i, frame) in frames.iter().enumerate() {
            let run = dp.run_uplink(frame);
            assert_eq!(run.retval, TC_ACT_UNSPEC, "case {i}");
            assert_untouched(&run, frame, &format!("case {i}"));
        }
        assert_eq!(
            dp.counters(),
            vec![(dp.uplink, Reason::Passed, frames.len() as u64)]
        );
    });
}

#[test]
fn truncated_frames_on_the_uplink_pass_at_every_length() {
    with_datapath(|dp| {
        let mut passed = 0;
        let mut steered = 0;
        let specs = [
            offer(),
            Frame { ihl: 6, ..offer() },
            // priority-tagged: the kernel runs cuts inside the IPv4 header
            Frame {
                vlan: Some(0x2000),
                ..offer()
            },
        ];
        for spec in specs {
            let frame = spec.build();
            for len in min_test_run_len(&spec)..frame.len() {
                let cut = &frame[..len];
                let run = dp.run_uplink(cut);
                // Steering needs BOOTP up to the end of chaddr.
                if len < spec.bootp_off() + 34 {
                    assert_eq!(run.retval, TC_ACT_UNSPEC, "len {len}");
                    assert_untouched(&run, cut, &format!("len {len}"));
                    passed += 1;
                } else {
                    assert_eq!(run.retval, TC_ACT_REDIRECT, "len {len}");
                    steered += 1;
                }
            }
        }
        assert_eq!(
            dp.counters(),
            vec![
                (dp.uplink, Reason::Passed, passed),
                (dp.uplink, Reason::DhcpToPod, steered),
            ]
        );
    });
}

#[test]
fn counters_accumulate_per_port_and_reason() {
    with_datapath(|dp| {
        let discover = discover().build();
        let spoof = Frame {
            src_mac: OTHER_MAC,
            ..self::discover()
        }
        .build();
        let offer = offer().build();
        for _ in 0..3 {
            dp.run_pod(dp.pod, &discover);
        }
        dp.run_pod(dp.pod, &spoof);
        dp.run_pod(dp.pod, &offer);
        dp.run_pod(dp.pod2, &arp(POD2_MAC));
        dp.run_uplink(&offer);
        dp.run_uplink(&arp(SERVER_MAC));
        assert_eq!(dp.count(dp.pod, Reason::DhcpRelayed), 3);
        assert_eq!(dp.count(dp.pod, Reason::DropDhcpSpoof), 1);
        assert_eq!(dp.count(dp.pod, Reason::DropDhcpServer), 1);
        assert_eq!(dp.count(dp.pod, Reason::Passed), 0);
        assert_eq!(dp.count(dp.pod2, Reason::Passed), 1);
        assert_eq!(dp.count(dp.uplink, Reason::DhcpToPod), 1);
        assert_eq!(dp.count(dp.uplink, Reason::Passed), 1);
        assert_eq!(dp.counters().len(), 6);
    });
}

// ---------------------------------------------------------------------------
// Drop events

/// Every event in `lb_events`, oldest first.
fn drain_events(events: &mut RingBuf<MapData>) -> Vec<DropEvent> {
    let mut all = Vec::new();
    while let Some(item) = events.next() {
        assert_eq!(item.len(), size_of::<DropEvent>(), "an event's size");
        // SAFETY: `DropEvent` is plain data, any bit pattern valid.
        all.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<DropEvent>()) });
    }
    all
}

#[test]
fn drops_are_reported_with_the_packet_and_rate_limited_per_port() {
    with_datapath(|dp| {
        let mut events: RingBuf<MapData> = dp
            .ebpf
            .take_map(MAP_EVENTS)
            .expect("no lb_events in the object")
            .try_into()
            .unwrap();
        let spoof = Frame {
            saddr: [192, 168, 1, 51],
            ..discover()
        }
        .build();
        assert_eq!(dp.run_pod(dp.pod, &spoof).retval, TC_ACT_SHOT);
        // What passes or is relayed is no event.
        assert_eq!(dp.run_pod(dp.pod2, &arp(POD2_MAC)).retval, TC_ACT_UNSPEC);
        let ev = drain_events(&mut events);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let ev = ev[0];
        assert_eq!(
            (ev.ifindex, ev.reason),
            (dp.pod, Reason::DropDhcpSpoof as u32)
        );
        assert_eq!((ev.src_mac, ev.dst_mac), (POD_MAC, BROADCAST_MAC));
        assert_eq!((ev.ethertype, ev.proto), (0x0800, 17));
        assert_eq!(&ev.saddr[..4], &[192, 168, 1, 51]);
        assert_eq!(&ev.daddr[..4], &[255, 255, 255, 255]);
        assert_eq!((ev.sport, ev.dport), (68, 67));
        assert_eq!((ev.len as usize, ev.suppressed), (spoof.len(), 0));

        // A flood: the bucket's burst is reported (a token may come back
        // while the runs go on), the rest counted as suppressed.
        let flood = 3 * EVENT_BURST as usize;
        for _ in 0..flood {
            dp.run_pod(dp.pod, &spoof);
        }
        let sent = drain_events(&mut events).len();
        let burst = EVENT_BURST as usize - 1;
        assert!(
            (burst..burst + 3).contains(&sent),
            "{sent} events of {flood}"
        );
        // Another port has its own bucket.
        let other = Frame {
            src_mac: OTHER_MAC,
            ..discover()
        }
        .build();
        dp.run_pod(dp.pod2, &other);
        let ev = drain_events(&mut events);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!((ev[0].ifindex, ev[0].src_mac), (dp.pod2, OTHER_MAC));
        // Once a token is back, the next event says how many were suppressed.
        thread::sleep(Duration::from_nanos(2 * EVENT_INTERVAL_NS));
        dp.run_pod(dp.pod, &spoof);
        let ev = drain_events(&mut events);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].suppressed as usize, flood - sent);
        assert_eq!(dp.count(dp.pod, Reason::DropDhcpSpoof), flood as u64 + 2);
    });
}

// ---------------------------------------------------------------------------
// Fast path

const BRIDGE_MAC: [u8; 6] = [0x02, 0xbb, 0x00, 0x00, 0x00, 0x01];
const POD2_IP: [u8; 4] = [192, 168, 1, 51];
/// On the LAN: a host with a known MAC, one without (no neighbour entry).
const LAN_HOST: [u8; 4] = [10, 9, 0, 1];
const LAN_HOST_MAC: [u8; 6] = [0x02, 0x11, 0x00, 0x00, 0x00, 0x02];
const LAN_UNKNOWN: [u8; 4] = [10, 9, 0, 7];
const SERVICE_IP: [u8; 4] = [10, 96, 0, 10];
/// A pod of another node (subnet mode), routed via `LAN_HOST`.
const REMOTE_POD: [u8; 4] = [10, 244, 2, 5];

fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A 64-byte IPv4 frame of `proto` (TCP or UDP, ports 40000 -> 5201), TTL
/// 255: a test run may rewrite it 250 times before the TTL rule takes it.
fn small_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    saddr: [u8; 4],
    daddr: [u8; 4],
    proto: u8,
) -> Vec<u8> {
    let spec = Frame {
        dst_mac,
        src_mac,
        saddr,
        daddr,
        proto,
        sport: 40000,
        dport: 5201,
        udp_csum: false,
        ..Frame::default()
    };
    let mut f = spec.build();
    f.truncate(64);
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 255;
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = !fold(sum16(0, &f[14..34]));
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// `frame` (a [`small_frame`]) padded to `len` bytes, its IPv4 length and
/// checksum to match.
fn sized_frame(mut f: Vec<u8>, len: usize) -> Vec<u8> {
    f.resize(len, 0);
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = !fold(sum16(0, &f[14..34]));
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The IPv4 header of `frame` (untagged) has a valid checksum.
fn ip_checksum_ok(frame: &[u8]) -> bool {
    fold(sum16(0, &frame[14..34])) == 0xffff
}

impl Datapath {
    /// Makes the test's namespace route like a node: forwarding on, a
    /// bridge stand-in the FIB takes the pods' packets from, the uplink on
    /// the LAN (10.9.0.0/24) knowing `LAN_HOST`'s MAC, a route to another
    /// node's pod subnet via it; the second pod gets `POD2_IP`; `flags` and
    /// both ends' MACs go to `lb_config`; a service CIDR is slow.
    fn route_like_a_node(&mut self, flags: u16) -> u32 {
        let bridge = device("lbtbr");
        for dev in ["lbtbr", "lbtbrp", "lbtup", "lbtupp"] {
            ip(&format!("link set {dev} up"));
        }
        ip("addr add 10.9.0.2/24 dev lbtup");
        let lan_host_mac = LAN_HOST_MAC.map(|b| format!("{b:02x}")).join(":");
        ip(&format!(
            "neigh add 10.9.0.1 lladdr {lan_host_mac} dev lbtup nud permanent"
        ));
        ip("route add 10.244.2.0/24 via 10.9.0.1 dev lbtup");
        std::fs::write("/proc/sys/net/ipv4/conf/all/forwarding", "1")
            .expect("enabling forwarding in the test's namespace");
        self.update_endpoint(self.pod2, |ep| ep.ipv4[0] = u32::from_ne_bytes(POD2_IP));
        self.index_ip(POD_IP, self.pod);
        self.index_ip(POD2_IP, self.pod2);
        self.set_prefix(MAP_SLOW_CIDRS, [10, 96, 0, 0], 12);
        self.set_prefix(MAP_CLUSTER, [10, 244, 0, 0], 16);
        let net = |a| u32::from_ne_bytes(a);
        self.set_inline_prefixes(Prefixes {
            slow: PrefixSet::new(&[(net([10, 96, 0, 0]), 12)]),
            cluster: PrefixSet::new(&[(net([10, 244, 0, 0]), 16)]),
        });
        self.set_routed_config(bridge, flags);
        bridge
    }

    fn set_routed_config(&mut self, bridge: u32, flags: u16) {
        let cfg = NetConfig {
            uplink_ifindex: self.uplink,
            bridge_ifindex: bridge,
            uplink_mac: UPLINK_MAC,
            bridge_mac: BRIDGE_MAC,
            flags,
            ..NetConfig::default()
        };
        self.config.set(0, cfg, 0).expect("writing lb_config");
    }

    /// `lb_prefixes`: the tries' sets as the loader writes them inline
    /// (`Prefixes::default()`: not written, the tries are asked).
    fn set_inline_prefixes(&mut self, prefixes: Prefixes) {
        let mut map: Array<&mut MapData, Prefixes> =
            self.ebpf.map_mut(MAP_PREFIXES).unwrap().try_into().unwrap();
        map.set(0, prefixes, 0).unwrap();
    }

    fn set_prefix(&mut self, map: &str, net: [u8; 4], len: u32) {
        let mut trie: LpmTrie<&mut MapData, u32, u8> =
            self.ebpf.map_mut(map).unwrap().try_into().unwrap();
        trie.insert(&Key::new(len, u32::from_ne_bytes(net)), 1, 0)
            .unwrap();
    }

    /// The kernel's time per run of `name` on `frame` and of each of
    /// `baselines` on it, interleaved (load on the machine slows all
    /// alike): the medians of many single-run test runs. One run each:
    /// repeated runs share the skb, so every run after the first judged the
    /// frame the first rewrote (the gateway's source MAC: a spoof, dropped
    /// early), not `frame`. The median shrugs off preempted runs.
    fn per_run_ns(
        &self,
        name: &str,
        ifindex: u32,
        frame: &[u8],
        baselines: &[&RawProgram],
    ) -> (u128, Vec<u128>) {
        let median = |mut runs: Vec<u128>| {
            runs.sort_unstable();
            runs[runs.len() / 2]
        };
        let mut prog = Vec::new();
        let mut base = vec![Vec::new(); baselines.len()];
        for _ in 0..4000 {
            prog.push(self.run_repeat(name, ifindex, frame, 1).1.as_nanos());
            for (runs, program) in base.iter_mut().zip(baselines) {
                runs.push(program.per_run_ns(frame, 1));
            }
        }
        (median(prog), base.into_iter().map(median).collect())
    }
}

/// A TC program written as BPF instructions and loaded with bpf(2) (aya
/// loads programs from objects only): the baselines of the cost probe.
struct RawProgram(std::os::fd::OwnedFd);

impl RawProgram {
    const PROG_LOAD: libc::c_long = 5;
    const PROG_TEST_RUN: libc::c_long = 10;
    const SCHED_CLS: u32 = 3;

    fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> i64 {
        // SAFETY: `attr` is a bpf_attr of the size passed; its pointers
        // point at live buffers of the sizes given.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
        assert!(rc >= 0, "bpf({cmd}): {}", std::io::Error::last_os_error());
        rc
    }

    /// One instruction: opcode, registers, offset, immediate.
    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
        let [o0, o1] = off.to_le_bytes();
        let [i0, i1, i2, i3] = imm.to_le_bytes();
        u64::from_le_bytes([code, src << 4 | dst, o0, o1, i0, i1, i2, i3])
    }

    /// `r0 = -1; exit`: returns TC_ACT_UNSPEC, the test runner's own cost
    /// per run.
    fn empty() -> RawProgram {
        RawProgram::load(&[Self::insn(0xb7, 0, 0, 0, -1), Self::insn(0x95, 0, 0, 0, 0)])
    }

    /// Only the fast path's `bpf_fib_lookup` (the same parameters and
    /// flags as `route_out`), returning its result: the floor of a fast
    /// path that asks the FIB per packet.
    fn fib_lookup(bridge: u32, saddr: [u8; 4], daddr: [u8; 4], proto: u8) -> RawProgram {
        const FIB_LOOKUP: i32 = 69;
        const SKIP_NEIGH: i32 = 4;
        // The 64-byte `struct bpf_fib_lookup` at r10 - 64.
        let at = |off: i16| off - 64;
        let word = |a: [u8; 4]| i32::from_ne_bytes(a);
        let (st_b, st_h, st_w, st_dw) = (0x72, 0x6a, 0x62, 0x7a);
        let mut insns: Vec<u64> = (0..8)
            .map(|i| Self::insn(st_dw, 10, 0, at(i * 8), 0))
            .collect();
        insns.extend([
            Self::insn(st_b, 10, 0, at(0), 2),
            Self::insn(st_b, 10, 0, at(1), i32::from(proto)),
            Self::insn(st_h, 10, 0, at(2), i32::from(40000u16.to_be())),
            Self::insn(st_h, 10, 0, at(4), i32::from(5201u16.to_be())),
            Self::insn(st_w, 10, 0, at(8), bridge as i32),
            Self::insn(st_w, 10, 0, at(16), word(saddr)),
            Self::insn(st_w, 10, 0, at(32), word(daddr)),
            // r2 = r10 - 64; r3 = 64; r4 = flags; r0 = call; exit.
            Self::insn(0xbf, 2, 10, 0, 0),
            Self::insn(0x07, 2, 0, 0, -64),
            Self::insn(0xb7, 3, 0, 0, 64),
            Self::insn(0xb7, 4, 0, 0, SKIP_NEIGH),
            Self::insn(0x85, 0, 0, 0, FIB_LOOKUP),
            Self::insn(0x95, 0, 0, 0, 0),
        ]);
        RawProgram::load(&insns)
    }

    fn load(insns: &[u64]) -> RawProgram {
        use std::os::fd::FromRawFd;
        let license = c"GPL";
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&Self::SCHED_CLS.to_ne_bytes());
        attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        let fd = Self::bpf(Self::PROG_LOAD, &mut attr) as i32;
        // SAFETY: a new fd the kernel just returned.
        RawProgram(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// The kernel's mean time per run over `repeat` runs on `frame`.
    fn per_run_ns(&self, frame: &[u8], repeat: u32) -> u128 {
        self.test_run(frame, repeat).1
    }

    /// The program's return value on `frame` and its mean time per run.
    fn test_run(&self, frame: &[u8], repeat: u32) -> (u32, u128) {
        use std::os::fd::AsRawFd;
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&(self.0.as_raw_fd() as u32).to_ne_bytes());
        attr[8..12].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        attr[16..24].copy_from_slice(&(frame.as_ptr() as u64).to_ne_bytes());
        attr[32..36].copy_from_slice(&repeat.to_ne_bytes());
        Self::bpf(Self::PROG_TEST_RUN, &mut attr);
        let word = |at: usize| u32::from_ne_bytes(attr[at..at + 4].try_into().unwrap());
        (word(4), u128::from(word(36)))
    }
}

/// Asserts a fast-path delivery into a pod: redirected, `dst` as the
/// Ethernet destination, TTL decremented with the checksum updated.
fn assert_forwarded(run: &Run, frame: &[u8], dst: [u8; 6], what: &str) {
    assert_eq!(run.out[0..6], dst, "{what}: Ethernet destination");
    assert_routed(run, frame, what);
}

/// Asserts a fast-path route out of the node (`bpf_redirect_neigh`):
/// redirected, TTL decremented with the checksum updated, the Ethernet
/// header left for the kernel to write at xmit.
fn assert_routed_out(run: &Run, frame: &[u8], what: &str) {
    assert_eq!(run.out[0..14], frame[0..14], "{what}: Ethernet header");
    assert_routed(run, frame, what);
}

fn assert_routed(run: &Run, frame: &[u8], what: &str) {
    assert_eq!(run.retval, TC_ACT_REDIRECT, "{what}");
    assert_eq!(run.out[22], frame[22] - 1, "{what}: TTL");
    assert!(ip_checksum_ok(&run.out), "{what}: IPv4 checksum");
    assert_eq!(run.out[26..], frame[26..], "{what}: addresses and payload");
}

#[test]
fn lan_fast_path_forwards_to_the_lan_and_to_pods_and_leaves_the_rest_to_the_stack() {
    with_datapath(|dp| {
        dp.route_like_a_node(CFG_LAN_MODE | CFG_ENFORCE | CFG_FAST_PATH);
        for proto in [17, 6] {
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, proto);
            let run = dp.run_pod(dp.pod, &frame);
            assert_routed_out(&run, &frame, "to the LAN");
            // The next hop unknown: the same, `bpf_redirect_neigh` resolves it.
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_UNKNOWN, proto);
            let run = dp.run_pod(dp.pod, &frame);
            assert_routed_out(&run, &frame, "to an unresolved LAN host");
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, POD2_IP, proto);
            let run = dp.run_pod(dp.pod, &frame);
            assert_forwarded(&run, &frame, POD2_MAC, "to a pod");
            assert_eq!(run.out[6..12], BRIDGE_MAC, "to a pod: from the gateway");
            let frame = small_frame(UPLINK_MAC, LAN_HOST_MAC, LAN_HOST, POD_IP, proto);
            let run = dp.run_uplink(&frame);
            assert_forwarded(&run, &frame, POD_MAC, "from the LAN");
            assert_eq!(run.out[6..12], BRIDGE_MAC, "from the LAN: from the gateway");
        }
        assert_eq!(dp.count(dp.pod, Reason::FastToLan), 4);
        assert_eq!(dp.count(dp.pod, Reason::FastToPod), 2);
        assert_eq!(dp.count(dp.uplink, Reason::FastToPod), 2);

        let slow = [
            (SERVICE_IP, 255, Reason::SlowService),
            (LAN_HOST, 1, Reason::Passed),
            ([224, 0, 0, 251], 255, Reason::Passed),
        ];
        // The service CIDR inline in `lb_prefixes`, then in the trie only.
        for inline in [true, false] {
            if !inline {
                dp.set_inline_prefixes(Prefixes::default());
            }
            for (daddr, ttl, reason) in slow {
                let mut frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, daddr, 17);
                frame[22] = ttl;
                let run = dp.run_pod(dp.pod, &frame);
                let what = format!("to {daddr:?}, TTL {ttl}, inline {inline}");
                assert_eq!(run.retval, TC_ACT_UNSPEC, "{what}");
                assert_untouched(&run, &frame, &what);
                assert!(dp.count(dp.pod, reason) > 0, "{reason:?}");
            }
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 17);
            assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_REDIRECT);
        }
        assert_eq!(dp.count(dp.pod, Reason::SlowService), 2);
        // Too big for the uplink, its next hop known or not: the stack's
        // (it fragments or answers "fragmentation needed").
        ip("link set lbtup mtu 1280");
        for daddr in [LAN_HOST, LAN_UNKNOWN] {
            let frame = sized_frame(small_frame(BRIDGE_MAC, POD_MAC, POD_IP, daddr, 17), 1400);
            let run = dp.run_pod(dp.pod, &frame);
            let what = format!("1400 bytes to {daddr:?} over an MTU of 1280");
            assert_eq!(run.retval, TC_ACT_UNSPEC, "{what}");
            assert_untouched(&run, &frame, &what);
        }
        ip("link set lbtup mtu 1500");
        let frame = sized_frame(small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 17), 1400);
        assert_routed_out(&dp.run_pod(dp.pod, &frame), &frame, "1400 bytes, MTU 1500");
        // A flow the stack delivered to the pod (a service's DNAT-ed
        // request, say): its replies and its repeats take the stack too.
        let carried = small_frame(POD_MAC, BRIDGE_MAC, LAN_HOST, POD_IP, 6);
        assert_eq!(dp.run(PROG_TO_POD, dp.pod, &carried).retval, TC_ACT_UNSPEC);
        let mut reply = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 6);
        reply[34..38].copy_from_slice(&[0x14, 0x51, 0x9c, 0x40]);
        let run = dp.run_pod(dp.pod, &reply);
        assert_eq!(run.retval, TC_ACT_UNSPEC, "the reply of a carried flow");
        assert_untouched(&run, &reply, "the reply of a carried flow");
        let run = dp.run_uplink(&carried);
        assert_eq!(run.retval, TC_ACT_UNSPEC, "a carried flow's next packet");
        assert_eq!(dp.count(dp.pod, Reason::SlowFlow), 1);
        assert_eq!(dp.count(dp.uplink, Reason::SlowFlow), 1);
        // Other ports of the same hosts still take the fast path.
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 6);
        assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_REDIRECT);

        // A spoofed source is dropped before any forwarding.
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD2_IP, LAN_HOST, 17);
        dp.update_endpoint(dp.pod, |ep| ep.flags |= EP_GUARD_IP);
        assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_SHOT);
        // Isolated pods do not reach each other.
        dp.update_endpoint(dp.pod, |ep| ep.flags |= EP_ISOLATED);
        dp.update_endpoint(dp.pod2, |ep| ep.flags |= EP_ISOLATED);
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, POD2_IP, 17);
        assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_SHOT);
        assert_eq!(dp.count(dp.pod, Reason::DropIsolated), 1);
    });
}

#[test]
fn subnet_fast_path_forwards_to_other_nodes_pods_only() {
    with_datapath(|dp| {
        dp.route_like_a_node(CFG_ENFORCE | CFG_FAST_PATH);
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, REMOTE_POD, 6);
        let run = dp.run_pod(dp.pod, &frame);
        assert_routed_out(&run, &frame, "to a remote pod");
        assert_eq!(dp.count(dp.pod, Reason::FastToLan), 1);
        // Switched by the bridge, or not a cluster destination: the stack's.
        for (dst_mac, daddr) in [(POD2_MAC, POD2_IP), (BRIDGE_MAC, LAN_HOST)] {
            let frame = small_frame(dst_mac, POD_MAC, POD_IP, daddr, 17);
            let run = dp.run_pod(dp.pod, &frame);
            assert_eq!(run.retval, TC_ACT_UNSPEC, "to {daddr:?}");
            assert_untouched(&run, &frame, &format!("to {daddr:?}"));
        }
        assert_eq!(dp.count(dp.pod, Reason::Passed), 2);
        // The cluster CIDR in the trie only: the same verdicts.
        dp.set_inline_prefixes(Prefixes::default());
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, REMOTE_POD, 6);
        assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_REDIRECT);
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 6);
        assert_eq!(dp.run_pod(dp.pod, &frame).retval, TC_ACT_UNSPEC);
        assert_eq!(dp.count(dp.pod, Reason::FastToLan), 2);
    });
}

#[test]
fn pods_are_found_whether_their_address_holds_its_slot_or_shares_it() {
    with_datapath(|dp| {
        dp.route_like_a_node(CFG_LAN_MODE | CFG_ENFORCE | CFG_FAST_PATH);
        // Two pod addresses in the slot of a LAN host: the first holds the
        // slot, the second is in `lb_by_ip` only and marks it shared.
        let slot = ip_slot(u32::from_ne_bytes(LAN_UNKNOWN));
        let mut colliding = (0..=u16::MAX)
            .map(|i| {
                let [a, b] = i.to_be_bytes();
                [192, 168, a, b]
            })
            .filter(|ip| ip_slot(u32::from_ne_bytes(*ip)) == slot);
        let (held, shared) = (colliding.next().unwrap(), colliding.next().unwrap());
        let key = |ip| u32::from_ne_bytes(ip);
        dp.put_endpoint(dp.stranger, OTHER_MAC, [key(held), key(shared), 0, 0], 0);
        dp.index_ip(held, dp.stranger);
        dp.index_ip(shared, dp.stranger);
        let slot_now = |dp: &Datapath| dp.ip_slots.get(&slot, 0).unwrap();
        assert_eq!(slot_now(dp).addr, key(held));
        let check = |dp: &Datapath, pods: &[[u8; 4]], what: &str| {
            for &pod in pods {
                let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, pod, 17);
                let run = dp.run_pod(dp.pod, &frame);
                assert_forwarded(&run, &frame, OTHER_MAC, &format!("to {pod:?}, {what}"));
                let frame = small_frame(UPLINK_MAC, LAN_HOST_MAC, LAN_HOST, pod, 6);
                let run = dp.run_uplink(&frame);
                assert_forwarded(
                    &run,
                    &frame,
                    OTHER_MAC,
                    &format!("from the LAN to {pod:?}, {what}"),
                );
            }
            // The LAN host of the slot is no pod: routed out of the node.
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_UNKNOWN, 17);
            assert_routed_out(
                &dp.run_pod(dp.pod, &frame),
                &frame,
                &format!("to the LAN, {what}"),
            );
        };
        check(dp, &[held, shared], "slot held and shared");
        // The holder leaves: the slot is free, still shared.
        dp.unindex_ip(held, dp.stranger);
        assert_eq!(slot_now(dp).addr, 0);
        check(dp, &[shared], "slot freed");
        let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, held, 17);
        let run = dp.run_pod(dp.pod, &frame);
        assert_eq!(
            run.out[0..14],
            frame[0..14],
            "a departed pod's address: not delivered into a pod"
        );
        // A table the loader has not completed (another build's): every
        // answer comes from `lb_by_ip`, the same.
        dp.ip_slots
            .set(IP_SLOTS_HEADER, IpSlot::default(), 0)
            .unwrap();
        dp.ip_slots.set(slot, IpSlot::default(), 0).unwrap();
        check(dp, &[shared], "table incomplete");
    });
}

/// The cost per run of the fast path's cases, as the kernel's test runner
/// measures it (warm caches: lower than under traffic, fit for A/B of the
/// programs), beside an empty program and, for the routed cases, a program
/// doing only the fast path's FIB lookup (the floor of routing by the FIB
/// per packet). `cargo test -p lanbridge-tests --test ebpf_programs --
/// --ignored --nocapture cost`
#[test]
#[ignore = "a measurement"]
fn cost_per_run_of_the_fast_path() {
    with_datapath(|dp| {
        let empty = RawProgram::empty();
        let bridge = dp.route_like_a_node(CFG_LAN_MODE | CFG_ENFORCE | CFG_FAST_PATH);
        // (case, frame, the FIB lookup the fast path makes for it)
        let routed = |daddr, proto| {
            let fib = RawProgram::fib_lookup(bridge, POD_IP, daddr, proto);
            let frame = small_frame(BRIDGE_MAC, POD_MAC, POD_IP, daddr, proto);
            assert_eq!(fib.test_run(&frame, 1).0, 0, "the FIB routes {daddr:?}");
            Some(fib)
        };
        let lan = [
            (
                "lan: UDP pod -> LAN",
                small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 17),
                routed(LAN_HOST, 17),
            ),
            (
                "lan: TCP pod -> LAN",
                small_frame(BRIDGE_MAC, POD_MAC, POD_IP, LAN_HOST, 6),
                routed(LAN_HOST, 6),
            ),
            (
                "lan: UDP pod -> pod",
                small_frame(BRIDGE_MAC, POD_MAC, POD_IP, POD2_IP, 17),
                None,
            ),
            (
                "lan: UDP pod -> service (passed)",
                small_frame(BRIDGE_MAC, POD_MAC, POD_IP, SERVICE_IP, 17),
                None,
            ),
        ];
        let measure = |dp: &Datapath, name, port, frame: &[u8], fib: &Option<RawProgram>| {
            let baselines: Vec<&RawProgram> =
                [Some(&empty), fib.as_ref()].into_iter().flatten().collect();
            dp.per_run_ns(name, port, frame, &baselines)
        };
        let report = |what: &str, (prog, base): (u128, Vec<u128>)| {
            let ratio = |ns: u128| ns as f64 / base[0] as f64;
            let fib = match base.get(1) {
                Some(&fib) => format!("; the FIB lookup alone {fib} ns: {:.2}x", ratio(fib)),
                None => String::new(),
            };
            eprintln!(
                "{what}: {prog} ns, empty program {} ns: {:.2}x{fib}",
                base[0],
                ratio(prog)
            );
        };
        for (what, frame, fib) in &lan {
            report(what, measure(dp, PROG_FROM_POD, dp.pod, frame, fib));
        }
        let from_lan = small_frame(UPLINK_MAC, LAN_HOST_MAC, LAN_HOST, POD_IP, 6);
        report(
            "lan: TCP LAN -> pod (lb_from_uplink)",
            measure(dp, PROG_FROM_UPLINK, dp.uplink, &from_lan, &None),
        );
        dp.set_routed_config(bridge, CFG_ENFORCE | CFG_FAST_PATH);
        let subnet = [
            (
                "subnet: TCP pod -> remote pod",
                small_frame(BRIDGE_MAC, POD_MAC, POD_IP, REMOTE_POD, 6),
                routed(REMOTE_POD, 6),
            ),
            (
                "subnet: TCP pod -> pod (passed)",
                small_frame(POD2_MAC, POD_MAC, POD_IP, POD2_IP, 6),
                None,
            ),
            (
                "subnet: UDP pod -> pod (passed)",
                small_frame(POD2_MAC, POD_MAC, POD_IP, POD2_IP, 17),
                None,
            ),
        ];
        for (what, frame, fib) in &subnet {
            report(what, measure(dp, PROG_FROM_POD, dp.pod, frame, fib));
        }
    });
}

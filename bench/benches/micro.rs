//! In-process micro-benchmarks (Criterion) of lanbridge's hot paths, on the
//! real code:
//! - `packet/*`: `lanbridge-common`'s frame parsers and verdicts, the very
//!   code the TC programs run (compiled for the host here);
//! - `dhcp/*`: the plugin's DHCPDISCOVER builder (`dhcp::message::discover`)
//!   and its reader of a server's DHCPOFFER (`dhcp::message::Reply::parse`);
//! - `config/*`: the plugin's config decoding and parsing (`config::decode`,
//!   `config::NetConf::parse`) of a representative network config (subnet
//!   mode, and a DEL config carrying a 1.0.0 `prevResult`).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};
use lanbridge::config::{self, NetConf};
use lanbridge::dhcp::message::{self, Params, Reply};
use lanbridge::node::mac::Mac;
use lanbridge_common::packet::{parse_from_pod, parse_from_uplink, FromPod};
use lanbridge_common::snoop::{options, verdict};
use lanbridge_common::{Endpoint, NetConfig, CFG_LAN_MODE, EP_DHCP_RELAY};
use lanbridge_tests::flows::udp_frame;
use serde_json::Value;

const POD_MAC: [u8; 6] = [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05];

const POD: &str = "0a:58:0a:f4:01:05";
const SERVER: &str = "02:42:ac:11:00:01";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

/// A TCP segment's frame (not UDP: the parsers' cheapest "not mine").
fn tcp_frame() -> Vec<u8> {
    let mut f = udp_frame(
        BROADCAST,
        POD,
        ("10.244.1.5", 40000),
        ("10.77.0.50", 5201),
        &[0u8; 1400],
    );
    f[23] = 6;
    f
}

/// The client identifier lanbridge derives for an attachment (type 0xff, IAID, DUID).
fn client_id() -> Vec<u8> {
    let mut id = vec![0xff, 0, 0, 0, 1, 0, 2];
    id.extend_from_slice(&[0x5a; 16]);
    id
}

/// DHCPDISCOVER built by the plugin's own builder.
fn discover(xid: u32) -> Vec<u8> {
    let params = Params {
        mac: Mac::new(POD_MAC),
        client_id: client_id(),
        hostname: Some("web-7d9f8c6b5-x2x4q".into()),
        timeout: Duration::from_secs(10),
        requested_ip: None,
        options: Default::default(),
    };
    message::discover(&params, xid, 0).expect("builds")
}

/// A DHCPOFFER with what dnsmasq sends.
fn offer(xid: u32) -> Vec<u8> {
    let z = Ipv4Addr::UNSPECIFIED;
    let server = Ipv4Addr::new(10, 77, 0, 1);
    let mut m = Message::new_with_id(xid, z, Ipv4Addr::new(10, 77, 1, 23), server, z, &POD_MAC);
    m.set_opcode(Opcode::BootReply).set_htype(HType::Eth);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(MessageType::Offer));
    o.insert(DhcpOption::ServerIdentifier(server));
    o.insert(DhcpOption::AddressLeaseTime(3600));
    o.insert(DhcpOption::Renewal(1800));
    o.insert(DhcpOption::Rebinding(3150));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 0, 0)));
    o.insert(DhcpOption::BroadcastAddr(Ipv4Addr::new(10, 77, 255, 255)));
    o.insert(DhcpOption::Router(vec![server]));
    o.insert(DhcpOption::DomainNameServer(vec![server]));
    o.insert(DhcpOption::DomainName("lan.test".into()));
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).expect("encodes");
    buf
}

fn packet(c: &mut Criterion) {
    let (any, all) = ("0.0.0.0", "255.255.255.255");
    let disc = udp_frame(BROADCAST, POD, (any, 68), (all, 67), &discover(0x1234_5678));
    let off = udp_frame(
        BROADCAST,
        SERVER,
        ("10.77.0.1", 67),
        (all, 68),
        &offer(0x1234_5678),
    );
    let tcp = tcp_frame();
    let dns = udp_frame(
        BROADCAST,
        POD,
        ("10.244.1.5", 40000),
        ("10.96.0.10", 53),
        &[0u8; 40],
    );
    let ep = Endpoint {
        mac: POD_MAC,
        flags: EP_DHCP_RELAY,
        ..Endpoint::default()
    };
    let cfg = NetConfig {
        uplink_ifindex: 2,
        flags: CFG_LAN_MODE,
        ..NetConfig::default()
    };
    let mut g = c.benchmark_group("packet");
    g.bench_function("from_pod/dhcp_discover", |b| {
        b.iter(|| parse_from_pod(black_box(&disc[..])))
    });
    g.bench_function("from_pod/tcp", |b| {
        b.iter(|| parse_from_pod(black_box(&tcp[..])))
    });
    g.bench_function("from_pod/udp_dns", |b| {
        b.iter(|| parse_from_pod(black_box(&dns[..])))
    });
    g.bench_function("from_pod/discover_parse_and_verdict", |b| {
        b.iter(|| match parse_from_pod(black_box(&disc[..])) {
            Ok(FromPod::Client(m)) => {
                let opts = options(&disc[..], &m);
                Some(verdict(
                    &disc[..],
                    &m,
                    opts,
                    black_box(&ep),
                    0,
                    black_box(&cfg),
                ))
            }
            _ => None,
        })
    });
    g.bench_function("from_uplink/dhcp_offer", |b| {
        b.iter(|| parse_from_uplink(black_box(&off[..])))
    });
    g.bench_function("from_uplink/tcp", |b| {
        b.iter(|| parse_from_uplink(black_box(&tcp[..])))
    });
    g.finish();
}

fn dhcp(c: &mut Criterion) {
    let xid = 0xdead_beef;
    let off = offer(xid);
    let id = client_id();
    let mut g = c.benchmark_group("dhcp");
    g.throughput(Throughput::Bytes(300));
    g.bench_function("build_discover", |b| b.iter(|| discover(black_box(xid))));
    g.throughput(Throughput::Bytes(off.len() as u64));
    g.bench_function("parse_offer", |b| {
        b.iter(|| {
            Reply::parse(black_box(&off[..]), xid, Mac::new(POD_MAC), &id)
                .expect("parses")
                .expect("a reply to this client")
        })
    });
    g.finish();
}

const SUBNET_CONF: &str = r#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"lanbridge",
"bridge":"cni0","isGateway":true,"isDefaultGateway":true,"ipMasq":true,"hairpinMode":true,
"mtu":1450,"stateDir":"/var/lib/cni/lanbridge","pinRoot":"/sys/fs/bpf/lanbridge",
"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24","gateway":"10.244.1.1"}]],
"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/var/lib/cni/networks"},
"runtimeConfig":{"mac":"0a:58:0a:f4:01:05"}}"#;

const PREV_RESULT: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"32:3b:b7:c7:62:db"},
{"name":"lbd72e032fedd","mac":"5e:30:20:5e:fe:13"},{"name":"eth0","mac":"0a:58:0a:f4:01:05",
"sandbox":"/var/run/netns/cni-6f5b1c1e-4d4e-8c2a-0c7e-0d9f1e2a3b4c"}],
"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":2}],
"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"}],"dns":{}}"#;

fn config(c: &mut Criterion) {
    let mut del: Value = serde_json::from_str(SUBNET_CONF).expect("json");
    del["prevResult"] = serde_json::from_str(PREV_RESULT).expect("json");
    let del = del.to_string().into_bytes();
    let add = SUBNET_CONF.as_bytes();
    let mut g = c.benchmark_group("config");
    g.throughput(Throughput::Bytes(add.len() as u64));
    g.bench_function("add/decode", |b| {
        b.iter(|| config::decode(black_box(add)).expect("decodes"))
    });
    g.bench_function("add/parse", |b| {
        b.iter(|| NetConf::parse(config::decode(black_box(add)).expect("decodes")).expect("parses"))
    });
    g.throughput(Throughput::Bytes(del.len() as u64));
    g.bench_function("del_with_prev_result/parse", |b| {
        b.iter(|| {
            NetConf::parse(config::decode(black_box(&del)).expect("decodes")).expect("parses")
        })
    });
    g.finish();
}

criterion_group!(benches, packet, dhcp, config);
criterion_main!(benches);

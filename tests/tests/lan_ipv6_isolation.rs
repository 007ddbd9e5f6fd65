//! Issue 10, items 2-4: a pod can neither steer anyone's IPv6 (router
//! advertisements, foreign sources, forged neighbour advertisements; lan
//! mode and subnet mode dual-stack) nor reach an isolated neighbour by any
//! path (fragments, `"fastPath": false`), and an oversize packet to a LAN
//! neighbour not resolved yet gets its "fragmentation needed". Every attack
//! is crafted inside a pod and judged by the other side: the node's routes
//! and neighbour table, the other pods' addresses and neighbour tables,
//! receivers' records.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use lanbridge_tests::flows::{
    mac_bytes, neigh_lladdr, send_frames, udp_send_and_collect, LanNet, LanOpts, Pod,
};
use lanbridge_tests::frames6::{
    link_local, neighbour_advertisement, pad_options, router_advertisement, udp, Ip6Frame,
    ALL_NODES, IPPROTO_ICMPV6, IPPROTO_UDP, NEXTHDR_DEST, NEXTHDR_HOP,
};
use lanbridge_tests::lan::{self, mac_of, LAN_NET_BRIDGE};
use lanbridge_tests::probe::PeerServer;
use lanbridge_tests::process::wait_until;
use lanbridge_tests::result::host_veth;
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_HOST, LAN_ROUTER, NODE_ADDR, NODE_UPLINK};
use lanbridge_tests::{Netns, World};
use serde_json::{json, Value};

const NET: &str = "lbtv6";
const UDP_PORT: u16 = 7011;
/// The prefix of the rogue router advertisements.
const ROGUE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 0);
/// An address no pod was given.
const NEVER_GIVEN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
/// How long receivers listen for what must not arrive.
const LISTEN: Duration = Duration::from_millis(800);

// ---------------------------------------------------------------------------
// Helpers

/// The link-local address of `ifname` in `ns`, once it is not tentative.
fn link_local_of(ns: &Netns, ifname: &str) -> Ipv6Addr {
    let mut found = None;
    let ready = wait_until(Duration::from_secs(5), || {
        let j = ns.ip_json(&["-6", "addr", "show", "dev", ifname, "scope", "link"]);
        // `ip` lists the addresses filtered out as `{}`.
        found = j[0]["addr_info"].as_array().and_then(|a| {
            a.iter()
                .filter(|i| i["tentative"].as_bool() != Some(true))
                .find_map(|i| i["local"].as_str()?.parse().ok())
        });
        found.is_some()
    });
    assert!(
        ready,
        "no usable link-local address on {ifname} in {}: {}",
        ns.name(),
        ns.ip_json(&["-6", "addr", "show", "dev", ifname, "scope", "link"])
    );
    found.expect("found")
}

/// IPv6 addresses of `ifname` in `ns`.
fn ipv6_addrs(ns: &Netns, ifname: &str) -> Vec<String> {
    let j = ns.ip_json(&["-6", "addr", "show", "dev", ifname]);
    j[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["local"].as_str().map(str::to_string))
        .collect()
}

/// The link-layer address `ns` holds for `ip` on `dev`, if any.
fn neigh6(ns: &Netns, ip: &Ipv6Addr, dev: &str) -> Option<String> {
    let j = ns.ip_json(&["-6", "neigh", "show", &ip.to_string(), "dev", dev]);
    j.as_array()?
        .iter()
        .find_map(|n| n["lladdr"].as_str().map(str::to_lowercase))
}

/// One ICMPv6 echo from `ns` out of `dev` to `dst` (fills neighbour tables).
fn ping6(ns: &Netns, dev: &str, dst: &Ipv6Addr) -> bool {
    let dst = dst.to_string();
    (0..3).any(|_| {
        ns.exec(&[
            "busybox", "ping", "-6", "-c", "1", "-W", "1", "-I", dev, &dst,
        ])
        .success()
    })
}

/// Receives UDP on `[::]:port` in `ns` for `listen` while `send` runs;
/// returns the sources seen.
fn udp6_received(ns: &Netns, port: u16, listen: Duration, send: impl FnOnce()) -> Vec<Ipv6Addr> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = ns.spawn(move || {
        let sock = UdpSocket::bind(("::", port)).expect("bind [::]");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        ready_tx.send(()).expect("ready");
        let deadline = Instant::now() + listen;
        let mut seen = vec![];
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok((_, SocketAddr::V6(from))) = sock.recv_from(&mut buf) {
                seen.push(*from.ip());
            }
        }
        seen
    });
    ready_rx.recv().expect("receiver ready");
    send();
    receiver.join().expect("receiver")
}

fn counter(n: &LanNet, port: &str, reason: &str) -> u64 {
    n.count(port, reason)
}

/// The rogue advertisements: plain, and behind hop-by-hop and destination
/// options headers.
fn rogue_ras(from: &Pod) -> Vec<Vec<u8>> {
    let mac = mac_bytes(&from.mac);
    let ra = || {
        Ip6Frame::new(
            mac,
            link_local(mac),
            ALL_NODES,
            IPPROTO_ICMPV6,
            router_advertisement(ROGUE_PREFIX, mac),
        )
    };
    vec![
        ra().build(),
        ra().chain(vec![
            (NEXTHDR_HOP, pad_options()),
            (NEXTHDR_DEST, pad_options()),
        ])
        .build(),
    ]
}

/// Nothing took the rogue advertisements: no `proto ra` route or default
/// route in the node, no address from the rogue prefix in `others`.
fn assert_no_rogue_router(node: &Netns, bridge: &str, others: &[(&Netns, &str)]) {
    let ra_routes = node.ip_json(&["-6", "route", "show", "proto", "ra"]);
    assert_eq!(
        ra_routes,
        json!([]),
        "the node took a route from a pod's RA"
    );
    let default = node.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(default, json!([]), "the node has an IPv6 default route");
    let accept_ra = node.run(&["sysctl", "-n", &format!("net.ipv6.conf.{bridge}.accept_ra")]);
    assert_eq!(accept_ra.trim(), "0", "accept_ra of {bridge}");
    let rogue = ROGUE_PREFIX.to_string();
    let rogue = rogue.trim_end_matches("::");
    for (ns, ifname) in others {
        let addrs = ipv6_addrs(ns, ifname);
        assert!(
            !addrs.iter().any(|a| a.starts_with(rogue)),
            "{} took an address from the rogue prefix: {addrs:?}",
            ns.name()
        );
        let routes = ns.ip_json(&["-6", "route", "show", "default"]);
        assert_eq!(routes, json!([]), "{} took a default route", ns.name());
    }
}

// ---------------------------------------------------------------------------
// lan mode

#[test]
fn router_advertisements_from_a_pod_reach_neither_the_node_nor_other_pods() {
    let n = LanNet::new("ra", NET, LanOpts::default());
    let a = n.add("raa");
    let b = n.add("rab");
    // b is ready to autoconfigure (as pods are by default).
    link_local_of(&b.ns, "eth0");
    let ras = rogue_ras(&a);
    for _ in 0..3 {
        send_frames(&a.ns, "eth0", ras.clone());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_no_rogue_router(n.node(), LAN_NET_BRIDGE, &[(&b.ns, "eth0")]);
    assert_eq!(
        counter(&n, &a.port, "drop_ra"),
        3 * ras.len() as u64,
        "{}",
        n.counters_of(&a.port)
    );
    // The host-side ports refuse RAs too.
    for p in [&a, &b] {
        let v = n.node().run(&[
            "sysctl",
            "-n",
            &format!("net.ipv6.conf.{}.accept_ra", p.port),
        ]);
        assert_eq!(v.trim(), "0", "accept_ra of {}", p.port);
    }
}

#[test]
fn ipv6_from_foreign_sources_and_forged_advertisements_are_never_delivered() {
    let n = LanNet::new("v6spoof", NET, LanOpts::default());
    let a = n.add("spa");
    let b = n.add("spb");
    let c = n.add("spc");
    let (a_mac, b_mac) = (mac_bytes(&a.mac), mac_bytes(&b.mac));
    let a_ll = link_local_of(&a.ns, "eth0");
    let b_ll = link_local_of(&b.ns, "eth0");
    let c_ll = link_local_of(&c.ns, "eth0");
    assert_eq!(a_ll, link_local(a_mac), "pods have EUI-64 link-locals");
    let bridge_ll = link_local_of(n.node(), LAN_NET_BRIDGE);
    let bridge_mac = mac_bytes(&mac_of(n.node(), LAN_NET_BRIDGE));

    let datagram = |saddr: Ipv6Addr, daddr: Ipv6Addr, dst_mac: [u8; 6]| {
        Ip6Frame::new(
            a_mac,
            saddr,
            daddr,
            IPPROTO_UDP,
            udp(40000, UDP_PORT, b"spoof"),
        )
        .to(dst_mac)
        .build()
    };
    // To pod b: from a's own link-local (the control), from c's, from an
    // address never given.
    let seen = udp6_received(&b.ns, UDP_PORT, LISTEN, || {
        send_frames(
            &a.ns,
            "eth0",
            vec![
                datagram(c_ll, b_ll, b_mac),
                datagram(NEVER_GIVEN, b_ll, b_mac),
                datagram(a_ll, b_ll, b_mac),
            ],
        )
    });
    assert_eq!(seen, vec![a_ll], "pod b received");
    // To the node.
    let seen = udp6_received(n.node(), UDP_PORT, LISTEN, || {
        send_frames(
            &a.ns,
            "eth0",
            vec![
                datagram(c_ll, bridge_ll, bridge_mac),
                datagram(b_ll, bridge_ll, bridge_mac),
                datagram(NEVER_GIVEN, bridge_ll, bridge_mac),
                datagram(a_ll, bridge_ll, bridge_mac),
            ],
        )
    });
    assert_eq!(seen, vec![a_ll], "the node received");
    assert_eq!(
        counter(&n, &a.port, "drop_spoof_ip6"),
        5,
        "{}",
        n.counters_of(&a.port)
    );

    // The node and pod c know b's link-local; a claims it (override flag),
    // to everyone and to the node directly.
    assert!(ping6(n.node(), LAN_NET_BRIDGE, &b_ll), "node -> b");
    assert!(ping6(&c.ns, "eth0", &b_ll), "c -> b");
    assert_eq!(neigh6(n.node(), &b_ll, LAN_NET_BRIDGE), Some(b.mac.clone()));
    let forged = |dst: Ipv6Addr, dst_mac: [u8; 6]| {
        Ip6Frame::new(
            a_mac,
            a_ll,
            dst,
            IPPROTO_ICMPV6,
            neighbour_advertisement(b_ll, a_mac),
        )
        .to(dst_mac)
        .build()
    };
    send_frames(
        &a.ns,
        "eth0",
        vec![
            forged(ALL_NODES, [0x33, 0x33, 0, 0, 0, 1]),
            forged(bridge_ll, bridge_mac),
            forged(c_ll, mac_bytes(&c.mac)),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        neigh6(n.node(), &b_ll, LAN_NET_BRIDGE),
        Some(b.mac.clone()),
        "the node's entry for b"
    );
    assert_eq!(
        neigh6(&c.ns, &b_ll, "eth0"),
        Some(b.mac.clone()),
        "c's entry for b"
    );
    assert_eq!(
        counter(&n, &a.port, "drop_nd_spoof"),
        3,
        "{}",
        n.counters_of(&a.port)
    );
    // b is still reachable from the node at its own MAC.
    assert!(
        ping6(n.node(), LAN_NET_BRIDGE, &b_ll),
        "node -> b afterwards"
    );
}

/// With `"enforce": false` the RA guard still holds (it is not part of the
/// source guard), while a foreign IPv6 source now reaches the other pod:
/// the receivers of the test above can hear what the guard drops.
#[test]
fn without_enforcement_the_ra_guard_still_holds() {
    let n = LanNet::new(
        "v6noenf",
        NET,
        LanOpts {
            forward_drop: false,
            extra: Some(json!({"enforce": false})),
        },
    );
    let a = n.add("nea");
    let b = n.add("neb");
    let a_mac = mac_bytes(&a.mac);
    let b_ll = link_local_of(&b.ns, "eth0");
    let ras = rogue_ras(&a);
    send_frames(&a.ns, "eth0", ras.clone());
    std::thread::sleep(Duration::from_millis(500));
    assert_no_rogue_router(n.node(), LAN_NET_BRIDGE, &[(&b.ns, "eth0")]);
    assert_eq!(counter(&n, &a.port, "drop_ra"), ras.len() as u64);
    let spoofed = Ip6Frame::new(
        a_mac,
        NEVER_GIVEN,
        b_ll,
        IPPROTO_UDP,
        udp(40000, UDP_PORT, b"x"),
    )
    .to(mac_bytes(&b.mac))
    .build();
    let seen = udp6_received(&b.ns, UDP_PORT, LISTEN, || {
        send_frames(&a.ns, "eth0", vec![spoofed])
    });
    assert_eq!(seen, vec![NEVER_GIVEN], "pod b received");
}

/// `from` sends to `to` through the gateway (a static neighbour entry with
/// the bridge's MAC; ARP between isolated ports goes unanswered), so the
/// node routes what the fast path does not drop.
fn via_gateway(n: &LanNet, from: &Pod, to: &Pod) {
    let gw = mac_of(n.node(), LAN_NET_BRIDGE);
    from.ns
        .ip(&["neigh", "replace", &to.ip, "lladdr", &gw, "dev", "eth0"]);
}

/// From `from` to `to`: a 3000-byte UDP datagram (fragmented by the pod)
/// and a small one, both through the gateway; `to`'s receiver must hear
/// neither. The LAN host, the router and the node stay reachable.
fn assert_isolated(n: &LanNet, from: &Pod, to: &Pod) {
    let server = PeerServer::udp(&to.ns, UDP_PORT);
    let dst = format!("{}:{UDP_PORT}", to.ip);
    for size in [3000, 64] {
        udp_send_and_collect(
            &from.ns,
            40001,
            &dst,
            vec![0x5a; size],
            Duration::from_millis(300),
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server.seen().is_empty(),
        "{} reached {}: {:?}\n{}",
        from.ip,
        to.ip,
        server.seen(),
        n.table()
    );
    assert!(
        counter(n, &to.port, "drop_isolated") > 0,
        "no drop_isolated on {}: {}",
        to.port,
        n.counters_of(&to.port)
    );
    let lan = PeerServer::udp(n.lan_host(), UDP_PORT);
    let big = udp_send_and_collect(
        &from.ns,
        40002,
        &format!("{LAN_HOST}:{UDP_PORT}"),
        vec![0x5a; 3000],
        Duration::from_millis(500),
    );
    assert!(
        !big.is_empty(),
        "the LAN host did not answer the 3000-byte datagram"
    );
    assert!(lan.seen().iter().any(|a| a.ip().to_string() == from.ip));
    assert!(
        from.ns.ping(LAN_ROUTER),
        "{} cannot ping the router",
        from.ip
    );
    assert!(from.ns.ping(NODE_ADDR), "{} cannot ping the node", from.ip);
}

#[test]
fn isolated_pods_do_not_reach_each_other_with_fragments() {
    let n = LanNet::new(
        "isofrag",
        NET,
        LanOpts {
            forward_drop: false,
            extra: Some(json!({"portIsolation": true})),
        },
    );
    let a = n.add("ifa");
    let b = n.add("ifb");
    via_gateway(&n, &a, &b);
    assert_isolated(&n, &a, &b);
}

#[test]
fn isolated_pods_do_not_reach_each_other_through_the_stack_without_fast_path() {
    let n = LanNet::new(
        "isoslow",
        NET,
        LanOpts {
            forward_drop: true,
            extra: Some(json!({"portIsolation": true, "fastPath": false})),
        },
    );
    let a = n.add("isa");
    let b = n.add("isb");
    via_gateway(&n, &a, &b);
    via_gateway(&n, &b, &a);
    // Both directions: b's port drops a's packets the node routed to it
    // (counted there: they did reach the stack path), and the reverse.
    assert_isolated(&n, &a, &b);
    assert_isolated(&n, &b, &a);
}

/// IP_MTU_DISCOVER = IP_PMTUDISC_DO: DF set, no local fragmentation.
fn dont_fragment(sock: &UdpSocket) {
    let v: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: valid fd, pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "IP_MTU_DISCOVER: {}",
        std::io::Error::last_os_error()
    );
}

/// The path MTU a connected socket knows (IP_MTU).
fn path_mtu(sock: &UdpSocket) -> u32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd, pointer to a c_int and its size.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "IP_MTU: {}", std::io::Error::last_os_error());
    v as u32
}

#[test]
fn oversize_packet_to_an_unresolved_lan_neighbour_gets_fragmentation_needed() {
    let n = LanNet::new("mtu", NET, LanOpts::default());
    let a = n.add("mtua");
    // The uplink path is 1400 bytes; the pod's link stays at 1500.
    n.node().ip(&["link", "set", NODE_UPLINK, "mtu", "1400"]);
    // The LAN host is not resolved in the node.
    n.node()
        .ip(&["neigh", "flush", "to", LAN_HOST, "dev", NODE_UPLINK]);
    assert_eq!(neigh_lladdr(n.node(), LAN_HOST, NODE_UPLINK), None);
    let dst: SocketAddr = format!("{LAN_HOST}:{UDP_PORT}").parse().expect("addr");
    let mtus = a.ns.within(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
        dont_fragment(&sock);
        sock.connect(dst).expect("connect");
        let before = path_mtu(&sock);
        // 1420 + 28 bytes of headers: fits the pod's link, not the uplink.
        sock.send(&[0u8; 1420]).expect("first send");
        let mut after = before;
        let deadline = Instant::now() + Duration::from_secs(3);
        while after == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            after = path_mtu(&sock);
        }
        (before, after)
    });
    assert_eq!(
        mtus,
        (1500, 1400),
        "the pod's path MTU to the LAN host (before, after an oversize DF datagram)\n{}",
        n.counters_of(&a.port)
    );
    let cached = a.ns.ip(&["route", "get", LAN_HOST]);
    assert!(cached.contains("mtu 1400"), "route cache: {cached}");
}

// ---------------------------------------------------------------------------
// subnet mode, dual-stack

/// Subnet mode with an IPv4 and an IPv6 range (deploy/examples/dual-stack.conflist).
fn dual_stack_conf(w: &World) -> Value {
    let mut conf = w.subnet_conf("1.0.0", "10.244.1.0/24");
    let ipam = conf["ipam"].as_object_mut().expect("ipam");
    ipam.remove("subnet");
    ipam.insert(
        "ranges".into(),
        json!([[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]),
    );
    conf["macspoofchk"] = json!(true);
    conf
}

struct SubnetPod {
    ns: Netns,
    mac: [u8; 6],
    ip6: Ipv6Addr,
    port: String,
}

fn subnet_pod(w: &World, conf: &Value, name: &str) -> SubnetPod {
    let ns = w.topo.pod(name);
    let att = Attachment::new(&format!("{name}-ctr"), &ns, "eth0");
    let result =
        w.rt.invoke("ADD", conf, &att, None)
            .expect_ok(&format!("ADD {name}"));
    let ip6 = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|ip| {
            let a = ip["address"].as_str()?.split('/').next()?;
            a.parse::<Ipv6Addr>().ok()
        })
        .unwrap_or_else(|| panic!("no IPv6 address in {result}"));
    let port = host_veth(&result, "lb0");
    let mac = mac_bytes(&mac_of(&ns, "eth0"));
    SubnetPod { ns, mac, ip6, port }
}

#[test]
fn subnet_dual_stack_pods_cannot_spoof_or_steer_ipv6() {
    let w = World::lanbridge("v6sub");
    let conf = dual_stack_conf(&w);
    let a = subnet_pod(&w, &conf, "dsa");
    let b = subnet_pod(&w, &conf, "dsb");
    let c = subnet_pod(&w, &conf, "dsc");
    for p in [&a, &b, &c] {
        link_local_of(&p.ns, "eth0");
    }
    let count = |port: &str, reason: &str| lan::counter(&lan::inspect(&w, "lbtnet"), port, reason);

    // A rogue router.
    let ra = Ip6Frame::new(
        a.mac,
        link_local(a.mac),
        ALL_NODES,
        IPPROTO_ICMPV6,
        router_advertisement(ROGUE_PREFIX, a.mac),
    )
    .build();
    send_frames(&a.ns, "eth0", vec![ra.clone(), ra]);
    std::thread::sleep(Duration::from_millis(500));
    let routes = w.topo.node.ip_json(&["-6", "route", "show", "proto", "ra"]);
    assert_eq!(routes, json!([]), "the node took a route from a pod's RA");
    let accept_ra = w
        .topo
        .node
        .run(&["sysctl", "-n", "net.ipv6.conf.lb0.accept_ra"]);
    assert_eq!(accept_ra.trim(), "0");
    let rogue = ROGUE_PREFIX.to_string();
    for p in [&b, &c] {
        let addrs = ipv6_addrs(&p.ns, "eth0");
        assert!(
            !addrs
                .iter()
                .any(|x| x.starts_with(rogue.trim_end_matches("::"))),
            "{addrs:?}"
        );
    }
    assert_eq!(count(&a.port, "drop_ra"), 2);

    // IPv6 from b's address or one never given, to c: only a's own arrives.
    let to_c = |saddr: Ipv6Addr| {
        Ip6Frame::new(
            a.mac,
            saddr,
            c.ip6,
            IPPROTO_UDP,
            udp(40000, UDP_PORT, b"spoof"),
        )
        .to(c.mac)
        .build()
    };
    let seen = udp6_received(&c.ns, UDP_PORT, LISTEN, || {
        send_frames(
            &a.ns,
            "eth0",
            vec![
                to_c(b.ip6),
                to_c(NEVER_GIVEN),
                to_c(link_local(b.mac)),
                to_c(a.ip6),
            ],
        )
    });
    assert_eq!(seen, vec![a.ip6], "pod c received");
    // And to the node, at the gateway address.
    let gateway: Ipv6Addr = "fd00:10:244:1::1".parse().expect("gateway");
    let bridge_mac = mac_bytes(&mac_of(&w.topo.node, "lb0"));
    let to_node = |saddr: Ipv6Addr| {
        Ip6Frame::new(
            a.mac,
            saddr,
            gateway,
            IPPROTO_UDP,
            udp(40000, UDP_PORT, b"spoof"),
        )
        .to(bridge_mac)
        .build()
    };
    let seen = udp6_received(&w.topo.node, UDP_PORT, LISTEN, || {
        send_frames(
            &a.ns,
            "eth0",
            vec![to_node(b.ip6), to_node(NEVER_GIVEN), to_node(a.ip6)],
        )
    });
    assert_eq!(seen, vec![a.ip6], "the node received");
    assert_eq!(count(&a.port, "drop_spoof_ip6"), 5);

    // The node (the gateway) and c know b; a claims b's address.
    assert!(ping6(&b.ns, "eth0", &gateway), "b -> gateway");
    assert!(ping6(&w.topo.node, "lb0", &b.ip6), "node -> b");
    assert!(ping6(&c.ns, "eth0", &b.ip6), "c -> b");
    let b_mac = mac_of(&b.ns, "eth0");
    let forged = |dst: Ipv6Addr, dst_mac: [u8; 6]| {
        Ip6Frame::new(
            a.mac,
            a.ip6,
            dst,
            IPPROTO_ICMPV6,
            neighbour_advertisement(b.ip6, a.mac),
        )
        .to(dst_mac)
        .build()
    };
    send_frames(
        &a.ns,
        "eth0",
        vec![
            forged(ALL_NODES, [0x33, 0x33, 0, 0, 0, 1]),
            forged(gateway, bridge_mac),
            forged(c.ip6, c.mac),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(neigh6(&w.topo.node, &b.ip6, "lb0"), Some(b_mac.clone()));
    assert_eq!(neigh6(&c.ns, &b.ip6, "eth0"), Some(b_mac));
    assert_eq!(count(&a.port, "drop_nd_spoof"), 3);
    assert!(ping6(&w.topo.node, "lb0", &b.ip6), "node -> b afterwards");
    // The honest pods' own IPv6 (DAD, router solicitations, MLD, neighbour
    // discovery, echoes) counted no drop.
    let report = lan::inspect(&w, "lbtnet");
    for p in [&b, &c] {
        for reason in [
            "drop_spoof_ip6",
            "drop_nd_spoof",
            "drop_ip6_unjudged",
            "drop_spoof_mac",
        ] {
            assert_eq!(
                lan::counter(&report, &p.port, reason),
                0,
                "{reason} on {}",
                p.port
            );
        }
    }
}

#[test]
fn subnet_isolated_pods_do_not_reach_each_other_through_the_node() {
    let w = World::lanbridge("v6iso");
    let mut conf = dual_stack_conf(&w);
    conf["portIsolation"] = json!(true);
    let a = subnet_pod(&w, &conf, "isa");
    let b = subnet_pod(&w, &conf, "isb");
    link_local_of(&a.ns, "eth0");
    let gateway: Ipv6Addr = "fd00:10:244:1::1".parse().expect("gateway");
    let bridge_mac = mac_of(&w.topo.node, "lb0");
    // a sends to b through the gateway (the node routes it), both families.
    a.ns.ip(&[
        "-6",
        "neigh",
        "replace",
        &b.ip6.to_string(),
        "lladdr",
        &bridge_mac,
        "dev",
        "eth0",
    ]);
    let b_ip4 = b.ns.ipv4_addrs("eth0")[0]
        .split('/')
        .next()
        .expect("addr")
        .to_string();
    a.ns.ip(&[
        "neigh",
        "replace",
        &b_ip4,
        "lladdr",
        &bridge_mac,
        "dev",
        "eth0",
    ]);
    // A 3000-byte datagram (fragments) and a small one.
    let send = |dst: String| {
        let dst: SocketAddr = dst.parse().expect("destination");
        a.ns.within(move || {
            let any = if dst.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
            let sock = UdpSocket::bind(any).expect("bind");
            for size in [3000, 64] {
                sock.send_to(&vec![0x5a; size], dst).expect("send");
            }
        })
    };
    let seen = udp6_received(&b.ns, UDP_PORT, LISTEN, || {
        send(format!("[{}]:{UDP_PORT}", b.ip6));
    });
    assert_eq!(seen, Vec::<Ipv6Addr>::new(), "b received IPv6 from a");
    let server = PeerServer::udp(&b.ns, UDP_PORT);
    send(format!("{b_ip4}:{UDP_PORT}"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server.seen().is_empty(),
        "b received IPv4 from a: {:?}",
        server.seen()
    );
    let dropped = lan::counter(&lan::inspect(&w, "lbtnet"), &b.port, "drop_isolated");
    // Per family: the large datagram's fragments and the small one.
    assert!(dropped >= 6, "drop_isolated on b's port: {dropped}");
    // The gateway, in both families, and the LAN stay reachable.
    assert!(ping6(&a.ns, "eth0", &gateway), "a -> IPv6 gateway");
    assert!(a.ns.ping("10.244.1.1"), "a -> IPv4 gateway");
    assert!(a.ns.ping(LAN_HOST), "a -> LAN host (masqueraded)");
}

//! Two-node setups for pod → pod on another node (issue 5), same LAN, same
//! run as everything else:
//!
//! ```text
//!  tlb   10.77.0.23  pods 10.244.3.0/24 ─┐ lanbridge subnet, clusterCidrs 10.244.0.0/16,
//!  tlb2  10.77.0.25  pods 10.244.5.0/24 ─┤ routes by `lanbridge routes sync` (peers file)
//!  tref  10.77.0.24  pods 10.244.4.0/24 ─┤ reference bridge,
//!  tref2 10.77.0.26  pods 10.244.6.0/24 ─┘ routes by hand (`ip route add ... via ...`)
//! ```
//!
//! Before measuring, each remote pair must reach each other both ways, and
//! each receiving pod must see the sender's pod address (no NAT).

use anyhow::{bail, Context, Result};
use lanbridge_tests::netns::Netns;
use lanbridge_tests::probe::{udp_ask, PeerServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::traffic::Setup;
use lanbridge_tests::process::run_ok;
use lanbridge_tests::testbed::{Net, Testbed};
use lanbridge_tests::Flavor;

/// Every pod subnet of the benchmark's clusters: what an operator puts in
/// lanbridge's `clusterCidrs`.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// UDP port of the source-address check.
const SOURCE_PORT: u16 = 7009;

/// One node of a pair.
struct Spec {
    tag: &'static str,
    addr: &'static str,
    pod_cidr: &'static str,
}

const LANBRIDGE_NODES: [Spec; 2] = [
    Spec {
        tag: "tlb",
        addr: "10.77.0.23",
        pod_cidr: "10.244.3.0/24",
    },
    Spec {
        tag: "tlb2",
        addr: "10.77.0.25",
        pod_cidr: "10.244.5.0/24",
    },
];

const REFERENCE_NODES: [Spec; 2] = [
    Spec {
        tag: "tref",
        addr: "10.77.0.24",
        pod_cidr: "10.244.4.0/24",
    },
    Spec {
        tag: "tref2",
        addr: "10.77.0.26",
        pod_cidr: "10.244.6.0/24",
    },
];

/// The nodes of `flavor`'s pair, for the report: "`tlb` (10.77.0.23, pods
/// 10.244.3.0/24) and ...".
pub fn describe(flavor: Flavor) -> String {
    let specs = match flavor {
        Flavor::Lanbridge => &LANBRIDGE_NODES,
        Flavor::Reference => &REFERENCE_NODES,
    };
    specs
        .iter()
        .map(|s| format!("`{}` ({}, pods {})", s.tag, s.addr, s.pod_cidr))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Two subnet-mode nodes of one plugin, routed to each other's pod subnet.
/// `nets[i]` runs on `nodes[i]`.
pub struct TwoNodes {
    pub nets: [Net; 2],
    pub nodes: [Netns; 2],
}

impl TwoNodes {
    /// lanbridge on `tlb` and `tlb2` (host-local, no masquerade,
    /// `clusterCidrs`), routes installed by `lanbridge routes sync` in each
    /// node from one peers file.
    pub fn lanbridge(bed: &Testbed) -> Result<TwoNodes> {
        let two = TwoNodes::new(bed, Flavor::Lanbridge, &LANBRIDGE_NODES);
        let peers: Vec<_> = LANBRIDGE_NODES
            .iter()
            .map(|s| json!({"name": s.tag, "address": s.addr, "podCidr": s.pod_cidr}))
            .collect();
        let file = bed.dir("peers").join("peers.json");
        std::fs::write(&file, json!({ "nodes": peers }).to_string())
            .with_context(|| format!("writing {}", file.display()))?;
        for (node, spec) in two.nodes.iter().zip(&LANBRIDGE_NODES) {
            let mut c = node.command(&bed.lanbridge.display().to_string());
            c.args(["routes", "sync", "--peers"])
                .arg(&file)
                .args(["--node", spec.tag]);
            run_ok(&mut c);
        }
        two.check_routes(&LANBRIDGE_NODES)?;
        Ok(two)
    }

    /// The reference `bridge` plugin on `tref` and `tref2`, routes set by
    /// hand: `ip route add <other podCidr> via <other node>` in each node.
    pub fn reference(bed: &Testbed) -> Result<TwoNodes> {
        let two = TwoNodes::new(bed, Flavor::Reference, &REFERENCE_NODES);
        for (i, node) in two.nodes.iter().enumerate() {
            let other = &REFERENCE_NODES[1 - i];
            node.ip(&["route", "add", other.pod_cidr, "via", other.addr]);
        }
        two.check_routes(&REFERENCE_NODES)?;
        Ok(two)
    }

    fn new(bed: &Testbed, flavor: Flavor, specs: &[Spec; 2]) -> TwoNodes {
        let nodes = specs.each_ref().map(|s| bed.node(s.tag, s.addr));
        let nets = [0, 1].map(|i| {
            let net = bed.subnet(flavor, &nodes[i], specs[i].pod_cidr, false);
            match flavor {
                Flavor::Lanbridge => net.with_cluster_cidrs(&[CLUSTER_CIDR]),
                Flavor::Reference => net,
            }
        });
        // The LAN host reaches every pod subnet through its node.
        for s in specs {
            bed.host.ip(&["route", "add", s.pod_cidr, "via", s.addr]);
        }
        TwoNodes { nets, nodes }
    }

    /// Each node routes the other's pod subnet via the other node.
    fn check_routes(&self, specs: &[Spec; 2]) -> Result<()> {
        for (i, node) in self.nodes.iter().enumerate() {
            let other = &specs[1 - i];
            let routes = node.ip_json(&["-4", "route", "show", other.pod_cidr]);
            let via = routes
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["gateway"].as_str() == Some(other.addr));
            if !via {
                bail!(
                    "{}: no route {} via {} (routes: {routes})",
                    specs[i].tag,
                    other.pod_cidr,
                    other.addr
                );
            }
        }
        Ok(())
    }

    /// Errors for nodes without IPv4 forwarding (the plugins' `isGateway`
    /// turns it on at the first ADD: call this after the pods are added).
    pub fn check_forwarding(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for node in &self.nodes {
            let v = node.run(&["sysctl", "-n", "net.ipv4.ip_forward"]);
            if v.trim() != "1" {
                errors.push(format!(
                    "{}: net.ipv4.ip_forward is {} after the plugin's ADD",
                    node.name(),
                    v.trim()
                ));
            }
        }
        errors
    }
}

/// What a remote pod saw as the source of a datagram from a pod on another
/// node: the sender's own address when nothing NATs it on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceSeen {
    pub setup: String,
    /// The sending pod's address.
    pub sender: String,
    /// The receiving pod's address.
    pub receiver: String,
    /// The source address `recv_from` returned; `None` when nothing arrived.
    pub seen: Option<String>,
}

impl SourceSeen {
    pub fn ok(&self) -> bool {
        self.seen.as_deref() == Some(self.sender.as_str())
    }
}

/// Checks a setup's remote pair before it is measured: pings both ways and
/// the source address each side receives. Returns the errors (empty when
/// everything holds) and the source addresses seen.
pub fn check_remote(s: &Setup) -> (Vec<String>, Vec<SourceSeen>) {
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    let Some((far, far_ip)) = &s.remote else {
        return (errors, seen);
    };
    for (from, from_ip, to, to_ip) in [(s.a, &s.a_ip, *far, far_ip), (*far, far_ip, s.a, &s.a_ip)] {
        if !from.ping(to_ip) {
            errors.push(format!(
                "{}: {from_ip} cannot reach {to_ip} on the other node",
                s.key
            ));
            continue;
        }
        let check = SourceSeen {
            setup: s.key.to_string(),
            sender: from_ip.clone(),
            receiver: to_ip.clone(),
            seen: source_seen(from, to, to_ip),
        };
        if !check.ok() {
            errors.push(format!(
                "{}: {to_ip} received {from_ip}'s datagram from {} (NAT on the way?)",
                s.key,
                check.seen.as_deref().unwrap_or("nowhere: nothing arrived")
            ));
        }
        seen.push(check);
    }
    (errors, seen)
}

/// The source address `to_ip` (a socket in `to`) sees on a UDP datagram from `from`.
fn source_seen(from: &Netns, to: &Netns, to_ip: &str) -> Option<String> {
    let server = PeerServer::udp(to, SOURCE_PORT);
    udp_ask(from, &format!("{to_ip}:{SOURCE_PORT}"));
    server.seen().first().map(|a| a.ip().to_string())
}

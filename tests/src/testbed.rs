//! A testbed for running lanbridge (any build of it) beside the reference
//! plugins on one large LAN: the bench's world. Namespaces are named
//! `<prefix>-<tag>`; lanbridge's state and pins are its defaults, scoped to
//! each node's namespace and removed with it.
//!
//! ```text
//!  LAN ns: bridge lanbr 10.77.0.1/16, dnsmasq (pool 10.77.1.1-10.77.7.254)
//!    ├─ lanhost  eth0 10.77.0.50/16      (servers the pods talk to)
//!    ├─ <node>   eth0 10.77.0.x/16       one node per setup, the plugin runs there
//!    │            - bridged: eth0 enslaved to br0 (node address on br0)
//!    ├─ rawfwd   eth0 10.77.0.19/16       the kernel's limit: a forwarding namespace,
//!    │            ├─ veth 10.99.0.1/24 ── rawsrc 10.99.0.2     no bridge, no rules
//!    │            └─ veth 10.99.1.1/24 ── rawdst 10.99.1.2
//!    └─ rawfwd2  eth0 10.77.0.20/16       the same on a second "node":
//!                 └─ veth 10.99.2.1/24 ── rawfar 10.99.2.2     (src → fwd → LAN → fwd2 → far)
//!  pods: empty namespaces; a plugin ADD gives them eth0
//! ```
//!
//! [`TwoNodes`]: two subnet-mode nodes of one plugin, routed to each other's
//! pod subnet (pod → pod on another node):
//!
//! ```text
//!  tlb   10.77.0.23  pods 10.244.3.0/24 ─┐ lanbridge subnet, clusterCidrs 10.244.0.0/16,
//!  tlb2  10.77.0.25  pods 10.244.5.0/24 ─┤ routes by `lanbridge routes sync` (peers file)
//!  tref  10.77.0.24  pods 10.244.4.0/24 ─┤ reference bridge,
//!  tref2 10.77.0.26  pods 10.244.6.0/24 ─┘ routes by hand (`ip route add ... via ...`)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::binary::{plugin_dir, REFERENCE_DIR};
use crate::cluster::CLUSTER_CIDR;
use crate::cni::CniOutput;
use crate::dhcp_server::{Dnsmasq, DnsmasqConf};
use crate::fixture::{subnet_conf, Flavor};
use crate::lan::lan_conf;
use crate::netns::{scoped_defaults, Netns};
use crate::process::run_ok;
use crate::runtime::{Attachment, Runtime};
use crate::topology::{attach_to, lan_bridge, plug, LAN_BRIDGE, NODE_UPLINK};

pub const LAN_ROUTER: &str = "10.77.0.1";
pub const LAN_PREFIX: u8 = 16;
pub const LAN_HOST: &str = "10.77.0.50";
pub const RAW_SRC: &str = "10.99.0.2";
pub const RAW_DST: &str = "10.99.1.2";
/// The raw chain's pod on the second forwarding namespace.
pub const RAW_FAR: &str = "10.99.2.2";
const RAW_FWD_LAN: &str = "10.77.0.19";
const RAW_FWD2_LAN: &str = "10.77.0.20";

/// The LAN, its host and dnsmasq; names, files and the lanbridge binary of
/// one run. Drop order: dnsmasq, then the namespaces.
pub struct Testbed {
    pub dnsmasq: Dnsmasq,
    pub lan: Netns,
    pub host: Netns,
    pub prefix: String,
    /// The caller's directory for every file of the run.
    tmp: PathBuf,
    pub lanbridge: PathBuf,
    /// `<tmp>/bin`, holding a `lanbridge` symlink to [`Testbed::lanbridge`].
    bin: PathBuf,
    counter: AtomicUsize,
}

impl Testbed {
    /// The LAN of namespaces `<prefix>-*`, running `lanbridge` (e.g. a
    /// release build), files under `tmp`.
    pub fn new(prefix: &str, tmp: &Path, lanbridge: &Path) -> Testbed {
        let lan = Netns::create(&format!("{prefix}-lan"));
        lan_bridge(&lan, &format!("{LAN_ROUTER}/{LAN_PREFIX}"));
        let host = Netns::create(&format!("{prefix}-lanhost"));
        let dnsmasq_dir = tmp.join("dnsmasq");
        let bed = Testbed {
            dnsmasq: Dnsmasq::start(&lan, &dnsmasq_dir, &dnsmasq_conf(false)),
            lan,
            host,
            prefix: prefix.to_string(),
            tmp: tmp.to_path_buf(),
            lanbridge: lanbridge.to_path_buf(),
            bin: plugin_dir(tmp, lanbridge),
            counter: AtomicUsize::new(0),
        };
        bed.attach(&bed.host, LAN_HOST);
        bed
    }

    /// A namespace named `<prefix>-<tag>`.
    pub fn netns(&self, tag: &str) -> Netns {
        Netns::create(&format!("{}-{tag}", self.prefix))
    }

    fn next(&self) -> usize {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }

    /// A fresh directory under the run's directory.
    pub fn dir(&self, tag: &str) -> PathBuf {
        let d = self.tmp.join(format!("{tag}{}", self.next()));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        d
    }

    /// Plugs `ns` in: `eth0` with `addr`/16, default route via the LAN router.
    fn attach(&self, ns: &Netns, addr: &str) {
        let cidr = format!("{addr}/{LAN_PREFIX}");
        attach_to(
            &self.lan,
            &format!("p{}", self.next()),
            ns,
            &cidr,
            LAN_ROUTER,
        );
    }

    /// A node whose uplink `eth0` has `addr`, default route via the LAN router.
    pub fn node(&self, tag: &str, addr: &str) -> Netns {
        let node = self.netns(tag);
        self.attach(&node, addr);
        node
    }

    /// The old recipe: the node's uplink enslaved to `br0`, which holds the
    /// node's address (the only topology where the reference dhcp IPAM leases).
    pub fn bridged_node(&self, tag: &str, addr: &str) -> Netns {
        let node = self.netns(tag);
        plug(&self.lan, &format!("p{}", self.next()), &node);
        node.ip(&["link", "add", "br0", "type", "bridge"]);
        node.ip(&["link", "set", NODE_UPLINK, "master", "br0"]);
        node.ip(&["addr", "add", &format!("{addr}/{LAN_PREFIX}"), "dev", "br0"]);
        node.ip(&["link", "set", "br0", "up"]);
        node.ip(&["route", "add", "default", "via", LAN_ROUTER]);
        node
    }

    /// Restarts dnsmasq (empty lease file) with its ping check on (as
    /// shipped: it pings an address before offering it) or `--no-ping`.
    pub fn set_dnsmasq_ping(&mut self, ping: bool) {
        self.dnsmasq.restart_empty(&self.lan, &dnsmasq_conf(ping));
    }

    /// `n` pod namespaces `<prefix>-<tag><i>`, created 4 at a time.
    pub fn pods(&self, tag: &str, n: usize) -> Vec<Arc<Netns>> {
        let names: Vec<String> = (0..n)
            .map(|i| format!("{}-{tag}{i}", self.prefix))
            .collect();
        let handles: Vec<_> = names
            .chunks(n.div_ceil(4).max(1))
            .map(<[String]>::to_vec)
            .map(|c| {
                std::thread::spawn(move || {
                    c.iter()
                        .map(|n| Arc::new(Netns::create(n)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    }

    /// Subnet mode with host-local ([`subnet_conf`], masquerade as `masq`)
    /// of `flavor` on `node`.
    pub fn subnet(&self, flavor: Flavor, node: &Netns, subnet: &str, masq: bool) -> Net {
        let mut conf = subnet_conf(flavor.plugin_type(), "1.0.0", subnet, &self.dir("ipam"));
        conf["ipMasq"] = json!(masq);
        self.net(flavor, node, conf)
    }

    /// lanbridge lan mode ([`lan_conf`]): uplink eth0 (not in the bridge),
    /// dhcp IPAM served by the node's `lanbridge daemon`.
    pub fn lan_mode(&self, node: &Netns) -> Net {
        let mut conf = lan_conf("lbtlan", 0.0);
        conf["ipam"].as_object_mut().map(|i| i.remove("timeout"));
        self.net(Flavor::Lanbridge, node, conf)
    }

    /// The reference bridge + dhcp on a bridged node (uplink in br0), its
    /// daemon at `socket`.
    pub fn bridged_dhcp(&self, node: &Netns, socket: &Path) -> Net {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "lbtref",
            "type": "bridge",
            "bridge": "br0",
            "ipam": {"type": "dhcp", "daemonSocketPath": socket.display().to_string()}
        });
        self.net(Flavor::Reference, node, conf)
    }

    fn net(&self, flavor: Flavor, node: &Netns, conf: Value) -> Net {
        let reference = Path::new(REFERENCE_DIR);
        let rt = match flavor {
            Flavor::Lanbridge => Runtime::new(node, &[&self.bin, reference]),
            Flavor::Reference => Runtime::new(node, &[reference]),
        };
        Net {
            flavor,
            rt,
            conf,
            node_ino: node.inode(),
        }
    }
}

fn dnsmasq_conf(ping: bool) -> DnsmasqConf {
    DnsmasqConf {
        interface: LAN_BRIDGE.into(),
        range_start: "10.77.1.1".into(),
        range_end: "10.77.7.254".into(),
        lease: "1h".into(),
        // dnsmasq offers its own address, the LAN router's.
        router: None,
        ping,
        extra: vec!["--dhcp-lease-max=5000".into()],
    }
}

/// One network on one node: its config and the runtime that runs it there.
pub struct Net {
    pub flavor: Flavor,
    rt: Runtime,
    conf: Value,
    node_ino: u64,
}

impl Net {
    /// The cluster's pod CIDRs (`clusterCidrs`): with them lanbridge's subnet
    /// mode forwards pod → other nodes' pods on its eBPF fast path.
    pub fn with_cluster_cidrs(mut self, cidrs: &[&str]) -> Net {
        self.conf["clusterCidrs"] = json!(cidrs);
        self
    }

    pub fn name(&self) -> &str {
        self.conf["name"].as_str().unwrap_or_default()
    }

    /// lanbridge's pins of this network (its default `pinRoot` in the node).
    pub fn pins(&self) -> PathBuf {
        scoped_defaults(self.node_ino)[0].join(self.name())
    }

    pub fn add(&self, container: &str, pod: &Netns) -> CniOutput {
        self.invoke(&self.rt, "ADD", container, pod, None)
    }

    /// DEL with the cached ADD result as `prevResult`, as libcni does.
    pub fn del(&self, container: &str, pod: &Netns, prev: Option<&Value>) -> CniOutput {
        self.invoke(&self.rt, "DEL", container, pod, prev)
    }

    /// `command` with the plugin run under `wrapper` (see [`Runtime::under`]).
    pub fn under(
        &self,
        wrapper: &[&str],
        command: &str,
        container: &str,
        pod: &Netns,
        prev: Option<&Value>,
    ) -> CniOutput {
        self.invoke(&self.rt.under(wrapper), command, container, pod, prev)
    }

    fn invoke(
        &self,
        rt: &Runtime,
        command: &str,
        container: &str,
        pod: &Netns,
        prev: Option<&Value>,
    ) -> CniOutput {
        let att = Attachment::new(container, pod, NODE_UPLINK);
        rt.invoke(command, &self.conf, &att, prev)
    }
}

/// The kernel's limit: src -- fwd -- dst, two veth pairs through a
/// forwarding namespace (plain routing, no bridge, no rules), fwd also on
/// the LAN so that `rawsrc` reaches the LAN host over the same number of hops
/// as a pod; and src -- fwd -- LAN -- fwd2 -- far, the hops of a pod to a pod
/// on another node, with plain routes between the two forwarders.
pub struct RawChain {
    pub src: Netns,
    pub dst: Netns,
    /// Behind the second forwarding namespace.
    pub far: Netns,
    /// The forwarding namespaces (kept for their lifetime).
    _fwd: [Netns; 2],
}

impl RawChain {
    pub fn new(bed: &Testbed) -> RawChain {
        let fwd = [("rawfwd", RAW_FWD_LAN), ("rawfwd2", RAW_FWD2_LAN)].map(|(tag, addr)| {
            let ns = bed.node(tag, addr);
            ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            ns
        });
        let [src, dst, far] = ["rawsrc", "rawdst", "rawfar"].map(|t| bed.netns(t));
        for (fwd, ns, peer, net) in [
            (&fwd[0], &src, "vs", "10.99.0"),
            (&fwd[0], &dst, "vd", "10.99.1"),
            (&fwd[1], &far, "vr", "10.99.2"),
        ] {
            let (eth, ns_name) = (NODE_UPLINK, ns.name());
            fwd.ip(&[
                "link", "add", peer, "type", "veth", "peer", "name", eth, "netns", ns_name,
            ]);
            fwd.ip(&["addr", "add", &format!("{net}.1/24"), "dev", peer]);
            fwd.ip(&["link", "set", peer, "up"]);
            ns.ip(&["addr", "add", &format!("{net}.2/24"), "dev", eth]);
            ns.ip(&["link", "set", eth, "up"]);
            ns.ip(&["route", "add", "default", "via", &format!("{net}.1")]);
        }
        fwd[0].ip(&["route", "add", "10.99.2.0/24", "via", RAW_FWD2_LAN]);
        fwd[1].ip(&["route", "add", "10.99.0.0/24", "via", RAW_FWD_LAN]);
        // The more specific route wins for the far side.
        bed.host
            .ip(&["route", "add", "10.99.0.0/16", "via", RAW_FWD_LAN]);
        bed.host
            .ip(&["route", "add", "10.99.2.0/24", "via", RAW_FWD2_LAN]);
        RawChain {
            src,
            dst,
            far,
            _fwd: fwd,
        }
    }
}

/// One node of a [`TwoNodes`] pair: tag, LAN address, pod subnet.
type Spec = (&'static str, &'static str, &'static str);

const LANBRIDGE_NODES: [Spec; 2] = [
    ("tlb", "10.77.0.23", "10.244.3.0/24"),
    ("tlb2", "10.77.0.25", "10.244.5.0/24"),
];
const REFERENCE_NODES: [Spec; 2] = [
    ("tref", "10.77.0.24", "10.244.4.0/24"),
    ("tref2", "10.77.0.26", "10.244.6.0/24"),
];

fn specs(flavor: Flavor) -> &'static [Spec; 2] {
    match flavor {
        Flavor::Lanbridge => &LANBRIDGE_NODES,
        Flavor::Reference => &REFERENCE_NODES,
    }
}

/// Two subnet-mode nodes of one plugin (host-local, no masquerade),
/// routed to each other's pod subnet; `nets[i]` runs on `nodes[i]`.
pub struct TwoNodes {
    pub nets: [Net; 2],
    pub nodes: [Netns; 2],
}

impl TwoNodes {
    /// The nodes of `flavor`'s pair, for a report: "`tlb` (10.77.0.23,
    /// pods 10.244.3.0/24) and ...".
    pub fn describe(flavor: Flavor) -> String {
        let specs = specs(flavor).map(|(tag, addr, pods)| format!("`{tag}` ({addr}, pods {pods})"));
        specs.join(" and ")
    }

    /// lanbridge on `tlb` and `tlb2` with `clusterCidrs` [`CLUSTER_CIDR`],
    /// routes installed by `lanbridge routes sync` in each node from one
    /// peers file; the reference on `tref` and `tref2`, routes set by hand:
    /// `ip route add <other podCidr> via <other node>` in each node.
    pub fn new(bed: &Testbed, flavor: Flavor) -> TwoNodes {
        let specs = specs(flavor);
        let nodes = specs.map(|(tag, addr, _)| bed.node(tag, addr));
        let nets = [0, 1].map(|i| bed.subnet(flavor, &nodes[i], specs[i].2, false));
        let nets = nets.map(|n| match flavor {
            Flavor::Lanbridge => n.with_cluster_cidrs(&[CLUSTER_CIDR]),
            Flavor::Reference => n,
        });
        // The LAN host reaches every pod subnet through its node.
        for (_, addr, pods) in specs {
            bed.host.ip(&["route", "add", pods, "via", addr]);
        }
        if flavor == Flavor::Lanbridge {
            let peers = specs.map(|(n, a, p)| json!({"name": n, "address": a, "podCidr": p}));
            let file = bed.dir("peers").join("peers.json");
            std::fs::write(&file, json!({ "nodes": peers }).to_string())
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
            for (node, (tag, _, _)) in nodes.iter().zip(specs) {
                let mut c = node.command(&bed.lanbridge.display().to_string());
                c.args(["routes", "sync", "--peers"])
                    .arg(&file)
                    .args(["--node", tag]);
                run_ok(&mut c);
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let (_, addr, pods) = specs[1 - i];
            if flavor == Flavor::Reference {
                node.ip(&["route", "add", pods, "via", addr]);
            }
            let routes = node.ip_json(&["-4", "route", "show", pods]);
            let mut via = routes.as_array().into_iter().flatten();
            let via = via.any(|r| r["gateway"].as_str() == Some(addr));
            assert!(
                via,
                "{}: no route {pods} via {addr} (routes: {routes})",
                node.name()
            );
        }
        TwoNodes { nets, nodes }
    }

    /// Errors for nodes without IPv4 forwarding (the plugins' `isGateway`
    /// turns it on at the first ADD: call this after the pods are added).
    pub fn check_forwarding(&self) -> Vec<String> {
        let off = self.nodes.iter().filter_map(|node| {
            let v = node.run(&["sysctl", "-n", "net.ipv4.ip_forward"]);
            let v = v.trim();
            (v != "1").then(|| {
                format!(
                    "{}: net.ipv4.ip_forward is {v} after the plugin's ADD",
                    node.name()
                )
            })
        });
        off.collect()
    }
}

//! The benchmark's world, built from network namespaces it creates (names
//! `lbb<pid>-…`), never touching the machine's own namespace:
//!
//! ```text
//!  LAN ns: bridge lanbr 10.77.0.1/16, dnsmasq (pool 10.77.1.1-10.77.7.254, --no-ping)
//!    ├─ lanhost  eth0 10.77.0.50/16       (iperf3 server, ping-pong server)
//!    ├─ node-*   eth0 10.77.0.1x/16       (one node per plugin setup, plugin runs here)
//!    │            - subnet mode: the plugin's bridge + host-local pod subnet
//!    │            - lan mode: lanbridge bridge, eth0 NOT in it, `lanbridge daemon`
//!    │            - bridged: eth0 enslaved to br0 (node address on br0),
//!    │              reference `dhcp daemon`
//!    ├─ rawfwd   eth0 10.77.0.19/16       the kernel's limit: a forwarding namespace,
//!    │            ├─ veth 10.99.0.1/24 ── rawsrc 10.99.0.2     no bridge, no rules
//!    │            └─ veth 10.99.1.1/24 ── rawdst 10.99.1.2
//!    └─ rawfwd2  eth0 10.77.0.20/16       the same on a second "node":
//!                 └─ veth 10.99.2.1/24 ── rawfar 10.99.2.2     (src → fwd → LAN → fwd2 → far)
//!  pods: empty namespaces; a plugin ADD gives them eth0
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lanbridge_tests::background::Background;
use lanbridge_tests::binary::{plugin_dir, REFERENCE_DIR};
use lanbridge_tests::cni::{exec_plugin_under, CniEnv, CniOutput};
use lanbridge_tests::dhcp_server::{Dnsmasq, DnsmasqConf};
use lanbridge_tests::netns::Netns;
use lanbridge_tests::process::{self, wait_until};
use lanbridge_tests::topology::{self, LAN_BRIDGE, NODE_UPLINK as UPLINK};
pub use lanbridge_tests::Flavor;
use serde_json::{json, Value};

use crate::guard;

pub const LAN_ROUTER: &str = "10.77.0.1";
pub const LAN_PREFIX: u8 = 16;
pub const LAN_HOST: &str = "10.77.0.50";
pub const IFNAME: &str = "eth0";
pub const RAW_SRC: &str = "10.99.0.2";
pub const RAW_DST: &str = "10.99.1.2";
/// The raw chain's pod on the second forwarding namespace.
pub const RAW_FAR: &str = "10.99.2.2";
const RAW_FWD_LAN: &str = "10.77.0.19";
const RAW_FWD2_LAN: &str = "10.77.0.20";

/// Names, files and binaries of one benchmark run.
pub struct Run {
    pub prefix: String,
    pub tmp: PathBuf,
    pub lanbridge: PathBuf,
    /// `CNI_PATH` of lanbridge networks: `<tmp>/bin` (a `lanbridge`
    /// symlink) then the reference plugins.
    pub lb_cni_path: String,
    counter: AtomicUsize,
}

impl Run {
    pub fn new(lanbridge: &Path) -> Result<Run> {
        let prefix = format!("lbb{}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix("lbb-")
            .tempdir()
            .context("temp dir")?
            .keep();
        guard::track_dir(&tmp);
        let bin = plugin_dir(&tmp, lanbridge);
        Ok(Run {
            prefix,
            lb_cni_path: format!("{}:{REFERENCE_DIR}", bin.display()),
            tmp,
            lanbridge: lanbridge.to_path_buf(),
            counter: AtomicUsize::new(0),
        })
    }

    /// A namespace named `<prefix>-<tag>`.
    pub fn netns(&self, tag: &str) -> Netns {
        Netns::create(&format!("{}-{tag}", self.prefix))
    }

    /// A fresh directory under the run's temp dir.
    pub fn dir(&self, tag: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let d = self.tmp.join(format!("{tag}{n}"));
        std::fs::create_dir_all(&d).expect("creating a directory in the run's temp dir");
        d
    }

    /// A bpffs directory for a lanbridge `pinRoot`, removed at the end.
    pub fn pin_root(&self, tag: &str) -> PathBuf {
        let p = Path::new("/sys/fs/bpf").join(format!("{}-{tag}", self.prefix));
        guard::track_dir(&p);
        p
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        guard::remove_dir(&self.tmp);
    }
}

/// The LAN: its namespace, the LAN host, maybe dnsmasq.
pub struct Lan {
    // Drop order: processes, then namespaces.
    pub dnsmasq: Option<Dnsmasq>,
    pub ns: Netns,
    pub host: Netns,
    ports: AtomicUsize,
}

impl Lan {
    pub fn new(run: &Run) -> Result<Lan> {
        let ns = run.netns("lan");
        topology::lan_bridge(&ns, &format!("{LAN_ROUTER}/{LAN_PREFIX}"));
        let lan = Lan {
            dnsmasq: None,
            ns,
            host: run.netns("lanhost"),
            ports: AtomicUsize::new(0),
        };
        lan.attach(&lan.host, LAN_HOST);
        Ok(lan)
    }

    /// The next free port name on the LAN bridge.
    fn port(&self) -> String {
        format!("p{}", self.ports.fetch_add(1, Ordering::SeqCst))
    }

    /// Plugs `ns` in: `eth0` with `addr`/16, default route via the LAN router.
    fn attach(&self, ns: &Netns, addr: &str) {
        let cidr = format!("{addr}/{LAN_PREFIX}");
        topology::attach_to(&self.ns, &self.port(), ns, &cidr, LAN_ROUTER);
    }

    /// A node whose uplink `eth0` has `addr`, default route via the LAN router.
    pub fn node(&self, run: &Run, tag: &str, addr: &str) -> Netns {
        let node = run.netns(tag);
        self.attach(&node, addr);
        node
    }

    /// The old recipe: the node's uplink enslaved to `br0`, which holds the
    /// node's address (the only topology where the reference dhcp IPAM leases).
    pub fn bridged_node(&self, run: &Run, tag: &str, addr: &str) -> Netns {
        let node = run.netns(tag);
        topology::plug(&self.ns, &self.port(), &node);
        node.ip(&["link", "add", "br0", "type", "bridge"]);
        node.ip(&["link", "set", UPLINK, "master", "br0"]);
        node.ip(&["addr", "add", &format!("{addr}/{LAN_PREFIX}"), "dev", "br0"]);
        node.ip(&["link", "set", "br0", "up"]);
        node.ip(&["route", "add", "default", "via", LAN_ROUTER]);
        node
    }

    /// dnsmasq on the LAN bridge, a pool large enough for every lease of the run.
    pub fn start_dnsmasq(&mut self, run: &Run) {
        self.dnsmasq = Some(Dnsmasq::start(
            &self.ns,
            &run.dir("dnsmasq"),
            &Lan::dnsmasq_conf(false),
        ));
    }

    /// Restarts dnsmasq (empty lease file) with its ping check on (as
    /// shipped: it pings an address before offering it) or `--no-ping`.
    pub fn set_dnsmasq_ping(&mut self, ping: bool) {
        if let Some(d) = self.dnsmasq.as_mut() {
            d.restart_empty(&self.ns, &Lan::dnsmasq_conf(ping));
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
}

/// Enables IPv4 forwarding in `ns` (our namespace, never the host's).
pub fn forwarding(ns: &Netns) {
    ns.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

/// Runs `cmd` to completion; `Err` with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = process::run(cmd, None, process::DEFAULT_TIMEOUT);
    if !out.success() {
        bail!("{cmd:?}: {}\n{}", out.failure(), out.stderr.trim());
    }
    Ok(out.stdout)
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
    _fwd: Netns,
    _fwd2: Netns,
}

impl RawChain {
    pub fn new(run: &Run, lan: &Lan) -> Result<RawChain> {
        let fwd = lan.node(run, "rawfwd", RAW_FWD_LAN);
        forwarding(&fwd);
        let fwd2 = lan.node(run, "rawfwd2", RAW_FWD2_LAN);
        forwarding(&fwd2);
        let src = run.netns("rawsrc");
        let dst = run.netns("rawdst");
        let far = run.netns("rawfar");
        for (fwd, ns, peer, net) in [
            (&fwd, &src, "vs", "10.99.0"),
            (&fwd, &dst, "vd", "10.99.1"),
            (&fwd2, &far, "vr", "10.99.2"),
        ] {
            fwd.ip(&[
                "link",
                "add",
                peer,
                "type",
                "veth",
                "peer",
                "name",
                IFNAME,
                "netns",
                ns.name(),
            ]);
            fwd.ip(&["addr", "add", &format!("{net}.1/24"), "dev", peer]);
            fwd.ip(&["link", "set", peer, "up"]);
            ns.ip(&["addr", "add", &format!("{net}.2/24"), "dev", IFNAME]);
            ns.ip(&["link", "set", IFNAME, "up"]);
            ns.ip(&["route", "add", "default", "via", &format!("{net}.1")]);
        }
        fwd.ip(&["route", "add", "10.99.2.0/24", "via", RAW_FWD2_LAN]);
        fwd2.ip(&["route", "add", "10.99.0.0/24", "via", RAW_FWD_LAN]);
        // The more specific route wins for the far side.
        lan.host
            .ip(&["route", "add", "10.99.0.0/16", "via", RAW_FWD_LAN]);
        lan.host
            .ip(&["route", "add", "10.99.2.0/24", "via", RAW_FWD2_LAN]);
        Ok(RawChain {
            src,
            dst,
            far,
            _fwd: fwd,
            _fwd2: fwd2,
        })
    }
}

/// A pool of pod namespaces, reused across measurements (a DEL leaves a pod
/// empty again).
pub struct Pods {
    pub tag: String,
    pub pods: Vec<Arc<Netns>>,
}

impl Pods {
    pub fn new(tag: &str) -> Pods {
        Pods {
            tag: tag.to_string(),
            pods: Vec::new(),
        }
    }

    /// Grows the pool to `n` namespaces (created 4 at a time).
    pub fn ensure(&mut self, run: &Run, n: usize) {
        let start = self.pods.len();
        if n <= start {
            return;
        }
        let names: Vec<String> = (start..n)
            .map(|i| format!("{}-{}{i}", run.prefix, self.tag))
            .collect();
        let chunks: Vec<Vec<String>> = names
            .chunks(names.len().div_ceil(4))
            .map(<[String]>::to_vec)
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    c.iter()
                        .map(|name| Arc::new(Netns::create(name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(v) => self.pods.extend(v),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    }

    pub fn get(&self, i: usize) -> &Arc<Netns> {
        &self.pods[i]
    }
}

/// One network on one node: what a runtime needs to call the plugin.
pub struct Net {
    pub flavor: Flavor,
    pub node: PathBuf,
    pub plugin: PathBuf,
    pub cni_path: String,
    pub conf: Value,
}

impl Net {
    /// Subnet mode with host-local, as `tests/src/fixture.rs` `subnet_conf`:
    /// bridge `lb0` with the gateway, default route, masquerade.
    pub fn subnet(run: &Run, flavor: Flavor, node: &Netns, subnet: &str, masq: bool) -> Net {
        let data = run.dir("ipam");
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": "lbbnet",
            "type": flavor.plugin_type(),
            "bridge": "lb0",
            "isGateway": true,
            "isDefaultGateway": true,
            "ipMasq": masq,
            "ipam": {
                "type": "host-local",
                "subnet": subnet,
                "dataDir": data.display().to_string(),
            }
        });
        if flavor == Flavor::Lanbridge {
            conf["stateDir"] = json!(run.dir("state").display().to_string());
            conf["pinRoot"] = json!(run
                .pin_root(node.name().rsplit('-').next().unwrap_or("x"))
                .display()
                .to_string());
        }
        Net::new(run, flavor, node, conf)
    }

    /// The cluster's pod CIDRs (`clusterCidrs`): with them lanbridge's subnet
    /// mode forwards pod → other nodes' pods on its eBPF fast path.
    pub fn with_cluster_cidrs(mut self, cidrs: &[&str]) -> Net {
        self.conf["clusterCidrs"] = json!(cidrs);
        self
    }

    /// lanbridge lan mode: uplink eth0 (not in the bridge), dhcp IPAM served
    /// by the lanbridge daemon at `socket`.
    pub fn lan(run: &Run, node: &Netns, state: &Path, socket: &Path) -> Net {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "lbblan",
            "type": "lanbridge",
            "bridge": "lb0",
            "uplink": UPLINK,
            "stateDir": state.display().to_string(),
            "pinRoot": run.pin_root("lan").display().to_string(),
            "ipam": {"type": "dhcp", "daemonSocketPath": socket.display().to_string()}
        });
        Net::new(run, Flavor::Lanbridge, node, conf)
    }

    /// The reference bridge + dhcp on a bridged node (uplink in br0).
    pub fn bridged_dhcp(run: &Run, node: &Netns, socket: &Path) -> Net {
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "lbbref",
            "type": "bridge",
            "bridge": "br0",
            "ipam": {"type": "dhcp", "daemonSocketPath": socket.display().to_string()}
        });
        Net::new(run, Flavor::Reference, node, conf)
    }

    fn new(run: &Run, flavor: Flavor, node: &Netns, conf: Value) -> Net {
        let (plugin, cni_path) = match flavor {
            Flavor::Lanbridge => (run.lanbridge.clone(), run.lb_cni_path.clone()),
            Flavor::Reference => (
                Path::new(REFERENCE_DIR).join("bridge"),
                REFERENCE_DIR.to_string(),
            ),
        };
        Net {
            flavor,
            node: node.path(),
            plugin,
            cni_path,
            conf,
        }
    }

    pub fn pin_root(&self) -> Option<PathBuf> {
        self.conf["pinRoot"].as_str().map(PathBuf::from)
    }

    pub fn name(&self) -> &str {
        self.conf["name"].as_str().unwrap_or_default()
    }

    pub fn add(&self, container: &str, pod: &Netns) -> CniOutput {
        self.add_wrapped(&[], container, pod)
    }

    /// ADD under a wrapper program (see [`exec_plugin_under`]).
    pub fn add_wrapped(&self, wrapper: &[&str], container: &str, pod: &Netns) -> CniOutput {
        self.exec(wrapper, "ADD", container, pod, &self.conf)
    }

    /// DEL with the cached ADD result as `prevResult`, as libcni does.
    pub fn del(&self, container: &str, pod: &Netns, prev: Option<&Value>) -> CniOutput {
        self.del_wrapped(&[], container, pod, prev)
    }

    /// DEL under a wrapper program (see [`exec_plugin_under`]).
    pub fn del_wrapped(
        &self,
        wrapper: &[&str],
        container: &str,
        pod: &Netns,
        prev: Option<&Value>,
    ) -> CniOutput {
        let mut conf = self.conf.clone();
        if let Some(p) = prev {
            conf["prevResult"] = p.clone();
        }
        self.exec(wrapper, "DEL", container, pod, &conf)
    }

    /// Runs the plugin as a runtime does, inside the node.
    fn exec(
        &self,
        wrapper: &[&str],
        command: &str,
        container: &str,
        pod: &Netns,
        conf: &Value,
    ) -> CniOutput {
        let env = CniEnv::new(command, container, &pod.path_str(), IFNAME, &self.cni_path);
        let stdin = conf.to_string();
        exec_plugin_under(
            wrapper,
            Some(&self.node),
            &self.plugin,
            &env,
            stdin.as_bytes(),
        )
    }
}

/// The first IPv4 address (without prefix) of an ADD result.
pub fn result_ip(result: &Value) -> Option<String> {
    result["ips"]
        .as_array()?
        .iter()
        .find_map(|ip| ip["address"].as_str())
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
}

/// `lanbridge daemon` in `node`, socket and state in `dir`.
pub fn lanbridge_daemon(run: &Run, node: &Netns, dir: &Path) -> Result<(Background, PathBuf)> {
    let socket = dir.join("lanbridge.sock");
    let mut c = node.command(&run.lanbridge.display().to_string());
    c.arg("daemon")
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.join("state"));
    let bg = Background::spawn("lanbridge daemon", c, &dir.join("daemon.log"));
    wait_socket(&socket, &bg)?;
    Ok((bg, socket))
}

/// The reference `dhcp daemon` in `node`.
pub fn reference_dhcp_daemon(node: &Netns, dir: &Path) -> Result<(Background, PathBuf)> {
    let socket = dir.join("dhcp.sock");
    let mut c = node.command(&format!("{REFERENCE_DIR}/dhcp"));
    c.arg("daemon").arg("-socketpath").arg(&socket);
    let bg = Background::spawn("reference dhcp daemon", c, &dir.join("dhcp.log"));
    wait_socket(&socket, &bg)?;
    Ok((bg, socket))
}

fn wait_socket(socket: &Path, bg: &Background) -> Result<()> {
    if !wait_until(Duration::from_secs(10), || socket.exists()) {
        bail!(
            "{} did not open {}: {}",
            bg.name(),
            socket.display(),
            bg.log()
        );
    }
    Ok(())
}

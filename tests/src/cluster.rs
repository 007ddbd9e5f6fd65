//! Several nodes on one LAN (subnet mode across nodes): each node a namespace
//! with its own host-local store and pods, and lanbridge's default state dir,
//! pin root and daemon socket (scoped per namespace by lanbridge itself, as
//! on kind-style nodes sharing one machine); a peers file laid out like a
//! mounted ConfigMap; `lanbridge routes sync` per node or
//! a `lanbridge daemon --peers` per node following the file.
//!
//! ```text
//!  node1 192.168.77.11  pods 10.244.1.0/24 ─┐
//!  node2 192.168.77.12  pods 10.244.2.0/24 ─┼── LAN 192.168.77.0/24 ── lan host .50
//!  node3 192.168.77.13  pods 10.244.3.0/24 ─┘
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::binary::{lanbridge_bin, lanbridge_plugin_dir, REFERENCE_DIR};
use crate::netns::Netns;
use crate::process::{self, Finished, DEFAULT_TIMEOUT};
use crate::result::first_ip;
use crate::runtime::{Attachment, Runtime};
use crate::World;

/// Every pod of the cluster: never masqueraded among themselves.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The network name of every node's config.
pub const NET: &str = "lbtnet";
/// lanbridge's route protocol number.
pub const RTPROT: &str = "76";

/// One node: `node<i>`, LAN address `192.168.77.1<i>`, pods `10.244.<i>.0/24`.
pub struct Node {
    pub index: u32,
    pub name: String,
    pub addr: String,
    pub pod_cidr: String,
    pub rt: Runtime,
    /// `None` for node1, which is the world's own node.
    ns: Option<Netns>,
}

impl Node {
    /// The node's entry of a peers file.
    pub fn peer(&self) -> Value {
        json!({"name": self.name, "address": self.addr, "podCidr": self.pod_cidr})
    }
}

/// A pod added by [`Cluster::add_pods`].
pub struct Pod {
    pub ns: Netns,
    /// Index into [`Cluster::nodes`].
    pub node: usize,
    pub ip: String,
    pub att: Attachment,
}

/// A long-running `lanbridge` in one node (output to a log file), killed by
/// PID on drop.
pub struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("[cluster] killing daemon {}: {e}", self.child.id());
        }
        self.child.wait().ok();
    }
}

/// Drop order: pods, daemons, extra nodes, then the world (first node, LAN,
/// temp dir, pins).
pub struct Cluster {
    pub pods: Vec<Pod>,
    daemons: Vec<(usize, Proc)>,
    pub nodes: Vec<Node>,
    pub w: World,
    peers_version: u32,
}

impl Cluster {
    /// A LAN with `n` nodes (1..=9); nothing configured in them yet.
    pub fn new(tag: &str, n: u32) -> Cluster {
        assert!((1..=9).contains(&n));
        let w = World::lanbridge(tag);
        let mut c = Cluster {
            pods: Vec::new(),
            daemons: Vec::new(),
            nodes: Vec::new(),
            w,
            peers_version: 0,
        };
        for _ in 0..n {
            c.add_node();
        }
        c
    }

    /// Adds the next node on the LAN; returns its index into `nodes`.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len() as u32 + 1;
        let addr = format!("192.168.77.{}", 10 + index);
        let ns = (index > 1).then(|| self.w.topo.add_node(index, &addr));
        let bin = lanbridge_plugin_dir(self.w.path());
        let rt = Runtime::new(
            ns.as_ref().unwrap_or(&self.w.topo.node),
            &[&bin, Path::new(REFERENCE_DIR)],
        );
        self.nodes.push(Node {
            index,
            name: format!("node{index}"),
            addr,
            pod_cidr: format!("10.244.{index}.0/24"),
            rt,
            ns,
        });
        self.nodes.len() - 1
    }

    pub fn ns(&self, node: usize) -> &Netns {
        self.nodes[node].ns.as_ref().unwrap_or(&self.w.topo.node)
    }

    /// Node `node`'s lanbridge config: gateway, default route, masquerade
    /// except towards [`CLUSTER_CIDR`], host-local from its pod subnet with
    /// allocations of its own; the same network name on every node and
    /// lanbridge's default `stateDir` and `pinRoot`.
    pub fn conf(&self, node: usize) -> Value {
        let n = &self.nodes[node];
        let dir = self.w.path().join(&n.name);
        let mut c = self.w.subnet_conf("1.0.0", &n.pod_cidr);
        c["clusterCidrs"] = json!([CLUSTER_CIDR]);
        c["ipam"]["dataDir"] = json!(dir.join("ipam").display().to_string());
        c
    }

    /// Adds `per_node` pods to every node that has none yet.
    pub fn add_pods(&mut self, per_node: usize) {
        for node in 0..self.nodes.len() {
            if self.pods.iter().any(|p| p.node == node) {
                continue;
            }
            let conf = self.conf(node);
            for k in 0..per_node {
                let name = format!("{}p{k}", self.nodes[node].name);
                let ns = self.w.topo.pod(&name);
                let att = Attachment::new(&format!("ctr-{name}"), &ns, "eth0");
                let r = self.nodes[node]
                    .rt
                    .invoke("ADD", &conf, &att, None)
                    .expect_ok(&format!("ADD {name}"));
                let ip = first_ip(&r);
                self.pods.push(Pod { ns, node, ip, att });
            }
        }
    }

    /// The peers file, as a ConfigMap mount shows it: `peers.json` ->
    /// `..data/peers.json`, `..data` -> a versioned directory.
    pub fn peers_path(&self) -> PathBuf {
        self.w.path().join("config").join("peers.json")
    }

    /// Writes `text` as the peers file the way the kubelet updates a ConfigMap
    /// volume: a new versioned directory, then an atomic swap of `..data`.
    pub fn write_peers_text(&mut self, text: &str) {
        let dir = self.w.path().join("config");
        self.peers_version += 1;
        let version = format!("..v{}", self.peers_version);
        std::fs::create_dir_all(dir.join(&version)).expect("mkdir config version");
        std::fs::write(dir.join(&version).join("peers.json"), text).expect("write peers");
        let tmp = dir.join("..data_tmp");
        std::fs::remove_file(&tmp).ok();
        std::os::unix::fs::symlink(&version, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
        let link = dir.join("peers.json");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("..data/peers.json", &link).expect("symlink peers.json");
        }
    }

    /// A peers file listing `nodes` (indices into `nodes`).
    pub fn write_peers(&mut self, nodes: &[usize]) {
        let list: Vec<Value> = nodes.iter().map(|&i| self.nodes[i].peer()).collect();
        let text = serde_json::to_string_pretty(&json!({ "nodes": list })).expect("JSON");
        self.write_peers_text(&text);
    }

    /// Runs `lanbridge <args...>` inside node `node`.
    pub fn lanbridge(&self, node: usize, args: &[&str]) -> Finished {
        let mut cmd = self
            .ns(node)
            .command(&lanbridge_bin().display().to_string());
        cmd.args(args);
        process::run(&mut cmd, None, DEFAULT_TIMEOUT)
    }

    /// `lanbridge routes sync --peers <file> --node <name> [extra...]` in node `node`.
    pub fn routes_sync(&self, node: usize, extra: &[&str]) -> Finished {
        let peers = self.peers_path().display().to_string();
        let mut args = vec![
            "routes",
            "sync",
            "--peers",
            &peers,
            "--node",
            &self.nodes[node].name,
        ];
        args.extend_from_slice(extra);
        self.lanbridge(node, &args)
    }

    /// Node `node`'s routes with lanbridge's protocol, as `dst via gw` (sorted).
    pub fn lanbridge_routes(&self, node: usize) -> Vec<String> {
        routes_of(self.ns(node), &["proto", RTPROT])
    }

    /// Node `node`'s whole main table (v4), as `ip route` lines.
    pub fn table(&self, node: usize) -> String {
        self.ns(node).ip(&["-4", "route", "show"])
    }

    /// Starts `lanbridge daemon --peers <file> --node <name>` in every node
    /// that has none, each with the default socket and state dir (scoped to
    /// its node by lanbridge) and a log of its own.
    pub fn start_daemons(&mut self) {
        for node in 0..self.nodes.len() {
            if self.daemons.iter().any(|(n, _)| *n == node) {
                continue;
            }
            let peers = self.peers_path().display().to_string();
            let args = [
                "daemon",
                "--peers",
                &peers,
                "--node",
                &self.nodes[node].name,
            ];
            let proc = self.spawn(node, &args, &self.daemon_log_path(node));
            self.daemons.push((node, proc));
        }
    }

    /// Starts `lanbridge <args...>` in node `node` (log level info, stdout
    /// and stderr to `log`); it runs until the returned guard is dropped.
    pub fn spawn(&self, node: usize, args: &[&str], log: &Path) -> Proc {
        let file = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut cmd = self
            .ns(node)
            .command(&lanbridge_bin().display().to_string());
        cmd.args(args)
            .env("LANBRIDGE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn lanbridge {args:?}: {e}"));
        Proc { child }
    }

    fn daemon_log_path(&self, node: usize) -> PathBuf {
        self.w
            .path()
            .join(format!("daemon-{}.log", self.nodes[node].name))
    }

    /// What node `node`'s daemon logged so far.
    pub fn daemon_log(&self, node: usize) -> String {
        std::fs::read_to_string(self.daemon_log_path(node)).unwrap_or_default()
    }

    /// Polls until node `node`'s lanbridge routes are `want` (sorted `dst via gw`).
    pub fn wait_routes(&self, node: usize, want: &[String], timeout: Duration) -> bool {
        process::wait_until(timeout, || self.lanbridge_routes(node) == want)
    }

    /// The `dst via gw` lines node `node` should have for the nodes `listed`.
    pub fn expected_routes(&self, node: usize, listed: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = listed
            .iter()
            .filter(|&&i| i != node)
            .map(|&i| format!("{} via {}", self.nodes[i].pod_cidr, self.nodes[i].addr))
            .collect();
        v.sort();
        v
    }
}

/// `ip -4 route show <filter...>` of `ns` as sorted `dst via gw` lines.
pub fn routes_of(ns: &Netns, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["-4", "route", "show"];
    args.extend_from_slice(filter);
    let mut v: Vec<String> = ns
        .ip_json(&args)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            format!(
                "{} via {}",
                r["dst"].as_str().unwrap_or("?"),
                r["gateway"].as_str().unwrap_or("-")
            )
        })
        .collect();
    v.sort();
    v
}

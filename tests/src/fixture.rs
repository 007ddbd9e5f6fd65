//! One test's world: a topology, a temp dir for state, and a runtime whose
//! `CNI_PATH` finds either lanbridge (plus the reference plugins) or only the
//! reference plugins.

use std::path::{Path, PathBuf};

use lanbridge::node::naming::{is_tombstone_link, tombstone_pin_ifindex};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::binary::{lanbridge_plugin_dir, REFERENCE_DIR};
use crate::bpftool::bpftool_json;
use crate::netns::{require_root, scoped_defaults, Netns};
use crate::runtime::Runtime;
use crate::topology::Topology;

/// Which bridge plugin a world's configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `"type": "lanbridge"`, CNI_PATH = <tmp>/bin:/usr/lib/cni.
    Lanbridge,
    /// `"type": "bridge"`, CNI_PATH = /usr/lib/cni.
    Reference,
}

impl Flavor {
    /// The plugin's name in reports: `lanbridge` or `reference`.
    pub fn label(self) -> &'static str {
        match self {
            Flavor::Lanbridge => "lanbridge",
            Flavor::Reference => "reference",
        }
    }

    /// The config's `type`.
    pub fn plugin_type(self) -> &'static str {
        match self {
            Flavor::Lanbridge => "lanbridge",
            Flavor::Reference => "bridge",
        }
    }
}

/// Drop order matters: namespaces go first, the temp dir last.
pub struct World {
    pub topo: Topology,
    pub rt: Runtime,
    pub flavor: Flavor,
    pub tmp: TempDir,
}

impl World {
    pub fn new(tag: &str, flavor: Flavor) -> World {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("lbt-")
            .tempdir()
            .expect("temp dir");
        let topo = Topology::new(tag);
        let rt = match flavor {
            Flavor::Lanbridge => {
                let bin = lanbridge_plugin_dir(tmp.path());
                Runtime::new(&topo.node, &[&bin, Path::new(REFERENCE_DIR)])
            }
            Flavor::Reference => Runtime::new(&topo.node, &[Path::new(REFERENCE_DIR)]),
        };
        World {
            topo,
            rt,
            flavor,
            tmp,
        }
    }

    pub fn lanbridge(tag: &str) -> World {
        Self::new(tag, Flavor::Lanbridge)
    }

    pub fn reference(tag: &str) -> World {
        Self::new(tag, Flavor::Reference)
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// lanbridge's default `stateDir` as the node's namespace scopes it:
    /// configs leave it out, as users do; removed with the node.
    pub fn state_dir(&self) -> PathBuf {
        let [_, state, _] = scoped_defaults(self.topo.node.inode());
        state
    }

    /// Where lanbridge keeps the node namespace's scope marker and the
    /// daemon's default socket (under /run); removed with the node.
    pub fn run_dir(&self) -> PathBuf {
        let [_, _, run] = scoped_defaults(self.topo.node.inode());
        run
    }

    /// lanbridge's default `pinRoot` (on bpffs) as the node's namespace
    /// scopes it; removed with the node.
    pub fn pin_root(&self) -> PathBuf {
        let [pins, _, _] = scoped_defaults(self.topo.node.inode());
        pins
    }

    /// Interfaces with a TCX link pinned for network `net`.
    pub fn link_pins(&self, net: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.pin_root().join(net)) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("link_").map(str::to_string))
            .collect();
        v.sort();
        v
    }

    /// What DEL retired and left to its background deleter, not yet
    /// destroyed: the node's retired links and every network's retired link
    /// pins.
    pub fn retired(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .topo
            .node
            .links()
            .into_iter()
            .filter(|l| is_tombstone_link(l))
            .collect();
        for net in std::fs::read_dir(self.pin_root()).into_iter().flatten() {
            let Ok(net) = net else { continue };
            for pin in std::fs::read_dir(net.path()).into_iter().flatten() {
                let Ok(pin) = pin else { continue };
                if pin
                    .file_name()
                    .to_str()
                    .and_then(tombstone_pin_ifindex)
                    .is_some()
                {
                    left.push(pin.path().display().to_string());
                }
            }
        }
        left
    }

    /// Waits (≤ 2 s) until DEL's background deleter has destroyed every
    /// retired pair of the node and unpinned its links: call it before
    /// checking that nothing is left.
    pub fn wait_retired_gone(&self, context: &str) {
        let gone = crate::process::wait_until(std::time::Duration::from_secs(2), || {
            self.retired().is_empty()
        });
        assert!(
            gone,
            "{context}: still retired after 2 s: {:?}",
            self.retired()
        );
    }

    /// Entries of the pinned map `map` of network `net` (`bpftool map dump`).
    pub fn map_entries(&self, net: &str, map: &str) -> Vec<Value> {
        let path = self.pin_root().join(net).join(map);
        if !path.exists() {
            return Vec::new();
        }
        let dump = bpftool_json(&["map", "dump", "pinned", &path.display().to_string()]);
        serde_json::from_value(dump).expect("bpftool map dump: a JSON array")
    }

    /// host-local's `dataDir` for this world.
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }

    /// The plugin type for this world's flavor.
    pub fn plugin_type(&self) -> &'static str {
        self.flavor.plugin_type()
    }

    /// [`subnet_conf`] of this world's flavor and dataDir.
    pub fn subnet_conf(&self, version: &str, subnet: &str) -> Value {
        subnet_conf(self.plugin_type(), version, subnet, &self.data_dir())
    }

    /// A conflist (one plugin: [`World::subnet_conf`]) at `version`.
    pub fn subnet_list(&self, version: &str, subnet: &str) -> Value {
        let mut plugin = self.subnet_conf(version, subnet);
        let obj = plugin.as_object_mut().expect("object");
        obj.remove("cniVersion");
        obj.remove("name");
        json!({"cniVersion": version, "name": "lbtnet", "plugins": [plugin]})
    }

    /// Links of the node other than `lo`, the uplink and `bridge`: the host-side
    /// ends of pod veths (and anything leaked).
    pub fn port_links(&self, bridge: &str) -> Vec<String> {
        self.topo
            .node
            .links()
            .into_iter()
            .filter(|l| l != "lo" && l != crate::topology::NODE_UPLINK && l != bridge)
            .collect()
    }

    /// The node's nat table without the built-in chains' policy lines: every
    /// `-A` rule and every user chain (`:NAME - [..]`). Empty in a fresh node.
    pub fn nat_rules(&self) -> Vec<String> {
        const BUILTIN: [&str; 4] = [":PREROUTING ", ":INPUT ", ":OUTPUT ", ":POSTROUTING "];
        self.topo
            .node
            .run(&["iptables-save", "-t", "nat"])
            .lines()
            .filter(|l| {
                l.starts_with("-A")
                    || (l.starts_with(':') && !BUILTIN.iter().any(|b| l.starts_with(b)))
            })
            .map(str::to_string)
            .collect()
    }

    /// The rules of lanbridge's own `ip` nat table (masquerade), as `nft`
    /// lists them; none when the table is missing.
    pub fn masquerade_rules(&self) -> Vec<String> {
        let out = self
            .topo
            .node
            .exec(&["nft", "list", "table", "ip", "lanbridge"]);
        out.stdout
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("comment"))
            .map(str::to_string)
            .collect()
    }

    /// The node's filter-table rules that lanbridge tagged (`lanbridge:` comments).
    pub fn forward_rules(&self) -> Vec<String> {
        self.topo
            .node
            .run(&["iptables-save", "-t", "filter"])
            .lines()
            .filter(|l| l.starts_with("-A") && l.contains("lanbridge:"))
            .map(str::to_string)
            .collect()
    }

    /// lanbridge's FORWARD rules that name a pod, as an older build wrote
    /// them; the networks' own accepts (commented `lanbridge:<network>
    /// <bridge>`, quoted for the space) are left out.
    pub fn pod_forward_rules(&self) -> Vec<String> {
        self.forward_rules()
            .into_iter()
            .filter(|l| !l.contains("--comment \"lanbridge:"))
            .collect()
    }

    /// Asserts nothing of the attachment of `container_id` (address `ip`) on
    /// [`World::subnet_conf`]'s network is left in the node, the pod, the
    /// dataDir, the stateDir, bpffs, or netfilter.
    pub fn assert_nothing_left(&self, pod: &Netns, container_id: &str, ip: &str, context: &str) {
        self.wait_retired_gone(context);
        assert_eq!(
            self.port_links("lb0"),
            Vec::<String>::new(),
            "{context}: host-side links left"
        );
        assert_eq!(pod.links(), vec!["lo"], "{context}: links left in the pod");
        assert_eq!(
            self.allocations("lbtnet"),
            Vec::<String>::new(),
            "{context}: allocations left"
        );
        assert_eq!(
            self.state_files(),
            Vec::<std::path::PathBuf>::new(),
            "{context}: state left"
        );
        assert_eq!(
            self.link_pins("lbtnet"),
            Vec::<String>::new(),
            "{context}: TCX links left"
        );
        // The network's own accepts (for its bridge) stay with it.
        assert_eq!(
            self.pod_forward_rules(),
            Vec::<String>::new(),
            "{context}: FORWARD rules of pods"
        );
        for map in ["lb_endpoints", "lb_by_mac", "lb_by_ip", "lb_flows"] {
            assert_eq!(
                self.map_entries("lbtnet", map),
                Vec::<serde_json::Value>::new(),
                "{context}: {map} entries left"
            );
        }
        let nat = self.nat_rules();
        for line in &nat {
            assert!(
                !line.contains(container_id)
                    && !line.contains(&format!("{ip}/"))
                    && !line.contains(&format!("{ip} ")),
                "{context}: nat rule left: {line}\n{nat:#?}"
            );
        }
        // Only one attachment per world here: no chain or rule at all may remain.
        assert_eq!(
            nat,
            Vec::<String>::new(),
            "{context}: nat chains/rules left"
        );
    }

    /// host-local allocation files (named by IP) of network `net` under this world's dataDir.
    pub fn allocations(&self, net: &str) -> Vec<String> {
        allocations(&self.data_dir().join(net))
    }

    /// Files (recursively) under the lanbridge state dir, excluding lock files
    /// and the network's `node-changes` (network-level, like the bridge).
    pub fn state_files(&self) -> Vec<PathBuf> {
        let mut out = vec![];
        walk(&self.state_dir(), &mut out);
        out.retain(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            !name.ends_with(".lock") && name != "lock" && name != "node-changes"
        });
        out
    }
}

/// The subnet-mode config of the brief, network `lbtnet` of plugin
/// `plugin_type`: bridge `lb0`, gateway, default route, masquerade,
/// host-local from `subnet` (e.g. "10.244.1.0/24") with its files in `data_dir`.
pub fn subnet_conf(plugin_type: &str, version: &str, subnet: &str, data_dir: &Path) -> Value {
    json!({
        "cniVersion": version,
        "name": "lbtnet",
        "type": plugin_type,
        "bridge": "lb0",
        "isGateway": true,
        "isDefaultGateway": true,
        "ipMasq": true,
        "ipam": {
            "type": "host-local",
            "subnet": subnet,
            "dataDir": data_dir.display().to_string(),
        }
    })
}

/// host-local allocation files (named by IP) in `dir`.
pub fn allocations(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl Drop for World {
    /// Unpins the world's datapath (programs, maps, links) from bpffs.
    fn drop(&mut self) {
        let pins = self.pin_root();
        if let Err(e) = std::fs::remove_dir_all(&pins) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("cleanup: removing {}: {e}", pins.display());
            }
        }
    }
}

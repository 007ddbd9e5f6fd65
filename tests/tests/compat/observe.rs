//! Runs one case through one world's plugin (ADD, CHECK, DEL, as a runtime
//! does) and records what is observable as flat `field -> value` pairs, with
//! what legitimately varies between runs (MACs, the host-side veth's name,
//! the netns path, link-local addresses) normalised away.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lanbridge_tests::cni::CniOutput;
use lanbridge_tests::result::host_interfaces;
use lanbridge_tests::runtime::{version_at_least_040, Attachment, Failure};
use lanbridge_tests::{Netns, World};
use serde_json::{json, Value};

use crate::corpus::Case;

/// Field name -> normalised value.
pub type Outcome = BTreeMap<String, String>;

/// Fields under this prefix say what DEL left behind: they must be empty.
pub const LEFT: &str = "left.";
/// Fields under this prefix are shown in a report, never compared (error messages).
pub const NOTE: &str = "note.";

/// What one invocation (or a conflist's run) ended with.
enum Ran {
    Ok(Value),
    Err(Box<CniOutput>),
}

impl Ran {
    fn of(out: CniOutput) -> Ran {
        if out.success() {
            Ran::Ok(out.json().unwrap_or(Value::Null))
        } else {
            Ran::Err(Box::new(out))
        }
    }

    fn of_list(r: Result<Value, Failure>) -> Ran {
        r.map_or_else(|f| Ran::Err(f.output), Ran::Ok)
    }

    /// Records `<step>.status`, `<step>.code` and `<step>.error` (the error
    /// object's keys); returns the result on success.
    fn record(self, step: &str, o: &mut Outcome) -> Option<Value> {
        match self {
            Ran::Ok(v) => {
                o.insert(format!("{step}.status"), "ok".into());
                Some(v)
            }
            Ran::Err(out) => {
                let status = match (out.timed_out, out.code) {
                    (true, _) => "timed out".to_string(),
                    (false, Some(c)) => format!("exit {c}"),
                    (false, None) => "killed".to_string(),
                };
                o.insert(format!("{step}.status"), status);
                let (code, shape) = match out.json() {
                    Some(e) => {
                        o.insert(format!("{NOTE}{step}.msg"), out.error_text());
                        (code_class(&e["code"]), error_shape(&e))
                    }
                    None => ("none".into(), "not JSON".into()),
                };
                o.insert(format!("{step}.code"), code);
                o.insert(format!("{step}.error"), shape);
                None
            }
        }
    }
}

/// Codes 1-99 are the spec's, each its own class; 100 and up (the
/// reference's catch-all 999 included) say "the plugin's own failure".
fn code_class(code: &Value) -> String {
    match code.as_u64() {
        Some(c @ 1..=99) => c.to_string(),
        Some(_) => "plugin-specific (100+)".into(),
        None => format!("not a code: {code}"),
    }
}

/// Whether the error object has the spec's required fields (`cniVersion`
/// and `details` are left out: the reference 1.1.1 never sends the first,
/// always the second).
fn error_shape(e: &Value) -> String {
    let has = |k: &str| e.get(k).is_some();
    match (
        has("code"),
        e["msg"].as_str().is_some_and(|m| !m.is_empty()),
    ) {
        (true, true) => "code and msg".into(),
        (c, m) => format!("code {c}, msg {m}: {e}"),
    }
}

/// The network name of every case: lanbridge loads a network's eBPF
/// programs on its first ADD (seconds in a debug build), then reuses them.
const NETWORK: &str = "compat";

/// The case's config for `w`: its own bridge, IPAM data dir and
/// (unreachable) dhcp socket, so cases sharing a node never meet.
fn prepare(case: &Case, w: &World, n: usize) -> Value {
    let mut conf = case.config.clone();
    if conf.get("name").is_some_and(Value::is_string) {
        conf["name"] = json!(NETWORK);
    }
    let plugins: Vec<&mut Value> = match conf.get_mut("plugins") {
        Some(Value::Array(list)) => list.iter_mut().collect(),
        _ => vec![&mut conf],
    };
    for p in plugins.into_iter().filter(|p| p["type"] == "bridge") {
        p["type"] = json!(w.plugin_type());
        // A name too long for an interface stays: it is the case.
        if p.get("bridge")
            .is_none_or(|b| b.as_str().is_some_and(|b| b.len() <= 15))
        {
            p["bridge"] = json!(bridge(n));
        }
        let ipam_dir = w.path().join(format!("ipam-{n}"));
        match p["ipam"]["type"].as_str() {
            Some("host-local") => p["ipam"]["dataDir"] = json!(ipam_dir),
            Some("dhcp") => p["ipam"]["daemonSocketPath"] = json!(w.path().join("no-dhcp.sock")),
            _ => {}
        }
    }
    conf
}

fn bridge(n: usize) -> String {
    format!("cb{n}")
}

/// ADD, CHECK (0.4.0+) and DEL of `case` in `w`, observed.
pub fn run(w: &World, case: &Case, n: usize) -> Outcome {
    let conf = prepare(case, w, n);
    let node = &w.topo.node;
    let pod = w.topo.pod(&format!("c{n}"));
    let mut att = Attachment::new(&format!("ctr-{n}"), &pod, "eth0");
    att.args = case.args.clone();
    att.capability_args = case.capabilities.clone();
    let links_before: BTreeSet<String> = node.links().into_iter().collect();
    let nat_before = w.nat_rules();
    let mut o = Outcome::new();

    let add = if case.is_list() {
        Ran::of_list(w.rt.add_list(&conf, &att))
    } else {
        Ran::of(w.rt.invoke("ADD", &conf, &att, None))
    };
    let result = add.record("add", &mut o);
    let prev = result
        .as_ref()
        .filter(|_| version_at_least_040(case.version()));
    if let Some(r) = &result {
        let names = Names::new(case, r, &pod, &bridge(n));
        let mut r = names.normalise(r.clone());
        // An empty `dns` is the same as none.
        if r.get("dns") == Some(&json!({})) {
            r.as_object_mut().map(|m| m.remove("dns"));
        }
        flatten("result", &r, &mut o);
        observe_pod(&pod, &names, &mut o);
        observe_node(w, &links_before, &names, &bridge(n), &mut o);
        for (file, content) in files(&w.path().join(format!("ipam-{n}"))) {
            o.insert(format!("alloc.{file}"), content);
        }
    }
    if let Some(r) = prev {
        let check = if case.is_list() {
            Ran::of_list(w.rt.check_list(&conf, &att, r).map(|()| Value::Null))
        } else {
            Ran::of(w.rt.invoke("CHECK", &conf, &att, Some(r)))
        };
        check.record("check", &mut o);
    }
    let del = if case.is_list() {
        Ran::of_list(w.rt.del_list(&conf, &att, prev).map(|()| Value::Null))
    } else {
        Ran::of(w.rt.invoke("DEL", &conf, &att, prev))
    };
    del.record("del", &mut o);
    w.wait_retired_gone(&format!("{}: after DEL", case.id));

    // What DEL left: links in the pod and the node (the bridge and a VLAN
    // gateway port belong to the network and stay), allocations, rules, state.
    let net = conf["name"].as_str().unwrap_or_default().to_string();
    let left = |o: &mut Outcome, what: &str, v: Vec<String>| {
        o.insert(format!("{LEFT}{what}"), format!("{v:?}"));
    };
    left(
        &mut o,
        "pod_links",
        pod.links().into_iter().filter(|l| l != "lo").collect(),
    );
    let ports: Vec<String> = node
        .links()
        .into_iter()
        .filter(|l| !links_before.contains(l) && !l.starts_with(&bridge(n)))
        .collect();
    left(&mut o, "node_links", ports);
    let allocs = files(&w.path().join(format!("ipam-{n}")))
        .into_keys()
        .filter(|f| !f.contains("last_reserved_ip"))
        .collect();
    left(&mut o, "allocations", allocs);
    // portmap keeps its CNI-HOSTPORT-* chains for every network, by design.
    let nat = w
        .nat_rules()
        .into_iter()
        .filter(|r| !nat_before.contains(r) && !r.contains("CNI-HOSTPORT-"))
        .collect();
    left(&mut o, "nat_rules", nat);
    let state = w
        .state_files()
        .into_iter()
        .filter(|p| p.starts_with(w.state_dir().join(&net)))
        .map(|p| p.display().to_string())
        .chain(w.link_pins(&net))
        .collect();
    left(&mut o, "lanbridge_state", state);
    o
}

/// Names that differ between implementations or runs, and what replaces them.
struct Names {
    netns: String,
    host_veths: Vec<String>,
    /// MACs the case asked for: kept, every other MAC is `<mac>`.
    wanted_macs: BTreeSet<String>,
}

impl Names {
    fn new(case: &Case, result: &Value, pod: &Netns, bridge: &str) -> Names {
        let text = format!("{} {:?} {:?}", case.config, case.args, case.capabilities);
        let wanted_macs = text
            .split(|c: char| !(c.is_ascii_hexdigit() || c == ':'))
            .filter(|w| is_mac(w))
            .map(str::to_lowercase)
            .collect();
        Names {
            netns: pod.path_str(),
            host_veths: host_interfaces(result)
                .into_iter()
                .filter(|n| n != bridge)
                .collect(),
            wanted_macs,
        }
    }

    fn string(&self, s: &str) -> String {
        if s == self.netns {
            "<netns>".into()
        } else if self.host_veths.iter().any(|v| v == s) {
            "<host veth>".into()
        } else if is_mac(s) && !self.wanted_macs.contains(&s.to_lowercase()) {
            "<mac>".into()
        } else if s.starts_with("fe80:") {
            "<link-local>".into()
        } else {
            s.into()
        }
    }

    /// Strings replaced; route and DNS lists sorted (their order means nothing).
    fn normalise(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.string(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.normalise(x)).collect()),
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, x)| {
                        let mut x = self.normalise(x);
                        if let (true, Value::Array(a)) = (
                            matches!(k.as_str(), "routes" | "nameservers" | "search"),
                            &mut x,
                        ) {
                            a.sort_by_key(Value::to_string);
                        }
                        (k, x)
                    })
                    .collect(),
            ),
            other => other,
        }
    }
}

fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.char_indices().all(|(i, c)| {
            if i % 3 == 2 {
                c == ':'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `prefix.key[i]... -> leaf` for every leaf of `v` (empty containers are leaves).
fn flatten(prefix: &str, v: &Value, o: &mut Outcome) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, o);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, o);
            }
        }
        leaf => {
            o.insert(prefix.to_string(), leaf.to_string());
        }
    }
}

fn up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

/// Addresses of one `ip -j addr` entry but link-local ones (the kernel
/// adds those when the link comes up, racing the observation).
fn addrs(link: &Value, names: &Names) -> Vec<String> {
    let mut v: Vec<String> = link["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["scope"] != "link")
        .map(|a| {
            let local = names.string(a["local"].as_str().unwrap_or_default());
            format!("{local}/{}", a["prefixlen"])
        })
        .collect();
    v.sort();
    v
}

/// Routes of the main table but link-local ones (see [`addrs`]).
fn routes(ns: &Netns, family: &str) -> Vec<String> {
    let mut v: Vec<String> = ns
        .ip_json(&[family, "route", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r["dst"].as_str().is_some_and(|d| d.starts_with("fe80:")))
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            format!("{} via {} dev {}", s("dst"), s("gateway"), s("dev"))
        })
        .collect();
    v.sort();
    v
}

/// The pod's links (MTU, state, MAC), addresses and routes.
fn observe_pod(pod: &Netns, names: &Names, o: &mut Outcome) {
    for link in pod
        .ip_json(&["addr", "show"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = link["ifname"].as_str().unwrap_or_default();
        if name == "lo" {
            continue;
        }
        let mac = names.string(link["address"].as_str().unwrap_or_default());
        o.insert(
            format!("pod.link.{name}"),
            format!("mtu {} up {} mac {mac}", link["mtu"], up(link)),
        );
        o.insert(
            format!("pod.addrs.{name}"),
            format!("{:?}", addrs(link, names)),
        );
    }
    o.insert("pod.routes4".into(), format!("{:?}", routes(pod, "-4")));
    o.insert("pod.routes6".into(), format!("{:?}", routes(pod, "-6")));
}

/// The bridge (MTU, state, promiscuity, VLAN filtering, addresses), its new
/// ports (MTU, hairpin, isolation, VLANs), other new links, forwarding and
/// masquerading in the node.
fn observe_node(
    w: &World,
    before: &BTreeSet<String>,
    names: &Names,
    bridge: &str,
    o: &mut Outcome,
) {
    let node = &w.topo.node;
    let links = node.ip_json(&["-d", "addr", "show"]);
    let mut ports = Vec::new();
    let mut others = Vec::new();
    let port_name = |n: &str| -> String {
        if names.host_veths.iter().any(|v| v == n) || !n.starts_with("cb") {
            "<port>".into()
        } else {
            n.to_string()
        }
    };
    for link in links.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or_default();
        let info = &link["linkinfo"];
        if name == bridge {
            let d = &info["info_data"];
            o.insert(
                format!("node.bridge.{name}"),
                format!(
                    "mtu {} up {} promisc {} vlan_filtering {}",
                    link["mtu"],
                    up(link),
                    link["promiscuity"].as_u64().unwrap_or(0) > 0,
                    d["vlan_filtering"]
                ),
            );
            o.insert(
                format!("node.bridge_addrs.{name}"),
                format!("{:?}", addrs(link, names)),
            );
        } else if before.contains(name) {
            continue;
        } else if info["info_slave_kind"] == "bridge" {
            let s = &info["info_slave_data"];
            ports.push(format!(
                "{} mtu {} up {} hairpin {} isolated {} master {}",
                port_name(name),
                link["mtu"],
                up(link),
                s["hairpin"],
                s["isolated"],
                link["master"].as_str().unwrap_or("-"),
            ));
        } else {
            others.push(format!("{} {}", port_name(name), info["info_kind"]));
        }
    }
    ports.sort();
    others.sort();
    o.insert("node.ports".into(), format!("{ports:?}"));
    o.insert("node.other_links".into(), format!("{others:?}"));
    let vlans: Vec<String> =
        serde_json::from_str::<Value>(&node.run(&["bridge", "-j", "vlan", "show"]))
            .unwrap_or(Value::Null)
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| !before.contains(p["ifname"].as_str().unwrap_or_default()))
            .map(|p| {
                format!(
                    "{} {}",
                    port_name(p["ifname"].as_str().unwrap_or_default()),
                    p["vlans"]
                )
            })
            .collect();
    o.insert("node.vlans".into(), format!("{vlans:?}"));
    o.insert(
        "node.ip_forward".into(),
        node.run(&["cat", "/proc/sys/net/ipv4/ip_forward"])
            .trim()
            .into(),
    );
    // The reference masquerades in iptables' nat table, lanbridge in its own
    // nf_tables table: either counts, judged by the statement, not a comment.
    let nft = node
        .exec(&["nft", "list", "table", "ip", "lanbridge"])
        .stdout;
    let masq = w.nat_rules().iter().any(|r| r.contains("MASQUERADE"))
        || nft.lines().any(|l| {
            l.split(" comment ")
                .next()
                .unwrap_or_default()
                .contains("masquerade")
        });
    o.insert("node.masquerade".into(), masq.to_string());
}

/// Files under `dir` (relative path -> content, line ends visible), without locks.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                let content = std::fs::read_to_string(&p).unwrap_or_else(|e| format!("<{e}>"));
                out.insert(rel, content.escape_debug().to_string());
            }
        }
    }
    out
}

//! Lan mode helpers: the network config (`uplink` + `dhcp` IPAM through the
//! test's daemon), `lanbridge inspect` in the node, counters, lease files,
//! and the client identifier lanbridge derives for an attachment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::binary::lanbridge_bin;
use crate::fixture::World;
use crate::netns::Netns;
use crate::process::{self, DEFAULT_TIMEOUT};
use crate::topology::NODE_UPLINK;

/// Bridge of the lan-mode network in the node.
pub const LAN_NET_BRIDGE: &str = "lb0";

/// The lan-mode config of `net`: bridge `lb0`, uplink `eth0`, built-in DHCP
/// IPAM through the node's daemon (its default socket), ADD bounded by
/// `timeout` seconds. Paths are lanbridge's defaults, as users leave them.
pub fn lan_conf(net: &str, timeout: f64) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": net,
        "type": "lanbridge",
        "bridge": LAN_NET_BRIDGE,
        "uplink": NODE_UPLINK,
        "ipam": {
            "type": "dhcp",
            "timeout": timeout,
        }
    })
}

/// `CNI_ARGS` naming the pod as Kubernetes does (the hostname lanbridge sends).
pub fn k8s_args(pod: &str) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID=x"
    )
}

/// `lanbridge inspect <net> --json` run inside the node (interface names
/// resolve there). Panics unless it succeeds.
pub fn inspect(w: &World, net: &str) -> Value {
    inspect_with(&lanbridge_bin(), &w.topo.node, net)
}

/// `<bin> inspect <net> --json` run inside `node` (e.g. the release build
/// the bench measures). Panics unless it succeeds.
pub fn inspect_with(bin: &Path, node: &Netns, net: &str) -> Value {
    let mut c = node.command(&bin.display().to_string());
    c.args(["inspect", net, "--json"]);
    let out = process::run_ok(&mut c);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect --json: {e}\n{out}"))
}

/// `lanbridge inspect <net>` as the table an operator reads.
pub fn inspect_table(w: &World, net: &str) -> String {
    let mut c = w.topo.node.command(&lanbridge_bin().display().to_string());
    c.args(["inspect", net]);
    process::run_ok(&mut c)
}

/// The packets counted for `reason` on `interface` in an inspect report.
pub fn counter(report: &Value, interface: &str, reason: &str) -> u64 {
    report["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["interface"] == interface && c["reason"] == reason)
        .filter_map(|c| c["packets"].as_u64())
        .sum()
}

/// The packets counted for `reason` on every interface.
pub fn counter_total(report: &Value, reason: &str) -> u64 {
    report["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["reason"] == reason)
        .filter_map(|c| c["packets"].as_u64())
        .sum()
}

/// The packets counted for each reason, summed over every interface.
pub fn counters_by_reason(report: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for c in report["counters"].as_array().into_iter().flatten() {
        if let (Some(r), Some(n)) = (c["reason"].as_str(), c["packets"].as_u64()) {
            *m.entry(r.to_string()).or_insert(0) += n;
        }
    }
    m
}

/// The endpoint of port `port` in an inspect report.
pub fn endpoint<'a>(report: &'a Value, port: &str) -> Option<&'a Value> {
    report["endpoints"]
        .as_array()?
        .iter()
        .find(|e| e["port"] == port)
}

/// Program names of an inspect report.
pub fn program_names(report: &Value) -> Vec<String> {
    report["programs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The daemon's lease file of an attachment.
pub fn lease_file(w: &World, net: &str, container_id: &str, ifname: &str) -> PathBuf {
    w.state_dir()
        .join("leases")
        .join(net)
        .join(format!("{container_id}:{ifname}.json"))
}

/// Files in the release queue (`<state>/release-queue/`).
pub fn release_queue(w: &World) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(w.state_dir().join("release-queue")) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| Some(e.ok()?.path())).collect();
    v.sort();
    v
}

/// Option 61 lanbridge sends by default, as dnsmasq prints it: `00:` and the
/// first 16 bytes of SHA-256("<containerID>/<ifname>"), lowercase hex.
pub fn attachment_client_id(container_id: &str, ifname: &str) -> String {
    digest_client_id(&format!("{container_id}/{ifname}"))
}

/// Option 61 with `"clientId": "pod"`: `00:` and the first 16 bytes of
/// SHA-256("<namespace>/<pod>/<ifname>").
pub fn pod_client_id(namespace: &str, pod: &str, ifname: &str) -> String {
    digest_client_id(&format!("{namespace}/{pod}/{ifname}"))
}

fn digest_client_id(input: &str) -> String {
    let out = process::run(
        &mut Command::new("sha256sum"),
        Some(input.as_bytes()),
        DEFAULT_TIMEOUT,
    );
    assert!(out.success(), "sha256sum: {}", out.stderr);
    let hex = out
        .stdout
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string();
    let bytes: Vec<&str> = (0..16).map(|i| &hex[2 * i..2 * i + 2]).collect();
    format!("00:{}", bytes.join(":"))
}

/// The MAC of `ifname` in `ns`, lowercase.
pub fn mac_of(ns: &Netns, ifname: &str) -> String {
    let j = ns.ip_json(&["link", "show", "dev", ifname]);
    j[0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no MAC for {ifname} in {}: {j}", ns.name()))
        .to_lowercase()
}

/// The master of `ifname` in `ns`, if enslaved.
pub fn master_of(ns: &Netns, ifname: &str) -> Option<String> {
    let j = ns.ip_json(&["link", "show", "dev", ifname]);
    j[0]["master"].as_str().map(str::to_string)
}

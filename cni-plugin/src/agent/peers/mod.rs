//! The peers file: every node of the cluster with its LAN address and pod
//! subnet, from which each node derives its routes to the others.
//!
//! ```json
//! {"nodes": [{"name": "node1", "address": "192.168.1.11", "podCidr": "10.244.1.0/24"}, ...]}
//! ```
//!
//! A file is accepted whole or not at all: every problem is reported with the
//! entry it is in, and nothing derived from a rejected file is ever applied.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// The node's address on the network the nodes share (the routes' gateway).
    pub address: IpAddr,
    /// The node's pod subnet (what its bridge and IPAM hand out).
    pub pod_cidr: IpNet,
}

/// A validated peers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    pub nodes: Vec<Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error("peers file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("peers file is not valid: {0}")]
    Syntax(String),
    #[error("peers file: {0}")]
    Invalid(String),
    #[error("peers file: this node {name:?} is not listed (nodes: {listed})")]
    UnknownNode { name: String, listed: String },
}

#[derive(Deserialize)]
struct RawFile {
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    name: String,
    address: String,
    pod_cidr: String,
}

impl Peers {
    /// Reads and validates the file at `path` (re-opened on every call, so a
    /// ConfigMap's symlink swap is followed).
    pub fn load(path: &Path) -> Result<Peers, PeersError> {
        let bytes = std::fs::read(path).map_err(|source| PeersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Peers::parse(&bytes)
    }

    /// Parses and validates a peers file's contents.
    pub fn parse(bytes: &[u8]) -> Result<Peers, PeersError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw: RawFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                PeersError::Syntax(inner.to_string())
            } else {
                PeersError::Syntax(format!("{path}: {inner}"))
            }
        })?;
        de.end().map_err(|e| PeersError::Syntax(e.to_string()))?;
        let nodes = raw
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| validate_node(i, n))
            .collect::<Result<Vec<Node>, PeersError>>()?;
        check_cluster(&nodes)?;
        Ok(Peers { nodes })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node, PeersError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| PeersError::UnknownNode {
                name: name.to_string(),
                listed: if self.nodes.is_empty() {
                    "none".to_string()
                } else {
                    self.nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Every node but `name`; an error if `name` is not listed.
    pub fn others(&self, name: &str) -> Result<Vec<&Node>, PeersError> {
        self.node(name)?;
        Ok(self.nodes.iter().filter(|n| n.name != name).collect())
    }
}

/// `nodes[3] ("node4")`: how messages point at an entry.
fn at(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("nodes[{index}]")
    } else {
        format!("nodes[{index}] ({name:?})")
    }
}

fn validate_node(index: usize, raw: RawNode) -> Result<Node, PeersError> {
    let here = at(index, &raw.name);
    let bad = |what: &str, reason: String| PeersError::Invalid(format!("{here}: {what} {reason}"));
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 253
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !name_ok {
        return Err(bad(
            "name",
            format!(
                "{:?} must be 1..253 characters of letters, digits, '.', '-' or '_'",
                raw.name
            ),
        ));
    }
    let address: IpAddr = raw
        .address
        .trim()
        .parse()
        .map_err(|_| bad("address", format!("{:?} is not an IP address", raw.address)))?;
    let unusable = match address {
        IpAddr::V4(a) => {
            (a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
                .then_some("is not a unicast address a node can have")
        }
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("is link-local: a route via it needs an interface; use a global address")
        }
        IpAddr::V6(a) => (a.is_unspecified() || a.is_loopback() || a.is_multicast())
            .then_some("is not a unicast address a node can have"),
    };
    if let Some(reason) = unusable {
        return Err(bad("address", format!("{address} {reason}")));
    }
    let pod_cidr: IpNet = raw.pod_cidr.trim().parse().map_err(|_| {
        bad(
            "podCidr",
            format!("{:?} is not a CIDR (e.g. 10.244.1.0/24)", raw.pod_cidr),
        )
    })?;
    if pod_cidr != pod_cidr.trunc() {
        return Err(bad(
            "podCidr",
            format!(
                "{pod_cidr} has host bits set (did you mean {}?)",
                pod_cidr.trunc()
            ),
        ));
    }
    if pod_cidr.prefix_len() == 0 {
        return Err(bad(
            "podCidr",
            format!("{pod_cidr} would route everything (the default route) to this node"),
        ));
    }
    if pod_cidr.addr().is_loopback() || pod_cidr.addr().is_multicast() {
        return Err(bad("podCidr", format!("{pod_cidr} is not a unicast range")));
    }
    if pod_cidr.addr().is_ipv4() != address.is_ipv4() {
        return Err(bad(
            "podCidr",
            format!("{pod_cidr} and address {address} are not of the same IP family"),
        ));
    }
    Ok(Node {
        name: raw.name,
        address,
        pod_cidr,
    })
}

/// What no single entry shows: duplicates and overlaps.
fn check_cluster(nodes: &[Node]) -> Result<(), PeersError> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addresses: HashMap<IpAddr, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(first) = names.insert(&n.name, i) {
            return Err(PeersError::Invalid(format!(
                "node name {:?} is listed twice (nodes[{first}] and nodes[{i}])",
                n.name
            )));
        }
        if let Some(first) = addresses.insert(n.address, i) {
            return Err(PeersError::Invalid(format!(
                "address {} is given to two nodes: {} and {}",
                n.address,
                at(first, &nodes[first].name),
                at(i, &n.name)
            )));
        }
    }
    for (i, a) in nodes.iter().enumerate() {
        for (j, b) in nodes.iter().enumerate().skip(i + 1) {
            if a.pod_cidr.contains(&b.pod_cidr.addr()) || b.pod_cidr.contains(&a.pod_cidr.addr()) {
                return Err(PeersError::Invalid(format!(
                    "podCidr {} of {} overlaps podCidr {} of {}",
                    a.pod_cidr,
                    at(i, &a.name),
                    b.pod_cidr,
                    at(j, &b.name)
                )));
            }
        }
        for (j, b) in nodes.iter().enumerate() {
            if a.pod_cidr.contains(&b.address) {
                return Err(PeersError::Invalid(format!(
                    "podCidr {} of {} contains the address {} of {}: that node would become unreachable",
                    a.pod_cidr,
                    at(i, &a.name),
                    b.address,
                    at(j, &b.name)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

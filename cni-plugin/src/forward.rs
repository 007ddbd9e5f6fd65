//! The host stack forwards a routed pod's traffic (subnet mode with a
//! gateway; in lan mode what the fast path leaves to it: service and hostPort
//! NAT, or everything with `fastPath` off) even under `iptables -P FORWARD
//! DROP` (Docker's default). Per pod, two ACCEPT rules in lanbridge's own
//! chain, matching the pod's /32 on the bridge: nothing else on the host is
//! opened.

use std::net::Ipv4Addr;

use crate::cni::Result;
use crate::iptables::{comment, deletion, mentions, rules, run, Batch, Family};

pub const CHAIN: &str = "LANBRIDGE-FWD";
const TABLE: &str = "filter";

/// Adds the chain, the jump to it and the pod's rules to `batch` (the
/// caller holds the [`NetnsLock`](crate::iptables::NetnsLock)), replacing
/// the rules of an earlier ADD of the same attachment.
pub fn plan(
    network: &str,
    container_id: &str,
    bridge: &str,
    ips: &[Ipv4Addr],
    batch: &mut Batch,
) -> Result<()> {
    let listing = run(Family::V4, TABLE, &["-S"])?;
    let comment = comment(network, container_id);
    if !listing.lines().any(|l| l == format!("-N {CHAIN}")) {
        // Declaring an existing chain would flush the other pods' rules; the
        // lock keeps another lanbridge from creating it meanwhile.
        batch.line(TABLE, format!(":{CHAIN} - [0:0]"));
    }
    if !listing
        .lines()
        .any(|l| l == format!("-A FORWARD -j {CHAIN}"))
    {
        // First in FORWARD, so a DROP policy or an earlier REJECT cannot hide it.
        batch.line(TABLE, format!("-I FORWARD 1 -j {CHAIN}"));
    }
    for rule in listing
        .lines()
        .filter(|l| l.starts_with(&format!("-A {CHAIN} ")) && mentions(l, &comment))
    {
        batch.line(TABLE, deletion(rule));
    }
    for rule in pod_rules(bridge, ips, &comment) {
        batch.line(TABLE, format!("-A {CHAIN} {rule}"));
    }
    Ok(())
}

/// The pod's rules as ADD writes them (`-A`/`-D` arguments after the chain).
fn pod_rules(bridge: &str, ips: &[Ipv4Addr], comment: &str) -> Vec<String> {
    let mut v = Vec::new();
    for ip in ips {
        for (dir, addr) in [("-i", "-s"), ("-o", "-d")] {
            v.push(format!(
                "{dir} {bridge} {addr} {ip}/32 -m comment --comment {comment} -j ACCEPT"
            ));
        }
    }
    v
}

/// Adds the deletion of exactly the rules ADD wrote for `ips` on `bridge`
/// (no read; the restore fails if one is missing).
pub fn teardown_exact(
    network: &str,
    container_id: &str,
    bridge: &str,
    ips: &[Ipv4Addr],
    batch: &mut Batch,
) {
    for rule in pod_rules(bridge, ips, &comment(network, container_id)) {
        batch.line(TABLE, format!("-D {CHAIN} {rule}"));
    }
}

/// Adds the deletion of the rules `ours` picks and, when no other rule is
/// left, of the chain and its jump from FORWARD.
pub fn network_removal(ours: &dyn Fn(&str) -> bool, batch: &mut Batch) {
    let all = rules(Family::V4, TABLE, CHAIN);
    for rule in all.iter().filter(|r| ours(r)) {
        batch.line(TABLE, deletion(rule));
    }
    let chain_exists = run(Family::V4, TABLE, &["-S", CHAIN]).is_ok();
    if chain_exists && all.iter().all(|r| ours(r)) {
        for jump in rules(Family::V4, TABLE, "FORWARD") {
            if mentions(&jump, CHAIN) {
                batch.line(TABLE, deletion(&jump));
            }
        }
        batch.line(TABLE, format!("-X {CHAIN}"));
    }
}

/// Adds the deletion of the attachment's rules to `batch` (the caller holds
/// the lock); the chain stays for the other pods.
pub fn teardown(network: &str, container_id: &str, batch: &mut Batch) {
    let comment = comment(network, container_id);
    for rule in rules(Family::V4, TABLE, CHAIN) {
        if mentions(&rule, &comment) {
            batch.line(TABLE, deletion(&rule));
        }
    }
}

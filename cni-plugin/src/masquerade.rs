//! `ipMasq`: one nat chain per attachment, jumped to from POSTROUTING for the
//! attachment's addresses. Rules carry a space-free comment naming the
//! network and container, so DEL and GC remove exactly what ADD created.

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::iptables::{comment, deletion, mentions, rules, run, Batch, Family};

const TABLE: &str = "nat";

/// The chain of one attachment (`LB-` + 20 hex: well under iptables' 28).
pub fn chain_name(network: &str, container_id: &str) -> String {
    let digest = Sha256::digest(format!("{network}/{container_id}"));
    format!("LB-{}", &hex::encode(digest)[..20].to_uppercase())
}

fn multicast(family: Family) -> &'static str {
    match family {
        Family::V4 => "224.0.0.0/4",
        Family::V6 => "ff00::/8",
    }
}

/// The networks of one family that masquerade looks at.
pub struct Nets<'a> {
    /// The attachment's addresses (with their prefixes).
    pub own: &'a [IpNet],
    /// `clusterCidrs`: other nodes' pods see the pod's own address.
    pub cluster: &'a [IpNet],
}

/// Adds to `batch` (the caller holds the
/// [`NetnsLock`](crate::iptables::NetnsLock)) the chain masquerading traffic
/// from `nets.own` that leaves their subnets and the cluster, and the
/// POSTROUTING jumps to it; an earlier ADD's chain and jumps are replaced.
pub fn plan(network: &str, container_id: &str, family: Family, nets: &Nets, batch: &mut Batch) {
    let chain = chain_name(network, container_id);
    let comment = comment(network, container_id);
    // Creates the chain, or empties the one an earlier ADD left.
    batch.line(TABLE, format!(":{chain} - [0:0]"));
    remove_jumps(family, &chain, batch);
    let cluster = family.select(nets.cluster);
    let excluded = nets.own.iter().chain(&cluster).map(IpNet::trunc);
    for net in excluded {
        let dst = net.to_string();
        let rule = [
            "-d",
            &dst,
            "-j",
            "ACCEPT",
            "-m",
            "comment",
            "--comment",
            &comment,
        ];
        batch.append(TABLE, &chain, &rule);
    }
    let rule = [
        "!",
        "-d",
        multicast(family),
        "-j",
        "MASQUERADE",
        "-m",
        "comment",
        "--comment",
        &comment,
    ];
    batch.append(TABLE, &chain, &rule);
    for jump in jumps(nets.own, &chain, &comment) {
        batch.line(TABLE, format!("-A POSTROUTING {jump}"));
    }
}

/// POSTROUTING's jumps to the attachment's chain, as ADD writes them.
fn jumps(own: &[IpNet], chain: &str, comment: &str) -> Vec<String> {
    own.iter()
        .map(|n| format!("-s {} -j {chain} -m comment --comment {comment}", n.addr()))
        .collect()
}

/// Adds the removal of exactly the jumps and chain ADD wrote for `own`
/// (no read; the restore fails if one is missing).
pub fn teardown_exact(network: &str, container_id: &str, own: &[IpNet], batch: &mut Batch) {
    let chain = chain_name(network, container_id);
    for jump in jumps(own, &chain, &comment(network, container_id)) {
        batch.line(TABLE, format!("-D POSTROUTING {jump}"));
    }
    batch.line(TABLE, format!("-F {chain}"));
    batch.line(TABLE, format!("-X {chain}"));
}

/// Deletions of POSTROUTING's jumps to `chain`.
fn remove_jumps(family: Family, chain: &str, batch: &mut Batch) {
    for rule in rules(family, TABLE, "POSTROUTING") {
        if mentions(&rule, chain) {
            batch.line(TABLE, deletion(&rule));
        }
    }
}

/// Adds the removal of the attachment's POSTROUTING jumps and chain to
/// `batch` (the caller holds the lock); missing ones are fine.
pub fn teardown(network: &str, container_id: &str, family: Family, batch: &mut Batch) {
    let chain = chain_name(network, container_id);
    remove_jumps(family, &chain, batch);
    if run(family, TABLE, &["-S", &chain]).is_ok() {
        batch.line(TABLE, format!("-F {chain}"));
        batch.line(TABLE, format!("-X {chain}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_names_are_stable_and_short() {
        let a = super::chain_name("net", "c1");
        assert_eq!(a, super::chain_name("net", "c1"));
        assert_ne!(a, super::chain_name("net", "c2"));
        assert!(a.len() <= 28 && a.starts_with("LB-"));
    }
}

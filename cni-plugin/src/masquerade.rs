//! `ipMasq`: one nat chain per attachment, jumped to from POSTROUTING for the
//! attachment's addresses. Rules carry a space-free comment naming the
//! network and container, so DEL and GC remove exactly what ADD created.

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::cni::Result;
use crate::iptables::{comment, delete_rules_with, ensure_chain, ensure_rule, run, Family};

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

/// Masquerades traffic from `ips` leaving their own subnets and the
/// `cluster` CIDRs (`clusterCidrs`: other nodes' pods see the pod's own
/// address). Idempotent.
pub fn setup(network: &str, container_id: &str, ips: &[IpNet], cluster: &[IpNet]) -> Result<()> {
    let chain = chain_name(network, container_id);
    let comment = comment(network, container_id);
    for family in [Family::V4, Family::V6] {
        let mine: Vec<&IpNet> = ips.iter().filter(|n| Family::of(n) == family).collect();
        if mine.is_empty() {
            continue;
        }
        ensure_chain(family, TABLE, &chain)?;
        run(family, TABLE, &["-F", &chain])?;
        let excluded = mine
            .iter()
            .copied()
            .chain(cluster.iter().filter(|n| Family::of(n) == family))
            .map(IpNet::trunc);
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
            run(family, TABLE, &[&["-A", &chain], &rule[..]].concat())?;
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
        run(family, TABLE, &[&["-A", &chain], &rule[..]].concat())?;
        for net in &mine {
            let src = net.addr().to_string();
            let rule = [
                "-s",
                &src,
                "-j",
                &chain,
                "-m",
                "comment",
                "--comment",
                &comment,
            ];
            ensure_rule(family, TABLE, "POSTROUTING", &rule)?;
        }
    }
    Ok(())
}

/// Removes the attachment's POSTROUTING jumps and its chain; missing ones are fine.
pub fn teardown(network: &str, container_id: &str) -> Result<()> {
    let chain = chain_name(network, container_id);
    for family in [Family::V4, Family::V6] {
        delete_rules_with(family, TABLE, "POSTROUTING", &chain)?;
        if run(family, TABLE, &["-S", &chain]).is_ok() {
            run(family, TABLE, &["-F", &chain])?;
            run(family, TABLE, &["-X", &chain])?;
        }
    }
    Ok(())
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

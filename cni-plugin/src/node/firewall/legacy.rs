//! What an older build wrote per attachment, through iptables-nft: two
//! accepts in `LANBRIDGE-FWD` and a nat chain `LB-…` jumped to from
//! POSTROUTING, all commented `lanbridge:<network>:<container>`. An
//! upgraded node still has them for the pods it started; DEL and GC of
//! such a pod remove them, over netlink like the rest.

use super::forward::TABLE as FILTER;
use super::nft::{Batch, Family, Nft};
use crate::node::error::Result;
use crate::node::naming::{is_network_rule, legacy_masquerade_chain, rule_comment, FORWARD_CHAIN};

const NAT: &str = "nat";
const POSTROUTING: &str = "POSTROUTING";

/// Adds the removal of the attachment's old rules: a read of our FORWARD
/// chain (`routed`) and a chain lookup per family; what is missing is fine.
pub fn attachment_removal(
    nft: &mut Nft,
    network: &str,
    container_id: &str,
    routed: bool,
    batch: &mut Batch,
) -> Result<()> {
    let comment = rule_comment(network, container_id);
    if routed {
        for rule in nft.rules(Family::Ip, FILTER, FORWARD_CHAIN)? {
            if rule.comment.as_deref() == Some(&comment) {
                batch.delete_rule(Family::Ip, FILTER, FORWARD_CHAIN, &rule);
            }
        }
    }
    let chain = legacy_masquerade_chain(network, container_id);
    for family in [Family::Ip, Family::Ip6] {
        if nft.chain_exists(family, NAT, &chain)? {
            remove_chain(nft, family, &chain, batch)?;
        }
    }
    Ok(())
}

/// Adds the removal of a nat chain and POSTROUTING's jumps to it.
fn remove_chain(nft: &mut Nft, family: Family, chain: &str, batch: &mut Batch) -> Result<()> {
    for rule in nft.rules(family, NAT, POSTROUTING)? {
        if rule.target.as_deref() == Some(chain) {
            batch.delete_rule(family, NAT, POSTROUTING, &rule);
        }
    }
    batch.flush_chain(family, NAT, chain);
    batch.delete_chain(family, NAT, chain);
    Ok(())
}

/// Adds the removal of every old nat chain of the network (the old FORWARD
/// accepts go with the network's own: [`super::forward::network_removal`]).
pub fn network_removal(nft: &mut Nft, network: &str, batch: &mut Batch) -> Result<()> {
    for family in [Family::Ip, Family::Ip6] {
        let mut chains: Vec<String> = Vec::new();
        for rule in nft.rules(family, NAT, POSTROUTING)? {
            let ours = rule
                .comment
                .as_deref()
                .is_some_and(|c| is_network_rule(c, network));
            match rule.target {
                Some(t) if ours && t.starts_with("LB-") && !chains.contains(&t) => chains.push(t),
                _ => {}
            }
        }
        for chain in chains {
            remove_chain(nft, family, &chain, batch)?;
        }
    }
    Ok(())
}

//! The host stack forwards a routed network's traffic (subnet mode with a
//! gateway; in lan mode what the fast path leaves to it: service and hostPort
//! NAT, or everything with `fastPath` off) even under `iptables -P FORWARD
//! DROP` (Docker's default). An accept in a table of our own could not
//! override that drop, so the accepts live in iptables' own `ip filter`
//! table: a chain of ours jumped to first from FORWARD, holding two rules
//! per network (in on the bridge, out on the bridge). What a pod may send
//! is the source guard's business; nothing per pod is written here.

use netlink_packet_netfilter::nftables::InetHookNumber;

use super::nft::{expr, Batch, Family, Nft};
use crate::node::error::Result;
use crate::node::naming::{is_network_rule, network_rule_comment, FORWARD_CHAIN};

/// iptables-nft's table and base chain (created as iptables would, should
/// iptables not have run yet: a later `iptables -P FORWARD DROP` then
/// leaves our jump in place).
pub const TABLE: &str = "filter";
const FORWARD: &str = "FORWARD";

/// Adds to `batch` what is missing of the network's accepts on `bridge`:
/// reads our chain and FORWARD, nothing else.
pub fn plan(nft: &mut Nft, network: &str, bridge: &str, batch: &mut Batch) -> Result<()> {
    let comment = network_rule_comment(network, bridge);
    let ours = nft.rules(Family::Ip, TABLE, FORWARD_CHAIN)?;
    let present = ours
        .iter()
        .filter(|r| r.comment.as_deref() == Some(&comment))
        .count();
    let jumped = nft
        .rules(Family::Ip, TABLE, FORWARD)?
        .iter()
        .any(|r| r.target.as_deref() == Some(FORWARD_CHAIN));
    if present == 2 && jumped {
        return Ok(());
    }
    batch.add_table(Family::Ip, TABLE);
    batch.add_base_chain(
        Family::Ip,
        TABLE,
        FORWARD,
        "filter",
        InetHookNumber::Forward,
        0,
    );
    batch.add_chain(Family::Ip, TABLE, FORWARD_CHAIN);
    if !jumped {
        // First in FORWARD, so a DROP policy or an earlier REJECT cannot hide it.
        let jump = vec![expr::jump(FORWARD_CHAIN)];
        batch.add_rule(Family::Ip, TABLE, FORWARD, jump, "lanbridge", true);
    }
    if present != 2 {
        // The network's rules are rewritten whole: an older bridge name's,
        // and an older build's per-pod accepts, which these cover.
        for rule in &ours {
            if rule
                .comment
                .as_deref()
                .is_some_and(|c| is_network_rule(c, network))
            {
                batch.delete_rule(Family::Ip, TABLE, FORWARD_CHAIN, rule);
            }
        }
        for mut rule in [expr::iifname(bridge), expr::oifname(bridge)] {
            rule.extend([expr::counter(), expr::accept()]);
            batch.add_rule(Family::Ip, TABLE, FORWARD_CHAIN, rule, &comment, false);
        }
    }
    Ok(())
}

/// Adds the removal of the network's accepts (and an older build's per-pod
/// ones) and, once no other network's rule is left, of our chain and the
/// jump to it.
pub fn network_removal(nft: &mut Nft, network: &str, batch: &mut Batch) -> Result<()> {
    let ours = nft.rules(Family::Ip, TABLE, FORWARD_CHAIN)?;
    let mut left = 0;
    for rule in &ours {
        match &rule.comment {
            Some(c) if is_network_rule(c, network) => {
                batch.delete_rule(Family::Ip, TABLE, FORWARD_CHAIN, rule)
            }
            _ => left += 1,
        }
    }
    let exists = !ours.is_empty() || nft.chain_exists(Family::Ip, TABLE, FORWARD_CHAIN)?;
    if exists && left == 0 {
        for jump in nft.rules(Family::Ip, TABLE, FORWARD)? {
            if jump.target.as_deref() == Some(FORWARD_CHAIN) {
                batch.delete_rule(Family::Ip, TABLE, FORWARD, &jump);
            }
        }
        batch.delete_chain(Family::Ip, TABLE, FORWARD_CHAIN);
    }
    Ok(())
}

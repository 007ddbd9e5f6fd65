//! `ipMasq`, per network and subnet, in lanbridge's own `ip`/`ip6` tables:
//! traffic from the subnet that leaves it, the `clusterCidrs` and multicast
//! is masqueraded (the reference plugin's rule, for the subnet instead of
//! each pod's address). A jump from our postrouting chain per subnet leads
//! to a chain named by its content, so a present jump is a correct one.

use ipnet::IpNet;
use netlink_packet_netfilter::nftables::InetHookNumber;

use super::nft::{expr, Batch, Family, Nft};
use crate::node::error::Result;
use crate::node::naming::{is_network_rule, masquerade_chain, network_rule_comment, NFT_TABLE};

const POSTROUTING: &str = "postrouting";
/// nft's `srcnat`, as iptables' nat POSTROUTING.
const SRCNAT: i32 = 100;

fn multicast(family: Family) -> IpNet {
    match family {
        Family::Ip6 => "ff00::/8".parse().expect("valid"),
        _ => "224.0.0.0/4".parse().expect("valid"),
    }
}

/// Adds to `batch` what is missing for the subnets of `own` (the
/// attachment's addresses with their prefixes): one read of our
/// postrouting chain per family.
pub fn plan(
    nft: &mut Nft,
    network: &str,
    own: &[IpNet],
    cluster: &[IpNet],
    batch: &mut Batch,
) -> Result<()> {
    for family in [Family::Ip, Family::Ip6] {
        let mut subnets: Vec<IpNet> = own
            .iter()
            .filter(|n| Family::of(n) == family)
            .map(IpNet::trunc)
            .collect();
        subnets.sort();
        subnets.dedup();
        if subnets.is_empty() {
            continue;
        }
        let cluster: Vec<IpNet> = cluster
            .iter()
            .filter(|n| Family::of(n) == family)
            .map(IpNet::trunc)
            .collect();
        let names: Vec<String> = cluster.iter().map(IpNet::to_string).collect();
        let jumps = nft.rules(family, NFT_TABLE, POSTROUTING)?;
        let mut table_added = false;
        for subnet in subnets {
            let comment = network_rule_comment(network, &subnet.to_string());
            let chain = masquerade_chain(network, &subnet.to_string(), &names);
            let mine: Vec<_> = jumps
                .iter()
                .filter(|r| r.comment.as_deref() == Some(&comment))
                .collect();
            if mine.len() == 1 && mine[0].target.as_deref() == Some(&chain) {
                continue;
            }
            if !table_added {
                batch.add_table(family, NFT_TABLE);
                let hook = InetHookNumber::PostRouting;
                batch.add_base_chain(family, NFT_TABLE, POSTROUTING, "nat", hook, SRCNAT);
                table_added = true;
            }
            // Another configuration's chain for the subnet goes.
            for old in mine {
                batch.delete_rule(family, NFT_TABLE, POSTROUTING, old);
                if let Some(target) = old.target.as_deref().filter(|t| *t != chain) {
                    batch.flush_chain(family, NFT_TABLE, target);
                    batch.delete_chain(family, NFT_TABLE, target);
                }
            }
            batch.add_chain(family, NFT_TABLE, &chain);
            batch.flush_chain(family, NFT_TABLE, &chain);
            for net in [subnet].iter().chain(&cluster).chain([&multicast(family)]) {
                let mut rule = expr::addr_in(net, false, true);
                rule.push(expr::accept());
                batch.add_rule(family, NFT_TABLE, &chain, rule, &comment, false);
            }
            let rule = vec![expr::masquerade()];
            batch.add_rule(family, NFT_TABLE, &chain, rule, &comment, false);
            let mut jump = expr::addr_in(&subnet, true, true);
            jump.push(expr::jump(&chain));
            batch.add_rule(family, NFT_TABLE, POSTROUTING, jump, &comment, false);
        }
    }
    Ok(())
}

/// Adds the removal of the network's jumps and chains, and of our table
/// once no other network's jump is left in it.
pub fn network_removal(nft: &mut Nft, network: &str, batch: &mut Batch) -> Result<()> {
    for family in [Family::Ip, Family::Ip6] {
        let jumps = nft.rules(family, NFT_TABLE, POSTROUTING)?;
        let (mine, others): (Vec<_>, Vec<_>) = jumps.iter().partition(|r| {
            r.comment
                .as_deref()
                .is_some_and(|c| is_network_rule(c, network))
        });
        if mine.is_empty() {
            continue;
        }
        if others.is_empty() {
            batch.delete_table(family, NFT_TABLE);
            continue;
        }
        for jump in mine {
            batch.delete_rule(family, NFT_TABLE, POSTROUTING, jump);
            if let Some(target) = &jump.target {
                batch.flush_chain(family, NFT_TABLE, target);
                batch.delete_chain(family, NFT_TABLE, target);
            }
        }
    }
    Ok(())
}

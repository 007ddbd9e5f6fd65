//! `macspoofchk`: frames entering the bridge from a pod's port must carry the
//! pod's MAC. As in the reference plugin an nftables bridge-family rule per
//! port, in lanbridge's own table: a chain per port, reached through one
//! verdict map keyed by the port's name, so ADD and DEL touch the port's
//! element and chain only and never read what the other ports have.

use netlink_packet_netfilter::nftables::InetHookNumber;

use super::nft::{expr, Batch, Family, Nft};
use crate::node::error::Result;
use crate::node::mac::Mac;
use crate::node::naming::{mac_spoof_chain, NFT_TABLE};

const PREROUTING: &str = "prerouting";
const PORTS: &str = "ports";
const COMMENT: &str = "lanbridge macspoofchk";

/// Drops frames from `host_veth` whose source MAC is not `mac`.
pub fn setup(nft: &mut Nft, host_veth: &str, mac: Mac) -> Result<Batch> {
    let fam = Family::Bridge;
    let chain = mac_spoof_chain(host_veth);
    let mut b = Batch::default();
    let dispatch = nft.rules(fam, NFT_TABLE, PREROUTING)?;
    b.add_table(fam, NFT_TABLE);
    b.add_base_chain(
        fam,
        NFT_TABLE,
        PREROUTING,
        "filter",
        InetHookNumber::PreRouting,
        -300,
    );
    b.add_ifname_vmap(fam, NFT_TABLE, PORTS);
    if !dispatch
        .iter()
        .any(|r| r.comment.as_deref() == Some(COMMENT))
    {
        b.add_rule(
            fam,
            NFT_TABLE,
            PREROUTING,
            expr::iifname_vmap(PORTS),
            COMMENT,
            false,
        );
    }
    b.add_chain(fam, NFT_TABLE, &chain);
    b.flush_chain(fam, NFT_TABLE, &chain);
    let mut rule = expr::ether_saddr_not(mac.as_ref());
    rule.push(expr::drop());
    b.add_rule(fam, NFT_TABLE, &chain, rule, COMMENT, false);
    b.add_jump_element(fam, NFT_TABLE, PORTS, host_veth, &chain);
    Ok(b)
}

/// The removal of the port's element and chain (the map's element first:
/// it holds the chain).
pub fn teardown(host_veth: &str) -> [Batch; 2] {
    let mut element = Batch::default();
    element.delete_element(Family::Bridge, NFT_TABLE, PORTS, host_veth);
    let mut chain = Batch::default();
    chain.delete_chain(Family::Bridge, NFT_TABLE, &mac_spoof_chain(host_veth));
    [element, chain]
}

/// The removal of our bridge table once no port is left in it.
pub fn table_removal(nft: &mut Nft) -> Result<Batch> {
    let mut b = Batch::default();
    let fam = Family::Bridge;
    if nft.chain_exists(fam, NFT_TABLE, PREROUTING)?
        && nft.element_count(fam, NFT_TABLE, PORTS)? == 0
    {
        b.delete_table(fam, NFT_TABLE);
    }
    Ok(b)
}

//! What the node does for a leased address, taken back when the lease ends
//! and put in place again (or moved) when a lease comes back: the address
//! and routes in the pod, the /32 route on the bridge (and with it proxy ARP
//! on the LAN) and the endpoint's IPs in the datapath maps (the FORWARD
//! accepts are the network's, not the address's). The same functions as
//! ADD's do the work.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::error::{AgentError, Result};
use crate::datapath::Datapath;
use crate::dhcp::protocol::{LeaseRecord, NodeSide};
use crate::dhcp::Lease;
use crate::node::gone::first_error;
use crate::node::netlink::Netlink;
use crate::node::netns::NetNs;

/// Takes everything done for `record.lease` back (the pod's part too when
/// `with_pod`; not when the pod is going away). Every step is tried even
/// when one fails; each tolerates its part being gone already.
pub async fn withdraw(record: &LeaseRecord, with_pod: bool) -> Result<()> {
    let address = record.lease.address;
    let mut errors = Vec::new();
    if with_pod {
        if let Err(e) = pod_address(record, None).await {
            errors.push(e);
        }
    }
    if let Some(node) = &record.holder.node {
        errors.extend(node_side(record, node, Some(address), None).await);
    }
    first_error(errors)
}

/// Puts the pod and the node on `lease` (after [`withdraw`] of the old one,
/// or moving from `record.lease` when the address changed).
pub async fn restore(record: &LeaseRecord, lease: &Lease) -> Result<()> {
    let old = (record.lease.address != lease.address).then_some(record.lease.address);
    let mut errors = Vec::new();
    if let Err(e) = pod_address(record, Some(lease)).await {
        errors.push(e);
    }
    if let Some(node) = &record.holder.node {
        errors.extend(node_side(record, node, old, Some(lease.address)).await);
    }
    first_error(errors)
}

/// Replaces the pod's address of `record.lease` with `lease`'s (none: removed).
async fn pod_address(record: &LeaseRecord, lease: Option<&Lease>) -> Result<()> {
    let ns = record.holder.open_netns()?;
    let pod = Netlink::open(&ns)?;
    let link = pod.existing_link(&record.holder.key.ifname).await?;
    let old = IpNet::V4(record.lease.network());
    if lease.is_none_or(|l| IpNet::V4(l.network()) != old) {
        pod.del_address(link.index, old).await?;
    }
    let Some(lease) = lease else { return Ok(()) };
    pod.add_address(link.index, IpNet::V4(lease.network()), true)
        .await?;
    // Routes through the removed address went with it; DHCP routes without
    // a router are on-link, as ADD sets them.
    for route in lease.routes() {
        pod.add_route(
            IpNet::V4(route.destination),
            route.gateway.map(IpAddr::V4),
            link.index,
            record.holder.route_priority,
        )
        .await?;
    }
    Ok(())
}

/// Moves the node's part from `old` to `new` (either may be none).
async fn node_side(
    record: &LeaseRecord,
    node: &NodeSide,
    old: Option<Ipv4Addr>,
    new: Option<Ipv4Addr>,
) -> Vec<AgentError> {
    let mut errors = Vec::new();
    let new_ips: Vec<Ipv4Addr> = new.into_iter().collect();
    // The maps first: the guard stops the pod's use of a lost address at once.
    match Datapath::existing(&node.pin_root, &record.holder.key.network) {
        Ok(Some(mut dp)) => {
            if let Err(e) = dp.set_port_ips(node.port_ifindex, &new_ips) {
                errors.push(e.into());
            }
        }
        Ok(None) => {}
        Err(e) => errors.push(e.into()),
    }
    if let Some(src) = node.route_src {
        if let Err(e) = host_routes(node, old, new, src).await {
            errors.push(e);
        }
    }
    errors
}

/// lan mode's /32 on the bridge: proxy ARP answers the LAN for exactly the
/// addresses that have one.
async fn host_routes(
    node: &NodeSide,
    old: Option<Ipv4Addr>,
    new: Option<Ipv4Addr>,
    src: Ipv4Addr,
) -> Result<()> {
    let nl = Netlink::open(&NetNs::current()?)?;
    let Some(bridge) = nl.link(&node.bridge).await? else {
        return Ok(());
    };
    if let Some(old) = old {
        nl.del_host_route(old, bridge.index).await?;
    }
    if let Some(new) = new {
        nl.add_host_route(new, bridge.index, src).await?;
    }
    Ok(())
}

//! The node side of lan mode: pods hold LAN addresses while the uplink stays
//! out of the bridge, so the node routes for them.
//!
//! - the bridge gets a link-local /32: proxy ARP needs an address on the
//!   interface when rp_filter is on, and a bridge losing its last address
//!   would flush every pod route;
//! - proxy ARP on the bridge (the node answers pods for the LAN) and on the
//!   uplink (the node answers the LAN for pods), without the default
//!   300–470 ms proxy delay;
//! - forwarding enabled on those two interfaces only, not host-wide;
//! - a /32 route per pod via the bridge, with the uplink's address as source.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use crate::cni::{Error, Result};
use crate::node::netlink::{LinkInfo, Netlink};
use crate::node::netns::NetNs;
use crate::node::sysctl;

/// The bridge's link-local address in lan mode.
pub const BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

pub struct Uplink {
    pub link: LinkInfo,
    pub address: Ipv4Addr,
    /// Sysctls this call changed, with their old values.
    pub changed: Vec<(String, String)>,
}

/// Prepares bridge and uplink; idempotent, so every ADD may run it.
pub async fn prepare(
    node: &Netlink,
    node_ns: &NetNs,
    bridge: &LinkInfo,
    uplink: &str,
) -> Result<Uplink> {
    let link = node
        .link(uplink)
        .await?
        .ok_or_else(|| Error::config("uplink", format!("no interface {uplink:?} in the node")))?;
    if link.master == Some(bridge.index) {
        return Err(Error::config(
            "uplink",
            format!(
                "{uplink} is enslaved to {}: that is bridged mode, drop \"uplink\"",
                bridge.name
            ),
        ));
    }
    let address = node
        .addresses(link.index)
        .await?
        .into_iter()
        .find_map(|n| match n {
            IpNet::V4(v4) => Some(v4.addr()),
            IpNet::V6(_) => None,
        })
        .ok_or_else(|| Error::config("uplink", format!("{uplink} has no IPv4 address")))?;
    let link_local = IpNet::new(BRIDGE_ADDRESS.into(), 32).expect("valid prefix");
    node.add_address(bridge.index, link_local, true).await?;
    let settings: Vec<[&str; 5]> = [bridge.name.as_str(), uplink]
        .into_iter()
        .flat_map(|dev| {
            [
                ["net", "ipv4", "conf", dev, "proxy_arp"],
                ["net", "ipv4", "neigh", dev, "proxy_delay"],
                ["net", "ipv4", "conf", dev, "forwarding"],
            ]
        })
        .collect();
    let values = ["1", "0", "1"];
    let settings: Vec<(&[&str], &str)> = settings
        .iter()
        .zip(values.iter().cycle())
        .map(|(c, v)| (&c[..], *v))
        .collect();
    let changed = sysctl::change(node_ns, &settings)?;
    Ok(Uplink {
        link,
        address,
        changed,
    })
}

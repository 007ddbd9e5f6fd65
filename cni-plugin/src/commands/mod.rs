//! The CNI commands. Each module is thin: it sequences plumbing, IPAM and
//! state; the shared pieces (attachment context, teardown) live here.

pub mod add;
pub mod check;
pub mod del;
pub mod errors;
pub mod gc;
pub mod status;
pub mod version;

pub mod fault;
pub mod state;
mod steps;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::cni::{CniEnv, Error, Result};
use crate::commands::state::{Record, StateDir};
use crate::config::{NetConf, DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR};
use crate::datapath::{ips_of, Datapath};
use crate::ipam::Ipam;
use crate::node::firewall;
use crate::node::naming;
use crate::node::netlink::{LinkInfo, Netlink};
use crate::node::netns::NetNs;
use crate::node::reaper;

/// The default directories scoped per network namespace that hold a
/// namespace's pins, records and leases ([`crate::node::scope::claim`]).
pub const SCOPED_DEFAULTS: [&str; 2] = [DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR];

/// One attachment (container + interface) on one network, with the node's
/// netlink socket and the IPAM and state the config selects.
pub struct Attachment<'a> {
    pub conf: &'a NetConf,
    pub env: &'a CniEnv,
    pub node_ns: NetNs,
    pub node: Netlink,
    pub ipam: Option<Ipam>,
    pub state: StateDir,
}

impl<'a> Attachment<'a> {
    pub fn new(conf: &'a NetConf, env: &'a CniEnv) -> Result<Attachment<'a>> {
        let node_ns = NetNs::current()?;
        let node = Netlink::open(&node_ns)?;
        Ok(Attachment {
            conf,
            env,
            node,
            node_ns,
            ipam: Ipam::from_conf(conf, env)?,
            state: StateDir::new(&conf.state_dir, &conf.name),
        })
    }

    pub fn netns_path(&self) -> Result<&Path> {
        self.env.netns.as_deref().ok_or(Error::InvalidEnv {
            var: "CNI_NETNS",
            reason: "required".into(),
        })
    }
}

/// Removes everything of one attachment except its IPAM allocation, going on
/// past failures; returns them all.
pub struct Cleanup<'a> {
    pub node: &'a Netlink,
    pub state: &'a StateDir,
    pub datapath: Option<Datapath>,
    pub network: &'a str,
    pub bridge: &'a str,
    /// lan mode: pods have /32 routes on the bridge.
    pub lan: bool,
    /// Pods have FORWARD accept rules.
    pub routed: bool,
    /// Retire the port's pair (down, renamed, its names free at once) and
    /// leave its destruction to [`reaper`] (DEL, GC) instead of destroying
    /// it before returning.
    pub defer: bool,
}

impl Cleanup<'_> {
    pub fn new<'a>(att: &'a Attachment<'_>) -> Result<Cleanup<'a>> {
        Ok(Cleanup {
            node: &att.node,
            state: &att.state,
            datapath: Datapath::existing(&att.conf.pin_root, &att.conf.name)?,
            network: &att.conf.name,
            bridge: &att.conf.bridge,
            lan: att.conf.uplink.is_some(),
            routed: add::routed(att.conf),
            defer: false,
        })
    }

    /// `record` is the attachment's, when there is one (ADD completed);
    /// `pod` the pod's namespace when DEL still has it. Without a record the
    /// deterministic names lead the way: the port's link gives its ifindex,
    /// its endpoint the pod's addresses, and ports whose interface is gone
    /// are swept.
    pub async fn attachment(
        &mut self,
        container_id: &str,
        ifname: &str,
        record: Option<&Record>,
        pod: Option<&NetNs>,
    ) -> Vec<Error> {
        let host = naming::host_veth(container_id, ifname);
        let mut errors = Vec::new();
        let live = self.node.link(&host).await.unwrap_or_else(|e| {
            errors.push(e.into());
            None
        });
        let host_ifindex = record
            .map(|r| r.host_ifindex)
            .or(live.as_ref().map(|l| l.index));
        let mut ips: Vec<Ipv4Addr> = record
            .map(|r| r.ips.iter().filter_map(|n| v4(n.addr())).collect())
            .unwrap_or_default();
        // The port's endpoint holds the pod's current addresses: the daemon
        // moves a lease that comes back with another address, and the
        // record keeps the first one. Only while the port is still this
        // attachment's (its ifindex not reused by another pod's).
        let ours = match record {
            Some(r) if self.lan => live.as_ref().is_some_and(|l| l.index == r.host_ifindex),
            Some(_) => false,
            None => true,
        };
        if let (true, Some(index), Some(dp)) = (ours, host_ifindex, &self.datapath) {
            match dp.port_ips(index) {
                Ok(current) => {
                    for ip in current {
                        if !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
        // The pod's interface name is free at once for a re-ADD; the pod end
        // goes with the pair.
        if let Some(pod) = pod {
            if let Err(e) = retire_pod_link(pod, ifname).await {
                errors.push(e);
            }
        }
        fault::del_step("pod link");
        // Down first: the pod is cut off before anything else goes.
        let retired = match &live {
            Some(link) if self.defer => {
                let tombstone = naming::tombstone_link(link.index);
                match self.node.retire(link.index, &tombstone).await {
                    Ok(true) => Some((link.index, tombstone)),
                    Ok(false) => None,
                    Err(e) => {
                        errors.push(e.into());
                        None
                    }
                }
            }
            _ => None,
        };
        fault::del_step("retire");
        let bridge = record.map_or(self.bridge, |r| &r.bridge);
        if let Err(e) = self.remove_host_routes(bridge, &ips).await {
            errors.push(e);
        }
        fault::del_step("routes");
        let mut pins = Vec::new();
        if let Some(dp) = &mut self.datapath {
            let removed = match &retired {
                Some((index, _)) => dp.retire_port(&host, *index).map(|p| pins = p),
                None => dp.remove_port(&host, host_ifindex),
            };
            if let Err(e) = removed {
                errors.push(e.into());
            }
        }
        if let Some((_, tombstone)) = &retired {
            reaper::defer(tombstone, pins);
        }
        fault::del_step("datapath");
        // The nft bridge table: only when ADD set it up, or nobody knows.
        if record.is_none_or(|r| r.mac_spoof_check) {
            if let Err(e) = firewall::mac_spoof_teardown(&host) {
                errors.push(e.into());
            }
        }
        // Not retired (not asked to, or the kernel refused): destroyed now.
        if retired.is_none() {
            if let Err(e) = self.node.delete_link(&host).await {
                errors.push(e.into());
            }
        }
        fault::del_step("host link");
        // Only an older build wrote netfilter rules per pod.
        if record.is_none_or(|r| r.pod_rules) {
            let masquerade = record.is_none_or(|r| r.masquerade);
            if let Err(e) =
                firewall::remove_attachment(self.network, container_id, self.routed, masquerade)
            {
                errors.push(e.into());
            }
        }
        fault::del_step("firewall");
        if record.is_none() {
            if let Err(e) = self.forget_vanished_ports().await {
                errors.push(e);
            }
        }
        if let Err(e) = self.state.remove(container_id, ifname) {
            errors.push(e);
        }
        fault::del_step("record");
        errors
    }

    /// Destroys the retired links a killed deleter left ([`reaper`]; not
    /// those this process owes) and unpins the links of retired ports whose
    /// device is gone; returns the node's links left.
    pub async fn sweep_retired(&mut self) -> Result<Vec<LinkInfo>> {
        let mut links = self.node.links().await?;
        let left = |l: &mut LinkInfo| naming::is_tombstone_link(&l.name) && !reaper::owes(&l.name);
        for gone in links.extract_if(.., left) {
            self.node.delete_link(&gone.name).await?;
        }
        if let Some(dp) = &self.datapath {
            dp.remove_tombstones(|index| {
                links
                    .iter()
                    .any(|l| l.index == index && naming::is_tombstone_link(&l.name))
            })?;
        }
        Ok(links)
    }

    /// lan mode's /32 routes to the pod.
    async fn remove_host_routes(&self, bridge: &str, ips: &[Ipv4Addr]) -> Result<()> {
        if !self.lan || ips.is_empty() {
            return Ok(());
        }
        let Some(bridge) = self.node.link(bridge).await? else {
            return Ok(());
        };
        for ip in ips {
            self.node.del_host_route(*ip, bridge.index).await?;
        }
        Ok(())
    }

    /// Link pins, map entries and lan-mode routes of ports whose interface
    /// no longer exists (a pod deleted without DEL, a crashed ADD).
    /// Also what a killed deleter left ([`Cleanup::sweep_retired`]).
    pub async fn forget_vanished_ports(&mut self) -> Result<()> {
        let links = self.sweep_retired().await?;
        let Some(dp) = &mut self.datapath else {
            return Ok(());
        };
        for ifname in dp.attached_interfaces() {
            if !links.iter().any(|l| l.name == ifname) {
                dp.remove_port(&ifname, None)?;
            }
        }
        let (live, vanished): (Vec<_>, Vec<_>) = dp
            .endpoints()?
            .into_iter()
            .partition(|(port, _)| links.iter().any(|l| l.index == *port));
        let mut routes = Vec::new();
        for (port, ep) in vanished {
            // A live pod may have been given the address since.
            let taken = |ip: &Ipv4Addr| live.iter().any(|(_, l)| ips_of(l).contains(ip));
            routes.extend(ips_of(&ep).into_iter().filter(|ip| !taken(ip)));
            dp.forget_port(port)?;
        }
        self.remove_host_routes(self.bridge, &routes).await
    }
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// Takes the pod's end of the pair out of service and frees its name.
async fn retire_pod_link(ns: &NetNs, ifname: &str) -> Result<()> {
    let pod = Netlink::open(ns)?;
    if let Some(link) = pod.link(ifname).await? {
        pod.retire(link.index, &naming::tombstone_link(link.index))
            .await?;
    }
    Ok(())
}

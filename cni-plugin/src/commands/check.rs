//! CHECK (0.4.0+): live state must still match `prevResult`.

use std::net::IpAddr;

use super::Attachment;
use crate::cni::{CniEnv, Error, Result, Version};
use crate::config::NetConf;
use crate::ipam::{Ipam, IpamError};
use crate::node::naming;
use crate::node::netlink::Netlink;
use crate::node::netns::NetNs;

pub async fn run(conf: &NetConf, env: &CniEnv) -> Result<()> {
    conf.version.require("CHECK", Version::V0_4_0)?;
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| Error::config("prevResult", "CHECK needs the result of ADD"))?;
    let att = Attachment::new(conf, env)?;
    let mismatch = |m: String| Err(Error::CheckMismatch(m));

    let pod_ns = NetNs::open(att.netns_path()?)?;
    let pod = Netlink::open(&pod_ns)?;
    let Some(link) = pod.link(&env.ifname).await? else {
        return mismatch(format!(
            "interface {} is missing from {}",
            env.ifname,
            pod_ns.path().display()
        ));
    };
    let ours = prev
        .interfaces
        .iter()
        .position(|i| i.name == env.ifname && !i.sandbox.is_empty());
    if let Some(iface) = ours.map(|i| &prev.interfaces[i]) {
        let live = link.mac.map(|m| m.to_string()).unwrap_or_default();
        if !iface.mac.is_empty() && !iface.mac.eq_ignore_ascii_case(&live) {
            return mismatch(format!(
                "{} has MAC {live}, prevResult says {}",
                env.ifname, iface.mac
            ));
        }
    }

    if let Some(Ipam::Dhcp(dhcp)) = &att.ipam {
        // A lost or moved lease explains a missing address better than the
        // address check below would.
        // Without the daemon the checks below still judge the pod.
        let status = match dhcp.status(conf, env).await {
            Err(IpamError::DaemonUnreachable { .. }) => None,
            other => other?,
        };
        if let Some(status) = status {
            let granted = IpAddr::V4(status.address);
            if status.lost() {
                return mismatch(format!("{}: {status}", env.ifname));
            }
            if !prev.ips.iter().any(|ip| ip.address.addr() == granted) {
                return mismatch(format!(
                    "{}: the lease moved to {status}; prevResult has another address",
                    env.ifname
                ));
            }
        }
    }
    let live = pod.addresses(link.index).await?;
    for ip in prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none() || ip.interface == ours)
    {
        if !live.contains(&ip.address) {
            return mismatch(format!(
                "{} does not have address {}",
                env.ifname, ip.address
            ));
        }
    }
    let routes = pod.routes().await?;
    for r in &prev.routes {
        if !routes
            .iter()
            .any(|l| l.dst == r.dst && (r.gw.is_none() || l.gw == r.gw))
        {
            return mismatch(format!("route to {} via {:?} is missing", r.dst, r.gw));
        }
    }

    check_host_side(&att.node, conf, env).await?;
    match &att.ipam {
        Some(Ipam::HostLocal(h)) => {
            let held = h.held(&conf.name, &env.container_id, &env.ifname)?;
            for ip in &prev.ips {
                if !held.contains(&ip.address.addr()) {
                    return mismatch(format!("{} is not allocated to this container", ip.address));
                }
            }
        }
        Some(Ipam::Delegate(d)) => d.check(conf).await?,
        Some(Ipam::Static(_) | Ipam::Dhcp(_)) | None => {}
    }
    Ok(())
}

async fn check_host_side(node: &Netlink, conf: &NetConf, env: &CniEnv) -> Result<()> {
    let host_name = naming::host_veth(&env.container_id, &env.ifname);
    let bridge = node.link(&conf.bridge).await?;
    let host = node.link(&host_name).await?;
    match (bridge, host) {
        (None, _) => Err(Error::CheckMismatch(format!(
            "bridge {} is missing",
            conf.bridge
        ))),
        (_, None) => Err(Error::CheckMismatch(format!(
            "host veth {host_name} is missing"
        ))),
        (Some(b), Some(h)) if h.master != Some(b.index) => Err(Error::CheckMismatch(format!(
            "host veth {host_name} is not attached to bridge {}",
            conf.bridge
        ))),
        _ => Ok(()),
    }
}

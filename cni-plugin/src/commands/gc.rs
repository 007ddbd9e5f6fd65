//! GC (1.1.0): remove what belongs to attachments not in
//! `cni.dev/valid-attachments`: plumbing, records, allocations.

use super::{first_error, Attachment, Cleanup};
use crate::cni::{CniEnv, Result, Version};
use crate::config::NetConf;
use crate::datapath::Datapath;
use crate::ipam::Ipam;
use crate::netlink::Netlink;

pub async fn run(conf: &NetConf, env: &CniEnv) -> Result<()> {
    conf.version.require("GC", Version::V1_1_0)?;
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let keep = |cid: &str, ifname: &str| {
        valid
            .iter()
            .any(|a| a.container_id == cid && a.ifname == ifname)
    };
    let att = Attachment::new(conf, env)?;
    let mut cleanup = Cleanup::new(&att)?;
    let mut errors = Vec::new();
    for record in att.state.list()? {
        if keep(&record.container_id, &record.ifname) {
            continue;
        }
        tracing::info!("GC: removing {} {}", record.container_id, record.ifname);
        // The lease goes back to the LAN's server before the state naming it.
        if let Some(Ipam::Dhcp(dhcp)) = &att.ipam {
            if let Err(e) = dhcp
                .release(conf, &record.container_id, &record.ifname)
                .await
            {
                errors.push(e);
            }
        }
        errors.extend(
            cleanup
                .attachment(&record.container_id, &record.ifname, Some(&record), None)
                .await,
        );
    }
    if let Some(dp) = &mut cleanup.datapath {
        if let Err(e) = forget_vanished_ports(&att.node, dp).await {
            errors.push(e);
        }
    }
    let ipam_gc = match &att.ipam {
        Some(Ipam::HostLocal(h)) => h.gc(&conf.name, keep).map(drop),
        Some(Ipam::Delegate(d)) => d.gc(conf).await,
        Some(Ipam::Static(_) | Ipam::Dhcp(_)) | None => Ok(()),
    };
    if let Err(e) = ipam_gc {
        errors.push(e);
    }
    first_error(errors)
}

/// Map entries and link pins of ports whose interface no longer exists
/// (e.g. a pod deleted without DEL).
async fn forget_vanished_ports(node: &Netlink, dp: &mut Datapath) -> Result<()> {
    let links = node.links().await?;
    for ifname in dp.attached_interfaces() {
        if !links.iter().any(|l| l.name == ifname) {
            dp.remove_port(&ifname, None)?;
        }
    }
    for (port, _) in dp.endpoints()? {
        if !links.iter().any(|l| l.index == port) {
            dp.forget_port(port)?;
        }
    }
    Ok(())
}

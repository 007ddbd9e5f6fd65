//! GC (1.1.0): remove what belongs to attachments not in
//! `cni.dev/valid-attachments`: plumbing, records, allocations.

use super::{Attachment, Cleanup};
use crate::cni::{CniEnv, Error, Result, Version};
use crate::config::NetConf;
use crate::ipam::Ipam;
use crate::node::gone::first_error;

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
    cleanup.defer = true;
    let mut errors = Vec::new();
    let (records, bad) = att.state.list()?;
    for bad in bad {
        match &bad.attachment {
            Some((cid, ifname)) if !keep(cid, ifname) => {
                tracing::warn!("GC: {}; removing {cid} {ifname} by its names", bad.error);
                errors.extend(release_lease(&att, cid, ifname).await);
                errors.extend(cleanup.attachment(cid, ifname, None, None).await);
            }
            _ => tracing::warn!("GC: skipping {}", bad.error),
        }
    }
    for record in records {
        if keep(&record.container_id, &record.ifname) {
            continue;
        }
        tracing::info!("GC: removing {} {}", record.container_id, record.ifname);
        errors.extend(release_lease(&att, &record.container_id, &record.ifname).await);
        errors.extend(
            cleanup
                .attachment(&record.container_id, &record.ifname, Some(&record), None)
                .await,
        );
    }
    if let Err(e) = cleanup.forget_vanished_ports().await {
        errors.push(e);
    }
    let ipam_gc = match &att.ipam {
        Some(Ipam::HostLocal(h)) => h.gc(&conf.name, keep).map(drop),
        Some(Ipam::Delegate(d)) => d.gc(conf).await,
        Some(Ipam::Static(_) | Ipam::Dhcp(_)) | None => Ok(()),
    };
    if let Err(e) = ipam_gc {
        errors.push(e.into());
    }
    first_error(errors)
}

/// The lease goes back to the LAN's server before the state naming it.
async fn release_lease(att: &Attachment<'_>, container_id: &str, ifname: &str) -> Option<Error> {
    match &att.ipam {
        Some(Ipam::Dhcp(dhcp)) => dhcp
            .release(att.conf, container_id, ifname)
            .await
            .err()
            .map(Into::into),
        _ => None,
    }
}

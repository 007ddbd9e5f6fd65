//! GC (1.1.0): remove what belongs to attachments not in
//! `cni.dev/valid-attachments`: plumbing, records, allocations.

use super::{first_error, remove_plumbing, Attachment};
use crate::cni::{CniEnv, Result, Version};
use crate::config::NetConf;
use crate::ipam::Ipam;

pub async fn run(conf: &NetConf, env: &CniEnv) -> Result<()> {
    conf.version.require("GC", Version::V1_1_0)?;
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let keep = |cid: &str, ifname: &str| {
        valid
            .iter()
            .any(|a| a.container_id == cid && a.ifname == ifname)
    };
    let att = Attachment::new(conf, env)?;
    let mut errors = Vec::new();
    for record in att.state.list()? {
        if keep(&record.container_id, &record.ifname) {
            continue;
        }
        tracing::info!("GC: removing {} {}", record.container_id, record.ifname);
        errors.extend(
            remove_plumbing(
                &att.node,
                &att.state,
                &conf.name,
                &record.container_id,
                &record.ifname,
            )
            .await,
        );
    }
    let ipam_gc = match &att.ipam {
        Some(Ipam::HostLocal(h)) => h.gc(&conf.name, keep).map(drop),
        Some(Ipam::Delegate(d)) => d.gc(conf).await,
        Some(Ipam::Static(_)) | None => Ok(()),
    };
    if let Err(e) = ipam_gc {
        errors.push(e);
    }
    first_error(errors)
}

//! STATUS (1.1.0): 0 when ADD can succeed, 50 when it cannot.

use crate::cni::{Error, Result, Version};
use crate::commands::state::StateDir;
use crate::config::NetConf;
use crate::ipam::Ipam;

pub async fn run(conf: &NetConf, ipam: Option<&Ipam>) -> Result<()> {
    conf.version.require("STATUS", Version::V1_1_0)?;
    StateDir::new(&conf.state_dir, &conf.name).check_writable()?;
    if let Some(Ipam::HostLocal(h)) = ipam {
        StateDir::new(h.data_dir(), &conf.name)
            .check_writable()
            .map_err(|e| Error::NotAvailable {
                reason: format!("host-local {e}"),
            })?;
    }
    if let Some(Ipam::Dhcp(d)) = ipam {
        tokio::net::UnixStream::connect(d.socket())
            .await
            .map_err(|e| Error::NotAvailable {
                reason: format!(
                    "lanbridge daemon not reachable at {}: {e}",
                    d.socket().display()
                ),
            })?;
    }
    Ok(())
}

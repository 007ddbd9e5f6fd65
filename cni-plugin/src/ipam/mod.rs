//! IPAM: built-in `host-local` and `static`, anything else delegated to a
//! plugin binary in `CNI_PATH`, as the reference plugins do.

pub mod delegate;
pub mod dhcp;
pub mod host_local;
mod resolv_conf;
pub mod static_ipam;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cni::{CniEnv, CniResult};
use crate::config::NetConf;
use crate::dhcp::protocol::NodeSide;
use crate::dhcp::RecordError;
use crate::node;
use crate::node::mac::Mac;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no free address in range set {range_set} ({ranges})")]
    Exhausted { range_set: usize, ranges: String },
    #[error("requested address {ip} is not in any configured range")]
    OutOfRange { ip: IpAddr },
    #[error("requested address {ip} is already allocated to container {owner:?}")]
    InUse { ip: IpAddr, owner: String },
    #[error("requested address {value:?} is not an IP address")]
    BadRequest { value: String },
    #[error("IPAM store {path:?} is locked by another plugin run")]
    Busy { path: PathBuf },
    #[error("IPAM store {path:?}: {source}")]
    Store { path: PathBuf, source: io::Error },
    /// A key of the IPAM config (or of the runtime's) that cannot be used.
    #[error("invalid config key {key:?}: {reason}")]
    Config { key: String, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: &'static str, reason: String },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("failed to decode {what}: {source}")]
    Decode {
        what: &'static str,
        source: serde_json::Error,
    },
    /// The delegated plugin's error object; `code` is `None` when it printed
    /// none.
    #[error("IPAM plugin {plugin:?} failed: {msg}")]
    Delegate {
        plugin: String,
        code: Option<u32>,
        msg: String,
        details: String,
    },
    #[error(
        "lanbridge daemon not reachable at {socket:?} (is `lanbridge daemon` running?): {source}"
    )]
    DaemonUnreachable { socket: PathBuf, source: io::Error },
    #[error(
        "lanbridge daemon at {socket:?} went away in the middle of the request (restarted or \
         killed?): {source}; try again"
    )]
    DaemonGone { socket: PathBuf, source: io::Error },
    #[error("lanbridge daemon at {socket:?} gave no answer within {after:?}")]
    DaemonTimeout { socket: PathBuf, after: Duration },
    /// The daemon's answer: `code` is the one it gave its failure. `None`
    /// for an answer that makes no sense.
    #[error("lanbridge daemon: {msg}")]
    Daemon { code: Option<u32>, msg: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Node(#[from] node::error::Error),
}

impl IpamError {
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        IpamError::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        IpamError::Io {
            context: context.into(),
            source,
        }
    }
}

type Result<T, E = IpamError> = std::result::Result<T, E>;

/// Who asks for addresses, and which ones they want.
pub struct IpamRequest<'a> {
    pub network: &'a str,
    pub container_id: &'a str,
    pub ifname: &'a str,
    /// From `CNI_ARGS` `IP=`, `runtimeConfig.ips`, `args.cni.ips`.
    pub requested: Vec<String>,
}

impl<'a> IpamRequest<'a> {
    pub fn new(conf: &'a NetConf, env: &'a CniEnv) -> IpamRequest<'a> {
        let mut requested: Vec<String> = env
            .arg("IP")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        requested.extend(conf.requested_ips.iter().cloned());
        IpamRequest {
            network: &conf.name,
            container_id: &env.container_id,
            ifname: &env.ifname,
            requested,
        }
    }
}

/// Requested addresses may come with or without a prefix length.
fn parse_requested(req: &IpamRequest) -> Result<Vec<IpAddr>> {
    req.requested
        .iter()
        .map(|s| {
            let addr = s.split('/').next().unwrap_or_default().trim();
            addr.parse()
                .map_err(|_| IpamError::BadRequest { value: s.clone() })
        })
        .collect()
}

/// The IPAM a config selects.
pub enum Ipam {
    HostLocal(host_local::HostLocal),
    Static(static_ipam::Static),
    Dhcp(dhcp::Dhcp),
    Delegate(delegate::Delegate),
}

impl Ipam {
    pub fn from_conf(conf: &NetConf, env: &CniEnv) -> Result<Option<Ipam>> {
        let Some(ipam) = &conf.ipam else {
            return Ok(None);
        };
        Ok(Some(match ipam.kind.as_str() {
            "host-local" => Ipam::HostLocal(host_local::HostLocal::parse(
                &ipam.conf,
                conf.raw
                    .get("runtimeConfig")
                    .and_then(|r| r.get("ipRanges")),
            )?),
            "static" => Ipam::Static(static_ipam::Static::parse(&ipam.conf)?),
            "dhcp" => Ipam::Dhcp(dhcp::Dhcp::parse(&ipam.conf)?),
            other => Ipam::Delegate(delegate::Delegate::find(other, &env.path)?),
        }))
    }

    /// `mac` is the pod interface's (DHCP's `chaddr`); `node` what the node
    /// does for the pod's addresses (the DHCP daemon withdraws and moves it
    /// with the lease).
    pub async fn add(
        &self,
        conf: &NetConf,
        env: &CniEnv,
        mac: Mac,
        node: NodeSide,
    ) -> Result<CniResult> {
        let req = IpamRequest::new(conf, env);
        match self {
            Ipam::HostLocal(h) => h.add(&req),
            Ipam::Static(s) => s.add(&req),
            Ipam::Dhcp(d) => d.add(conf, env, mac, node).await,
            Ipam::Delegate(d) => d.add(conf).await,
        }
    }

    /// Releases the attachment's addresses; tolerates there being none.
    pub async fn del(&self, conf: &NetConf, env: &CniEnv) -> Result<()> {
        match self {
            Ipam::HostLocal(h) => h.del(&conf.name, &env.container_id, &env.ifname),
            Ipam::Static(_) => Ok(()),
            Ipam::Dhcp(d) => d.del(conf, env).await,
            Ipam::Delegate(d) => d.del(conf).await,
        }
    }
}

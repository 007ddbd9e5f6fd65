//! What host plumbing can fail with, in the node's own terms: which CNI
//! code an error earns is decided above, in `commands::errors`.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network namespace {path:?} does not exist: {source}")]
    NetnsNotFound { path: PathBuf, source: io::Error },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("netlink {op}: {source}")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
    #[error("link {name} disappeared while being configured")]
    LinkMissing { name: String },
    /// A link by the bridge's name that is not a bridge.
    #[error("{name:?} exists and is not a bridge")]
    NotABridge { name: String },
    /// A VLAN gateway interface name over the kernel's 15 bytes.
    #[error("gateway interface name {name:?} exceeds 15 bytes; use a shorter bridge name")]
    VlanNameTooLong { name: String },
    /// rtnetlink refused to build the route (mixed address families).
    #[error("{0}")]
    BadRoute(String),
    #[error("this kernel's bridge has no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")]
    NoVlanFiltering,
    /// nf_tables refused a change or a read; `what` names it.
    #[error("nf_tables {what}: {source}")]
    Firewall { what: String, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink {
            op: op.into(),
            source,
        }
    }
}

//! The one table from domain errors to the CNI spec's error codes. Every
//! layer below fails in its own terms; here each failure gets its code and
//! the message the runtime shows.

use crate::cni::error::{code, Error};
use crate::datapath::DatapathError;
use crate::dhcp::DhcpError;
use crate::ipam::IpamError;
use crate::lan::LanError;
use crate::node;

impl From<node::error::Error> for Error {
    fn from(e: node::error::Error) -> Self {
        use node::error::Error as Node;
        let reason = e.to_string();
        match e {
            Node::NetnsNotFound { path, source } => Error::NetnsNotFound { path, source },
            Node::Io { context, source } => Error::Io { context, source },
            Node::Netlink { op, source } => Error::Netlink { op, source },
            Node::LinkMissing { name } => Error::LinkMissing { name },
            Node::NotABridge { .. } => Error::config("bridge", reason),
            Node::VlanNameTooLong { .. } => Error::config("vlan", reason),
            Node::BadRoute(reason) => Error::config("routes", reason),
            Node::NoVlanFiltering => Error::UnsupportedField {
                field: "vlan",
                reason,
            },
            Node::Firewall { what, source } => Error::Firewall {
                tool: "nf_tables",
                args: what,
                stderr: source.to_string(),
            },
        }
    }
}

impl From<LanError> for Error {
    fn from(e: LanError) -> Self {
        match e {
            LanError::Node(e) => e.into(),
            e => Error::config("uplink", e.to_string()),
        }
    }
}

impl From<IpamError> for Error {
    fn from(e: IpamError) -> Self {
        let code = match e {
            IpamError::Store { .. } => code::IO_FAILURE,
            IpamError::BadRequest { .. } => code::INVALID_CONFIG,
            IpamError::Busy { .. } => code::TRY_AGAIN_LATER,
            IpamError::Exhausted { .. }
            | IpamError::OutOfRange { .. }
            | IpamError::InUse { .. } => code::IPAM,
        };
        Error::Service {
            code,
            msg: e.to_string(),
            details: e.to_string(),
        }
    }
}

impl From<DatapathError> for Error {
    fn from(e: DatapathError) -> Self {
        if let DatapathError::ClientIdTooLong { .. } = e {
            return Error::config("ipam.clientId", e.to_string());
        }
        Error::Service {
            code: code::DATAPATH,
            msg: format!("eBPF datapath: {e}"),
            details: e.to_string(),
        }
    }
}

impl From<DhcpError> for Error {
    fn from(e: DhcpError) -> Self {
        Error::Service {
            code: code::DHCP,
            msg: format!("DHCP: {e}"),
            details: String::new(),
        }
    }
}

//! The one table from domain errors to the CNI spec's error codes. Every
//! layer below fails in its own terms; here each failure gets its code and
//! the message the runtime shows.

use crate::cni::error::{code, Error};
use crate::datapath::DatapathError;
use crate::dhcp::{DhcpError, RecordError};
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
            IpamError::Config { key, reason } => return Error::InvalidConfig { key, reason },
            IpamError::Env { var, reason } => return Error::InvalidEnv { var, reason },
            IpamError::Io { context, source } => return Error::Io { context, source },
            IpamError::Decode { what, source } => return Error::Decode { what, source },
            IpamError::Record(e) => return e.into(),
            IpamError::Node(e) => return e.into(),
            // A delegated plugin's own code goes through.
            IpamError::Delegate {
                plugin,
                code: plugin_code,
                msg,
                details,
            } => {
                return Error::Delegate {
                    plugin,
                    code: plugin_code.unwrap_or(code::IPAM),
                    msg,
                    details,
                }
            }
            IpamError::DaemonUnreachable { socket, source } => {
                return Error::DaemonUnreachable { socket, source }
            }
            IpamError::DaemonGone { socket, source } => {
                return Error::DaemonGone { socket, source }
            }
            IpamError::DaemonTimeout { socket, after } => {
                return Error::DaemonTimeout { socket, after }
            }
            // The daemon's failures come with the code this table gave them.
            IpamError::Daemon {
                code: daemon_code,
                msg,
            } => {
                return Error::Daemon {
                    code: daemon_code.unwrap_or(code::DAEMON),
                    msg,
                }
            }
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

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Io { context, source } => Error::Io { context, source },
            RecordError::Decode { what, source } => Error::Decode { what, source },
        }
    }
}

/// The code and message a failure earns on the wire: the daemon answers a
/// plugin's request with them.
pub fn answer(e: impl Into<Error>) -> (u32, String) {
    let e = e.into();
    (e.code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipam_and_daemon_failures_keep_their_codes_and_messages() {
        let e = Error::from(IpamError::config("ipam.timeout", "too long"));
        assert_eq!(e.code(), code::INVALID_CONFIG);
        assert_eq!(
            e.to_string(),
            "invalid config key \"ipam.timeout\": too long"
        );
        let silent = IpamError::Delegate {
            plugin: "dhcp".into(),
            code: None,
            msg: "exited with 1".into(),
            details: String::new(),
        };
        assert_eq!(Error::from(silent).code(), code::IPAM);
        let daemon = |code| IpamError::Daemon {
            code,
            msg: "no".into(),
        };
        assert_eq!(Error::from(daemon(None)).code(), code::DAEMON);
        assert_eq!(Error::from(daemon(Some(code::DHCP))).code(), code::DHCP);
        assert_eq!(
            answer(DhcpError::HostnameLength(0)),
            (
                code::DHCP,
                "DHCP: hostname of 0 bytes: DHCP option 12 takes 1 to 255".to_string()
            )
        );
    }
}

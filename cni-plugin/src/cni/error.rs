//! The CNI error object: what a plugin run failed with, and its code.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Well-known codes from the CNI spec, plus lanbridge's own (100+).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    pub const NETLINK: u32 = 100;
    pub const IPAM: u32 = 101;
    pub const FIREWALL: u32 = 102;
    pub const CHECK_MISMATCH: u32 = 103;
    pub const DATAPATH: u32 = 104;
    pub const DAEMON: u32 = 105;
    pub const DHCP: u32 = 106;
    pub const INJECTED: u32 = 199;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cniVersion {version:?} is not supported (supported: {supported})")]
    IncompatibleVersion { version: String, supported: String },
    #[error("{command} is not defined for cniVersion {version} (needs {needs} or later)")]
    CommandNotInVersion {
        command: &'static str,
        version: String,
        needs: &'static str,
    },
    #[error("unsupported field {field:?}: {reason}")]
    UnsupportedField { field: &'static str, reason: String },
    #[error("network namespace {path:?} does not exist: {source}")]
    NetnsNotFound { path: PathBuf, source: io::Error },
    #[error("environment variable {var}: {reason}")]
    InvalidEnv { var: &'static str, reason: String },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("failed to decode {what}: {source}")]
    Decode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("attachment record {path:?} is corrupt: {source}")]
    CorruptRecord {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid config key {key:?}: {reason}")]
    InvalidConfig { key: String, reason: String },
    #[error("not available: {reason}")]
    NotAvailable { reason: String },
    #[error("netlink {op}: {source}")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
    #[error("link {name} disappeared while being configured")]
    LinkMissing { name: String },
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
    DaemonTimeout {
        socket: PathBuf,
        after: std::time::Duration,
    },
    #[error("lanbridge daemon: {msg}")]
    Daemon { code: u32, msg: String },
    /// A service's failure (IPAM, DHCP, the datapath) with the code
    /// `commands::errors` gave it.
    #[error("{msg}")]
    Service {
        code: u32,
        msg: String,
        details: String,
    },
    #[error("IPAM plugin {plugin:?} failed: {msg}")]
    Delegate {
        plugin: String,
        code: u32,
        msg: String,
        details: String,
    },
    #[error("{tool} {args}: {stderr}")]
    Firewall {
        tool: &'static str,
        args: String,
        stderr: String,
    },
    #[error("live state differs from prevResult: {0}")]
    CheckMismatch(String),
    #[error("injected failure after step {0:?} (LANBRIDGE_FAIL_AFTER)")]
    Injected(String),
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

    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> u32 {
        match self {
            Error::IncompatibleVersion { .. } | Error::CommandNotInVersion { .. } => {
                code::INCOMPATIBLE_VERSION
            }
            Error::UnsupportedField { .. } => code::UNSUPPORTED_FIELD,
            Error::NetnsNotFound { .. } => code::UNKNOWN_CONTAINER,
            Error::InvalidEnv { .. } => code::INVALID_ENV,
            Error::Io { .. } => code::IO_FAILURE,
            Error::Decode { .. } | Error::CorruptRecord { .. } => code::DECODE_FAILURE,
            Error::InvalidConfig { .. } => code::INVALID_CONFIG,
            Error::NotAvailable { .. } => code::NOT_AVAILABLE,
            Error::Netlink { .. } | Error::LinkMissing { .. } => code::NETLINK,
            Error::DaemonUnreachable { .. }
            | Error::DaemonGone { .. }
            | Error::DaemonTimeout { .. } => code::TRY_AGAIN_LATER,
            Error::Daemon { code, .. } => *code,
            Error::Service { code, .. } => *code,
            Error::Delegate { code, .. } => *code,
            Error::Firewall { .. } => code::FIREWALL,
            Error::CheckMismatch(_) => code::CHECK_MISMATCH,
            Error::Injected(_) => code::INJECTED,
        }
    }

    /// The spec's error object: `{"cniVersion", "code", "msg", "details"}`.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            code: u32,
            msg: String,
            #[serde(skip_serializing_if = "String::is_empty")]
            details: String,
        }
        let details = match self {
            Error::Delegate { details, .. } | Error::Service { details, .. } => details.clone(),
            _ => std::error::Error::source(self)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        serde_json::to_value(Wire {
            cni_version,
            code: self.code(),
            msg: self.to_string(),
            details,
        })
        .expect("error object serializes")
    }
}

//! What the daemon fails with, in its own terms: `commands::errors` gives
//! each failure the CNI code a plugin's request is answered with.

use std::io;

use crate::datapath::DatapathError;
use crate::dhcp::{DhcpError, RecordError};
use crate::node;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// A lease file, or a message on the daemon socket.
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Node(#[from] node::error::Error),
    #[error("DHCP: {0}")]
    Dhcp(#[from] DhcpError),
    #[error("eBPF datapath: {0}")]
    Datapath(#[from] DatapathError),
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

impl AgentError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        AgentError::Io {
            context: context.into(),
            source,
        }
    }
}

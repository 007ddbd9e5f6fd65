//! The plugin ↔ daemon protocol: one JSON request and one JSON response per
//! connection on the daemon's unix socket, each a single line.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::cni::{Error, Result};
use crate::dhcp::Lease;

pub const DEFAULT_SOCKET: &str = "/run/lanbridge/lanbridge.sock";

/// Which attachment a lease belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseKey {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcquireRequest {
    pub key: LeaseKey,
    pub netns: PathBuf,
    /// The pod interface's MAC (`chaddr`).
    pub mac: [u8; 6],
    pub client_id: Vec<u8>,
    pub hostname: Option<String>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    Acquire(AcquireRequest),
    Release {
        key: LeaseKey,
    },
    /// Every lease the daemon holds (for `lanbridge inspect`).
    Leases,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Response {
    Lease { lease: Lease },
    Released { sent: bool },
    Leases { leases: Vec<LeaseRecord> },
    Error { code: u32, msg: String },
}

/// A lease and everything needed to renew and release it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    pub key: LeaseKey,
    pub netns: PathBuf,
    pub mac: [u8; 6],
    pub client_id: Vec<u8>,
    pub hostname: Option<String>,
    pub lease: Lease,
}

pub async fn write_message<W, T>(w: &mut W, msg: &T) -> Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut line = serde_json::to_vec(msg).expect("protocol messages serialize");
    line.push(b'\n');
    w.write_all(&line)
        .await
        .map_err(|e| Error::io("writing to the lanbridge daemon socket", e))?;
    w.flush()
        .await
        .map_err(|e| Error::io("writing to the lanbridge daemon socket", e))
}

pub async fn read_message<R, T>(r: R) -> Result<T>
where
    R: AsyncRead + Unpin,
    T: for<'de> Deserialize<'de>,
{
    let mut line = String::new();
    let read = BufReader::new(r)
        .read_line(&mut line)
        .await
        .map_err(|e| Error::io("reading from the lanbridge daemon socket", e))?;
    if read == 0 {
        return Err(Error::io(
            "reading from the lanbridge daemon socket",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a message"),
        ));
    }
    serde_json::from_str(&line).map_err(|source| Error::Decode {
        what: "daemon protocol message",
        source,
    })
}

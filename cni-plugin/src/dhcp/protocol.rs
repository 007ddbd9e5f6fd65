//! The plugin ↔ daemon protocol: one JSON request and one JSON response per
//! connection on the daemon's unix socket, each a single line.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::cni::{Error, Result};
use crate::dhcp::Lease;

pub const DEFAULT_SOCKET: &str = "/run/lanbridge/lanbridge.sock";

/// The longest message either side accepts: a peer can't make the other
/// buffer without bound (a node's full lease list stays far below it).
pub const MAX_MESSAGE: u64 = 4 << 20;

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
    /// What the node does for the address (absent from older plugins).
    #[serde(default)]
    pub node: Option<NodeSide>,
}

/// What the node does for a leased address, as ADD set it up, so the daemon
/// can withdraw it when the lease ends and move it when the address changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSide {
    pub bridge: String,
    /// The pod's host-side port: its ifindex keys the datapath maps.
    pub port: String,
    pub port_ifindex: u32,
    /// bpffs directory of the network's pins, as the plugin resolved it.
    pub pin_root: PathBuf,
    /// lan mode: the /32 route on the bridge takes this source (the
    /// uplink's address); none in other modes (no route).
    pub route_src: Option<Ipv4Addr>,
    /// The node routes for the pod: FORWARD accepts for its address.
    pub routed: bool,
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
    /// Where one attachment's lease stands (for CHECK).
    Status {
        key: LeaseKey,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Response {
    Lease { lease: Lease },
    Released { sent: bool },
    Leases { leases: Vec<LeaseRecord> },
    Status { status: Option<LeaseStatus> },
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
    /// The last lease granted; see `withdrawn`.
    pub lease: Lease,
    /// Records from before the daemon owned the node side have none.
    #[serde(default)]
    pub node: Option<NodeSide>,
    /// The lease ended (expiry, NAK) and everything done for its address
    /// was withdrawn: the daemon is acquiring a new one.
    #[serde(default)]
    pub withdrawn: bool,
}

/// A lease's state in RFC 2131's terms, with when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    pub state: LeaseState,
    /// The address held (bound, renewing, rebinding) or lost (expired, refused).
    pub address: Ipv4Addr,
    /// Unix seconds of the last change of `state`.
    pub since: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaseState {
    Bound,
    Renewing,
    Rebinding,
    /// Ran out without renewal; acquiring again (INIT).
    Expired,
    /// The server answered DHCPNAK; acquiring again (INIT).
    Refused,
}

impl LeaseStatus {
    /// Whether the address is lost and the daemon is acquiring a new one.
    pub fn lost(&self) -> bool {
        matches!(self.state, LeaseState::Expired | LeaseState::Refused)
    }
}

impl std::fmt::Display for LeaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = utc(self.since);
        match self.state {
            LeaseState::Bound => write!(f, "{} bound since {at}", self.address),
            LeaseState::Renewing => write!(f, "{} renewing since {at}", self.address),
            LeaseState::Rebinding => write!(f, "{} rebinding since {at}", self.address),
            LeaseState::Expired => write!(f, "lease of {} expired at {at}", self.address),
            LeaseState::Refused => write!(f, "lease of {} NAKed at {at}", self.address),
        }?;
        if self.lost() {
            f.write_str(", re-acquiring")?;
        }
        match &self.last_error {
            Some(e) => write!(f, " (last error: {e})"),
            None => Ok(()),
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (days to civil date: H. Hinnant's algorithm).
pub fn utc(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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
    let read = BufReader::new(r.take(MAX_MESSAGE))
        .read_line(&mut line)
        .await
        .map_err(|e| Error::io("reading from the lanbridge daemon socket", e))?;
    if read == 0 {
        return Err(Error::io(
            "reading from the lanbridge daemon socket",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a message"),
        ));
    }
    if !line.ends_with('\n') {
        let (kind, why) = match read as u64 {
            MAX_MESSAGE => (
                std::io::ErrorKind::InvalidData,
                format!("message longer than {MAX_MESSAGE} bytes"),
            ),
            _ => (
                std::io::ErrorKind::UnexpectedEof,
                "closed in the middle of a message".to_string(),
            ),
        };
        return Err(Error::io(
            "reading from the lanbridge daemon socket",
            std::io::Error::new(kind, why),
        ));
    }
    serde_json::from_str(&line).map_err(|source| Error::Decode {
        what: "daemon protocol message",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_043_252), "2026-11-30T12:54:12Z");
    }

    #[tokio::test]
    async fn oversized_and_cut_messages_are_refused() {
        let big = vec![b'x'; MAX_MESSAGE as usize + 10];
        let err = read_message::<_, Request>(&big[..]).await.unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let err = read_message::<_, Request>(&b"{\"op\":"[..])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("middle of a message"), "{err}");
    }

    #[test]
    fn statuses_read_as_check_reports_them() {
        let status = |state, last_error: Option<&str>| LeaseStatus {
            state,
            address: Ipv4Addr::new(192, 168, 77, 100),
            since: 951_782_400,
            last_error: last_error.map(str::to_string),
        };
        assert_eq!(
            status(LeaseState::Expired, None).to_string(),
            "lease of 192.168.77.100 expired at 2000-02-29T00:00:00Z, re-acquiring"
        );
        assert_eq!(
            status(LeaseState::Refused, Some("no DHCPOFFER")).to_string(),
            "lease of 192.168.77.100 NAKed at 2000-02-29T00:00:00Z, re-acquiring \
             (last error: no DHCPOFFER)"
        );
        assert_eq!(
            status(LeaseState::Bound, None).to_string(),
            "192.168.77.100 bound since 2000-02-29T00:00:00Z"
        );
        assert!(!status(LeaseState::Rebinding, None).lost());
    }

    #[test]
    fn records_without_the_node_side_still_load() {
        let old = r#"{"key":{"network":"n","containerId":"c","ifname":"eth0"},
            "netns":"/run/netns/p","mac":[2,0,0,0,0,1],"clientId":[0,1],"hostname":null,
            "lease":{"address":"192.168.77.100","prefix_len":24,"router":null,
            "dns_servers":[],"domain":null,"classless_routes":[],"server_id":"192.168.77.1",
            "lease_time":60,"t1":30,"t2":52,"acquired_at":1}}"#;
        let r: LeaseRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.node, None);
        assert!(!r.withdrawn);
    }
}

//! Why a DHCP exchange failed, phrased for the operator reading the ADD error.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::node::mac::Mac;

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("client identifier of {0} bytes: DHCP needs 2 to 255 (RFC 2132 §9.14)")]
    ClientIdLength(usize),
    #[error("hostname of {0} bytes: DHCP option 12 takes 1 to 255")]
    HostnameLength(usize),
    #[error("opening the DHCP client socket on {ifname}: {source}")]
    Open {
        ifname: String,
        #[source]
        source: Box<crate::node::error::Error>,
    },
    #[error("encoding a DHCP message: {0}")]
    Encode(#[from] dhcproto::error::EncodeError),
    #[error("sending a DHCP message on {ifname} to {to}: {source}")]
    Send {
        ifname: String,
        to: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("receiving DHCP replies on {ifname}: {source}")]
    Receive {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "no DHCPOFFER seen on {ifname} in {waited:.1?} ({discovers} DHCPDISCOVERs sent{}): \
         is a DHCP server reachable from this interface (relay attached)?",
        rejected.as_ref().map(|r| format!("; last unusable reply: {r}")).unwrap_or_default()
    )]
    NoOffer {
        ifname: String,
        waited: Duration,
        discovers: u32,
        rejected: Option<ReplyError>,
    },
    #[error(
        "no DHCPACK on {ifname} for {address} from {} in {waited:.1?} ({phase}, {requests} \
         DHCPREQUESTs sent){}",
        server.map_or_else(|| "any server".to_string(), |s| format!("server {s}")),
        rejected.as_ref().map(|r| format!("; last unusable reply: {r}")).unwrap_or_default()
    )]
    NoAck {
        ifname: String,
        phase: Phase,
        address: Ipv4Addr,
        server: Option<Ipv4Addr>,
        waited: Duration,
        requests: u32,
        rejected: Option<ReplyError>,
    },
    #[error("probing {address} with ARP on {ifname}: {source}")]
    Probe {
        ifname: String,
        address: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error(
        "no usable lease on {ifname} in {waited:.1?}: {address} from DHCP server {server} is \
         already in use on the link (ARP from {}), so it was declined (DHCPDECLINEs sent: \
         {declines})",
        mac
    )]
    AddressInUse {
        ifname: String,
        address: Ipv4Addr,
        server: Ipv4Addr,
        /// Of the host that claimed the address.
        mac: Mac,
        declines: u32,
        waited: Duration,
    },
    #[error(
        "DHCP server {server} refused {address} (DHCPNAK{})",
        message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Nak {
        server: Ipv4Addr,
        address: Ipv4Addr,
        message: Option<String>,
    },
}

/// Which DHCPREQUEST went unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Selecting,
    Renewing,
    Rebinding,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Selecting => "selecting",
            Phase::Renewing => "renewing",
            Phase::Rebinding => "rebinding",
        })
    }
}

/// Why a reply meant for us could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply without a DHCP message type (option 53)")]
    MessageTypeMissing,
    #[error("reply without a server identifier (option 54)")]
    ServerIdMissing,
    #[error("DHCPACK without a lease time (option 51)")]
    LeaseTimeMissing,
    #[error("reply without an address (yiaddr 0.0.0.0)")]
    AddressZero,
}

/// Why a lease file, or a message on the daemon socket, could not be read or
/// written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("failed to decode {what}: {source}")]
    Decode {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl RecordError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        RecordError::Io {
            context: context.into(),
            source,
        }
    }
}

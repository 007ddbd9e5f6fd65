//! Building the client's messages (RFC 2131 §4.3.2 and table 5 decide which
//! fields each carries) and recognising the replies meant for this client.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{
    DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption,
    MIN_PACKET_SIZE,
};
use dhcproto::{Encodable, Encoder};
use serde::{Deserialize, Serialize};

use super::error::{DhcpError, ReplyError};
use super::options::{self, RawOptions};
use crate::node::mac::Mac;

/// Who the client is and how long an exchange may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The pod interface's MAC: `chaddr` of every message.
    pub mac: Mac,
    /// Option 61, stable per attachment so the server keeps the lease.
    pub client_id: Vec<u8>,
    /// Option 12, e.g. from `K8S_POD_NAME`.
    pub hostname: Option<String>,
    /// Overall deadline of one call of [`super::acquire`], [`super::renew`] or
    /// [`super::rebind`].
    pub timeout: Duration,
    /// Asks for this address in the DISCOVER (e.g. the previous lease's).
    pub requested_ip: Option<Ipv4Addr>,
    pub options: ClientOptions,
}

/// What the client asks for and tells beyond its identity: the reference
/// dhcp IPAM's `request` and `provide`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientOptions {
    /// Option 55's codes; `None`: the client's own list.
    #[serde(default)]
    pub parameters: Option<Vec<u8>>,
    /// More options (code, value) in DISCOVER and REQUEST.
    #[serde(default)]
    pub provided: Vec<(u8, Vec<u8>)>,
}

impl Params {
    pub(super) fn validate(&self) -> Result<(), DhcpError> {
        if !(2..=255).contains(&self.client_id.len()) {
            return Err(DhcpError::ClientIdLength(self.client_id.len()));
        }
        match &self.hostname {
            Some(h) if !(1..=255).contains(&h.len()) => Err(DhcpError::HostnameLength(h.len())),
            _ => Ok(()),
        }
    }
}

/// Fixed BOOTP header up to and including the magic cookie.
const HEADER_LEN: usize = 240;

/// What the client asks every server for (option 55).
pub const PARAMETERS: [OptionCode; 8] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::ClasslessStaticRoute,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// The DHCPREQUEST variants of RFC 2131 §4.3.2; each fills ciaddr, option 50
/// and option 54 differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Answering an OFFER: broadcast, ciaddr 0, options 50 and 54.
    Selecting {
        server_id: Ipv4Addr,
        address: Ipv4Addr,
    },
    /// Extending a lease with the server that granted it: unicast, ciaddr set.
    Renewing { address: Ipv4Addr },
    /// Extending a lease with any server: broadcast, ciaddr set.
    Rebinding { address: Ipv4Addr },
}

impl RequestKind {
    /// Whether this request goes to 255.255.255.255 (and so sets the
    /// broadcast flag: the client may not be able to receive unicast yet).
    pub fn is_broadcast(self) -> bool {
        !matches!(self, RequestKind::Renewing { .. })
    }
}

/// DHCPDISCOVER; `requested_ip` (option 50) asks for a previous address back.
pub fn discover(p: &Params, xid: u32, secs: u16) -> Result<Vec<u8>, DhcpError> {
    let mut m = base(p, xid, MessageType::Discover);
    m.set_secs(secs).set_flags(Flags::default().set_broadcast());
    if let Some(ip) = p.requested_ip {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    }
    add_request_options(&mut m, p);
    encode(&m)
}

pub fn request(p: &Params, xid: u32, secs: u16, kind: RequestKind) -> Result<Vec<u8>, DhcpError> {
    let mut m = base(p, xid, MessageType::Request);
    m.set_secs(secs);
    if kind.is_broadcast() {
        m.set_flags(Flags::default().set_broadcast());
    }
    match kind {
        RequestKind::Selecting { server_id, address } => {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(address));
            m.opts_mut().insert(DhcpOption::ServerIdentifier(server_id));
        }
        RequestKind::Renewing { address } | RequestKind::Rebinding { address } => {
            m.set_ciaddr(address);
        }
    }
    add_request_options(&mut m, p);
    encode(&m)
}

/// DHCPRELEASE: unicast to the granting server, ciaddr = the leased address
/// (servers such as dnsmasq ignore releases that don't name the address).
pub fn release(
    p: &Params,
    xid: u32,
    address: Ipv4Addr,
    server_id: Ipv4Addr,
) -> Result<Vec<u8>, DhcpError> {
    let mut m = base(p, xid, MessageType::Release);
    m.set_ciaddr(address);
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server_id));
    encode(&m)
}

/// DHCPDECLINE: the offered address is in use (e.g. a duplicate address was
/// detected); broadcast, ciaddr 0, the address in option 50 and `why` in
/// option 56 (servers log it).
pub fn decline(
    p: &Params,
    xid: u32,
    address: Ipv4Addr,
    server_id: Ipv4Addr,
    why: &str,
) -> Result<Vec<u8>, DhcpError> {
    let mut m = base(p, xid, MessageType::Decline);
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(address));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server_id));
    m.opts_mut().insert(DhcpOption::Message(why.to_string()));
    encode(&m)
}

/// Header and the options every message carries: type and client identifier.
fn base(p: &Params, xid: u32, kind: MessageType) -> Message {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(
        xid,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        p.mac.as_ref(),
    );
    m.set_opcode(Opcode::BootRequest).set_htype(HType::Eth);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut()
        .insert(DhcpOption::ClientIdentifier(p.client_id.clone()));
    m
}

/// Options of the messages that get a configuration back (DISCOVER and
/// REQUEST); table 5 forbids the parameter list in RELEASE and DECLINE.
fn add_request_options(m: &mut Message, p: &Params) {
    if let Some(h) = &p.hostname {
        m.opts_mut().insert(DhcpOption::Hostname(h.clone()));
    }
    let parameters = match &p.options.parameters {
        Some(codes) => codes.iter().map(|c| OptionCode::from(*c)).collect(),
        None => PARAMETERS.to_vec(),
    };
    m.opts_mut()
        .insert(DhcpOption::ParameterRequestList(parameters));
    for (code, value) in &p.options.provided {
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(*code),
            value.clone(),
        )));
    }
}

/// Encodes and pads to the 300-byte BOOTP minimum some relays insist on.
fn encode(m: &Message) -> Result<Vec<u8>, DhcpError> {
    let mut buf = Vec::with_capacity(MIN_PACKET_SIZE);
    m.encode(&mut Encoder::new(&mut buf))?;
    if buf.len() < MIN_PACKET_SIZE {
        buf.resize(MIN_PACKET_SIZE, 0);
    }
    Ok(buf)
}

/// A server reply addressed to this client's exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub yiaddr: Ipv4Addr,
    pub options: RawOptions,
}

impl Reply {
    /// Reads `packet` as a reply to the exchange `xid` of the client with
    /// `mac` and `client_id`. `Ok(None)` when it is not one (another client's,
    /// a request, garbage): several pods share a LAN and see each other's
    /// broadcast replies.
    pub fn parse(
        packet: &[u8],
        xid: u32,
        mac: Mac,
        client_id: &[u8],
    ) -> Result<Option<Reply>, ReplyError> {
        // The few header fields needed are read by offset: dhcproto's
        // `Message::chaddr` slices by the wire's `hlen` and panics past 16.
        if packet.len() < HEADER_LEN
            || packet[0] != u8::from(Opcode::BootReply)
            || packet[1] != u8::from(HType::Eth)
            || packet[2] != 6
            || packet[4..8] != xid.to_be_bytes()
            || packet[28..34] != *mac.as_ref()
        {
            return Ok(None);
        }
        let Some(options) = RawOptions::parse(packet) else {
            return Ok(None);
        };
        // RFC 6842: a server that echoes a client identifier echoes ours.
        if options
            .get(options::CLIENT_ID)
            .is_some_and(|id| id != client_id)
        {
            return Ok(None);
        }
        let kind = options
            .u8(options::MESSAGE_TYPE)
            .ok_or(ReplyError::MessageTypeMissing)?
            .into();
        Ok(Some(Reply {
            kind,
            yiaddr: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
            options,
        }))
    }

    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.options.ipv4(options::SERVER_ID)
    }

    /// The server's explanation (option 56), typically sent with a NAK.
    pub fn message(&self) -> Option<String> {
        self.options.text(options::MESSAGE)
    }
}

#[cfg(test)]
mod tests;

use std::time::Duration;

use dhcproto::v4::{DhcpOptions, UnknownOption};
use dhcproto::{Decodable, Decoder};
use ipnet::Ipv4Net;

use super::*;
use crate::dhcp::lease::{Lease, INFINITE};
use crate::dhcp::options::ClasslessRoute;

const MAC: Mac = Mac::new([0x56, 0x78, 0x6a, 0x1c, 0x06, 0x09]);
const XID: u32 = 0x0bad_cafe;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn client_id() -> Vec<u8> {
    let mut id = vec![1];
    id.extend_from_slice(MAC.as_ref());
    id
}

fn params() -> Params {
    Params {
        mac: MAC,
        client_id: client_id(),
        hostname: Some("web-0".to_string()),
        timeout: Duration::from_secs(10),
        requested_ip: None,
        options: Default::default(),
    }
}

fn decode(bytes: &[u8]) -> Message {
    assert!(bytes.len() >= MIN_PACKET_SIZE, "{} bytes", bytes.len());
    Message::decode(&mut Decoder::new(bytes)).unwrap()
}

fn codes(m: &Message) -> Vec<OptionCode> {
    m.opts().iter().map(|(c, _)| *c).collect()
}

/// Header fields every client message shares.
fn assert_header(m: &Message, kind: MessageType) {
    assert_eq!(m.opcode(), Opcode::BootRequest);
    assert_eq!(m.htype(), HType::Eth);
    assert_eq!(m.chaddr(), MAC.as_ref());
    assert_eq!(m.xid(), XID);
    assert_eq!(m.opts().msg_type(), Some(kind));
    assert_eq!(
        m.opts().get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(client_id()))
    );
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(m.giaddr(), Ipv4Addr::UNSPECIFIED);
}

#[test]
fn discover_asks_for_everything_with_the_broadcast_flag() {
    let m = decode(&discover(&params(), XID, 3).unwrap());
    assert_header(&m, MessageType::Discover);
    assert!(m.flags().broadcast());
    assert_eq!(m.secs(), 3);
    assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        m.opts().get(OptionCode::ParameterRequestList),
        Some(&DhcpOption::ParameterRequestList(PARAMETERS.to_vec()))
    );
    let prl: Vec<u8> = PARAMETERS.iter().map(|c| u8::from(*c)).collect();
    assert_eq!(prl, [1, 3, 6, 15, 121, 51, 58, 59]);
    assert_eq!(
        m.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("web-0".to_string()))
    );
    assert!(!m.opts().contains(OptionCode::RequestedIpAddress));
    assert!(!m.opts().contains(OptionCode::ServerIdentifier));
}

#[test]
fn discover_requests_a_previous_address_and_omits_a_missing_hostname() {
    let p = Params {
        hostname: None,
        requested_ip: Some(ip("10.0.0.42")),
        options: Default::default(),
        ..params()
    };
    let m = decode(&discover(&p, XID, 0).unwrap());
    assert_eq!(
        m.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ip("10.0.0.42")))
    );
    assert!(!m.opts().contains(OptionCode::Hostname));
}

#[test]
fn selecting_request_names_server_and_address_not_ciaddr() {
    let kind = RequestKind::Selecting {
        server_id: ip("10.0.0.1"),
        address: ip("10.0.0.42"),
    };
    let m = decode(&request(&params(), XID, 1, kind).unwrap());
    assert_header(&m, MessageType::Request);
    assert!(m.flags().broadcast());
    assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        m.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ip("10.0.0.42")))
    );
    assert_eq!(
        m.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(ip("10.0.0.1")))
    );
    assert!(m.opts().contains(OptionCode::ParameterRequestList));
    assert!(m.opts().contains(OptionCode::Hostname));
}

#[test]
fn renewing_request_is_unicast_with_ciaddr_only() {
    let kind = RequestKind::Renewing {
        address: ip("10.0.0.42"),
    };
    assert!(!kind.is_broadcast());
    let m = decode(&request(&params(), XID, 0, kind).unwrap());
    assert_header(&m, MessageType::Request);
    assert!(!m.flags().broadcast());
    assert_eq!(m.ciaddr(), ip("10.0.0.42"));
    assert!(!m.opts().contains(OptionCode::RequestedIpAddress));
    assert!(!m.opts().contains(OptionCode::ServerIdentifier));
    assert!(m.opts().contains(OptionCode::ParameterRequestList));
}

#[test]
fn rebinding_request_is_broadcast_with_ciaddr_only() {
    let kind = RequestKind::Rebinding {
        address: ip("10.0.0.42"),
    };
    assert!(kind.is_broadcast());
    let m = decode(&request(&params(), XID, 0, kind).unwrap());
    assert!(m.flags().broadcast());
    assert_eq!(m.ciaddr(), ip("10.0.0.42"));
    assert!(!m.opts().contains(OptionCode::RequestedIpAddress));
    assert!(!m.opts().contains(OptionCode::ServerIdentifier));
}

#[test]
fn release_names_the_address_in_ciaddr_and_the_server() {
    let m = decode(&release(&params(), XID, ip("10.0.0.42"), ip("10.0.0.1")).unwrap());
    assert_header(&m, MessageType::Release);
    assert!(!m.flags().broadcast());
    assert_eq!(m.ciaddr(), ip("10.0.0.42"));
    // RFC 2131 table 5: no parameter list, no requested address.
    assert_eq!(
        codes(&m),
        [
            OptionCode::MessageType,
            OptionCode::ServerIdentifier,
            OptionCode::ClientIdentifier
        ]
    );
    assert_eq!(
        m.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(ip("10.0.0.1")))
    );
}

#[test]
fn decline_names_the_address_in_option_50_and_why_in_56() {
    let why = "in use by 02:1b:d0:00:00:0c";
    let m = decode(&decline(&params(), XID, ip("10.0.0.42"), ip("10.0.0.1"), why).unwrap());
    assert_header(&m, MessageType::Decline);
    assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(m.flags().broadcast());
    assert_eq!(
        codes(&m),
        [
            OptionCode::RequestedIpAddress,
            OptionCode::MessageType,
            OptionCode::ServerIdentifier,
            OptionCode::Message,
            OptionCode::ClientIdentifier
        ]
    );
    assert_eq!(
        m.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ip("10.0.0.42")))
    );
    assert_eq!(
        m.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(ip("10.0.0.1")))
    );
    assert_eq!(
        m.opts().get(OptionCode::Message),
        Some(&DhcpOption::Message(why.to_string()))
    );
}

/// A server reply built with dhcproto.
fn reply(kind: MessageType, yiaddr: &str, opts: Vec<DhcpOption>) -> Vec<u8> {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(XID, u, ip(yiaddr), u, u, MAC.as_ref());
    m.set_opcode(Opcode::BootReply);
    let mut o: DhcpOptions = opts.into_iter().collect();
    o.insert(DhcpOption::MessageType(kind));
    m.set_opts(o);
    encode(&m).unwrap()
}

fn ack_options() -> Vec<DhcpOption> {
    vec![
        DhcpOption::ServerIdentifier(ip("10.0.0.1")),
        DhcpOption::AddressLeaseTime(600),
        DhcpOption::SubnetMask(ip("255.255.252.0")),
        DhcpOption::Router(vec![ip("10.0.0.1"), ip("10.0.0.2")]),
        DhcpOption::DomainNameServer(vec![ip("10.0.0.53")]),
    ]
}

fn parse_lease(bytes: &[u8]) -> Result<Lease, ReplyError> {
    let r = Reply::parse(bytes, XID, MAC, &client_id())?.expect("reply is ours");
    Lease::from_ack(&r, None, 1_000)
}

#[test]
fn parses_a_captured_dnsmasq_offer() {
    let bytes = hex::decode(
        include_str!("dnsmasq-offer.hex")
            .split_whitespace()
            .collect::<String>(),
    )
    .unwrap();
    let r = Reply::parse(&bytes, XID, MAC, &client_id())
        .unwrap()
        .expect("the capture answers this xid and MAC");
    assert_eq!(r.kind, MessageType::Offer);
    assert_eq!(r.server_id(), Some(ip("192.168.78.1")));
    let lease = Lease::from_ack(&r, None, 1_000).unwrap();
    assert_eq!(
        lease,
        Lease {
            address: ip("192.168.78.107"),
            prefix_len: 24,
            router: Some(ip("192.168.78.1")),
            dns_servers: vec![ip("192.168.78.53"), ip("192.168.78.54")],
            domain: Some("lan.example".to_string()),
            classless_routes: vec![
                ClasslessRoute {
                    destination: net("0.0.0.0/0"),
                    gateway: Some(ip("192.168.78.1"))
                },
                ClasslessRoute {
                    destination: net("10.20.0.0/16"),
                    gateway: Some(ip("192.168.78.2"))
                },
            ],
            server_id: ip("192.168.78.1"),
            lease_time: 3600,
            t1: 1800,
            t2: 3150,
            acquired_at: 1_000,
        }
    );
    assert_eq!(lease.network(), net("192.168.78.107/24"));
    assert_eq!(lease.routes(), lease.classless_routes);
    assert_eq!(lease.renew_at(), Some(2_800));
    assert_eq!(lease.rebind_at(), Some(4_150));
    assert_eq!(lease.expires_at(), Some(4_600));
}

#[test]
fn ack_round_trip_with_defaults() {
    let lease = parse_lease(&reply(MessageType::Ack, "10.0.1.7", ack_options())).unwrap();
    assert_eq!(lease.network(), net("10.0.1.7/22"));
    assert_eq!(lease.router, Some(ip("10.0.0.1")));
    assert_eq!(lease.dns_servers, [ip("10.0.0.53")]);
    assert_eq!(lease.domain, None);
    assert_eq!((lease.lease_time, lease.t1, lease.t2), (600, 300, 525));
    // No option 121: a default route via the first router.
    assert_eq!(
        lease.routes(),
        [ClasslessRoute {
            destination: net("0.0.0.0/0"),
            gateway: Some(ip("10.0.0.1"))
        }]
    );
    let json = serde_json::to_string(&lease).unwrap();
    assert_eq!(serde_json::from_str::<Lease>(&json).unwrap(), lease);
}

#[test]
fn classless_routes_override_the_router_but_it_is_still_reported() {
    let mut opts = ack_options();
    opts.push(DhcpOption::ClasslessStaticRoute(vec![(
        net("192.168.0.0/16"),
        ip("10.0.0.9"),
    )]));
    let lease = parse_lease(&reply(MessageType::Ack, "10.0.1.7", opts)).unwrap();
    assert_eq!(lease.router, Some(ip("10.0.0.1")));
    assert_eq!(
        lease.routes(),
        [ClasslessRoute {
            destination: net("192.168.0.0/16"),
            gateway: Some(ip("10.0.0.9"))
        }],
        "RFC 3442: no default route from option 3 when 121 is present"
    );
}

#[test]
fn malformed_classless_routes_fall_back_to_the_router() {
    let mut opts = ack_options();
    opts.push(DhcpOption::Unknown(UnknownOption::new(
        OptionCode::ClasslessStaticRoute,
        vec![24, 10, 1, 2, 10, 0], // router cut short
    )));
    let lease = parse_lease(&reply(MessageType::Ack, "10.0.1.7", opts)).unwrap();
    assert!(lease.classless_routes.is_empty());
    assert_eq!(lease.routes()[0].gateway, Some(ip("10.0.0.1")));
    assert_eq!(
        lease.dns_servers,
        [ip("10.0.0.53")],
        "later options survive"
    );
}

#[test]
fn server_times_and_infinite_leases() {
    let mut opts = ack_options();
    opts.push(DhcpOption::Renewal(100));
    opts.push(DhcpOption::Rebinding(200));
    let lease = parse_lease(&reply(MessageType::Ack, "10.0.1.7", opts)).unwrap();
    assert_eq!((lease.t1, lease.t2), (100, 200));

    let mut opts = ack_options();
    opts[1] = DhcpOption::AddressLeaseTime(INFINITE);
    let lease = parse_lease(&reply(MessageType::Ack, "10.0.1.7", opts)).unwrap();
    assert_eq!(lease.renew_at(), None);
    assert_eq!(lease.expires_at(), None);
}

#[test]
fn unusable_acks_say_what_is_missing() {
    let without = |code: OptionCode| -> Vec<DhcpOption> {
        ack_options()
            .into_iter()
            .filter(|o| OptionCode::from(o) != code)
            .collect()
    };
    assert_eq!(
        parse_lease(&reply(
            MessageType::Ack,
            "10.0.1.7",
            without(OptionCode::AddressLeaseTime)
        )),
        Err(ReplyError::LeaseTimeMissing)
    );
    assert_eq!(
        parse_lease(&reply(
            MessageType::Ack,
            "10.0.1.7",
            without(OptionCode::ServerIdentifier)
        )),
        Err(ReplyError::ServerIdMissing)
    );
    assert_eq!(
        parse_lease(&reply(MessageType::Ack, "0.0.0.0", ack_options())),
        Err(ReplyError::AddressZero)
    );
    // A missing server id is taken from the exchange when known.
    let bytes = reply(
        MessageType::Ack,
        "10.0.1.7",
        without(OptionCode::ServerIdentifier),
    );
    let r = Reply::parse(&bytes, XID, MAC, &client_id())
        .unwrap()
        .unwrap();
    assert_eq!(
        Lease::from_ack(&r, Some(ip("10.0.0.1")), 0)
            .unwrap()
            .server_id,
        ip("10.0.0.1")
    );
    // A missing mask: the address's class.
    let lease = parse_lease(&reply(
        MessageType::Ack,
        "10.0.1.7",
        without(OptionCode::SubnetMask),
    ));
    assert_eq!(lease.unwrap().prefix_len, 8);
}

#[test]
fn replies_of_other_exchanges_and_clients_are_not_ours() {
    let ours = reply(MessageType::Offer, "10.0.1.7", ack_options());
    let cid = client_id();
    assert!(Reply::parse(&ours, XID, MAC, &cid).unwrap().is_some());
    assert_eq!(Reply::parse(&ours, XID + 1, MAC, &cid), Ok(None), "xid");
    let other_mac = Mac::new([2, 0, 0, 0, 0, 1]);
    assert_eq!(
        Reply::parse(&ours, XID, other_mac, &cid),
        Ok(None),
        "chaddr"
    );
    // Our own broadcast, looped back or seen from another pod: a request.
    let own = discover(&params(), XID, 0).unwrap();
    assert_eq!(Reply::parse(&own, XID, MAC, &cid), Ok(None));
    // A server echoing a different client identifier (RFC 6842).
    let mut opts = ack_options();
    opts.push(DhcpOption::ClientIdentifier(vec![0, 1, 2]));
    let echoed = reply(MessageType::Offer, "10.0.1.7", opts);
    assert_eq!(Reply::parse(&echoed, XID, MAC, &cid), Ok(None));
    let mut opts = ack_options();
    opts.push(DhcpOption::ClientIdentifier(cid.clone()));
    let echoed = reply(MessageType::Offer, "10.0.1.7", opts);
    assert!(Reply::parse(&echoed, XID, MAC, &cid).unwrap().is_some());
    // Truncated or absurd packets are simply not replies.
    assert_eq!(Reply::parse(&ours[..100], XID, MAC, &cid), Ok(None));
    let mut hlen = ours.clone();
    hlen[2] = 200;
    assert_eq!(Reply::parse(&hlen, XID, MAC, &cid), Ok(None));
}

#[test]
fn a_reply_without_message_type_is_unusable() {
    let mut bytes = reply(MessageType::Offer, "10.0.1.7", ack_options());
    let at = bytes[240..]
        .windows(3)
        .position(|w| w == [53, 1, 2])
        .unwrap()
        + 240;
    bytes[at] = 250; // an unknown option instead of 53
    assert_eq!(
        Reply::parse(&bytes, XID, MAC, &client_id()),
        Err(ReplyError::MessageTypeMissing)
    );
}

#[test]
fn nak_carries_the_servers_message() {
    let bytes = reply(
        MessageType::Nak,
        "0.0.0.0",
        vec![
            DhcpOption::ServerIdentifier(ip("10.0.0.1")),
            DhcpOption::Message("address not available".to_string()),
        ],
    );
    let r = Reply::parse(&bytes, XID, MAC, &client_id())
        .unwrap()
        .unwrap();
    assert_eq!(r.kind, MessageType::Nak);
    assert_eq!(r.message().as_deref(), Some("address not available"));
}

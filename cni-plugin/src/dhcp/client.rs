//! The client's exchanges, driven by the daemon: acquire a lease, renew it
//! with its server at T1, rebind with any server at T2, release it. A newly
//! granted address is probed with ARP first and declined if in use.

use std::net::Ipv4Addr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dhcproto::v4::MessageType;

use super::backoff::{random_u32, Backoff};
use super::error::ReplyError;
use super::error::{DhcpError, Phase};
use super::lease::Lease;
use super::message::{self, Params, Reply, RequestKind};
use super::socket::{DhcpSocket, UnicastSocket};
use crate::node::mac::Mac;

/// Selecting-phase REQUESTs sent before going back to DISCOVER (the server
/// that made the OFFER may be gone).
const SELECTING_REQUESTS: u32 = 4;

/// DISCOVER → OFFER → REQUEST → ACK, retransmitting with backoff, then an
/// ARP probe of the address (RFC 5227, [`super::arp`]). A NAK restarts
/// discovery; so does an address another host answers for, after a DECLINE,
/// and offers of it are ignored from then on. Fails at `params.timeout`
/// saying how far it got; a probe begun before then still runs to its end
/// (at most [`super::arp::PROBE_TIME`] later).
pub async fn acquire(sock: &DhcpSocket, params: &Params) -> Result<Lease, DhcpError> {
    params.validate()?;
    let started = Instant::now();
    let deadline = started + params.timeout;
    let mut discovers = 0;
    let mut last_setback = None;
    let mut setback_pause = Backoff::new();
    let mut declined = Vec::new();
    // Option 50 is only a wish: after a NAK or DECLINE the client starts afresh.
    let mut asking = params.clone();
    loop {
        let xid = random_u32();
        let offer = transact(
            sock,
            params,
            Exchange::broadcast(xid, started, deadline, u32::MAX),
            |secs| message::discover(&asking, xid, secs),
            |reply, _| {
                if reply.kind != MessageType::Offer {
                    return Ok(None);
                }
                let server = reply.server_id().ok_or(ReplyError::ServerIdMissing)?;
                if reply.yiaddr.is_unspecified() {
                    return Err(ReplyError::AddressZero);
                }
                if declined.contains(&reply.yiaddr) {
                    tracing::debug!(
                        "{}: skipping DHCPOFFER of {}, declined before",
                        sock.ifname(),
                        reply.yiaddr
                    );
                    return Ok(None);
                }
                Ok(Some((server, reply.yiaddr)))
            },
        )
        .await?;
        discovers += offer.sends;
        let Some((server, address)) = offer.value else {
            let waited = started.elapsed();
            return Err(match last_setback {
                Some(Setback::Nak(nak)) => nak,
                Some(Setback::InUse {
                    address,
                    server,
                    mac,
                }) => DhcpError::AddressInUse {
                    ifname: sock.ifname().to_string(),
                    address,
                    server,
                    mac,
                    declines: declined.len() as u32,
                    waited,
                },
                None => DhcpError::NoOffer {
                    ifname: sock.ifname().to_string(),
                    waited,
                    discovers,
                    rejected: offer.rejected,
                },
            });
        };
        tracing::debug!("{}: DHCPOFFER of {address} from {server}", sock.ifname());

        let requested_at = unix_now();
        let kind = RequestKind::Selecting {
            server_id: server,
            address,
        };
        let answer = transact(
            sock,
            params,
            Exchange::broadcast(xid, started, deadline, SELECTING_REQUESTS),
            |secs| message::request(params, xid, secs, kind),
            // Other servers stay silent when the client picks this one's offer.
            |reply, source| match reply.server_id() {
                Some(s) if s == server => Answer::of(&reply, source, address, server, requested_at),
                _ => Ok(None),
            },
        )
        .await?;
        let setback = match answer.value {
            Some(Answer::Ack(lease)) => {
                let Some(mac) = sock.probe(params.mac, lease.address).await? else {
                    tracing::debug!(
                        "{}: leased {} from {server} for {}s",
                        sock.ifname(),
                        lease.network(),
                        lease.lease_time
                    );
                    return Ok(lease);
                };
                decline(sock, params, &lease, mac).await?;
                declined.push(lease.address);
                Setback::InUse {
                    address: lease.address,
                    server: lease.server_id,
                    mac,
                }
            }
            Some(Answer::Nak(nak)) => {
                tracing::warn!("{}: {nak}; discovering again", sock.ifname());
                Setback::Nak(nak)
            }
            None if Instant::now() >= deadline => {
                return Err(DhcpError::NoAck {
                    ifname: sock.ifname().to_string(),
                    phase: Phase::Selecting,
                    address,
                    server: Some(server),
                    waited: started.elapsed(),
                    requests: answer.sends,
                    rejected: answer.rejected,
                })
            }
            None => {
                tracing::debug!(
                    "{}: no DHCPACK from {server} after {} DHCPREQUESTs; discovering again",
                    sock.ifname(),
                    answer.sends
                );
                continue;
            }
        };
        last_setback = Some(setback);
        asking.requested_ip = None;
        // RFC 2131 §3.1.5 would wait 10 s after a DECLINE; an ADD can't, and
        // offers of a declined address are skipped, so this can't loop fast.
        let pause = setback_pause.next_delay();
        tokio::time::sleep_until(deadline.min(Instant::now() + pause).into()).await;
    }
}

/// Why discovery started over.
enum Setback {
    Nak(DhcpError),
    /// The ACKed address was in use (`mac` claimed it) and was declined.
    InUse {
        address: Ipv4Addr,
        server: Ipv4Addr,
        mac: Mac,
    },
}

/// RENEWING: a unicast REQUEST (ciaddr set) to the server that granted
/// `lease`; the pod must have the leased address configured. Returns the
/// extended lease; a NAK means the address must be given up. Should the ACK
/// grant another address, that one is probed (and declined if in use) as in
/// [`acquire`].
pub async fn renew(sock: &DhcpSocket, params: &Params, lease: &Lease) -> Result<Lease, DhcpError> {
    extend(sock, params, lease, Phase::Renewing).await
}

/// REBINDING: the same REQUEST, broadcast to any server (the granting one
/// did not answer renewals until T2).
pub async fn rebind(sock: &DhcpSocket, params: &Params, lease: &Lease) -> Result<Lease, DhcpError> {
    extend(sock, params, lease, Phase::Rebinding).await
}

async fn extend(
    sock: &DhcpSocket,
    params: &Params,
    lease: &Lease,
    phase: Phase,
) -> Result<Lease, DhcpError> {
    params.validate()?;
    let started = Instant::now();
    let deadline = started + params.timeout;
    let xid = random_u32();
    let address = lease.address;
    let (kind, to) = match phase {
        Phase::Renewing => (
            RequestKind::Renewing { address },
            Target::Server(lease.server_id),
        ),
        _ => (RequestKind::Rebinding { address }, Target::BoundBroadcast),
    };
    let requested_at = unix_now();
    let answer = transact(
        sock,
        params,
        Exchange {
            to,
            ..Exchange::broadcast(xid, started, deadline, u32::MAX)
        },
        |secs| message::request(params, xid, secs, kind),
        |reply, source| Answer::of(&reply, source, address, lease.server_id, requested_at),
    )
    .await?;
    match answer.value {
        Some(Answer::Ack(new)) if new.address == address => Ok(new),
        Some(Answer::Ack(new)) => {
            tracing::warn!(
                "{}: {phase} {address} got {} instead",
                sock.ifname(),
                new.address
            );
            let Some(mac) = sock.probe(params.mac, new.address).await? else {
                return Ok(new);
            };
            decline(sock, params, &new, mac).await?;
            Err(DhcpError::AddressInUse {
                ifname: sock.ifname().to_string(),
                address: new.address,
                server: new.server_id,
                mac,
                declines: 1,
                waited: started.elapsed(),
            })
        }
        Some(Answer::Nak(nak)) => Err(nak),
        None => Err(DhcpError::NoAck {
            ifname: sock.ifname().to_string(),
            phase,
            address,
            server: match to {
                Target::Server(server) => Some(server),
                _ => None,
            },
            waited: started.elapsed(),
            requests: answer.sends,
            rejected: answer.rejected,
        }),
    }
}

/// Gives the lease back: a unicast RELEASE from the leased address (which
/// must still be configured) to its server. No reply exists to wait for.
pub async fn release(
    sock: &UnicastSocket,
    params: &Params,
    lease: &Lease,
) -> Result<(), DhcpError> {
    params.validate()?;
    let m = message::release(params, random_u32(), lease.address, lease.server_id)?;
    sock.unicast(&m, lease.server_id).await
}

/// Tells the server that granted `lease` that its address is already in use
/// on the link: `mac` claimed it over ARP.
async fn decline(
    sock: &DhcpSocket,
    params: &Params,
    lease: &Lease,
    mac: Mac,
) -> Result<(), DhcpError> {
    tracing::warn!(
        "{}: {} from {} is already in use by {mac} (ARP): sending DHCPDECLINE",
        sock.ifname(),
        lease.address,
        lease.server_id
    );
    let why = format!("address in use by {mac} (ARP)");
    let m = message::decline(params, random_u32(), lease.address, lease.server_id, &why)?;
    sock.broadcast(&m).await
}

/// A server's answer to a REQUEST.
enum Answer {
    Ack(Lease),
    Nak(DhcpError),
}

impl Answer {
    fn of(
        reply: &Reply,
        source: Ipv4Addr,
        address: Ipv4Addr,
        server: Ipv4Addr,
        requested_at: u64,
    ) -> Result<Option<Answer>, ReplyError> {
        Ok(match reply.kind {
            MessageType::Ack => Some(Answer::Ack(Lease::from_ack(
                reply,
                Some(server),
                requested_at,
            )?)),
            MessageType::Nak => Some(Answer::Nak(DhcpError::Nak {
                server: reply.server_id().unwrap_or(source),
                address,
                message: reply.message(),
            })),
            _ => None,
        })
    }
}

/// Where an exchange's messages go.
#[derive(Clone, Copy)]
enum Target {
    /// Broadcast from 0.0.0.0: the client has no address yet.
    Broadcast,
    /// Broadcast from the leased address (rebinding).
    BoundBroadcast,
    /// Unicast from the leased address.
    Server(Ipv4Addr),
}

/// One message's retransmission schedule.
struct Exchange {
    xid: u32,
    to: Target,
    /// When the whole process began (the `secs` field counts from there).
    started: Instant,
    deadline: Instant,
    max_sends: u32,
}

impl Exchange {
    fn broadcast(xid: u32, started: Instant, deadline: Instant, max_sends: u32) -> Exchange {
        Exchange {
            xid,
            to: Target::Broadcast,
            started,
            deadline,
            max_sends,
        }
    }
}

/// How an exchange ended: the accepted value, if any, and what it took.
struct Outcome<T> {
    value: Option<T>,
    sends: u32,
    rejected: Option<ReplyError>,
}

/// Sends what `build` makes (given the `secs` field) and retransmits it with
/// backoff until `accept` takes a reply, `max_sends` have gone unanswered or
/// the deadline passes. Replies of other exchanges or clients are skipped;
/// replies to us that `accept` finds unusable are remembered for the error.
async fn transact<T>(
    sock: &DhcpSocket,
    params: &Params,
    ex: Exchange,
    mut build: impl FnMut(u16) -> Result<Vec<u8>, DhcpError>,
    mut accept: impl FnMut(Reply, Ipv4Addr) -> Result<Option<T>, ReplyError>,
) -> Result<Outcome<T>, DhcpError> {
    let mut backoff = Backoff::new();
    let mut out = Outcome {
        value: None,
        sends: 0,
        rejected: None,
    };
    while out.sends < ex.max_sends && Instant::now() < ex.deadline {
        let secs = u16::try_from(ex.started.elapsed().as_secs()).unwrap_or(u16::MAX);
        let m = build(secs)?;
        match ex.to {
            Target::Broadcast => sock.broadcast(&m).await?,
            Target::BoundBroadcast => sock.broadcast_bound(&m).await?,
            Target::Server(server) => sock.unicast(&m, server).await?,
        }
        out.sends += 1;
        let resend_at = ex.deadline.min(Instant::now() + backoff.next_delay());
        loop {
            let received = tokio::select! {
                r = sock.recv() => r?,
                () = tokio::time::sleep_until(resend_at.into()) => break,
            };
            let parsed = Reply::parse(&received.payload, ex.xid, params.mac, &params.client_id)
                .and_then(|r| r.map(|r| accept(r, received.source)).transpose());
            match parsed {
                Ok(Some(Some(value))) => {
                    out.value = Some(value);
                    return Ok(out);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        "{}: ignoring reply from {}: {e}",
                        sock.ifname(),
                        received.source
                    );
                    out.rejected = Some(e);
                }
            }
        }
    }
    Ok(out)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

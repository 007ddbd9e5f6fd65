//! Address conflict detection (RFC 5227) for an address a server has just
//! granted, before the pod is configured with it: ARP probes (sender IP
//! 0.0.0.0, target IP the address) broadcast on the pod's interface, and a
//! conflict is any ARP packet from another MAC whose sender IP is the
//! address (its holder answering, or announcing it), or another host's probe
//! for it (§2.1.1).
//!
//! RFC 5227's timing (a random wait of up to 1 s, 3 probes 1–2 s apart, 2 s
//! more of listening) would make every CNI ADD seconds slower. Pods are
//! probed on a switched LAN where a holder answers within milliseconds, so
//! the probe is [`PROBES`] probes [`PROBE_INTERVAL`] apart and
//! [`LAST_PROBE_WAIT`] of listening after the last: [`PROBE_TIME`] in all
//! when nothing answers, less when something does.
//!
//! The probe reaches what the pod's link reaches: in bridged mode the LAN,
//! in lan mode the node's bridge only (the other pods of the node, and the
//! node, which answers probes for its own addresses; ARP is not routed).
//!
//! The packet socket (`SOCK_RAW`: the frames are built and read whole) is
//! opened with the client's other sockets and stays bound to ARP on the
//! interface, behind a filter that drops everything except while a probe runs.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::time::Duration;

use socket2::{SockFilter, Socket};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::frame::{drop_all_filter, JEQ, LD_W_ABS, PKTTYPE, RET};
use crate::node::mac::Mac;

/// Probes sent per address.
pub const PROBES: u32 = 2;
/// Between one probe and the next.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// Listening after the last probe.
pub const LAST_PROBE_WAIT: Duration = Duration::from_millis(40);
/// How long a probe that nothing answers takes.
pub const PROBE_TIME: Duration = Duration::from_millis(
    PROBE_INTERVAL.as_millis() as u64 * (PROBES as u64 - 1) + LAST_PROBE_WAIT.as_millis() as u64,
);

const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;
const ETH_P_IP: u16 = libc::ETH_P_IP as u16;
const ETH_HEADER: usize = 14;
/// Ethernet and an IPv4-over-Ethernet ARP packet.
const FRAME_LEN: usize = ETH_HEADER + 28;
/// Ethernet's minimum frame (without FCS): probes are padded to it.
const MIN_FRAME: usize = 60;
const HTYPE_ETHERNET: u16 = 1;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;
/// Offsets in the frame of the sender and target IP addresses.
const SPA: usize = ETH_HEADER + 14;
const TPA: usize = ETH_HEADER + 24;

/// An ARP probe from `mac` for `address`: broadcast, sender IP 0.0.0.0,
/// target hardware address zero (RFC 5227 §2.1.1).
pub fn probe_frame(mac: Mac, address: Ipv4Addr) -> [u8; MIN_FRAME] {
    let mut f = [0u8; MIN_FRAME];
    f[0..6].copy_from_slice(Mac::BROADCAST.as_ref());
    f[6..12].copy_from_slice(mac.as_ref());
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&OP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(mac.as_ref());
    // Sender IP (28..32) and target MAC (32..38) stay zero.
    f[TPA..TPA + 4].copy_from_slice(&address.octets());
    f
}

/// The fields of an IPv4-over-Ethernet ARP request or reply that conflict
/// detection looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    /// Sender hardware address.
    pub sha: Mac,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// Reads an Ethernet frame as an ARP request or reply for IPv4 over
/// Ethernet; anything else is `None`. Link padding is ignored.
pub fn parse(frame: &[u8]) -> Option<Arp> {
    let f = frame.get(..FRAME_LEN)?;
    let u16_at = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let ipv4_at = |i: usize| Ipv4Addr::new(f[i], f[i + 1], f[i + 2], f[i + 3]);
    let op = u16_at(20);
    if u16_at(12) != ETH_P_ARP
        || u16_at(14) != HTYPE_ETHERNET
        || u16_at(16) != ETH_P_IP
        || f[18] != 6
        || f[19] != 4
        || !matches!(op, OP_REQUEST | OP_REPLY)
    {
        return None;
    }
    Some(Arp {
        op,
        sha: Mac::from_slice(&f[22..28]).expect("6 bytes"),
        spa: ipv4_at(SPA),
        tpa: ipv4_at(TPA),
    })
}

/// The MAC of another host claiming `address` in `arp`, if it does: its
/// sender IP is the address (a reply to the probe, an announcement, any
/// request from the holder), or it is another host's probe for the address.
pub fn conflict(arp: &Arp, ours: Mac, address: Ipv4Addr) -> Option<Mac> {
    if arp.sha == ours {
        return None;
    }
    let claims = arp.spa == address;
    let probes = arp.op == OP_REQUEST && arp.spa.is_unspecified() && arp.tpa == address;
    (claims || probes).then_some(arp.sha)
}

/// Lets in, while `address` is probed, the ARP frames that can be a conflict
/// for it: not sent by this host, sender IP the address, or sender IP 0.0.0.0
/// and target IP the address. [`conflict`] decides the rest (and its MAC
/// comparison). Offsets are from the Ethernet header (`SOCK_RAW`).
pub fn probe_filter(address: Ipv4Addr) -> [SockFilter; 9] {
    probe_program(address).map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
}

/// Classic BPF as (code, jt, jf, k); the jump offsets count instructions
/// skipped, `drop` is the last one.
fn probe_program(address: Ipv4Addr) -> [(u16, u8, u8, u32); 9] {
    let address = u32::from(address);
    [
        (LD_W_ABS, 0, 0, PKTTYPE),
        (JEQ, 6, 0, u32::from(libc::PACKET_OUTGOING)),
        (LD_W_ABS, 0, 0, SPA as u32),
        (JEQ, 3, 0, address),
        (JEQ, 0, 3, 0), // sender 0.0.0.0: a probe, else no conflict
        (LD_W_ABS, 0, 0, TPA as u32),
        (JEQ, 0, 1, address),
        (RET, 0, 0, 0x0004_0000),
        (RET, 0, 0, 0), // drop
    ]
}

/// The probing socket of one interface. One probe at a time: each sets the
/// socket's filter for its address.
pub struct ArpSocket {
    fd: Mutex<AsyncFd<Socket>>,
}

impl ArpSocket {
    /// Takes a socket made by [`create`]; must be called within a tokio
    /// runtime, which drives it.
    pub fn new(socket: Socket) -> io::Result<ArpSocket> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: the Socket owns its fd, which nothing else closes or
        // replaces while the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(socket, interest)? };
        Ok(ArpSocket { fd: Mutex::new(fd) })
    }

    /// Probes `address` as `mac`: the MAC of a host that claims it, or
    /// `None` after [`PROBE_TIME`] of silence.
    pub async fn probe(&self, mac: Mac, address: Ipv4Addr) -> io::Result<Option<Mac>> {
        let fd = self.fd.lock().await;
        fd.get_ref().attach_filter(&probe_filter(address))?;
        let found = probe(&fd, mac, address).await;
        // Nothing is queued until the next probe.
        let closed = fd.get_ref().attach_filter(&drop_all_filter());
        let found = found?;
        closed?;
        Ok(found)
    }
}

async fn probe(fd: &AsyncFd<Socket>, mac: Mac, address: Ipv4Addr) -> io::Result<Option<Mac>> {
    let mut buf = [0u8; 256];
    // What an earlier probe's filter let in and it did not read (it ended at
    // a conflict, or was cancelled before closing the filter).
    loop {
        match fd.get_ref().read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let frame = probe_frame(mac, address);
    let start = Instant::now();
    for n in 1..=PROBES {
        fd.async_io(Interest::WRITABLE, |s| s.send(&frame)).await?;
        let until = if n == PROBES {
            start + PROBE_TIME
        } else {
            start + PROBE_INTERVAL * n
        };
        loop {
            let len = tokio::select! {
                r = fd.async_io(Interest::READABLE, |mut s| s.read(&mut buf)) => r?,
                () = tokio::time::sleep_until(until) => break,
            };
            if let Some(other) = parse(&buf[..len]).and_then(|a| conflict(&a, mac, address)) {
                return Ok(Some(other));
            }
        }
    }
    Ok(None)
}

/// The probing socket on `ifindex`, in the calling thread's namespace; its
/// filter drops everything until a probe replaces it.
pub fn create(ifindex: u32) -> io::Result<Socket> {
    // Protocol 0: nothing is queued until bind() names the protocol, by which
    // time the filter is in place.
    let s = Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(0)),
    )?;
    s.attach_filter(&drop_all_filter())?;
    s.bind(&super::frame::link_address(ifindex, ETH_P_ARP, None))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = Mac::new([0x02, 0x1b, 0xd0, 0, 0, 0x0a]);
    const THEIRS: Mac = Mac::new([0x02, 0x1b, 0xd0, 0, 0, 0x0c]);
    const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 79, 110);

    /// An ARP packet from `sha`/`spa` for `tpa`, in an Ethernet frame.
    fn arp(op: u16, sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        let mut f = probe_frame(sha, tpa)[..FRAME_LEN].to_vec();
        f[20..22].copy_from_slice(&op.to_be_bytes());
        f[SPA..SPA + 4].copy_from_slice(&spa.octets());
        f
    }

    #[test]
    fn builds_a_broadcast_probe_padded_to_the_ethernet_minimum() {
        let f = probe_frame(OURS, ADDRESS);
        #[rustfmt::skip]
        let expected: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
            0x02, 0x1b, 0xd0, 0, 0, 0x0a,       // source: ours
            0x08, 0x06,                         // ARP
            0, 1, 0x08, 0x00, 6, 4,             // Ethernet, IPv4, lengths
            0, 1,                               // request
            0x02, 0x1b, 0xd0, 0, 0, 0x0a,       // sender MAC: ours
            0, 0, 0, 0,                         // sender IP: none (a probe)
            0, 0, 0, 0, 0, 0,                   // target MAC: unknown
            192, 168, 79, 110,                  // target IP: the address
        ];
        assert_eq!(f[..FRAME_LEN], expected);
        assert_eq!(f.len(), 60);
        assert!(f[FRAME_LEN..].iter().all(|&b| b == 0));
    }

    #[test]
    fn parses_what_it_builds_and_replies() {
        assert_eq!(
            parse(&probe_frame(OURS, ADDRESS)),
            Some(Arp {
                op: OP_REQUEST,
                sha: OURS,
                spa: Ipv4Addr::UNSPECIFIED,
                tpa: ADDRESS
            })
        );
        let reply = arp(OP_REPLY, THEIRS, ADDRESS, Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            parse(&reply),
            Some(Arp {
                op: OP_REPLY,
                sha: THEIRS,
                spa: ADDRESS,
                tpa: Ipv4Addr::UNSPECIFIED
            })
        );
    }

    #[test]
    fn rejects_what_is_not_ipv4_over_ethernet_arp() {
        let good = arp(OP_REPLY, THEIRS, ADDRESS, ADDRESS);
        assert!(parse(&good).is_some());
        assert_eq!(parse(&good[..FRAME_LEN - 1]), None, "truncated");
        assert_eq!(parse(&[]), None);
        for (at, value, what) in [
            (12, 0x08, "ethertype IPv4"),
            (15, 6, "hardware type IEEE 802"),
            (17, 0xdd, "protocol type"),
            (18, 8, "hardware length"),
            (19, 16, "protocol length"),
            (21, 3, "RARP request"),
        ] {
            let mut bad = good.clone();
            bad[at] = value;
            if at == 12 {
                bad[13] = 0x00;
            }
            assert_eq!(parse(&bad), None, "{what}");
        }
    }

    #[test]
    fn a_conflict_is_another_mac_claiming_or_probing_the_address() {
        let other = Ipv4Addr::new(192, 168, 79, 1);
        let zero = Ipv4Addr::UNSPECIFIED;
        let cases = [
            // The holder answering our probe (Linux: unicast to us).
            (arp(OP_REPLY, THEIRS, ADDRESS, zero), Some(THEIRS)),
            // The holder announcing it, or asking for someone else.
            (arp(OP_REQUEST, THEIRS, ADDRESS, ADDRESS), Some(THEIRS)),
            (arp(OP_REQUEST, THEIRS, ADDRESS, other), Some(THEIRS)),
            // Another host probing for it at the same time.
            (arp(OP_REQUEST, THEIRS, zero, ADDRESS), Some(THEIRS)),
            // Our own frames.
            (arp(OP_REQUEST, OURS, zero, ADDRESS), None),
            (arp(OP_REPLY, OURS, ADDRESS, other), None),
            // Traffic about other addresses.
            (arp(OP_REQUEST, THEIRS, other, ADDRESS), None),
            (arp(OP_REPLY, THEIRS, other, zero), None),
            (arp(OP_REQUEST, THEIRS, zero, other), None),
            // A reply "from" 0.0.0.0 is not a probe.
            (arp(OP_REPLY, THEIRS, zero, ADDRESS), None),
        ];
        for (frame, expected) in cases {
            let a = parse(&frame).unwrap();
            assert_eq!(conflict(&a, OURS, ADDRESS), expected, "{a:?}");
        }
    }

    /// Runs the filter program on `frame` as the kernel would, with
    /// `pkttype` in the ancillary area; whether it accepts the frame.
    fn filter_accepts(address: Ipv4Addr, frame: &[u8], pkttype: u8) -> bool {
        let program = probe_program(address);
        let (mut pc, mut a) = (0, 0u32);
        loop {
            let (code, jt, jf, k) = program[pc];
            pc += 1;
            match code {
                LD_W_ABS if k == PKTTYPE => a = u32::from(pkttype),
                LD_W_ABS => match frame.get(k as usize..k as usize + 4) {
                    Some(w) => a = u32::from_be_bytes(w.try_into().unwrap()),
                    None => return false, // out of bounds: the kernel drops
                },
                JEQ => pc += usize::from(if a == k { jt } else { jf }),
                RET => return k != 0,
                _ => panic!("unexpected instruction {code:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_lets_in_exactly_what_may_be_a_conflict() {
        let zero = Ipv4Addr::UNSPECIFIED;
        let other = Ipv4Addr::new(192, 168, 79, 1);
        let (host, all, out) = (
            libc::PACKET_HOST,
            libc::PACKET_BROADCAST,
            libc::PACKET_OUTGOING,
        );
        let cases = [
            (arp(OP_REPLY, THEIRS, ADDRESS, zero), host, true),
            (arp(OP_REQUEST, THEIRS, ADDRESS, other), all, true),
            (arp(OP_REQUEST, THEIRS, zero, ADDRESS), all, true),
            // Our own probes, as the socket sees them leave.
            (probe_frame(OURS, ADDRESS).to_vec(), out, false),
            (arp(OP_REQUEST, THEIRS, other, ADDRESS), host, false),
            (arp(OP_REQUEST, THEIRS, zero, other), host, false),
            (arp(OP_REPLY, THEIRS, other, zero), host, false),
            // Too short to hold a sender IP.
            (
                arp(OP_REPLY, THEIRS, ADDRESS, zero)[..30].to_vec(),
                all,
                false,
            ),
        ];
        for (frame, pkttype, expected) in cases {
            assert_eq!(
                filter_accepts(ADDRESS, &frame, pkttype),
                expected,
                "{:?} ({pkttype})",
                parse(&frame)
            );
        }
    }

    #[test]
    fn probing_takes_60ms_in_all() {
        assert_eq!(PROBE_TIME, Duration::from_millis(60));
        assert_eq!(THEIRS.to_string(), "02:1b:d0:00:00:0c");
    }
}

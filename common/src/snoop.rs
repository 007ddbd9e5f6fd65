//! DHCP snooping of `lb_from_pod`: a pod speaks DHCP only as a client and
//! only for itself, in every mode, broadcast and unicast alike; and not
//! faster than [`rate_admit`] lets it.
//!
//! The options are type-length-value, so this is the one place with a loop:
//! at most [`MAX_OPTION_STEPS`] steps of [`OptionScan::step`] (a pad byte is
//! a step), and a message whose options do not end within them is dropped,
//! as is one whose options could hide something from the check (overload
//! into `sname`/`file`, a repeated option that a server would concatenate,
//! an option running past the UDP payload). Every read goes through
//! [`Packet::read`]. The kernel side runs the steps with `bpf_loop`, which
//! the verifier checks once, not once per step and path (an open-coded loop
//! over TLVs takes it past its million-instruction budget).

use crate::packet::{mac_eq, ClientMsg, Packet, Short, BOOTP_HTYPE_ETHER, BOOTREQUEST, UDP_HLEN};
use crate::{Endpoint, NetConfig, Reason, CFG_LAN_MODE, EP_DHCP_RELAY, EP_GUARD_IP, MAX_CLIENT_ID};

/// The magic cookie ends the fixed BOOTP header; options follow.
pub const DHCP_COOKIE_OFF: usize = 236;
pub const DHCP_COOKIE: [u8; 4] = [99, 130, 83, 99];
pub const DHCP_OPTIONS_OFF: usize = 240;
/// Option steps scanned before a message counts as malformed: real clients
/// send about a dozen options.
pub const MAX_OPTION_STEPS: usize = 64;

pub const OPT_PAD: u8 = 0;
pub const OPT_REQUESTED_IP: u8 = 50;
pub const OPT_OVERLOAD: u8 = 52;
pub const OPT_MESSAGE_TYPE: u8 = 53;
pub const OPT_CLIENT_ID: u8 = 61;
pub const OPT_RELAY_AGENT: u8 = 82;
pub const OPT_END: u8 = 255;

pub const DHCPDISCOVER: u8 = 1;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPDECLINE: u8 = 4;
pub const DHCPRELEASE: u8 = 7;
pub const DHCPINFORM: u8 = 8;

/// The DHCP rate limit per port: one message per interval on average
/// (4 a second), [`DHCP_RATE_BURST`] at once. A client's first exchange is
/// two messages, its retransmissions come 250 ms apart and doubling.
pub const DHCP_RATE_INTERVAL_NS: u64 = 250_000_000;
pub const DHCP_RATE_BURST: u64 = 8;

/// The verdict on a pod's DHCP client message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodVerdict {
    Pass,
    Drop(Reason),
    /// Force the broadcast flag, Ethernet source := uplink MAC, redirect to
    /// the uplink's egress.
    Relay,
}

impl PodVerdict {
    pub fn reason(self) -> Reason {
        match self {
            PodVerdict::Pass => Reason::Passed,
            PodVerdict::Drop(reason) => reason,
            PodVerdict::Relay => Reason::DhcpRelayed,
        }
    }
}

/// The options the verdict needs; 0 = absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    pub msg_type: u8,
    /// Option 50 (network byte order).
    pub requested_ip: u32,
    /// Offset of option 61's value in the frame, and its length.
    pub client_id_off: usize,
    pub client_id_len: u8,
}

/// Judges a pod's DHCP client message `m` (read from `p`, its options
/// scanned with [`options`]) against its endpoint and the address a server
/// last `offered` it ([`crate::DhcpPort::offered`]): the source (every mode,
/// tagged frames too), then what the message says. Tagged broadcasts are not
/// relayed: the uplink carries the untagged LAN, and the relay has no VLAN to
/// map a tag to; they pass, as on a plain bridge.
#[inline(always)]
pub fn verdict<P: Packet + ?Sized>(
    p: &P,
    m: &ClientMsg,
    opts: Result<ClientOptions, Reason>,
    ep: &Endpoint,
    offered: u32,
    cfg: &NetConfig,
) -> PodVerdict {
    if let Err(reason) = check(p, m, opts, ep, offered) {
        return PodVerdict::Drop(reason);
    }
    if m.is_broadcast()
        && !m.tagged
        && cfg.flags & CFG_LAN_MODE != 0
        && ep.flags & EP_DHCP_RELAY != 0
        && cfg.uplink_ifindex != 0
    {
        return PodVerdict::Relay;
    }
    PodVerdict::Pass
}

#[inline(always)]
fn check<P: Packet + ?Sized>(
    p: &P,
    m: &ClientMsg,
    opts: Result<ClientOptions, Reason>,
    ep: &Endpoint,
    offered: u32,
) -> Result<(), Reason> {
    if !mac_eq(&m.src_mac, &ep.mac) || (m.saddr != 0 && !ep.owns(m.saddr)) {
        return Err(Reason::DropDhcpSpoof);
    }
    if m.op != BOOTREQUEST {
        return Err(Reason::DropDhcpType);
    }
    if m.htype != BOOTP_HTYPE_ETHER || m.hlen != 6 || !mac_eq(&m.chaddr, &ep.mac) {
        return Err(Reason::DropDhcpChaddr);
    }
    if m.giaddr != 0 {
        return Err(Reason::DropDhcpAgent);
    }
    let opts = opts?;
    if !matches!(
        opts.msg_type,
        DHCPDISCOVER | DHCPREQUEST | DHCPDECLINE | DHCPRELEASE | DHCPINFORM
    ) {
        return Err(Reason::DropDhcpType);
    }
    if opts.client_id_len != 0 && ep.client_id_len != 0 && !client_id_is(p, &opts, ep)? {
        return Err(Reason::DropDhcpClientId);
    }
    // Addresses are judged once IPAM gave the pod some, as the source guard
    // judges its IPv4 sources. Also the pod's: the one a server just gave it
    // (a client probes a new lease, and declines it, before IPAM records it).
    if ep.flags & EP_GUARD_IP != 0 {
        let own = |a: u32| ep.owns(a) || (a != 0 && a == offered);
        let ours = match opts.msg_type {
            // The address in use elsewhere, in option 50 (RFC 2131 table 5).
            DHCPDECLINE => m.ciaddr == 0 && own(opts.requested_ip),
            // The address given back, in ciaddr.
            DHCPRELEASE => own(m.ciaddr),
            _ => m.ciaddr == 0 || own(m.ciaddr),
        };
        if !ours {
            return Err(Reason::DropDhcpAddr);
        }
    }
    Ok(())
}

/// Scans the options: [`OptionScan`] for at most [`MAX_OPTION_STEPS`] steps.
#[inline(always)]
pub fn options<P: Packet + ?Sized>(p: &P, m: &ClientMsg) -> Result<ClientOptions, Reason> {
    let mut scan = OptionScan::start(p, m)?;
    for _ in 0..MAX_OPTION_STEPS {
        if let Some(done) = scan.step(p) {
            return done.and_then(|()| scan.finish(p));
        }
    }
    Err(Reason::DropDhcpMalformed)
}

/// A scan of the options in progress, up to END or the end of the UDP
/// payload. A step only notes where the options of interest are: what it
/// keeps never decides a branch, so the verifier finds the steps' states
/// alike at once; [`OptionScan::finish`] judges them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionScan {
    off: usize,
    end: usize,
    msg_type: Seen,
    requested_ip: Seen,
    client_id: Seen,
}

/// Where an option was seen last, and whether more than once. Updated
/// without a branch on what it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    seen: bool,
    repeated: bool,
    len: u8,
    off: usize,
}

impl Seen {
    #[inline(always)]
    fn saw(&mut self, off: usize, len: u8) {
        self.repeated |= self.seen;
        self.seen = true;
        self.len = len;
        self.off = off;
    }

    /// Absent, or once with a length `len` allows. A repeated option is
    /// concatenated by servers (RFC 3396): what the check read would not be
    /// what a server reads.
    #[inline(always)]
    fn well_formed(&self, len: impl Fn(u8) -> bool) -> bool {
        !self.seen || (!self.repeated && len(self.len))
    }
}

impl OptionScan {
    #[inline(always)]
    pub fn start<P: Packet + ?Sized>(p: &P, m: &ClientMsg) -> Result<OptionScan, Reason> {
        let bootp = m.bootp_off();
        if (m.udp_len as usize) < UDP_HLEN + DHCP_OPTIONS_OFF
            || p.read::<4>(bootp + DHCP_COOKIE_OFF) != Ok(DHCP_COOKIE)
        {
            return Err(Reason::DropDhcpMalformed);
        }
        Ok(OptionScan {
            off: bootp + DHCP_OPTIONS_OFF,
            end: m.udp_off + m.udp_len as usize,
            msg_type: Seen::default(),
            requested_ip: Seen::default(),
            client_id: Seen::default(),
        })
    }

    /// Reads one option (or pad); `Some` when the scan is over. (Plain
    /// `Result<(), Reason>`: a kernel-side caller keeps it in memory, where
    /// a variant with a payload would leave bytes the verifier rejects as
    /// uninitialised.)
    #[inline(always)]
    pub fn step<P: Packet + ?Sized>(&mut self, p: &P) -> Option<Result<(), Reason>> {
        match self.next(p) {
            Ok(done) => done,
            Err(Short) => Some(Err(Reason::DropDhcpMalformed)),
        }
    }

    #[inline(always)]
    fn next<P: Packet + ?Sized>(&mut self, p: &P) -> Result<Option<Result<(), Reason>>, Short> {
        if self.off >= self.end {
            return Ok(Some(Ok(())));
        }
        let [code] = p.read::<1>(self.off)?;
        if code == OPT_PAD {
            self.off += 1;
            return Ok(None);
        }
        if code == OPT_END {
            return Ok(Some(Ok(())));
        }
        let [len] = p.read::<1>(self.off + 1)?;
        let value = self.off + 2;
        self.off = value + len as usize;
        if self.off > self.end {
            return Ok(Some(Err(Reason::DropDhcpMalformed)));
        }
        match code {
            OPT_MESSAGE_TYPE => self.msg_type.saw(value, len),
            OPT_REQUESTED_IP => self.requested_ip.saw(value, len),
            OPT_CLIENT_ID => self.client_id.saw(value, len),
            // Options continued in `sname`/`file`: out of this scan's sight.
            OPT_OVERLOAD => return Ok(Some(Err(Reason::DropDhcpMalformed))),
            OPT_RELAY_AGENT => return Ok(Some(Err(Reason::DropDhcpAgent))),
            _ => {}
        }
        Ok(None)
    }

    /// The options of a scan that ended well, each seen at most once and
    /// with its proper length.
    #[inline(always)]
    pub fn finish<P: Packet + ?Sized>(&self, p: &P) -> Result<ClientOptions, Reason> {
        let malformed = Reason::DropDhcpMalformed;
        if !self.msg_type.well_formed(|len| len == 1)
            || !self.requested_ip.well_formed(|len| len == 4)
            || !self.client_id.well_formed(|len| len != 0)
        {
            return Err(malformed);
        }
        let mut o = ClientOptions::default();
        if self.msg_type.seen {
            [o.msg_type] = p.read::<1>(self.msg_type.off).map_err(|_| malformed)?;
        }
        if self.requested_ip.seen {
            let ip = p.read::<4>(self.requested_ip.off).map_err(|_| malformed)?;
            o.requested_ip = u32::from_ne_bytes(ip);
        }
        if self.client_id.seen {
            o.client_id_off = self.client_id.off;
            o.client_id_len = self.client_id.len;
        }
        Ok(o)
    }
}

/// Whether option 61 is the endpoint's identifier, byte for byte.
#[inline(always)]
fn client_id_is<P: Packet + ?Sized>(
    p: &P,
    o: &ClientOptions,
    ep: &Endpoint,
) -> Result<bool, Reason> {
    if o.client_id_len != ep.client_id_len {
        return Ok(false);
    }
    let mut diff = 0;
    for i in 0..MAX_CLIENT_ID {
        if i >= o.client_id_len as usize {
            break;
        }
        let [b] = p
            .read::<1>(o.client_id_off + i)
            .map_err(|_| Reason::DropDhcpMalformed)?;
        diff |= b ^ ep.client_id[i];
    }
    Ok(diff == 0)
}

/// The DHCP rate limit ([`crate::gcra`]): `due` is when the port's next
/// message would be on time (0 = never sent); the new `due` when it passes.
#[inline(always)]
pub fn rate_admit(due: u64, now: u64) -> Option<u64> {
    crate::gcra(due, now, DHCP_RATE_INTERVAL_NS, DHCP_RATE_BURST)
}

#[cfg(test)]
mod tests;

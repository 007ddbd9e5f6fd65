//! IPv6 as a pod sends it, and the guards on it: the RA guard (RFC 6105: a
//! pod is never a router or a DHCPv6 server) and the source and neighbour
//! discovery guard (the ND twin of the ARP guard). The extension header
//! chain is walked so that it cannot hide the upper layer (RFC 7113), with
//! a bound; what cannot be judged within it is dropped, like a first
//! fragment that ends before the upper-layer header (RFC 7112). Bounded
//! and bounds-checked like [`crate::packet`].

use crate::packet::{mac_eq, Packet, Short, IPPROTO_UDP};
use crate::{Endpoint, Reason, EP_GUARD_IP6};

pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPV6_HLEN: usize = 40;
/// Offset of the source address in the IPv6 header.
pub const IP6_SADDR_OFF: usize = 8;
pub const IPPROTO_ICMPV6: u8 = 58;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;
/// Extension headers walked before the upper-layer header; a longer chain
/// is not judged (real traffic has one or two).
pub const MAX_EXT_HDRS: usize = 4;
/// Options of a neighbour solicitation or advertisement looked at; more are
/// not judged (Linux sends at most two: link-layer address and DAD nonce).
pub const MAX_ND_OPTS: usize = 4;

pub const ICMP6_MLD_REPORT: u8 = 131;
pub const ICMP6_ROUTER_SOLICIT: u8 = 133;
pub const ICMP6_ROUTER_ADVERT: u8 = 134;
pub const ICMP6_NEIGH_SOLICIT: u8 = 135;
pub const ICMP6_NEIGH_ADVERT: u8 = 136;
pub const ICMP6_REDIRECT: u8 = 137;
pub const ICMP6_MLD2_REPORT: u8 = 143;
/// ND options: source and target link-layer address.
const ND_OPT_SLLAO: u8 = 1;
const ND_OPT_TLLAO: u8 = 2;
/// Offset of the options in an NS or NA (type .. target).
const ND_OPTS_OFF: usize = 24;
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;

/// A pod's IPv6 packet as the guards see it. Addresses are judged as they
/// are read ([`Whose`]): held whole, they would not fit a BPF stack frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip6 {
    /// Offset of the IPv6 header.
    pub off: usize,
    pub src: Whose,
    pub upper: Upper,
}

/// Whose an address is, from the pod's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    /// `::`.
    Unspecified,
    /// [`Endpoint::owns6`].
    Own,
    Foreign,
}

impl Whose {
    #[inline(always)]
    fn of(addr: &[u8; 16], ep: &Endpoint) -> Whose {
        if is_unspecified(addr) {
            Whose::Unspecified
        } else if ep.owns6(addr) {
            Whose::Own
        } else {
            Whose::Foreign
        }
    }
}

/// What follows the extension header chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper {
    Icmp(Icmp6),
    Udp {
        sport: u16,
        dport: u16,
    },
    /// Any other protocol, or a fragment after the first (its upper-layer
    /// header was in the first, which was judged).
    Other,
    /// The chain does not reach an upper-layer header within the bounds or
    /// the packet: longer than [`MAX_EXT_HDRS`], headers past the payload
    /// length, a first fragment without the upper-layer header, a jumbogram,
    /// ND options that cannot be walked.
    Unjudged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmp6 {
    pub kind: u8,
    /// A neighbour solicitation's or advertisement's fields.
    pub nd: Option<Nd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nd {
    pub target: Whose,
    /// The source (NS) or target (NA) link-layer address option, if any:
    /// whether it is the pod's MAC.
    pub lladdr: Option<bool>,
}

/// Where a packet's extension header chain leads. Programs pass it between
/// two BPF subprograms ([`Chain::to_bits`]) so that walking and judging
/// use a stack frame each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The IPv6 EtherType with another version: not judged (the kernel
    /// drops it).
    NotIpv6,
    /// The upper-layer header `proto` at `pos`; the payload ends at `end`.
    Upper { proto: u8, pos: usize, end: usize },
    /// A fragment after the first: no upper-layer header in it.
    LaterFragment,
    /// See [`Upper::Unjudged`].
    Unjudged,
}

impl Chain {
    /// One register: tag (bits 56..64), protocol (48..56), position
    /// (24..48), end (0..24); offsets stay below 2^17.
    #[inline(always)]
    pub fn to_bits(self) -> u64 {
        match self {
            Chain::NotIpv6 => 0,
            Chain::Upper { proto, pos, end } => {
                (1 << 56)
                    | (u64::from(proto) << 48)
                    | ((pos as u64 & 0xff_ffff) << 24)
                    | (end as u64 & 0xff_ffff)
            }
            Chain::LaterFragment => 2 << 56,
            Chain::Unjudged => 3 << 56,
        }
    }

    #[inline(always)]
    pub fn from_bits(bits: u64) -> Chain {
        match bits >> 56 {
            0 => Chain::NotIpv6,
            1 => Chain::Upper {
                proto: (bits >> 48) as u8,
                pos: ((bits >> 24) & 0xff_ffff) as usize,
                end: (bits & 0xff_ffff) as usize,
            },
            2 => Chain::LaterFragment,
            _ => Chain::Unjudged,
        }
    }
}

/// The IPv6 header at `off` and its upper layer, sent by `ep`'s pod;
/// `Ok(None)` when the version is not 6.
#[inline(always)]
pub fn parse_ip6<P: Packet + ?Sized>(
    p: &P,
    off: usize,
    ep: &Endpoint,
) -> Result<Option<Ip6>, Short> {
    parse_chained(p, off, chain(p, off)?, ep)
}

/// [`parse_ip6`] once [`chain`] was walked.
#[inline(always)]
fn parse_chained<P: Packet + ?Sized>(
    p: &P,
    off: usize,
    chain: Chain,
    ep: &Endpoint,
) -> Result<Option<Ip6>, Short> {
    if chain == Chain::NotIpv6 {
        return Ok(None);
    }
    let src = Whose::of(&p.read(off + IP6_SADDR_OFF)?, ep);
    let upper = upper(p, chain, ep)?;
    Ok(Some(Ip6 { off, src, upper }))
}

/// Follows the extension headers of the IPv6 header at `off`, within its
/// payload length. A frame shorter than the payload length is `Short` (the
/// kernel drops such a packet anyway).
#[inline(always)]
pub fn chain<P: Packet + ?Sized>(p: &P, off: usize) -> Result<Chain, Short> {
    // Version .. hop limit.
    let h: [u8; 8] = p.read(off)?;
    if h[0] >> 4 != 6 {
        return Ok(Chain::NotIpv6);
    }
    let payload = u16::from_be_bytes([h[4], h[5]]) as usize;
    // Payload length 0: a jumbogram (RFC 2675), never sent on Ethernet.
    if payload == 0 {
        return Ok(Chain::Unjudged);
    }
    let (mut next, mut pos) = (h[6], off + IPV6_HLEN);
    let end = pos + payload;
    for _ in 0..MAX_EXT_HDRS {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                if pos + 2 > end {
                    return Ok(Chain::Unjudged);
                }
                let e: [u8; 2] = p.read(pos)?;
                // AH counts 4-byte units (RFC 4302), the others 8-byte ones.
                pos += if next == NEXTHDR_AUTH {
                    (e[1] as usize + 2) * 4
                } else {
                    (e[1] as usize + 1) * 8
                };
                next = e[0];
            }
            NEXTHDR_FRAGMENT => {
                if pos + 8 > end {
                    return Ok(Chain::Unjudged);
                }
                let f: [u8; 4] = p.read(pos)?;
                if (f[2] | (f[3] & 0xf8)) != 0 {
                    return Ok(Chain::LaterFragment);
                }
                next = f[0];
                pos += 8;
            }
            _ => break,
        }
    }
    if is_extension(next) {
        return Ok(Chain::Unjudged);
    }
    Ok(Chain::Upper {
        proto: next,
        pos,
        end,
    })
}

#[inline(always)]
fn is_extension(next: u8) -> bool {
    matches!(
        next,
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH | NEXTHDR_FRAGMENT
    )
}

/// The upper-layer header `chain` leads to.
#[inline(always)]
pub fn upper<P: Packet + ?Sized>(p: &P, chain: Chain, ep: &Endpoint) -> Result<Upper, Short> {
    let (proto, pos, end) = match chain {
        Chain::Upper { proto, pos, end } => (proto, pos, end),
        Chain::LaterFragment | Chain::NotIpv6 => return Ok(Upper::Other),
        Chain::Unjudged => return Ok(Upper::Unjudged),
    };
    match proto {
        IPPROTO_ICMPV6 => {
            if pos + 4 > end {
                return Ok(Upper::Unjudged);
            }
            let t: [u8; 1] = p.read(pos)?;
            let kind = t[0];
            if kind != ICMP6_NEIGH_SOLICIT && kind != ICMP6_NEIGH_ADVERT {
                return Ok(Upper::Icmp(Icmp6 { kind, nd: None }));
            }
            if pos + ND_OPTS_OFF > end {
                return Ok(Upper::Unjudged);
            }
            let target = Whose::of(&p.read(pos + 8)?, ep);
            match nd_lladdr(p, pos + ND_OPTS_OFF, end, &ep.mac)? {
                Some(lladdr) => Ok(Upper::Icmp(Icmp6 {
                    kind,
                    nd: Some(Nd { target, lladdr }),
                })),
                None => Ok(Upper::Unjudged),
            }
        }
        IPPROTO_UDP => {
            if pos + 8 > end {
                return Ok(Upper::Unjudged);
            }
            let u: [u8; 4] = p.read(pos)?;
            Ok(Upper::Udp {
                sport: u16::from_be_bytes([u[0], u[1]]),
                dport: u16::from_be_bytes([u[2], u[3]]),
            })
        }
        _ => Ok(Upper::Other),
    }
}

/// The link-layer address option among an NS's or NA's options from `pos`
/// to `end`, as whether it is `mac`: `Some(None)` without one, `None` when
/// the options cannot be judged (malformed, more than [`MAX_ND_OPTS`], two
/// link-layer addresses).
#[inline(always)]
fn nd_lladdr<P: Packet + ?Sized>(
    p: &P,
    mut pos: usize,
    end: usize,
    mac: &[u8; 6],
) -> Result<Option<Option<bool>>, Short> {
    let mut found = None;
    for _ in 0..MAX_ND_OPTS {
        if pos == end {
            return Ok(Some(found));
        }
        if pos + 8 > end {
            return Ok(None);
        }
        let o: [u8; 8] = p.read(pos)?;
        if o[1] == 0 {
            return Ok(None);
        }
        if o[0] == ND_OPT_SLLAO || o[0] == ND_OPT_TLLAO {
            if found.is_some() {
                return Ok(None);
            }
            found = Some(mac_eq(&[o[2], o[3], o[4], o[5], o[6], o[7]], mac));
        }
        pos += o[1] as usize * 8;
    }
    Ok(if pos == end { Some(found) } else { None })
}

/// The verdict on a pod's IPv6 packet at `off` (its MAC already judged)
/// whose extension headers lead to `chain`: the source and ND guard with
/// `enforce`, the RA guard always. `Passed` or the reason of the drop (a
/// plain `u32` for a BPF subprogram to return); `Short` when the frame ends
/// before the payload length says.
#[inline(always)]
pub fn verdict<P: Packet + ?Sized>(
    p: &P,
    off: usize,
    chain: Chain,
    ep: &Endpoint,
    enforce: bool,
) -> Result<Reason, Short> {
    let Some(ip) = parse_chained(p, off, chain, ep)? else {
        return Ok(Reason::Passed);
    };
    let judged = if enforce { guard(&ip, ep) } else { Ok(()) };
    Ok(match judged.and_then(|()| ra_guard(&ip)) {
        Ok(()) => Reason::Passed,
        Err(reason) => reason,
    })
}

/// RA guard, in every mode: a pod does not advertise routes or prefixes,
/// redirect, or answer DHCPv6, and what hides its upper layer is dropped.
#[inline(always)]
pub fn ra_guard(ip: &Ip6) -> Result<(), Reason> {
    match ip.upper {
        Upper::Unjudged => Err(Reason::DropIp6Unjudged),
        Upper::Icmp(Icmp6 {
            kind: ICMP6_ROUTER_ADVERT,
            ..
        }) => Err(Reason::DropRa),
        Upper::Icmp(Icmp6 {
            kind: ICMP6_REDIRECT,
            ..
        }) => Err(Reason::DropRedirect6),
        Upper::Udp { sport, dport } if sport == DHCP6_SERVER_PORT || dport == DHCP6_CLIENT_PORT => {
            Err(Reason::DropDhcp6Server)
        }
        _ => Ok(()),
    }
}

/// Source and ND guard (`enforce`). Once IPAM configured the pod
/// ([`EP_GUARD_IP6`]) its IPv6 sources are its EUI-64 link-local address
/// and the addresses IPAM gave it; `::` only for what a host sends before
/// it has an address (a DAD solicitation for its own address without a
/// link-layer option, a router solicitation, an MLD report). Neighbour
/// advertisements only for its own addresses; a link-layer address option,
/// if any, only its MAC.
#[inline(always)]
pub fn guard(ip: &Ip6, ep: &Endpoint) -> Result<(), Reason> {
    let strict = ep.flags & EP_GUARD_IP6 != 0;
    let (kind, nd) = match ip.upper {
        Upper::Icmp(icmp) => (Some(icmp.kind), icmp.nd),
        _ => (None, None),
    };
    let own = |w: Whose| !strict || w == Whose::Own;
    if ip.src == Whose::Unspecified {
        let ok = match (kind, nd) {
            (Some(ICMP6_NEIGH_SOLICIT), Some(nd)) => {
                if nd.lladdr.is_some() || !own(nd.target) {
                    return Err(Reason::DropNdSpoof);
                }
                true
            }
            (Some(k), _) => {
                k == ICMP6_ROUTER_SOLICIT || k == ICMP6_MLD_REPORT || k == ICMP6_MLD2_REPORT
            }
            _ => false,
        };
        return if ok {
            Ok(())
        } else {
            Err(Reason::DropSpoofIp6)
        };
    }
    if !own(ip.src) {
        return Err(Reason::DropSpoofIp6);
    }
    if let Some(nd) = nd {
        let foreign_mac = nd.lladdr == Some(false);
        if foreign_mac || (kind == Some(ICMP6_NEIGH_ADVERT) && !own(nd.target)) {
            return Err(Reason::DropNdSpoof);
        }
    }
    Ok(())
}

/// The EUI-64 link-local address of `mac` (RFC 4291 appendix A), the one
/// Linux gives an interface by default (`addr_gen_mode` 0).
#[inline(always)]
pub fn link_local(mac: &[u8; 6]) -> [u8; 16] {
    [
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}

/// Whether `a` is [`link_local`] of `mac`.
#[inline(always)]
pub fn is_link_local_of(a: &[u8; 16], mac: &[u8; 6]) -> bool {
    let l = link_local(mac);
    let (a0, a1) = words(a);
    // The prefix is constant; the interface identifier made in registers.
    let (l0, l1) = words(&l);
    ((a0 ^ l0) | (a1 ^ l1)) == 0
}

/// Equality without a `memcmp` call, as two words: byte by byte, the BPF
/// build runs out of registers and spills past its stack limit.
#[inline(always)]
pub fn addr_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let (a0, a1) = words(a);
    let (b0, b1) = words(b);
    ((a0 ^ b0) | (a1 ^ b1)) == 0
}

#[inline(always)]
pub fn is_unspecified(a: &[u8; 16]) -> bool {
    let (a0, a1) = words(a);
    (a0 | a1) == 0
}

#[inline(always)]
fn words(a: &[u8; 16]) -> (u64, u64) {
    (
        u64::from_ne_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]),
        u64::from_ne_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]),
    )
}

#[cfg(test)]
mod tests;

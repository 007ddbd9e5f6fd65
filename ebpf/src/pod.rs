//! `lb_from_pod`'s pipeline: the source guard first (every mode), then
//! DHCP snooping and relay and the IPv6 guards, then the fast path.

use core::mem::MaybeUninit;

use aya_ebpf::{bindings::TC_ACT_SHOT, programs::TcContext};
use lanbridge_common::{
    frame::{guard, parse_frame, Ip4, Kind, IPPROTO_UDP},
    ip6,
    packet::{mac_word, Packet, Short},
    Endpoint, NetConfig, Reason, CFG_ENFORCE, CFG_FAST_PATH, CFG_LAN_MODE,
};

use crate::maps::config;
use crate::skb::{vlan_tagged, Direct, Loaded};
use crate::verdict::{pack, unpack, Verdict, PASS};
use crate::zero::zeroed;
use crate::{dhcp, fast};

/// The verdict on a frame the pod behind `ifindex` (endpoint `ep`) sent.
/// `ep` is a reference into the map, not a copy: the stack is small (512
/// bytes for the whole program) and the endpoint is not. An update of this
/// very entry while the packet is judged could at worst mix old and new
/// values for this one packet; the loader writes an endpoint before the
/// pod runs.
#[inline(always)]
pub(crate) fn try_from_pod(
    ctx: &TcContext,
    ifindex: u32,
    ep: &Endpoint,
) -> Result<Verdict, Verdict> {
    let Some(cfg) = config() else {
        return Ok(PASS);
    };
    let enforce = cfg.flags & CFG_ENFORCE != 0;
    // Written field by field by `classify` (zeroed here: no undefined
    // padding reaches the verifier).
    let mut ip = MaybeUninit::<Ip4>::uninit();
    // SAFETY: all-zero is a valid `Ip4` (`fragment` false).
    let ip = unsafe { zeroed(&mut ip) };
    let ip_out = (&raw mut *ip).cast();
    // The linear data inline (the common case: no call, no packing), the
    // rest through `bpf_skb_load_bytes` in a subprogram of its own.
    let class = Class::unpack(
        match classify(&Direct(ctx), ep, enforce, &cfg.bridge_mac, ip_out) {
            Ok(class) => class,
            Err(Short) => classify_loaded(ctx, ep, enforce, &cfg.bridge_mac, ip_out),
        },
    );
    if let Some(reason) = class.drop {
        return Ok((TC_ACT_SHOT, reason));
    }
    match class.kind {
        KIND_IPV4 => {}
        KIND_IPV6 => {
            let off = class.ipv6_off;
            let chain = ipv6_chain(ctx, off);
            return Ok(match ipv6_verdict(ctx, off, chain, ep, enforce) {
                Reason::Passed => PASS,
                reason => (TC_ACT_SHOT, reason),
            });
        }
        _ => return Ok(PASS),
    }
    if ip.proto == IPPROTO_UDP && !ip.fragment {
        if ip.sport == 67 || ip.dport == 68 {
            return Ok((TC_ACT_SHOT, Reason::DropDhcpServer));
        }
        if ip.sport == 68 && ip.dport == 67 {
            return Ok(unpack(dhcp_client_packed(ctx, ifindex, ep, cfg)));
        }
    }
    if cfg.flags & CFG_FAST_PATH == 0 || class.tagged || vlan_tagged(ctx) {
        return Ok(PASS);
    }
    // Subnet mode routes only frames for the gateway; the bridge switches
    // the rest (pods of this node) without any lookup of ours.
    if cfg.flags & CFG_LAN_MODE == 0 && !class.to_gateway {
        return Ok(PASS);
    }
    Ok(unpack(fast_path_packed(ctx, ip, ep, cfg)))
}

// `lb_from_pod`'s stages run in BPF subprograms of their own, each beside
// (not on top of) the others on a small main frame: a call chain has 512
// bytes of stack, and the frame parser through `bpf_skb_load_bytes`, the
// DHCP snooping, the IPv6 guard and the fast path each need a good part of
// it inlined. Only the parser of the linear data is inline: it needs
// little stack, and every packet runs it (a call costs it more than its
// work on packets the stack takes). A subprogram returns one register:
// results come packed in a `u64`, and structured data crosses only as a
// flat `Ip4` behind a byte pointer (a pointer to a Rust enum would put a
// BTF type in the object that the kernel rejects).

const KIND_OTHER: u8 = 0;
const KIND_IPV4: u8 = 1;
const KIND_IPV6: u8 = 2;

/// What [`classify`] found.
struct Class {
    /// The source guard's drop reason.
    drop: Option<Reason>,
    kind: u8,
    /// A VLAN tag in the frame.
    tagged: bool,
    /// Sent to the gateway's MAC (the bridge's).
    to_gateway: bool,
    /// The IPv6 header's offset ([`KIND_IPV6`]).
    ipv6_off: usize,
}

impl Class {
    /// Bits 0-7: 1 + drop reason (0: none); 8-15: kind; 16: tagged; 17: to
    /// the gateway; 32-47: IPv6 offset.
    #[inline(always)]
    fn pack(&self) -> u64 {
        let drop = self.drop.map_or(0, |r| r as u64 + 1);
        drop | u64::from(self.kind) << 8
            | u64::from(self.tagged) << 16
            | u64::from(self.to_gateway) << 17
            | ((self.ipv6_off as u64) & 0xffff) << 32
    }

    #[inline(always)]
    fn unpack(bits: u64) -> Class {
        let drop = (bits & 0xff) as u32;
        Class {
            // SAFETY: only `pack` makes these bits, from a valid `Reason`.
            drop: (drop != 0).then(|| unsafe { core::mem::transmute::<u32, Reason>(drop - 1) }),
            kind: (bits >> 8) as u8,
            tagged: bits & (1 << 16) != 0,
            to_gateway: bits & (1 << 17) != 0,
            ipv6_off: ((bits >> 32) & 0xffff) as usize,
        }
    }
}

/// [`classify`] through `bpf_skb_load_bytes`, which reaches paged data
/// too (headers there: a NIC that splits them, or a pod crafting such skbs
/// to slip past the guard). A frame too short to parse is "other": it
/// passes, with nothing to act on.
#[inline(never)]
fn classify_loaded(
    ctx: &TcContext,
    ep: &Endpoint,
    enforce: bool,
    gateway: &[u8; 6],
    ip_out: *mut u8,
) -> u64 {
    classify(&Loaded(ctx), ep, enforce, gateway, ip_out).unwrap_or(0)
}

/// Parses the frame and, with `enforce`, runs the source guard on it; an
/// IPv4 header goes to `ip_out` (the caller's zeroed `Ip4`).
#[inline(always)]
fn classify<P: Packet>(
    p: &P,
    ep: &Endpoint,
    enforce: bool,
    gateway: &[u8; 6],
    ip_out: *mut u8,
) -> Result<u64, Short> {
    let frame = parse_frame(p)?;
    let mut class = Class {
        drop: None,
        kind: KIND_OTHER,
        tagged: frame.tagged,
        to_gateway: frame.dst_mac == mac_word(gateway),
        ipv6_off: 0,
    };
    if enforce {
        if let Err(reason) = guard(&frame, ep) {
            class.drop = Some(reason);
            return Ok(class.pack());
        }
    }
    match frame.kind {
        Kind::Ipv4(ip) => {
            class.kind = KIND_IPV4;
            let out = ip_out as *mut Ip4;
            // SAFETY: `ip_out` is the caller's `Ip4`; field by field, so no
            // padding byte is written.
            unsafe {
                (*out).off = ip.off;
                (*out).proto = ip.proto;
                (*out).ttl = ip.ttl;
                (*out).csum = ip.csum;
                (*out).saddr = ip.saddr;
                (*out).daddr = ip.daddr;
                (*out).fragment = ip.fragment;
                (*out).sport = ip.sport;
                (*out).dport = ip.dport;
            }
        }
        Kind::Ipv6(off) => {
            class.kind = KIND_IPV6;
            class.ipv6_off = off;
        }
        Kind::Arp(_) | Kind::Other => {}
    }
    Ok(class.pack())
}

/// The fast path in a BPF subprogram of its own, the verdict [`pack`]ed.
#[inline(never)]
fn fast_path_packed(ctx: &TcContext, ip: &Ip4, ep: &Endpoint, cfg: &NetConfig) -> u64 {
    let verdict = if cfg.flags & CFG_LAN_MODE != 0 {
        fast::from_pod(ctx, ip, ep, cfg)
    } else {
        fast::subnet_from_pod(ctx, ip, cfg)
    };
    pack(verdict.unwrap_or_else(|e| e))
}

// The IPv6 guards in two BPF subprograms, called one after the other: the
// chain walk and the verdict each get a stack frame of their own, beside
// (not on top of) `lb_from_pod`'s. They read through `bpf_skb_load_bytes`
// only (linear and paged data alike): IPv6 has no fast path to keep quick,
// one parser instance keeps the frames small, and direct packet access at
// the chain's variable offsets takes the verifier past its 1M instructions.

/// [`ip6::chain`], as [`ip6::Chain::to_bits`]; too short for its payload
/// length (the kernel drops it anyway): not IPv6, so not judged.
#[inline(never)]
fn ipv6_chain(ctx: &TcContext, off: usize) -> u64 {
    ip6::chain(&Loaded(ctx), off).map_or(0, ip6::Chain::to_bits)
}

/// [`ip6::verdict`]; `Passed` when too short, as above.
#[inline(never)]
fn ipv6_verdict(ctx: &TcContext, off: usize, chain: u64, ep: &Endpoint, enforce: bool) -> Reason {
    let chain = ip6::Chain::from_bits(chain);
    ip6::verdict(&Loaded(ctx), off, chain, ep, enforce).unwrap_or(Reason::Passed)
}

/// [`dhcp::from_pod`] in a BPF subprogram of its own, the verdict [`pack`]ed.
#[inline(never)]
fn dhcp_client_packed(ctx: &TcContext, port: u32, ep: &Endpoint, cfg: &NetConfig) -> u64 {
    pack(dhcp::from_pod(ctx, port, ep, cfg).unwrap_or_else(|e| e))
}

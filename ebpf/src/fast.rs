//! The lan-mode fast path: pod <-> LAN and pod <-> pod forwarded in eBPF,
//! skipping the bridge, netfilter and the routing slow path. It never takes
//! service or cluster destinations (`lb_slow_cidrs`), the node's own
//! addresses (the FIB says "not forwarded"), flows the stack carried with
//! NAT (`lb_flows`), fragments, multicast, or packets whose TTL runs out:
//! those go to the stack, which routes, NATs and answers them.

use core::mem::{size_of, MaybeUninit};

use aya_ebpf::{
    bindings::{
        bpf_check_mtu_flags::BPF_MTU_CHK_SEGS, bpf_check_mtu_ret::BPF_MTU_CHK_RET_SUCCESS,
        bpf_fib_lookup as FibParams, bpf_redir_neigh, bpf_redir_neigh__bindgen_ty_1,
        BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SKIP_NEIGH, TC_ACT_SHOT,
    },
    helpers::{bpf_check_mtu, bpf_fib_lookup, bpf_redirect_neigh, bpf_redirect_peer},
    programs::TcContext,
};
use lanbridge_common::{
    frame::{Frame, Ip4, Kind, IP_TTL_OFF},
    Endpoint, NetConfig, Reason, EP_ISOLATED, FAST_PATH_MARK,
};

use crate::flows;
use crate::maps::{cluster_destination, endpoint, pod_port, slow_destination};
use crate::verdict::{Verdict, ERROR, PASS};
use crate::zero::zeroed;

const AF_INET: u8 = 2;
/// The Ethernet header's two addresses.
const ETH_ADDRS: usize = 12;

#[inline(always)]
pub fn from_pod(
    ctx: &TcContext,
    ip: &Ip4,
    ep: &Endpoint,
    cfg: &NetConfig,
) -> Result<Verdict, Verdict> {
    if let Some(slow) = slow_path(ip) {
        return Ok(slow);
    }
    if slow_destination(ip.daddr) {
        return Ok((PASS.0, Reason::SlowService));
    }
    if let Some(port) = pod_port(ip.daddr) {
        let Some(peer) = endpoint(port) else {
            return Ok(PASS);
        };
        if ep.flags & peer.flags & EP_ISOLATED != 0 {
            return Ok((TC_ACT_SHOT, Reason::DropIsolated));
        }
        return into_pod(ctx, ip, port, peer, cfg);
    }
    route_out(ctx, ip, cfg, true)
}

/// Subnet mode: a pod's packet to its gateway for another node's pod
/// subnet (a cluster destination: no masquerade, no NAT) goes straight out
/// of the interface the FIB picks, towards that node. Replies come back
/// through the stack.
#[inline(always)]
pub fn subnet_from_pod(ctx: &TcContext, ip: &Ip4, cfg: &NetConfig) -> Result<Verdict, Verdict> {
    if let Some(slow) = slow_path(ip) {
        return Ok(slow);
    }
    if !cluster_destination(ip.daddr) {
        return Ok(PASS);
    }
    route_out(ctx, ip, cfg, false)
}

/// `bpf_fib_lookup` as the bridge would route it, without its neighbour
/// lookup, then out of the egress it found by `bpf_redirect_neigh` to the
/// next hop: the kernel writes the Ethernet header at xmit, into the
/// headroom, so the only write here is the TTL's. lan mode leaves only
/// through the uplink; subnet mode through anything but the bridge (its own
/// subnet is L2). What does not fit the egress's MTU goes to the stack,
/// which fragments it or answers "fragmentation needed".
#[inline(always)]
fn route_out(ctx: &TcContext, ip: &Ip4, cfg: &NetConfig, lan: bool) -> Result<Verdict, Verdict> {
    let mut fib = MaybeUninit::<FibParams>::uninit();
    // SAFETY: an all-zero `bpf_fib_lookup` is a valid input.
    let fib = unsafe { zeroed(&mut fib) };
    fib.family = AF_INET;
    fib.l4_protocol = ip.proto;
    fib.sport = ip.sport.to_be();
    fib.dport = ip.dport.to_be();
    // tot_len stays 0: the helper then checks the skb itself against the
    // egress's MTU, GSO packets by their segments (with the IP length every
    // GSO super-packet would fail and take the slow path).
    fib.ifindex = cfg.bridge_ifindex;
    fib.__bindgen_anon_3.ipv4_src = ip.saddr;
    fib.__bindgen_anon_4.ipv4_dst = ip.daddr;
    // SAFETY: the helper reads and writes `fib` only.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.skb.skb as *mut _,
            fib,
            size_of::<FibParams>() as i32,
            BPF_FIB_LOOKUP_SKIP_NEIGH,
        )
    } as u32;
    let egress = fib.ifindex;
    let allowed = if lan {
        egress == cfg.uplink_ifindex && egress != 0
    } else {
        egress != cfg.bridge_ifindex && egress != 0
    };
    // FRAG_NEEDED (too big for the egress) and every other failure: the
    // stack's. The helper lets every GSO packet through; those whose
    // segments would not fit go to the stack too.
    if rc != BPF_FIB_LKUP_RET_SUCCESS || !allowed || (gso(ctx) && !segments_fit(ctx, egress)) {
        return Ok(PASS);
    }
    decrement_ttl(ctx, ip)?;
    if lan {
        mark_fast(ctx);
    }
    // The lookup left the next hop in `ipv4_dst`: the route's gateway, or
    // the destination itself when it is on-link. Built whole (the address
    // in the first word of the union's widest field), not `zeroed()` and
    // then set: no call of the BPF `memset`.
    let mut nh = bpf_redir_neigh {
        nh_family: AF_INET as u32,
        __bindgen_anon_1: bpf_redir_neigh__bindgen_ty_1 {
            // SAFETY: a plain union field read.
            ipv6_nh: [unsafe { fib.__bindgen_anon_4.ipv4_dst }, 0, 0, 0],
        },
    };
    // SAFETY: the helper reads `nh` only.
    let action =
        unsafe { bpf_redirect_neigh(egress, &mut nh, size_of::<bpf_redir_neigh>() as i32, 0) };
    Ok((action as i32, Reason::FastToLan))
}

#[inline(always)]
fn gso(ctx: &TcContext) -> bool {
    // SAFETY: `gso_size` is readable by TC programs.
    unsafe { (*ctx.skb.skb).gso_size != 0 }
}

/// Whether a GSO packet's segments fit the MTU of `egress`. Such a packet
/// handed to the stack does not make its flow a NAT flow: the stack answers
/// it with ICMP (no ports) or sends it as fragments (no ports either), and
/// `lb_to_uplink` records only packets with ports.
#[inline(always)]
fn segments_fit(ctx: &TcContext, egress: u32) -> bool {
    // 0: judge the skb's own length.
    let mut mtu_len: u32 = 0;
    // SAFETY: the helper reads the skb and writes `mtu_len` only.
    let rc = unsafe {
        bpf_check_mtu(
            ctx.skb.skb as *mut _,
            egress,
            &mut mtu_len,
            0,
            u64::from(BPF_MTU_CHK_SEGS),
        )
    };
    rc == i64::from(BPF_MTU_CHK_RET_SUCCESS)
}

/// Packets from the LAN for a pod of this node go straight into the pod.
#[inline(always)]
pub fn from_uplink(ctx: &TcContext, frame: &Frame, cfg: &NetConfig) -> Result<Verdict, Verdict> {
    use lanbridge_common::{CFG_FAST_PATH, CFG_LAN_MODE};
    let fast = CFG_LAN_MODE | CFG_FAST_PATH;
    if cfg.flags & fast != fast {
        return Ok(PASS);
    }
    let Kind::Ipv4(ip) = frame.kind else {
        return Ok(PASS);
    };
    if frame.tagged {
        return Ok(PASS);
    }
    let Some(port) = pod_port(ip.daddr) else {
        return Ok(PASS);
    };
    if let Some(slow) = slow_path(&ip) {
        return Ok(slow);
    }
    let Some(ep) = endpoint(port) else {
        return Ok(PASS);
    };
    into_pod(ctx, &ip, port, ep, cfg)
}

/// What must take the stack whichever way it goes.
#[inline(always)]
fn slow_path(ip: &Ip4) -> Option<Verdict> {
    let first_octet = ip.daddr.to_ne_bytes()[0];
    // Fragments (no ports to match flows), multicast and broadcast, and a
    // TTL the stack must answer with "time exceeded".
    if ip.fragment || first_octet >= 224 || ip.ttl <= 1 {
        return Some(PASS);
    }
    // Either direction of a flow the stack carried: its replies (recorded
    // as they will arrive), and a new flow reusing the same 5-tuple while
    // conntrack still holds the NAT-ed one (the stack then picks a fresh
    // port for it instead of reverse-NATing its replies).
    let flow = ip.flow();
    if ip.has_ports() && flows::carried_by_stack(&flow) {
        return Some((PASS.0, Reason::SlowFlow));
    }
    None
}

/// Delivers to the pod behind `port`, as its gateway would: Ethernet
/// destination the pod's MAC, source the bridge's, TTL decremented.
#[inline(always)]
fn into_pod(
    ctx: &TcContext,
    ip: &Ip4,
    port: u32,
    ep: &Endpoint,
    cfg: &NetConfig,
) -> Result<Verdict, Verdict> {
    let mut addrs = [0u8; ETH_ADDRS];
    addrs[..6].copy_from_slice(&ep.mac);
    addrs[6..].copy_from_slice(&cfg.bridge_mac);
    ctx.store(0, &addrs, 0).map_err(|_| ERROR)?;
    decrement_ttl(ctx, ip)?;
    // SAFETY: a plain helper call with constant, valid flags.
    let action = unsafe { bpf_redirect_peer(port, 0) };
    Ok((action as i32, Reason::FastToPod))
}

/// TTL - 1, with the checksum updated for it: one write.
#[inline(always)]
fn decrement_ttl(ctx: &TcContext, ip: &Ip4) -> Result<(), Verdict> {
    ctx.store(ip.off + IP_TTL_OFF, &ip.ttl_decremented(), 0)
        .map_err(|_| ERROR)
}

/// Tells `lb_to_uplink` that this packet took the fast path.
#[inline(always)]
fn mark_fast(ctx: &TcContext) {
    // SAFETY: `mark` is writable by TC programs.
    let mark = unsafe { (*ctx.skb.skb).mark };
    ctx.set_mark(mark | FAST_PATH_MARK);
}

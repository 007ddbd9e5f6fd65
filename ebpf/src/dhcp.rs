//! DHCP through the bridge ports: a pod's client messages snooped, rate
//! limited and relayed to the uplink; the server's replies steered to the
//! pod whose MAC is their `chaddr`.

use aya_ebpf::{
    bindings::__sk_buff,
    bindings::{BPF_F_MARK_MANGLED_0, BPF_NOEXIST, TC_ACT_SHOT},
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_loop},
    programs::TcContext,
};
use lanbridge_common::{
    packet::{parse_from_pod, ClientMsg, FromPod, Reply, ETH_SRC_OFF},
    snoop::{self, rate_admit, ClientOptions, OptionScan, PodVerdict, MAX_OPTION_STEPS},
    DhcpPort, Endpoint, MacKey, NetConfig, Reason,
};

use crate::maps::{Scan, BY_MAC, DHCP_PORTS, SCAN};
use crate::skb::{parse, redirect, vlan_tagged, Loaded};
use crate::verdict::{Verdict, ERROR, PASS};

/// `bpf_l4_csum_replace` flags: a 2-byte field that is not part of the
/// pseudo header; a zero UDP checksum (none) stays zero, and a computed zero
/// is written as 0xffff.
const CSUM_2_UDP: u64 = 2 | BPF_F_MARK_MANGLED_0 as u64;

/// A pod's DHCP client message, broadcast or unicast: snooped, rate
/// limited, and relayed when it is a broadcast the relay carries.
#[inline(always)]
pub(crate) fn from_pod(
    ctx: &TcContext,
    port: u32,
    ep: &Endpoint,
    cfg: &NetConfig,
) -> Result<Verdict, Verdict> {
    // Cut short before `chaddr`: nothing to judge, nothing a server takes.
    let Some(FromPod::Client(mut msg)) = parse!(ctx, parse_from_pod) else {
        return Ok((TC_ACT_SHOT, Reason::DropDhcpMalformed));
    };
    msg.tagged |= vlan_tagged(ctx);
    // Past the headers through `bpf_skb_load_bytes` only: options may be
    // paged.
    let options = scan_options(ctx, &msg);
    let offered = match DHCP_PORTS.get_ptr(port) {
        // SAFETY: a map value, valid for this run.
        Some(state) => unsafe { (*state).offered },
        None => 0,
    };
    let verdict = snoop::verdict(&Loaded(ctx), &msg, options, ep, offered, cfg);
    if let PodVerdict::Drop(reason) = verdict {
        return Ok((TC_ACT_SHOT, reason));
    }
    if !admit(port) {
        return Ok((TC_ACT_SHOT, Reason::DropDhcpRate));
    }
    match verdict {
        PodVerdict::Relay => relay(ctx, &msg, cfg),
        _ => Ok(PASS),
    }
}

/// What `option_step` gets.
struct Step {
    skb: *mut __sk_buff,
    scan: *mut Scan,
}

#[inline(always)]
fn scan_options(ctx: &TcContext, msg: &ClientMsg) -> Result<ClientOptions, Reason> {
    let Some(scan) = SCAN.get_ptr_mut(0) else {
        return Err(Reason::DropError);
    };
    let first = OptionScan::start(&Loaded(ctx), msg)?;
    // SAFETY: this CPU's slot; TC programs do not preempt each other on one
    // CPU.
    unsafe {
        *scan = Scan {
            scan: first,
            done: None,
        }
    };
    let mut step = Step {
        skb: ctx.skb.skb,
        scan,
    };
    // SAFETY: the helper calls `option_step` at most MAX_OPTION_STEPS times
    // with `step`, which outlives the call.
    unsafe {
        bpf_loop(
            MAX_OPTION_STEPS as u32,
            option_step as *mut c_void,
            &raw mut step as *mut c_void,
            0,
        )
    };
    // SAFETY: as above.
    let scan = unsafe { &*scan };
    match scan.done {
        Some(done) => done.and_then(|()| scan.scan.finish(&Loaded(ctx))),
        // Not done within the bound: too many options to judge.
        None => Err(Reason::DropDhcpMalformed),
    }
}

/// `bpf_loop` callback: one step of the option scan; 1 stops the loop.
extern "C" fn option_step(_index: u64, data: *mut c_void) -> i64 {
    // SAFETY: `data` is the `Step` that `scan_options` passed, its `scan`
    // this CPU's slot of `SCAN`.
    let (ctx, scan) = unsafe {
        let step = &*(data as *const Step);
        (TcContext::new(step.skb), &mut *step.scan)
    };
    match scan.scan.step(&Loaded(&ctx)) {
        Some(done) => {
            scan.done = Some(done);
            1
        }
        None => 0,
    }
}

/// Takes a token from the port's DHCP bucket. Two CPUs updating one port's
/// entry at once may let one message more through; no lock is worth that.
#[inline(always)]
fn admit(port: u32) -> bool {
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(state) = dhcp_port(port) else {
        // No room even in an LRU map: the message passes.
        return true;
    };
    // SAFETY: a map value, valid for this run.
    match rate_admit(unsafe { (*state).due_ns }, now) {
        Some(next) => {
            // SAFETY: as above.
            unsafe { (*state).due_ns = next };
            true
        }
        None => false,
    }
}

/// The port's DHCP state, created (a full bucket, nothing offered) on
/// first use.
#[inline(always)]
fn dhcp_port(port: u32) -> Option<*mut DhcpPort> {
    if let Some(state) = DHCP_PORTS.get_ptr_mut(port) {
        return Some(state);
    }
    // Another CPU may have created it since the lookup: then it stays.
    let _ = DHCP_PORTS.insert(port, DhcpPort::default(), BPF_NOEXIST as u64);
    DHCP_PORTS.get_ptr_mut(port)
}

/// Forces the BOOTP broadcast flag (so the server's replies come back as
/// broadcasts a non-promiscuous uplink accepts), puts the uplink's MAC as the
/// Ethernet source (the pod's MAC stays inside the payload only) and sends
/// the frame out of the uplink.
#[inline(always)]
fn relay(ctx: &TcContext, b: &ClientMsg, cfg: &NetConfig) -> Result<Verdict, Verdict> {
    if let Some(flags) = b.broadcast_flags() {
        ctx.store(b.flags_off(), &flags, 0).map_err(|_| ERROR)?;
        // A payload change: no pseudo-header part. The helper copes with
        // every ip_summed (with CHECKSUM_PARTIAL the field is left alone, the
        // device or the stack sums the payload later). No
        // BPF_F_RECOMPUTE_CSUM on the store: skb->csum matters on receive
        // only, and this frame is transmitted.
        ctx.l4_csum_replace(
            b.csum_off(),
            u64::from(u16::from_ne_bytes(b.flags)),
            u64::from(u16::from_ne_bytes(flags)),
            CSUM_2_UDP,
        )
        .map_err(|_| ERROR)?;
    }
    ctx.store(ETH_SRC_OFF, &cfg.uplink_mac, 0)
        .map_err(|_| ERROR)?;
    Ok((redirect(cfg.uplink_ifindex), Reason::DhcpRelayed))
}

/// A server's reply whose `chaddr` is a pod's goes to that pod's port with
/// the pod's MAC as the Ethernet destination; others pass untouched (the
/// node's own DHCP client keeps working).
#[inline(always)]
pub(crate) fn to_pod(ctx: &TcContext, reply: &Reply) -> Result<Verdict, Verdict> {
    let Some(port) = BY_MAC.get_ptr(MacKey::new(reply.chaddr)) else {
        return Ok(PASS);
    };
    // SAFETY: a map value, valid for this run.
    let port = unsafe { *port };
    // What the server gives the pod is the pod's to decline (snooping).
    if reply.yiaddr != 0 {
        if let Some(state) = dhcp_port(port) {
            // SAFETY: a map value, valid for this run.
            unsafe { (*state).offered = reply.yiaddr };
        }
    }
    // Destination := the pod's MAC (a broadcast OFFER/ACK would otherwise
    // reach the pod as a broadcast, which clients accept too, but a unicast
    // frame to the right MAC is what a relay delivers).
    ctx.store(0, &reply.chaddr, 0).map_err(|_| ERROR)?;
    Ok((redirect(port), Reason::DhcpToPod))
}

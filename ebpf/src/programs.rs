//! `lb_from_pod` and `lb_from_uplink`: thin entry points over the parsers and
//! verdicts of `lanbridge_common::packet`, plus the packet rewrites, which
//! only kernel helpers can do.

use aya_ebpf::{
    bindings::__sk_buff,
    bindings::{BPF_F_MARK_MANGLED_0, BPF_NOEXIST, TC_ACT_SHOT, TC_ACT_UNSPEC},
    btf_maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap},
    cty::c_void,
    helpers::{bpf_ktime_get_ns, bpf_loop, bpf_redirect},
    macros::{btf_map, classifier},
    programs::TcContext,
};
use lanbridge_common::{
    frame::{guard, parse_frame, Ip4, Kind},
    ip6,
    packet::{parse_from_pod, parse_from_uplink, ClientMsg, FromPod, Packet, Short, ETH_SRC_OFF},
    snoop::{self, rate_admit, ClientOptions, OptionScan, PodVerdict, MAX_OPTION_STEPS},
    DhcpPort, Endpoint, FlowKey, MacKey, NetConfig, Reason, StatKey, CFG_ENFORCE, CFG_FAST_PATH,
    CFG_LAN_MODE, MAP_BY_IP, MAP_BY_IP6, MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG, MAP_DHCP_PORTS,
    MAP_ENDPOINTS, MAP_FLOWS, MAP_SCAN, MAP_SLOW_CIDRS, MAP_STATS, MAX_ENDPOINTS, MAX_FLOWS,
    MAX_SLOW_CIDRS, MAX_STATS, PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK,
};

use crate::{egress, fast};

// The aya macros take names as literals (or from the item's identifier);
// these checks keep them equal to the shared constants.
const _: () = assert!(str_eq(PROG_FROM_POD, "lb_from_pod"));
const _: () = assert!(str_eq(PROG_FROM_UPLINK, "lb_from_uplink"));
const _: () = assert!(str_eq(MAP_ENDPOINTS, "lb_endpoints"));
const _: () = assert!(str_eq(MAP_BY_MAC, "lb_by_mac"));
const _: () = assert!(str_eq(MAP_BY_IP, "lb_by_ip"));
const _: () = assert!(str_eq(MAP_BY_IP6, "lb_by_ip6"));
const _: () = assert!(str_eq(MAP_CONFIG, "lb_config"));
const _: () = assert!(str_eq(MAP_STATS, "lb_stats"));
const _: () = assert!(str_eq(MAP_SLOW_CIDRS, "lb_slow_cidrs"));
const _: () = assert!(str_eq(MAP_CLUSTER, "lb_cluster"));
const _: () = assert!(str_eq(MAP_FLOWS, "lb_flows"));
const _: () = assert!(str_eq(PROG_TO_POD, "lb_to_pod"));
const _: () = assert!(str_eq(PROG_TO_UPLINK, "lb_to_uplink"));
const _: () = assert!(str_eq(MAP_DHCP_PORTS, "lb_dhcp_ports"));
const _: () = assert!(str_eq(MAP_SCAN, "lb_scan"));

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// BTF maps (`.maps` section): loadable by aya and by libbpf/bpftool alike.

#[btf_map(name = "lb_endpoints")]
pub(crate) static ENDPOINTS: HashMap<u32, Endpoint, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_by_mac")]
static BY_MAC: HashMap<MacKey, u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_by_ip")]
pub(crate) static BY_IP: HashMap<u32, u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_by_ip6")]
pub(crate) static BY_IP6: HashMap<[u8; 16], u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_config")]
static CONFIG: Array<NetConfig, 1> = Array::new();

#[btf_map(name = "lb_slow_cidrs")]
pub(crate) static SLOW_CIDRS: LpmTrie<u32, u8, { MAX_SLOW_CIDRS as usize }> = LpmTrie::new();

#[btf_map(name = "lb_cluster")]
pub(crate) static CLUSTER: LpmTrie<u32, u8, { MAX_SLOW_CIDRS as usize }> = LpmTrie::new();

#[btf_map(name = "lb_flows")]
pub(crate) static FLOWS: LruHashMap<FlowKey, u64, { MAX_FLOWS as usize }> = LruHashMap::new();

#[btf_map(name = "lb_dhcp_ports")]
static DHCP_PORTS: LruHashMap<u32, DhcpPort, { MAX_ENDPOINTS as usize }> = LruHashMap::new();

/// The option scan's state, in map memory: the verifier does not track what
/// a map value holds, so the steps of the `bpf_loop` below all look alike to
/// it and it checks one. (On the stack, each step's values made new states:
/// millions of instructions.)
#[btf_map(name = "lb_scan")]
static SCAN: PerCpuArray<Scan, 1> = PerCpuArray::new();

#[btf_map(name = "lb_stats")]
static STATS: PerCpuHashMap<StatKey, u64, { MAX_STATS as usize }> = PerCpuHashMap::new();

/// A verdict: the TC action and the counter it goes to.
pub(crate) type Verdict = (i32, Reason);

/// "No opinion": with TCX the next program on the hook runs (TC_ACT_OK would
/// end the chain and hide packets from, say, another network's program on
/// the same uplink); after the last one the packet goes to the stack.
pub(crate) const PASS: Verdict = (TC_ACT_UNSPEC, Reason::Passed);
/// A helper failed after the packet may have been changed.
pub(crate) const ERROR: Verdict = (TC_ACT_SHOT, Reason::DropError);
/// `bpf_redirect` flags: 0 = the egress of the target device.
const EGRESS: u64 = 0;
/// `bpf_l4_csum_replace` flags: a 2-byte field that is not part of the
/// pseudo header; a zero UDP checksum (none) stays zero, and a computed zero
/// is written as 0xffff.
const CSUM_2_UDP: u64 = 2 | BPF_F_MARK_MANGLED_0 as u64;

/// TC ingress on a pod's host-side veth (packets leaving the pod).
#[classifier]
pub fn lb_from_pod(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    let (action, reason) = from_pod(&ctx, ifindex).unwrap_or_else(|e| e);
    count(ifindex, reason);
    action
}

/// TC ingress on the uplink (packets from the LAN). Counted under the
/// uplink's ifindex.
#[classifier]
pub fn lb_from_uplink(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    let (action, reason) = from_uplink(&ctx).unwrap_or_else(|e| e);
    count(ifindex, reason);
    action
}

/// TC egress on a pod's host-side veth: what the host stack sends the pod.
/// Only drops are counted (this hook sees every packet of the pod).
#[classifier]
pub fn lb_to_pod(ctx: TcContext) -> i32 {
    let ifindex = ifindex(&ctx);
    let (action, reason) = egress::to_pod(&ctx, ifindex);
    if reason.is_drop() {
        count(ifindex, reason);
    }
    action
}

/// TC egress on the uplink: what leaves the node for the LAN.
#[classifier]
pub fn lb_to_uplink(ctx: TcContext) -> i32 {
    egress::to_uplink(&ctx);
    TC_ACT_UNSPEC
}

/// Source guard first (every mode), then DHCP snooping and relay and the RA
/// guard, then the fast path (lan mode).
#[inline(always)]
fn from_pod(ctx: &TcContext, ifindex: u32) -> Result<Verdict, Verdict> {
    // A port without an endpoint (not, or no longer, a pod of this network)
    // gets no verdict.
    let Some(ep) = ENDPOINTS.get_ptr(ifindex) else {
        return Ok(PASS);
    };
    // SAFETY: a map value, valid for this run (RCU). An update of this very
    // entry while the packet is judged could at worst mix old and new values
    // for this one packet; the loader writes an endpoint before the pod runs.
    // A reference, not a copy: the stack is small (512 bytes for the whole
    // program) and the endpoint is not.
    let ep = unsafe { &*ep };
    let cfg = config();
    let enforce = cfg.flags & CFG_ENFORCE != 0;
    // Written field by field by `classify` (zeroed here: no undefined
    // padding reaches the verifier).
    let mut ip = Ip4 {
        off: 0,
        proto: 0,
        ttl: 0,
        saddr: 0,
        daddr: 0,
        fragment: false,
        sport: 0,
        dport: 0,
    };
    let class = Class::unpack(classify(ctx, ep, enforce, (&raw mut ip).cast()));
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
    if ip.proto == lanbridge_common::frame::IPPROTO_UDP && !ip.fragment {
        if ip.sport == 67 || ip.dport == 68 {
            return Ok((TC_ACT_SHOT, Reason::DropDhcpServer));
        }
        if ip.sport == 68 && ip.dport == 67 {
            return Ok(unpack(dhcp_client_packed(ctx, ifindex, ep, &cfg)));
        }
    }
    if cfg.flags & CFG_FAST_PATH == 0 || class.tagged || vlan_tagged(ctx) {
        return Ok(PASS);
    }
    Ok(unpack(fast_path_packed(ctx, &ip, ep, &cfg)))
}

// `lb_from_pod`'s stages run in BPF subprograms of their own, each beside
// (not on top of) the others on a small main frame: a call chain has 512
// bytes of stack, and the frame parser's two instances, the DHCP snooping,
// the IPv6 guard and the fast path each need a good part of it inlined. A
// subprogram returns one register: results come packed in a `u64`, and
// structured data crosses only as a flat `Ip4` behind a byte pointer (a
// pointer to a Rust enum would put a BTF type in the object that the kernel
// rejects).

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
    /// The IPv6 header's offset ([`KIND_IPV6`]).
    ipv6_off: usize,
}

impl Class {
    /// Bits 0-7: 1 + drop reason (0: none); 8-15: kind; 16: tagged; 32-47:
    /// IPv6 offset.
    #[inline(always)]
    fn pack(&self) -> u64 {
        let drop = self.drop.map_or(0, |r| r as u64 + 1);
        drop | u64::from(self.kind) << 8
            | u64::from(self.tagged) << 16
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
            ipv6_off: ((bits >> 32) & 0xffff) as usize,
        }
    }
}

/// Parses the frame and, with `enforce`, runs the source guard on it; an
/// IPv4 header goes to `ip_out` (the caller's zeroed `Ip4`). A frame too
/// short to parse is "other": it passes, with nothing to act on.
#[inline(never)]
fn classify(ctx: &TcContext, ep: &Endpoint, enforce: bool, ip_out: *mut u8) -> u64 {
    let Some(frame) = parse!(ctx, parse_frame) else {
        return 0;
    };
    let mut class = Class {
        drop: None,
        kind: KIND_OTHER,
        tagged: frame.tagged,
        ipv6_off: 0,
    };
    if enforce {
        if let Err(reason) = guard(&frame, ep) {
            class.drop = Some(reason);
            return class.pack();
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
    class.pack()
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

/// [`dhcp_client`] in a BPF subprogram of its own, the verdict [`pack`]ed.
#[inline(never)]
fn dhcp_client_packed(ctx: &TcContext, port: u32, ep: &Endpoint, cfg: &NetConfig) -> u64 {
    pack(dhcp_client(ctx, port, ep, cfg).unwrap_or_else(|e| e))
}

/// A verdict in one register: the TC action's bits high, the reason low.
#[inline(always)]
fn pack((action, reason): Verdict) -> u64 {
    (u64::from(action as u32) << 32) | reason as u64
}

#[inline(always)]
fn unpack(packed: u64) -> Verdict {
    // SAFETY: only [`pack`] makes these values, from a valid `Reason`.
    let reason = unsafe { core::mem::transmute::<u32, Reason>(packed as u32) };
    ((packed >> 32) as u32 as i32, reason)
}

/// A pod's DHCP client message, broadcast or unicast: snooped, rate
/// limited, and relayed when it is a broadcast the relay carries.
#[inline(always)]
fn dhcp_client(
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

/// A scan of a message's options under way in `bpf_loop`.
struct Scan {
    scan: OptionScan,
    done: Option<Result<(), Reason>>,
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

#[inline(always)]
pub(crate) fn config() -> NetConfig {
    match CONFIG.get(0) {
        Some(cfg) => *cfg,
        None => NetConfig::default(),
    }
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

/// DHCP server replies whose `chaddr` is a pod's go to that pod's port with
/// the pod's MAC as the Ethernet destination; all else passes untouched (the
/// node's own DHCP client keeps working).
#[inline(always)]
fn from_uplink(ctx: &TcContext) -> Result<Verdict, Verdict> {
    // A tag in the skb's metadata: a frame of a VLAN of the node, see
    // `vlan_tagged`. Pods live on the untagged LAN.
    if vlan_tagged(ctx) {
        return Ok(PASS);
    }
    let reply = match parse!(ctx, parse_from_uplink) {
        Some(Some(reply)) => reply,
        Some(None) => return fast::from_uplink(ctx, &config()),
        None => return Ok(PASS),
    };
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

#[inline(always)]
pub(crate) fn redirect(ifindex: u32) -> i32 {
    // SAFETY: a plain helper call; TC_ACT_REDIRECT, or TC_ACT_SHOT for bad
    // flags (these are constant and valid).
    unsafe { bpf_redirect(ifindex, EGRESS) as i32 }
}

#[inline(always)]
fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: the context the kernel passed in; `ifindex` is readable by TC
    // programs (the device the hook runs on).
    unsafe { (*ctx.skb.skb).ifindex }
}

/// A VLAN tag with a non-zero id held in the skb's metadata. On receive the
/// kernel moves the outer tag out of the frame into `vlan_tci` before TC
/// ingress runs, so a single-tagged frame shows no tag in the packet data;
/// an in-frame tag (the inner one of QinQ, or a BPF_PROG_TEST_RUN input) is
/// handled by the parser. VID 0 (priority tag) counts as untagged.
#[inline(always)]
pub(crate) fn vlan_tagged(ctx: &TcContext) -> bool {
    // SAFETY: as in `ifindex`; both fields are readable by TC programs.
    let (present, tci) = unsafe { ((*ctx.skb.skb).vlan_present, (*ctx.skb.skb).vlan_tci) };
    present != 0 && tci & 0x0fff != 0
}

/// Per-CPU packet counter of (ifindex, reason): increments the slot, creates
/// it on first use.
#[inline(always)]
fn count(ifindex: u32, reason: Reason) {
    let key = StatKey {
        ifindex,
        reason: reason as u32,
    };
    if let Some(slot) = STATS.get_ptr_mut(key) {
        // SAFETY: this CPU's slot; TC programs do not preempt each other on
        // one CPU.
        unsafe { *slot += 1 };
        return;
    }
    // Another CPU may have created the entry since the lookup: then it
    // exists with a zero slot for this CPU.
    if STATS.insert(key, 1, BPF_NOEXIST as u64).is_err() {
        if let Some(slot) = STATS.get_ptr_mut(key) {
            // SAFETY: as above.
            unsafe { *slot += 1 };
        }
    }
}

/// The linear part of the skb as a [`Packet`], read in place: the fast path.
pub(crate) struct Direct<'a>(pub(crate) &'a TcContext);

impl Packet for Direct<'_> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short> {
        // Volatile: each read gets its own `data` and its own check.
        // Otherwise LLVM reuses one `data` for several reads and drops checks
        // that a later, larger one implies, which the verifier cannot follow
        // (it tracks ranges per checked pointer).
        // SAFETY: context fields readable by TC programs.
        let (start, end) = unsafe {
            let skb = self.0.skb.skb;
            (
                core::ptr::read_volatile(&raw const (*skb).data) as usize,
                core::ptr::read_volatile(&raw const (*skb).data_end) as usize,
            )
        };
        if start + off + N > end {
            return Err(Short);
        }
        // SAFETY: within [data, data_end), checked just above.
        Ok(unsafe { core::ptr::read_unaligned((start + off) as *const [u8; N]) })
    }
}

/// The whole skb as a [`Packet`], copied out by `bpf_skb_load_bytes`, which
/// also reaches paged data.
pub(crate) struct Loaded<'a>(pub(crate) &'a TcContext);

impl Packet for Loaded<'_> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short> {
        self.0.load::<[u8; N]>(off).map_err(|_| Short)
    }
}

/// Runs a parser on the linear data, and again through
/// `bpf_skb_load_bytes` when that was too short: headers in paged data (a
/// NIC that splits headers, or a pod crafting such skbs to slip past the
/// guard) are parsed, not passed blindly. `None` when the frame is really
/// too short (it then passes: nothing to act on). A macro, not a function
/// taking the parser: each instance must be inlined, and LLVM does not
/// inline through a function item passed as a value.
macro_rules! parse {
    ($ctx:expr, $parser:ident) => {
        match $parser(&Direct($ctx)) {
            Ok(v) => Some(v),
            Err(lanbridge_common::packet::Short) => $parser(&Loaded($ctx)).ok(),
        }
    };
}
pub(crate) use parse;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Kernel-visible license; GPL-compatible so GPL-only helpers may be used.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

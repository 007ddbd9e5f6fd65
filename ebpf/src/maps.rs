//! Every map of the programs (BTF maps, `.maps` section: loadable by aya and
//! by libbpf/bpftool alike), under the names the loader pins them by.

use aya_ebpf::{
    btf_maps::{
        lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf,
    },
    macros::btf_map,
};
use lanbridge_common::{
    event::{DropEvent, EventBucket, EVENTS_BYTES},
    ip_slots::{ip_slot, IpSlot, IP_SLOTS, IP_SLOTS_HEADER, MAP_IP_SLOTS, SLOTS_COMPLETE},
    port::{
        port_slot, Port, PortCounters, MAP_PORTS, MAP_PORT_STATS, MAP_UPLINK_STATS, PORT_SLOTS,
    },
    prefix::{Prefixes, MAP_PREFIXES},
    snoop::OptionScan,
    DhcpPort, Endpoint, FlowKey, MacKey, NetConfig, Reason, StatKey, FLOW_SEEN_SLOTS, MAP_BY_IP,
    MAP_BY_IP6, MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG, MAP_DHCP_PORTS, MAP_ENDPOINTS, MAP_EVENTS,
    MAP_EVENT_RATE, MAP_FLOWS, MAP_FLOW_SEEN, MAP_SCAN, MAP_SLOW_CIDRS, MAP_STATS, MAX_ENDPOINTS,
    MAX_FLOWS, MAX_SLOW_CIDRS, MAX_STATS,
};

// The aya macros take names as literals; these checks keep them equal to
// the shared constants.
const _: () = assert!(str_eq(MAP_ENDPOINTS, "lb_endpoints"));
const _: () = assert!(str_eq(MAP_BY_MAC, "lb_by_mac"));
const _: () = assert!(str_eq(MAP_BY_IP, "lb_by_ip"));
const _: () = assert!(str_eq(MAP_BY_IP6, "lb_by_ip6"));
const _: () = assert!(str_eq(MAP_CONFIG, "lb_config"));
const _: () = assert!(str_eq(MAP_STATS, "lb_stats"));
const _: () = assert!(str_eq(MAP_SLOW_CIDRS, "lb_slow_cidrs"));
const _: () = assert!(str_eq(MAP_CLUSTER, "lb_cluster"));
const _: () = assert!(str_eq(MAP_FLOWS, "lb_flows"));
const _: () = assert!(str_eq(MAP_FLOW_SEEN, "lb_flow_seen"));
const _: () = assert!(str_eq(MAP_PORTS, "lb_ports"));
const _: () = assert!(str_eq(MAP_PORT_STATS, "lb_port_stats"));
const _: () = assert!(str_eq(MAP_IP_SLOTS, "lb_ip_slots"));
const _: () = assert!(str_eq(MAP_UPLINK_STATS, "lb_uplink_stats"));
const _: () = assert!(str_eq(MAP_PREFIXES, "lb_prefixes"));
const _: () = assert!(str_eq(MAP_DHCP_PORTS, "lb_dhcp_ports"));
const _: () = assert!(str_eq(MAP_SCAN, "lb_scan"));
const _: () = assert!(str_eq(MAP_EVENTS, "lb_events"));
const _: () = assert!(str_eq(MAP_EVENT_RATE, "lb_event_rate"));

pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
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

#[btf_map(name = "lb_endpoints")]
static ENDPOINTS: HashMap<u32, Endpoint, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_ports")]
static PORTS: Array<Port, { PORT_SLOTS as usize }> = Array::new();

#[btf_map(name = "lb_port_stats")]
pub(crate) static PORT_STATS: PerCpuArray<PortCounters, { PORT_SLOTS as usize }> =
    PerCpuArray::new();

#[btf_map(name = "lb_uplink_stats")]
pub(crate) static UPLINK_STATS: PerCpuArray<PortCounters, 1> = PerCpuArray::new();

#[btf_map(name = "lb_by_mac")]
pub(crate) static BY_MAC: HashMap<MacKey, u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_by_ip")]
static BY_IP: HashMap<u32, u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

/// The slots, then the header.
#[btf_map(name = "lb_ip_slots")]
static IP_SLOT_TABLE: Array<IpSlot, { IP_SLOTS as usize + 1 }> = Array::new();

#[btf_map(name = "lb_by_ip6")]
pub(crate) static BY_IP6: HashMap<[u8; 16], u32, { MAX_ENDPOINTS as usize }> = HashMap::new();

#[btf_map(name = "lb_config")]
static CONFIG: Array<NetConfig, 1> = Array::new();

#[btf_map(name = "lb_prefixes")]
static PREFIXES: Array<Prefixes, 1> = Array::new();

#[btf_map(name = "lb_slow_cidrs")]
static SLOW_CIDRS: LpmTrie<u32, u8, { MAX_SLOW_CIDRS as usize }> = LpmTrie::new();

#[btf_map(name = "lb_cluster")]
static CLUSTER: LpmTrie<u32, u8, { MAX_SLOW_CIDRS as usize }> = LpmTrie::new();

#[btf_map(name = "lb_flows")]
pub(crate) static FLOWS: LruHashMap<FlowKey, u64, { MAX_FLOWS as usize }> = LruHashMap::new();

#[btf_map(name = "lb_flow_seen")]
pub(crate) static FLOW_SEEN: Array<u32, { FLOW_SEEN_SLOTS as usize }> = Array::new();

#[btf_map(name = "lb_dhcp_ports")]
pub(crate) static DHCP_PORTS: LruHashMap<u32, DhcpPort, { MAX_ENDPOINTS as usize }> =
    LruHashMap::new();

/// The option scan's state, in map memory: the verifier does not track what
/// a map value holds, so the steps of the `bpf_loop` in `dhcp` all look
/// alike to it and it checks one. (On the stack, each step's values made
/// new states: millions of instructions.)
#[btf_map(name = "lb_scan")]
pub(crate) static SCAN: PerCpuArray<Scan, 1> = PerCpuArray::new();

#[btf_map(name = "lb_stats")]
pub(crate) static STATS: PerCpuHashMap<StatKey, u64, { MAX_STATS as usize }> = PerCpuHashMap::new();

#[btf_map(name = "lb_events")]
pub(crate) static EVENTS: RingBuf<DropEvent, { EVENTS_BYTES as usize }> = RingBuf::new();

#[btf_map(name = "lb_event_rate")]
pub(crate) static EVENT_RATE: LruHashMap<u32, EventBucket, { MAX_ENDPOINTS as usize }> =
    LruHashMap::new();

/// A scan of a message's options under way in `bpf_loop` (`lb_scan`'s value).
pub(crate) struct Scan {
    pub(crate) scan: OptionScan,
    pub(crate) done: Option<Result<(), Reason>>,
}

/// The network's configuration (all off before the loader wrote it), in
/// place: no copy on the stack. `None` never happens (index 0 of a
/// one-entry array); the verifier wants the check.
#[inline(always)]
pub(crate) fn config() -> Option<&'static NetConfig> {
    CONFIG.get(0)
}

/// The port in `ifindex`'s slot of `lb_ports`, if it is that port's.
#[inline(always)]
pub(crate) fn own_slot(ifindex: u32) -> Option<&'static Port> {
    PORTS
        .get(port_slot(ifindex))
        .filter(|port| port.ifindex == ifindex)
}

/// The endpoint of the port `ifindex`: from its slot of `lb_ports`, or
/// from `lb_endpoints` when another port holds the slot. A map value, valid
/// for this run.
#[inline(always)]
pub(crate) fn endpoint(ifindex: u32) -> Option<&'static Endpoint> {
    find_port(ifindex).map(|(ep, _)| ep)
}

/// [`endpoint`], and whether it came from the port's slot (where its
/// counters are too: [`crate::stats::count_port`] needs no second lookup).
#[inline(always)]
pub(crate) fn find_port(ifindex: u32) -> Option<(&'static Endpoint, bool)> {
    if let Some(port) = own_slot(ifindex) {
        return Some((&port.ep, true));
    }
    // SAFETY: a map value, valid for this run (RCU).
    ENDPOINTS
        .get_ptr(ifindex)
        .map(|ep| (unsafe { &*ep }, false))
}

/// The port of the pod of this network with IPv4 address `addr`: from
/// `lb_ip_slots` when it speaks for `addr` (one array read, most often
/// "none" for the LAN's hosts), else from `lb_by_ip`.
#[inline(always)]
pub(crate) fn pod_port(addr: u32) -> Option<u32> {
    let complete = IP_SLOT_TABLE
        .get(IP_SLOTS_HEADER)
        .is_some_and(|header| header.flags & SLOTS_COMPLETE != 0);
    if complete {
        if let Some(found) = IP_SLOT_TABLE.get(ip_slot(addr)).and_then(|s| s.find(addr)) {
            return found;
        }
    }
    // SAFETY: a map value, valid for this run.
    BY_IP.get_ptr(addr).map(|port| unsafe { *port })
}

/// Whether `addr` is a destination that always takes the host stack
/// (`lb_slow_cidrs`): from `lb_prefixes` when the set is held there.
#[inline(always)]
pub(crate) fn slow_destination(addr: u32) -> bool {
    match PREFIXES.get(0).and_then(|p| p.slow.contains(addr)) {
        Some(slow) => slow,
        None => SLOW_CIDRS.get(&Key::new(32, addr)).is_some(),
    }
}

/// Whether `addr` is in a cluster CIDR (`lb_cluster`), likewise.
#[inline(always)]
pub(crate) fn cluster_destination(addr: u32) -> bool {
    match PREFIXES.get(0).and_then(|p| p.cluster.contains(addr)) {
        Some(cluster) => cluster,
        None => CLUSTER.get(&Key::new(32, addr)).is_some(),
    }
}

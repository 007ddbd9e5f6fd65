//! Names and map layouts shared by the eBPF programs (`lanbridge-ebpf`) and
//! the loader in the `lanbridge` binary. `bpftool` shows these names, so each
//! is at most 15 bytes (the kernel's BPF_OBJ_NAME_LEN - 1).
#![no_std]

pub mod event;
pub mod frame;
pub mod ip6;
pub mod ip_slots;
pub mod packet;
pub mod port;
pub mod prefix;
pub mod snoop;

/// TC ingress on a pod's host-side veth: packets leaving the pod.
pub const PROG_FROM_POD: &str = "lb_from_pod";
/// TC ingress on the uplink.
pub const PROG_FROM_UPLINK: &str = "lb_from_uplink";
/// TC egress on a pod's host-side veth: packets the host stack sends to the
/// pod (lan mode), whose replies must take the stack too.
pub const PROG_TO_POD: &str = "lb_to_pod";
/// TC egress on the uplink: pod packets the host stack sends to the LAN
/// (lan mode), whose replies must take the stack too.
pub const PROG_TO_UPLINK: &str = "lb_to_uplink";

/// Port ifindex -> [`Endpoint`].
pub const MAP_ENDPOINTS: &str = "lb_endpoints";
/// [`MacKey`] -> port ifindex (`u32`).
pub const MAP_BY_MAC: &str = "lb_by_mac";
/// Pod IPv4 address (`u32`, network byte order) -> port ifindex (`u32`).
pub const MAP_BY_IP: &str = "lb_by_ip";
/// Pod IPv6 address given by IPAM (`[u8; 16]`, wire order) -> port ifindex (`u32`).
pub const MAP_BY_IP6: &str = "lb_by_ip6";
/// Index 0 -> [`NetConfig`].
pub const MAP_CONFIG: &str = "lb_config";
/// [`StatKey`] -> packets (`u64`), per CPU.
pub const MAP_STATS: &str = "lb_stats";
/// LPM trie (prefix length, IPv4 address in network byte order) -> `u8`: destinations that always take the host
/// stack (service and cluster CIDRs).
pub const MAP_SLOW_CIDRS: &str = "lb_slow_cidrs";
/// LPM trie, as [`MAP_SLOW_CIDRS`]: subnet mode's cluster CIDRs, the
/// destinations its fast path forwards (everything else is masqueraded by
/// the stack).
pub const MAP_CLUSTER: &str = "lb_cluster";
/// LRU hash [`FlowKey`] -> last seen (`u64`, `bpf_ktime_get_ns`): flows the
/// host stack carried (NAT: services, hostPort), recorded by the egress
/// programs as the key their replies will have, so the replies take the
/// stack too and conntrack can reverse the NAT.
pub const MAP_FLOWS: &str = "lb_flows";
/// Array of [`FLOW_SEEN_SLOTS`] `u32`s: when the egress programs last
/// recorded (or the fast path refreshed) a flow of each slot
/// ([`FlowKey::slot`], the same for both directions) in [`MAP_FLOWS`], in
/// [`flow_seen_time`] units (0: never). The fast path looks `lb_flows` up
/// only for a packet whose slot is recent: most pay one array read instead
/// of two LRU hash lookups.
pub const MAP_FLOW_SEEN: &str = "lb_flow_seen";
/// LRU hash port ifindex -> [`DhcpPort`]: each port's DHCP snooping state.
/// LRU: an evicted entry only gives a port a full bucket again.
pub const MAP_DHCP_PORTS: &str = "lb_dhcp_ports";
/// Per-CPU scratch of `lb_from_pod`'s DHCP option scan (not pinned: only
/// the program uses it).
pub const MAP_SCAN: &str = "lb_scan";
/// Ring buffer of [`event::DropEvent`]s, drained by the daemon.
pub const MAP_EVENTS: &str = "lb_events";
/// LRU hash port ifindex -> [`event::EventBucket`]: each port's event rate
/// limit (an evicted entry only gives a port a full bucket again).
pub const MAP_EVENT_RATE: &str = "lb_event_rate";

/// The `ifindex` of [`StatKey`]s holding what the pods removed from the
/// network had counted (DEL folds a port's counters in): no device has
/// index 0, and the programs never count under it.
pub const STAT_DEPARTED: u32 = 0;

pub const MAX_ENDPOINTS: u32 = 4096;
pub const MAX_STATS: u32 = MAX_ENDPOINTS * 16;
pub const MAX_SLOW_CIDRS: u32 = 256;
pub const MAX_FLOWS: u32 = 65536;
/// How long an unused entry of `lb_flows` keeps its flow on the slow path.
/// TCP flows live long in conntrack (established: days); others short.
pub const FLOW_TTL_TCP_NS: u64 = 2 * 3600 * 1_000_000_000;
pub const FLOW_TTL_OTHER_NS: u64 = 180 * 1_000_000_000;
/// Slots of [`MAP_FLOW_SEEN`] (a power of two: [`FlowKey::slot`] takes the
/// top bits of a hash).
pub const FLOW_SEEN_SLOTS: u32 = 1 << FLOW_SEEN_BITS;
const FLOW_SEEN_BITS: u32 = 16;

/// `bpf_ktime_get_ns` in [`MAP_FLOW_SEEN`]'s units of 2^30 ns (~1.07 s),
/// never 0 (which means "never seen").
#[inline(always)]
pub fn flow_seen_time(now_ns: u64) -> u32 {
    ((now_ns >> 30) as u32) | 1
}

/// Whether a slot stamped `seen` may still hold a live `lb_flows` entry
/// at `now` (both [`flow_seen_time`]s): within the longest flow TTL.
#[inline(always)]
pub fn flow_seen_recently(seen: u32, now: u32) -> bool {
    const TTL: u32 = (FLOW_TTL_TCP_NS >> 30) as u32 + 2;
    seen != 0 && now.wrapping_sub(seen) <= TTL
}
/// `skb->mark` bit set on fast-path packets, so the uplink's egress program
/// does not record them as slow-path flows (it clears the bit).
pub const FAST_PATH_MARK: u32 = 0x0010_0000;
/// IPv4 addresses per pod that the source guard accepts.
pub const MAX_IPS: usize = 4;
/// IPv6 addresses per pod (besides its link-local) that the source guard accepts.
pub const MAX_IPS6: usize = 2;
/// The longest DHCP client identifier (option 61) an endpoint holds;
/// lanbridge's are 17 bytes (attachment) or 7 (MAC).
pub const MAX_CLIENT_ID: usize = 32;

/// A rate limit as a token bucket kept in one number (GCRA): `due` is when
/// the next event would be on time (0 = never). One at `now` passes when it
/// is at most `burst - 1` intervals early; the new `due` is returned.
#[inline(always)]
pub fn gcra(due: u64, now: u64, interval: u64, burst: u64) -> Option<u64> {
    let due = if due > now { due } else { now };
    if due - now > (burst - 1) * interval {
        return None;
    }
    Some(due + interval)
}

/// One pod port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    /// `EP_*` flags.
    pub flags: u16,
    /// Addresses given to the pod (network byte order); 0 = unused slot.
    pub ipv4: [u32; MAX_IPS],
    /// IPv6 addresses IPAM gave the pod (wire order); `::` = unused slot.
    pub ipv6: [[u8; 16]; MAX_IPS6],
    /// The DHCP client identifier (option 61, type byte first) lanbridge's
    /// DHCP IPAM uses for this attachment; the pod's DHCP messages may
    /// carry no other.
    pub client_id: [u8; MAX_CLIENT_ID],
    /// Bytes of `client_id` in use; 0 = none assigned (other IPAM): any
    /// identifier passes.
    pub client_id_len: u8,
    pub _pad_client_id: [u8; 3],
}

impl Endpoint {
    /// Whether `addr` (network byte order) is one of the pod's addresses.
    #[inline(always)]
    pub fn owns(&self, addr: u32) -> bool {
        addr != 0
            && (self.ipv4[0] == addr
                || self.ipv4[1] == addr
                || self.ipv4[2] == addr
                || self.ipv4[3] == addr)
    }

    /// Whether `addr` is the pod's EUI-64 link-local address or one IPAM
    /// gave it.
    #[inline(always)]
    pub fn owns6(&self, addr: &[u8; 16]) -> bool {
        !ip6::is_unspecified(addr)
            && (ip6::is_link_local_of(addr, &self.mac)
                || ip6::addr_eq(addr, &self.ipv6[0])
                || ip6::addr_eq(addr, &self.ipv6[1]))
    }

    /// Records the DHCP client identifier; `false` (nothing changed) when it
    /// is longer than [`MAX_CLIENT_ID`].
    pub fn set_client_id(&mut self, id: &[u8]) -> bool {
        let Some(slot) = self.client_id.get_mut(..id.len()) else {
            return false;
        };
        slot.copy_from_slice(id);
        self.client_id_len = id.len() as u8;
        true
    }
}

/// The pod's DHCP client packets are relayed to the uplink (lan mode).
pub const EP_DHCP_RELAY: u16 = 1;
/// The pod's IPv4 sources are checked against `ipv4` (IPAM gave addresses).
pub const EP_GUARD_IP: u16 = 2;
/// `portIsolation`: no traffic to other isolated pods of the node.
pub const EP_ISOLATED: u16 = 4;
/// The pod's IPv6 sources and neighbour discovery are checked against its
/// link-local address and `ipv6` (IPAM configured the pod). A high bit,
/// clear of the flags other work adds next to the ones above.
pub const EP_GUARD_IP6: u16 = 0x100;

/// A port's DHCP snooping state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhcpPort {
    /// The rate limit's token bucket, as the time (`bpf_ktime_get_ns`) the
    /// port's next message is due ([`snoop::rate_admit`]); 0 = none sent.
    pub due_ns: u64,
    /// The address (network byte order) a server last offered or
    /// acknowledged to the pod (`yiaddr` of a reply `lb_from_uplink`
    /// steered to it): the pod may DECLINE it before IPAM records it.
    pub offered: u32,
    pub _pad: u32,
}

/// Per-network settings, one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// 0 when the network has no uplink (subnet mode).
    pub uplink_ifindex: u32,
    pub bridge_ifindex: u32,
    pub uplink_mac: [u8; 6],
    /// Source MAC of frames the fast path delivers to pods (their gateway).
    pub bridge_mac: [u8; 6],
    /// `CFG_*` flags.
    pub flags: u16,
    pub _pad: u16,
}

/// lan mode: relay DHCP client broadcasts, steer replies.
pub const CFG_LAN_MODE: u16 = 1;
/// Source guard: pods send only from their own MAC and addresses.
pub const CFG_ENFORCE: u16 = 2;
/// Forward pod traffic in eBPF: lan mode, pod <-> LAN and pod <-> pod;
/// subnet mode, pod -> other nodes' pods (`lb_cluster`).
pub const CFG_FAST_PATH: u16 = 4;

/// A flow's 5-tuple as one direction's packets carry it (addresses in
/// network byte order, ports in host order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    // Two fields, not `[u8; 3]`: three zero bytes compile to a call of the
    // BPF `memset` byte loop, on every packet that looks its flow up.
    pub _pad: u8,
    pub _pad_hi: u16,
}

impl FlowKey {
    /// The key of the packets flowing the other way.
    #[inline(always)]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            saddr: self.daddr,
            daddr: self.saddr,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            _pad: 0,
            _pad_hi: 0,
        }
    }

    /// The flow's slot in [`MAP_FLOW_SEEN`]: a hash of the 5-tuple that is
    /// the same for both directions (addresses and ports enter by XOR).
    #[inline(always)]
    pub fn slot(&self) -> u32 {
        let addrs = (self.saddr ^ self.daddr).wrapping_mul(0x9e37_79b1);
        let ports = u32::from(self.sport ^ self.dport) | u32::from(self.proto) << 16;
        (addrs ^ ports).wrapping_mul(0x85eb_ca6b) >> (32 - FLOW_SEEN_BITS)
    }
}

/// A MAC as a hash key (padded to 8 bytes so both sides agree on the size).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MacKey {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

impl MacKey {
    #[inline(always)]
    pub fn new(mac: [u8; 6]) -> MacKey {
        MacKey { mac, _pad: [0; 2] }
    }
}

/// A counter: which port (ifindex; the uplink's for `lb_from_uplink`) and why.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StatKey {
    pub ifindex: u32,
    pub reason: u32,
}

/// Why a packet got its verdict. Values are stable: tools read them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Passed to the kernel untouched.
    Passed = 0,
    /// A pod's DHCP client broadcast, redirected out of the uplink.
    DhcpRelayed = 1,
    /// A DHCP server reply steered to the pod whose MAC is its `chaddr`.
    DhcpToPod = 2,
    /// Dropped: a pod sent a DHCP server packet (UDP source port 67, or
    /// destination port 68, the client port).
    DropDhcpServer = 3,
    /// Dropped: a DHCP client packet from a pod with a foreign source
    /// (MAC other than the pod's, or an IP neither 0.0.0.0 nor the pod's).
    DropDhcpSpoof = 4,
    /// Dropped: rewriting a relayed or steered packet failed half-way (a
    /// kernel helper returned an error); the sender retransmits.
    DropError = 5,
    /// Fast path: a pod's packet sent straight out of the uplink.
    FastToLan = 6,
    /// Fast path: a packet delivered straight into a pod (from the LAN or
    /// from another pod of the node).
    FastToPod = 7,
    /// To the host stack: a service or cluster destination (iptables DNAT).
    SlowService = 8,
    /// To the host stack: a flow the stack carried the other way (NAT).
    SlowFlow = 9,
    /// Dropped: a frame from a pod with a source MAC not its own.
    DropSpoofMac = 10,
    /// Dropped: an IPv4 packet from a pod with a source address not its own.
    DropSpoofIp = 11,
    /// Dropped: ARP from a pod claiming a MAC or an address not its own.
    DropArpSpoof = 12,
    /// Dropped: between two isolated pods (`portIsolation`).
    DropIsolated = 13,
    /// Dropped: a pod's DHCP client message for another hardware address
    /// (`chaddr` not the pod's MAC, or not Ethernet).
    DropDhcpChaddr = 14,
    /// Dropped: a pod's DHCP client message with a client identifier
    /// (option 61) other than the one lanbridge assigned to it.
    DropDhcpClientId = 15,
    /// Dropped: a DHCP message from a pod that is no client message
    /// (not BOOTREQUEST, no option 53, or a type only servers send).
    DropDhcpType = 16,
    /// Dropped: a pod's DHCP message about an address not its own
    /// (DECLINE, RELEASE, `ciaddr`).
    DropDhcpAddr = 17,
    /// Dropped: a pod posing as a relay agent (`giaddr` set, option 82).
    DropDhcpAgent = 18,
    /// Dropped: a pod's DHCP message that cannot be judged whole (truncated,
    /// no magic cookie, options malformed, repeated or overloaded, or more
    /// than the parser's bound).
    DropDhcpMalformed = 19,
    /// Dropped: a pod's DHCP messages beyond its rate limit.
    DropDhcpRate = 20,
    // IPv6 guard (values from 24).
    /// Dropped: an ICMPv6 router advertisement from a pod (RA guard, RFC 6105).
    DropRa = 24,
    /// Dropped: an ICMPv6 redirect from a pod.
    DropRedirect6 = 25,
    /// Dropped: a DHCPv6 server or relay packet from a pod (UDP from port
    /// 547, or to port 546, the client port).
    DropDhcp6Server = 26,
    /// Dropped: IPv6 whose upper-layer header cannot be judged (more
    /// extension headers than the guard walks, or a first fragment ending
    /// before the upper-layer header; RFC 7112).
    DropIp6Unjudged = 27,
    /// Dropped: IPv6 from a pod with a source neither its link-local
    /// address nor one IPAM gave it (`::` only for DAD, RS and MLD reports).
    DropSpoofIp6 = 28,
    /// Dropped: a neighbour solicitation or advertisement from a pod for an
    /// address or with a link-layer address not its own.
    DropNdSpoof = 29,
}

impl Reason {
    pub const ALL: [Reason; 27] = [
        Reason::Passed,
        Reason::DhcpRelayed,
        Reason::DhcpToPod,
        Reason::DropDhcpServer,
        Reason::DropDhcpSpoof,
        Reason::DropError,
        Reason::FastToLan,
        Reason::FastToPod,
        Reason::SlowService,
        Reason::SlowFlow,
        Reason::DropSpoofMac,
        Reason::DropSpoofIp,
        Reason::DropArpSpoof,
        Reason::DropIsolated,
        Reason::DropDhcpChaddr,
        Reason::DropDhcpClientId,
        Reason::DropDhcpType,
        Reason::DropDhcpAddr,
        Reason::DropDhcpAgent,
        Reason::DropDhcpMalformed,
        Reason::DropDhcpRate,
        Reason::DropRa,
        Reason::DropRedirect6,
        Reason::DropDhcp6Server,
        Reason::DropIp6Unjudged,
        Reason::DropSpoofIp6,
        Reason::DropNdSpoof,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Passed => "passed",
            Reason::DhcpRelayed => "dhcp_relayed",
            Reason::DhcpToPod => "dhcp_to_pod",
            Reason::DropDhcpServer => "drop_dhcp_server",
            Reason::DropDhcpSpoof => "drop_dhcp_spoof",
            Reason::DropError => "drop_error",
            Reason::FastToLan => "fast_to_lan",
            Reason::FastToPod => "fast_to_pod",
            Reason::SlowService => "slow_service",
            Reason::SlowFlow => "slow_flow",
            Reason::DropSpoofMac => "drop_spoof_mac",
            Reason::DropSpoofIp => "drop_spoof_ip",
            Reason::DropArpSpoof => "drop_arp_spoof",
            Reason::DropIsolated => "drop_isolated",
            Reason::DropDhcpChaddr => "drop_dhcp_chaddr",
            Reason::DropDhcpClientId => "drop_dhcp_client_id",
            Reason::DropDhcpType => "drop_dhcp_type",
            Reason::DropDhcpAddr => "drop_dhcp_addr",
            Reason::DropDhcpAgent => "drop_dhcp_agent",
            Reason::DropDhcpMalformed => "drop_dhcp_malformed",
            Reason::DropDhcpRate => "drop_dhcp_rate",
            Reason::DropRa => "drop_ra",
            Reason::DropRedirect6 => "drop_redirect6",
            Reason::DropDhcp6Server => "drop_dhcp6_server",
            Reason::DropIp6Unjudged => "drop_ip6_unjudged",
            Reason::DropSpoofIp6 => "drop_spoof_ip6",
            Reason::DropNdSpoof => "drop_nd_spoof",
        }
    }

    pub fn from_u32(v: u32) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| *r as u32 == v)
    }

    pub fn is_drop(self) -> bool {
        matches!(
            self,
            Reason::DropDhcpServer
                | Reason::DropDhcpSpoof
                | Reason::DropError
                | Reason::DropSpoofMac
                | Reason::DropSpoofIp
                | Reason::DropArpSpoof
                | Reason::DropIsolated
                | Reason::DropDhcpChaddr
                | Reason::DropDhcpClientId
                | Reason::DropDhcpType
                | Reason::DropDhcpAddr
                | Reason::DropDhcpAgent
                | Reason::DropDhcpMalformed
                | Reason::DropDhcpRate
                | Reason::DropRa
                | Reason::DropRedirect6
                | Reason::DropDhcp6Server
                | Reason::DropIp6Unjudged
                | Reason::DropSpoofIp6
                | Reason::DropNdSpoof
        )
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data without padding holes that matter to the
    // kernel; every bit pattern is a valid value.
    unsafe impl aya::Pod for super::Endpoint {}
    unsafe impl aya::Pod for super::NetConfig {}
    unsafe impl aya::Pod for super::MacKey {}
    unsafe impl aya::Pod for super::StatKey {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::DhcpPort {}
    unsafe impl aya::Pod for super::port::Port {}
    unsafe impl aya::Pod for super::ip_slots::IpSlot {}
    unsafe impl aya::Pod for super::prefix::Prefixes {}
    unsafe impl aya::Pod for super::event::DropEvent {}
    unsafe impl aya::Pod for super::event::EventBucket {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_bpf_obj_name_len() {
        for name in [
            PROG_FROM_POD,
            PROG_FROM_UPLINK,
            PROG_TO_POD,
            MAP_ENDPOINTS,
            MAP_BY_MAC,
            MAP_BY_IP,
            MAP_BY_IP6,
            MAP_CONFIG,
            MAP_STATS,
            MAP_SLOW_CIDRS,
            MAP_CLUSTER,
            MAP_FLOWS,
            MAP_FLOW_SEEN,
            port::MAP_PORTS,
            port::MAP_PORT_STATS,
            port::MAP_UPLINK_STATS,
            ip_slots::MAP_IP_SLOTS,
            prefix::MAP_PREFIXES,
            PROG_TO_UPLINK,
            MAP_DHCP_PORTS,
            MAP_SCAN,
            MAP_EVENTS,
            MAP_EVENT_RATE,
        ] {
            assert!(name.len() <= 15, "{name} is longer than 15 bytes");
        }
    }

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Endpoint>(), 92);
        assert_eq!(core::mem::size_of::<NetConfig>(), 24);
        assert_eq!(core::mem::size_of::<port::Port>(), 96);
        assert_eq!(core::mem::size_of::<ip_slots::IpSlot>(), 12);
        assert_eq!(core::mem::size_of::<prefix::Prefixes>(), 136);
        assert_eq!(core::mem::size_of::<FlowKey>(), 16);
        assert_eq!(core::mem::size_of::<MacKey>(), 8);
        assert_eq!(core::mem::size_of::<StatKey>(), 8);
        assert_eq!(core::mem::size_of::<DhcpPort>(), 16);
        assert_eq!(core::mem::size_of::<event::DropEvent>(), 72);
        assert_eq!(core::mem::size_of::<event::EventBucket>(), 16);
    }

    #[test]
    fn both_directions_of_a_flow_share_a_slot() {
        let flow = FlowKey {
            saddr: 0x3201_a8c0,
            daddr: 0x0100_090a,
            sport: 40000,
            dport: 443,
            proto: 6,
            _pad: 0,
            _pad_hi: 0,
        };
        assert_eq!(flow.slot(), flow.reversed().slot());
        assert!(flow.slot() < FLOW_SEEN_SLOTS);
        // Neighbouring source ports spread over the slots.
        let mut slots: [u32; 64] = [0; 64];
        for (i, slot) in slots.iter_mut().enumerate() {
            *slot = FlowKey {
                sport: 40000 + i as u16,
                ..flow
            }
            .slot();
        }
        slots.sort_unstable();
        assert!(slots.windows(2).filter(|w| w[0] == w[1]).count() <= 2);
    }

    #[test]
    fn flow_seen_times_expire_after_the_longest_ttl() {
        let t0 = 5_000_000_000_000;
        let seen = flow_seen_time(t0);
        assert!(flow_seen_recently(seen, flow_seen_time(t0)));
        assert!(flow_seen_recently(
            seen,
            flow_seen_time(t0 + FLOW_TTL_TCP_NS)
        ));
        assert!(!flow_seen_recently(
            seen,
            flow_seen_time(t0 + FLOW_TTL_TCP_NS + 4_000_000_000)
        ));
        assert!(!flow_seen_recently(0, flow_seen_time(t0)));
        assert_ne!(flow_seen_time(0), 0);
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_u32(r as u32), Some(r));
        }
        assert!(Reason::DropDhcpServer.is_drop() && !Reason::DhcpRelayed.is_drop());
    }

    #[test]
    fn owns_ignores_empty_slots() {
        let ep = Endpoint {
            ipv4: [0x0a00_0002, 0, 0, 0],
            ..Endpoint::default()
        };
        assert!(ep.owns(0x0a00_0002));
        assert!(!ep.owns(0));
    }

    #[test]
    fn client_ids_fit_or_are_refused() {
        let mut ep = Endpoint::default();
        assert!(ep.set_client_id(&[0, 1, 2]));
        assert_eq!((ep.client_id_len, &ep.client_id[..3]), (3, &[0, 1, 2][..]));
        assert!(!ep.set_client_id(&[7; MAX_CLIENT_ID + 1]));
        assert_eq!(ep.client_id_len, 3);
        assert!(ep.set_client_id(&[7; MAX_CLIENT_ID]));
    }
}

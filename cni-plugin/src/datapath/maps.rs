//! Typed handles on a network's pinned maps.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, IterableMap, Map, MapData, PerCpuHashMap, PerCpuValues};
use ipnet::Ipv4Net;
use lanbridge_common::{
    event::EventBucket,
    ip_slots::{self, MAP_IP_SLOTS},
    port::{table, MAP_PORTS, MAP_PORT_STATS, MAP_UPLINK_STATS},
    prefix::{PrefixSet, Prefixes, MAP_PREFIXES},
    DhcpPort, Endpoint, FlowKey, MacKey, NetConfig, Reason, StatKey, MAP_BY_IP, MAP_BY_IP6,
    MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG, MAP_DHCP_PORTS, MAP_ENDPOINTS, MAP_EVENT_RATE, MAP_FLOWS,
    MAP_SLOW_CIDRS, MAP_STATS, STAT_DEPARTED,
};

use super::error::DatapathError;
use super::pins::Pins;
use super::raw;
use crate::node::gone::{done, found};

pub struct Maps {
    pub endpoints: HashMap<MapData, u32, Endpoint>,
    /// The endpoints again, each in its port's slot if free (see
    /// `lanbridge_common::port`), with the counters of that slot.
    pub ports: table::Ports,
    pub port_stats: table::Counters,
    /// The uplink's counters (one entry).
    pub uplink_stats: table::Counters,
    pub by_mac: HashMap<MapData, MacKey, u32>,
    pub by_ip: HashMap<MapData, u32, u32>,
    /// `by_ip` again, direct-mapped (see `lanbridge_common::ip_slots`).
    pub ip_slots: ip_slots::table::Slots,
    pub by_ip6: HashMap<MapData, [u8; 16], u32>,
    pub config: Array<MapData, NetConfig>,
    pub stats: PerCpuHashMap<MapData, StatKey, u64>,
    /// The sets of `slow_cidrs` and `cluster`, inline when small.
    pub prefixes: Array<MapData, Prefixes>,
    pub slow_cidrs: LpmTrie<MapData, u32, u8>,
    pub cluster: LpmTrie<MapData, u32, u8>,
    pub flows: HashMap<MapData, FlowKey, u64>,
    /// Port -> its DHCP snooping state (rate limit, offered address).
    pub dhcp_ports: HashMap<MapData, u32, DhcpPort>,
    /// Port -> its drop event rate limit.
    pub event_rate: HashMap<MapData, u32, EventBucket>,
    /// Where the writers of `ip_slots` take their lock.
    pins: Pins,
}

fn open(pins: &Pins, name: &'static str, wrap: fn(MapData) -> Map) -> Result<Map, DatapathError> {
    let data = MapData::from_pin(pins.object(name))
        .map_err(|source| DatapathError::Map { name, source })?;
    Ok(wrap(data))
}

macro_rules! typed {
    ($pins:expr, $name:expr, $variant:ident) => {
        open($pins, $name, Map::$variant)?
            .try_into()
            .map_err(|source| DatapathError::Map {
                name: $name,
                source,
            })?
    };
}

impl Maps {
    pub fn open(pins: &Pins) -> Result<Maps, DatapathError> {
        Ok(Maps {
            endpoints: typed!(pins, MAP_ENDPOINTS, HashMap),
            ports: typed!(pins, MAP_PORTS, Array),
            port_stats: typed!(pins, MAP_PORT_STATS, PerCpuArray),
            uplink_stats: typed!(pins, MAP_UPLINK_STATS, PerCpuArray),
            by_mac: typed!(pins, MAP_BY_MAC, HashMap),
            by_ip: typed!(pins, MAP_BY_IP, HashMap),
            ip_slots: typed!(pins, MAP_IP_SLOTS, Array),
            by_ip6: typed!(pins, MAP_BY_IP6, HashMap),
            config: typed!(pins, MAP_CONFIG, Array),
            stats: typed!(pins, MAP_STATS, PerCpuHashMap),
            prefixes: typed!(pins, MAP_PREFIXES, Array),
            slow_cidrs: typed!(pins, MAP_SLOW_CIDRS, LpmTrie),
            cluster: typed!(pins, MAP_CLUSTER, LpmTrie),
            flows: typed!(pins, MAP_FLOWS, LruHashMap),
            dhcp_ports: typed!(pins, MAP_DHCP_PORTS, LruHashMap),
            event_rate: typed!(pins, MAP_EVENT_RATE, LruHashMap),
            pins: pins.clone(),
        })
    }

    pub fn config(&self) -> Result<NetConfig, DatapathError> {
        self.config.get(&0, 0).map_err(|source| DatapathError::Map {
            name: MAP_CONFIG,
            source,
        })
    }

    pub fn set_config(&mut self, config: NetConfig) -> Result<(), DatapathError> {
        self.config
            .set(0, config, 0)
            .map_err(|source| DatapathError::Map {
                name: MAP_CONFIG,
                source,
            })
    }

    /// Writes `cidrs` as the set `which` picks in `lb_prefixes` (after its
    /// trie, which holds every set in full).
    pub fn set_inline_prefixes(
        &mut self,
        which: fn(&mut Prefixes) -> &mut PrefixSet,
        cidrs: &[Ipv4Net],
    ) -> Result<(), DatapathError> {
        let err = |source| DatapathError::Map {
            name: MAP_PREFIXES,
            source,
        };
        let nets: Vec<(u32, u8)> = cidrs
            .iter()
            .map(|n| (ip_key(n.network()), n.prefix_len()))
            .collect();
        let mut all = self.prefixes.get(&0, 0).map_err(err)?;
        *which(&mut all) = PrefixSet::new(&nets);
        self.prefixes.set(0, all, 0).map_err(err)
    }

    /// Adds or replaces a port's endpoint and its MAC and IP index entries.
    pub fn put_endpoint(&mut self, port: u32, ep: Endpoint) -> Result<(), DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        self.endpoints
            .insert(port, ep, 0)
            .map_err(err(MAP_ENDPOINTS))?;
        table::put(&mut self.ports, &mut self.port_stats, port, ep).map_err(err(MAP_PORTS))?;
        self.by_mac
            .insert(MacKey::new(ep.mac), port, 0)
            .map_err(err(MAP_BY_MAC))?;
        let ipv4 = || ep.ipv4.iter().filter(|ip| **ip != 0);
        // Both indexes under the lock: a rebuild of the slots reads
        // `lb_by_ip` whole. The slots after `lb_by_ip`: a slot never names
        // what the hash lacks.
        let _writers = ipv4().next().map(|_| self.pins.lock()).transpose()?;
        for ip in ipv4() {
            self.by_ip.insert(*ip, port, 0).map_err(err(MAP_BY_IP))?;
        }
        for ip in ipv4() {
            ip_slots::table::put(&mut self.ip_slots, *ip, port).map_err(err(MAP_IP_SLOTS))?;
        }
        for ip in ipv6_in_use(&ep) {
            self.by_ip6.insert(ip, port, 0).map_err(err(MAP_BY_IP6))?;
        }
        Ok(())
    }

    /// Drops the IP index entries of `ep`'s addresses that still point at
    /// `port` (a newer pod may hold one of them by now).
    pub fn remove_ips(&mut self, port: u32, ep: &Endpoint) -> Result<(), DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        for ip in ep.ipv4.iter().filter(|ip| **ip != 0) {
            if found(self.by_ip.get(ip, 0)).map_err(err(MAP_BY_IP))? == Some(port) {
                // As in `put_endpoint`; the slot first.
                let _writers = self.pins.lock()?;
                ip_slots::table::remove(&mut self.ip_slots, *ip, port)
                    .map_err(err(MAP_IP_SLOTS))?;
                done(self.by_ip.remove(ip)).map_err(err(MAP_BY_IP))?;
            }
        }
        for ip in ipv6_in_use(ep) {
            if found(self.by_ip6.get(ip, 0)).map_err(err(MAP_BY_IP6))? == Some(port) {
                done(self.by_ip6.remove(ip)).map_err(err(MAP_BY_IP6))?;
            }
        }
        Ok(())
    }

    /// Makes `lb_ip_slots` follow `lb_by_ip` and speak for absent
    /// addresses: after this build loaded the maps (`fresh`: both just
    /// created, empty) or replaced another build's programs (whose table
    /// may be missing or stale). The caller holds the load lock.
    pub fn rebuild_ip_slots(pins: &Pins, fresh: bool) -> Result<(), DatapathError> {
        let mut maps = Maps::open(pins)?;
        let err = |name| move |source| DatapathError::Map { name, source };
        let by_ip: Vec<(u32, u32)> = match fresh {
            true => Vec::new(),
            false => maps
                .by_ip
                .iter()
                .collect::<Result<_, _>>()
                .map_err(err(MAP_BY_IP))?,
        };
        ip_slots::table::rebuild(&mut maps.ip_slots, by_ip, !fresh).map_err(err(MAP_IP_SLOTS))
    }

    pub fn endpoint(&self, port: u32) -> Result<Option<Endpoint>, DatapathError> {
        found(self.endpoints.get(&port, 0)).map_err(|source| DatapathError::Map {
            name: MAP_ENDPOINTS,
            source,
        })
    }

    /// Drops the flows recorded for `ep`'s addresses (either direction), so
    /// a later pod with one of them starts clean. The keys are read in
    /// batches: the map holds the node's flows, up to 65,536.
    fn remove_flows(&mut self, ep: &Endpoint) -> Result<(), DatapathError> {
        let err = |e| DatapathError::io(format!("removing the pod's flows from {MAP_FLOWS}"), e);
        let fd = self.flows.map().fd().as_fd();
        let size = std::mem::size_of::<FlowKey>();
        let keys = raw::hash_keys(fd, size, std::mem::size_of::<u64>()).map_err(err)?;
        let ip_at = |key: &[u8], at: usize| {
            u32::from_ne_bytes(key[at..at + 4].try_into().expect("4 bytes"))
        };
        let mine = |ip: u32| ip != 0 && ep.ipv4.contains(&ip);
        for key in keys.chunks_exact(size) {
            let (saddr, daddr) = (
                ip_at(key, std::mem::offset_of!(FlowKey, saddr)),
                ip_at(key, std::mem::offset_of!(FlowKey, daddr)),
            );
            if mine(saddr) || mine(daddr) {
                raw::delete(fd, key).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Removes a port's entries; entries already gone are fine.
    pub fn remove_port(&mut self, port: u32) -> Result<(), DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        if let Some(ep) = self.endpoint(port)? {
            let mac = MacKey::new(ep.mac);
            if found(self.by_mac.get(&mac, 0)).map_err(err(MAP_BY_MAC))? == Some(port) {
                done(self.by_mac.remove(&mac)).map_err(err(MAP_BY_MAC))?;
            }
            self.remove_ips(port, &ep)?;
            self.remove_flows(&ep)?;
        }
        // The slot first: a port is in `lb_endpoints` as long as in a slot.
        let in_slot =
            table::release(&mut self.ports, &mut self.port_stats, port).map_err(err(MAP_PORTS))?;
        for (reason, n) in in_slot.iter().flatten().enumerate() {
            if *n > 0 {
                self.fold_departed(reason as u32, *n)?;
            }
        }
        done(self.endpoints.remove(&port)).map_err(err(MAP_ENDPOINTS))?;
        // The port's counters by key, one per reason value (gaps included:
        // an older build's reasons): walking every key of the map took a
        // system call per port and reason on the node.
        let last = Reason::ALL.iter().map(|r| *r as u32).max().unwrap_or(0);
        for reason in 0..=last {
            let key = StatKey {
                ifindex: port,
                reason,
            };
            let Some(counted) = found(self.stats.get(&key, 0)).map_err(err(MAP_STATS))? else {
                continue;
            };
            // The network keeps what the pod counted (drops above all).
            let n = counted.iter().sum::<u64>();
            if n > 0 {
                self.fold_departed(key.reason, n)?;
            }
            done(self.stats.remove(&key)).map_err(err(MAP_STATS))?;
        }
        // A later pod on a reused ifindex starts afresh: full buckets,
        // nothing offered.
        done(self.dhcp_ports.remove(&port)).map_err(err(MAP_DHCP_PORTS))?;
        done(self.event_rate.remove(&port)).map_err(err(MAP_EVENT_RATE))?;
        Ok(())
    }

    /// Adds `n` packets of `reason` to the departed pods' counter. Two DELs
    /// at once may lose one's share (a read-modify-write of one entry);
    /// the programs never write it.
    fn fold_departed(&mut self, reason: u32, n: u64) -> Result<(), DatapathError> {
        let err = |source| DatapathError::Map {
            name: MAP_STATS,
            source,
        };
        let key = StatKey {
            ifindex: STAT_DEPARTED,
            reason,
        };
        let mut values = match found(self.stats.get(&key, 0)).map_err(err)? {
            Some(values) => values.to_vec(),
            None => vec![
                0;
                aya::util::nr_cpus()
                    .map_err(|(_, e)| DatapathError::io("counting CPUs", e))?
            ],
        };
        values[0] += n;
        let values =
            PerCpuValues::try_from(values).map_err(|e| DatapathError::io("per-CPU counters", e))?;
        self.stats.insert(key, values, 0).map_err(err)
    }

    pub fn endpoints(&self) -> Result<Vec<(u32, Endpoint)>, DatapathError> {
        self.endpoints
            .iter()
            .collect::<Result<_, _>>()
            .map_err(|source| DatapathError::Map {
                name: MAP_ENDPOINTS,
                source,
            })
    }

    /// Counters summed over CPUs: those of `lb_stats` and those of the
    /// ports' slots (the reasons counted there are not in `lb_stats`).
    pub fn stats(&self) -> Result<Vec<(StatKey, u64)>, DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        let mut all: Vec<(StatKey, u64)> = self
            .stats
            .iter()
            .map(|r| r.map(|(k, per_cpu)| (k, per_cpu.iter().sum())))
            .collect::<Result<_, _>>()
            .map_err(err(MAP_STATS))?;
        let ports: Vec<u32> = self
            .endpoints
            .keys()
            .collect::<Result<_, _>>()
            .map_err(err(MAP_ENDPOINTS))?;
        let slots =
            table::counted(&self.ports, &self.port_stats, ports).map_err(err(MAP_PORT_STATS))?;
        for (ifindex, counted) in slots {
            let counted = counted.iter().enumerate().filter(|(_, n)| **n > 0);
            all.extend(counted.map(|(reason, n)| {
                let reason = reason as u32;
                (StatKey { ifindex, reason }, *n)
            }));
        }
        let uplink = self.config()?.uplink_ifindex;
        if uplink != 0 {
            let counted = table::sum(&self.uplink_stats, 0).map_err(err(MAP_UPLINK_STATS))?;
            all.extend(
                counted
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(reason, n)| {
                        let reason = reason as u32;
                        (
                            StatKey {
                                ifindex: uplink,
                                reason,
                            },
                            *n,
                        )
                    }),
            );
        }
        // A port counted in `lb_stats` before it got its slot, the uplink
        // before `lb_uplink_stats` (another build): one entry.
        all.sort_by_key(|(k, _)| (k.ifindex, k.reason));
        all.dedup_by(|(k, n), (kept, total)| {
            let same = k == kept;
            if same {
                *total += *n;
            }
            same
        });
        Ok(all)
    }
}

/// Makes an LPM trie of prefixes hold exactly `cidrs`.
pub fn set_prefixes(
    trie: &mut LpmTrie<MapData, u32, u8>,
    name: &'static str,
    cidrs: &[Ipv4Net],
) -> Result<(), DatapathError> {
    let err = |source| DatapathError::Map { name, source };
    let want: Vec<Key<u32>> = cidrs
        .iter()
        .map(|n| Key::new(u32::from(n.prefix_len()), ip_key(n.network())))
        .collect();
    let same =
        |a: &Key<u32>, b: &Key<u32>| a.prefix_len() == b.prefix_len() && a.data() == b.data();
    let stale: Vec<Key<u32>> = trie
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !want.iter().any(|w| same(w, k)))
        .collect();
    for key in &stale {
        done(trie.remove(key)).map_err(err)?;
    }
    for key in &want {
        trie.insert(key, 1, 0).map_err(err)?;
    }
    Ok(())
}

/// The endpoint's IPv6 slots that hold an address.
fn ipv6_in_use(ep: &Endpoint) -> impl Iterator<Item = &[u8; 16]> {
    ep.ipv6.iter().filter(|ip| **ip != [0; 16])
}

/// The map encoding of an IPv4 address (network byte order in a `u32`).
pub fn ip_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

pub fn ip_from_key(key: u32) -> Ipv4Addr {
    Ipv4Addr::from(key.to_ne_bytes())
}

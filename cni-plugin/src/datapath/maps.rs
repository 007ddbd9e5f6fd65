//! Typed handles on a network's pinned maps.

use std::net::Ipv4Addr;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, Map, MapData, MapError, PerCpuHashMap};
use ipnet::Ipv4Net;
use lanbridge_common::{
    DhcpPort, Endpoint, MacKey, NetConfig, StatKey, MAP_BY_IP, MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG,
    MAP_DHCP_PORTS, MAP_ENDPOINTS, MAP_SLOW_CIDRS, MAP_STATS,
};

use super::error::DatapathError;
use super::pins::Pins;

pub struct Maps {
    pub endpoints: HashMap<MapData, u32, Endpoint>,
    pub by_mac: HashMap<MapData, MacKey, u32>,
    pub by_ip: HashMap<MapData, u32, u32>,
    pub config: Array<MapData, NetConfig>,
    pub stats: PerCpuHashMap<MapData, StatKey, u64>,
    pub slow_cidrs: LpmTrie<MapData, u32, u8>,
    pub cluster: LpmTrie<MapData, u32, u8>,
    /// Port -> its DHCP snooping state (rate limit, offered address).
    pub dhcp_ports: HashMap<MapData, u32, DhcpPort>,
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
            by_mac: typed!(pins, MAP_BY_MAC, HashMap),
            by_ip: typed!(pins, MAP_BY_IP, HashMap),
            config: typed!(pins, MAP_CONFIG, Array),
            stats: typed!(pins, MAP_STATS, PerCpuHashMap),
            slow_cidrs: typed!(pins, MAP_SLOW_CIDRS, LpmTrie),
            cluster: typed!(pins, MAP_CLUSTER, LpmTrie),
            dhcp_ports: typed!(pins, MAP_DHCP_PORTS, LruHashMap),
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

    /// Adds or replaces a port's endpoint and its MAC and IP index entries.
    pub fn put_endpoint(&mut self, port: u32, ep: Endpoint) -> Result<(), DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        self.endpoints
            .insert(port, ep, 0)
            .map_err(err(MAP_ENDPOINTS))?;
        self.by_mac
            .insert(MacKey::new(ep.mac), port, 0)
            .map_err(err(MAP_BY_MAC))?;
        for ip in ep.ipv4.iter().filter(|ip| **ip != 0) {
            self.by_ip.insert(*ip, port, 0).map_err(err(MAP_BY_IP))?;
        }
        Ok(())
    }

    /// Drops the IP index entries of `ep`'s addresses.
    pub fn remove_ips(&mut self, ep: &Endpoint) -> Result<(), DatapathError> {
        for ip in ep.ipv4.iter().filter(|ip| **ip != 0) {
            ignore_missing(self.by_ip.remove(ip)).map_err(|source| DatapathError::Map {
                name: MAP_BY_IP,
                source,
            })?;
        }
        Ok(())
    }

    /// Removes a port's entries; entries already gone are fine.
    pub fn remove_port(&mut self, port: u32) -> Result<(), DatapathError> {
        let err = |name| move |source| DatapathError::Map { name, source };
        let ep = match self.endpoints.get(&port, 0) {
            Ok(ep) => Some(ep),
            Err(aya::maps::MapError::KeyNotFound) => None,
            Err(e) => return Err(err(MAP_ENDPOINTS)(e)),
        };
        if let Some(ep) = ep {
            ignore_missing(self.by_mac.remove(&MacKey::new(ep.mac))).map_err(err(MAP_BY_MAC))?;
            self.remove_ips(&ep)?;
            ignore_missing(self.endpoints.remove(&port)).map_err(err(MAP_ENDPOINTS))?;
        }
        let stale: Vec<StatKey> = self
            .stats
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.ifindex == port)
            .collect();
        for key in stale {
            ignore_missing(self.stats.remove(&key)).map_err(err(MAP_STATS))?;
        }
        // A later pod on a reused ifindex starts afresh: a full bucket,
        // nothing offered.
        ignore_missing(self.dhcp_ports.remove(&port)).map_err(err(MAP_DHCP_PORTS))?;
        Ok(())
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

    /// Counters summed over CPUs.
    pub fn stats(&self) -> Result<Vec<(StatKey, u64)>, DatapathError> {
        self.stats
            .iter()
            .map(|r| r.map(|(k, per_cpu)| (k, per_cpu.iter().sum())))
            .collect::<Result<_, _>>()
            .map_err(|source| DatapathError::Map {
                name: MAP_STATS,
                source,
            })
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
        ignore_missing(trie.remove(key)).map_err(err)?;
    }
    for key in &want {
        trie.insert(key, 1, 0).map_err(err)?;
    }
    Ok(())
}

/// A missing key is fine: lookups say `KeyNotFound`, deletes ENOENT.
fn ignore_missing(r: Result<(), MapError>) -> Result<(), MapError> {
    match r {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// The map encoding of an IPv4 address (network byte order in a `u32`).
pub fn ip_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

pub fn ip_from_key(key: u32) -> Ipv4Addr {
    Ipv4Addr::from(key.to_ne_bytes())
}

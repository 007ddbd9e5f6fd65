//! Built-in `host-local` IPAM, compatible with the reference plugin's config
//! and on-disk state.

mod allocator;
mod index;
mod owner;
mod range;
mod store;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::{parse_requested, resolv_conf, IpamError, IpamRequest, Result};
use crate::cni::{CniResult, Route};
use owner::Owner;
pub use range::{next_ip, Range, RangeSet};
use store::DiskStore;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    #[serde(default)]
    ranges: Vec<Vec<RawRange>>,
    // The top-level range of old configs (not flattened: error paths then
    // name the key).
    subnet: Option<IpNet>,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<Route>,
    data_dir: Option<PathBuf>,
    resolv_conf: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRange {
    subnet: IpNet,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
}

#[derive(Debug)]
pub struct HostLocal {
    range_sets: Vec<RangeSet>,
    routes: Vec<Route>,
    data_dir: PathBuf,
    resolv_conf: Option<PathBuf>,
}

impl HostLocal {
    /// `ip_ranges`: the runtime's `ipRanges` capability, range sets that
    /// come first, as in the reference.
    pub fn parse(ipam: &Value, ip_ranges: Option<&Value>) -> Result<HostLocal> {
        let raw: RawConf = serde_path_to_error::deserialize(ipam).map_err(|e| {
            IpamError::config(format!("ipam.{}", e.path()), e.into_inner().to_string())
        })?;
        let mut sets: Vec<Vec<RawRange>> = raw.ranges;
        if let Some(subnet) = raw.subnet {
            sets.insert(
                0,
                vec![RawRange {
                    subnet,
                    range_start: raw.range_start,
                    range_end: raw.range_end,
                    gateway: raw.gateway,
                }],
            );
        }
        if let Some(runtime) = ip_ranges {
            let runtime: Vec<Vec<RawRange>> =
                serde_path_to_error::deserialize(runtime).map_err(|e| {
                    let key = format!("runtimeConfig.ipRanges{}", e.path());
                    IpamError::config(key, e.into_inner().to_string())
                })?;
            sets.splice(0..0, runtime);
        }
        if sets.is_empty() {
            return Err(IpamError::config(
                "ipam.ranges",
                "no subnet or ranges given",
            ));
        }
        let mut range_sets: Vec<RangeSet> = Vec::new();
        for (i, set) in sets.into_iter().enumerate() {
            if set.is_empty() {
                return Err(IpamError::config(
                    format!("ipam.ranges[{i}]"),
                    "empty range set",
                ));
            }
            let mut ranges = Vec::new();
            for (j, r) in set.into_iter().enumerate() {
                let range = Range::new(r.subnet, r.range_start, r.range_end, r.gateway)
                    .map_err(|e| IpamError::config(format!("ipam.ranges[{i}][{j}]"), e))?;
                if range.subnet.addr().is_ipv4()
                    != ranges
                        .first()
                        .map_or(range.subnet.addr().is_ipv4(), |f: &Range| {
                            f.subnet.addr().is_ipv4()
                        })
                {
                    return Err(IpamError::config(
                        format!("ipam.ranges[{i}]"),
                        "mixes IPv4 and IPv6",
                    ));
                }
                ranges.push(range);
            }
            let all: Vec<&Range> = range_sets.iter().flatten().chain(ranges.iter()).collect();
            for (a, ra) in all.iter().enumerate() {
                if let Some(rb) = all[a + 1..].iter().find(|rb| ra.overlaps(rb)) {
                    return Err(IpamError::config(
                        format!("ipam.ranges[{i}]"),
                        format!(
                            "range {}-{} overlaps {}-{}",
                            ra.start, ra.end, rb.start, rb.end
                        ),
                    ));
                }
            }
            range_sets.push(ranges);
        }
        Ok(HostLocal {
            range_sets,
            routes: raw.routes,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            resolv_conf: raw.resolv_conf,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn add(&self, req: &IpamRequest) -> Result<CniResult> {
        let mut requested = parse_requested(req)?;
        let owner = owner(req.container_id, req.ifname);
        let mut store = self.store(req.network)?;
        let mut result = CniResult::default();
        for (i, set) in self.range_sets.iter().enumerate() {
            let wanted = requested
                .iter()
                .position(|ip| set.iter().any(|r| r.contains(*ip)))
                .map(|pos| requested.remove(pos));
            match allocator::allocate(&mut store, i, set, &owner, wanted) {
                Ok(ip) => result.ips.push(ip),
                Err(e) => {
                    // Give back what this call took from earlier range sets.
                    allocator::release(&mut store, &owner)?;
                    return Err(e);
                }
            }
        }
        if let Some(ip) = requested.first() {
            allocator::release(&mut store, &owner)?;
            return Err(IpamError::OutOfRange { ip: *ip });
        }
        result.routes = self.routes.clone();
        if let Some(path) = &self.resolv_conf {
            result.dns = resolv_conf::read(path)?;
        }
        Ok(result)
    }

    pub fn del(&self, network: &str, container_id: &str, ifname: &str) -> Result<()> {
        let mut store = self.store(network)?;
        allocator::release(&mut store, &owner(container_id, ifname))?;
        Ok(())
    }

    /// Addresses currently held by the attachment (for CHECK).
    pub fn held(&self, network: &str, container_id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        let mut store = self.store(network)?;
        store::Store::owned_by(&mut store, &owner(container_id, ifname))
    }

    /// Releases every allocation whose owner `keep` rejects.
    pub fn gc(&self, network: &str, keep: impl Fn(&str, &str) -> bool) -> Result<Vec<IpAddr>> {
        let mut store = self.store(network)?;
        let stale: Vec<IpAddr> = store::Store::all(&store)?
            .into_iter()
            .filter(|(_, o)| !keep(&o.container_id, &o.ifname))
            .map(|(ip, _)| ip)
            .collect();
        for ip in &stale {
            store::Store::release(&mut store, *ip)?;
        }
        Ok(stale)
    }
}

impl HostLocal {
    fn store(&self, network: &str) -> Result<DiskStore> {
        DiskStore::open(&self.data_dir, network, self.range_sets.len())
    }
}

fn owner(container_id: &str, ifname: &str) -> Owner {
    Owner {
        container_id: container_id.to_string(),
        ifname: ifname.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::HostLocal;

    fn subnets(h: &HostLocal) -> Vec<String> {
        h.range_sets
            .iter()
            .map(|set| set[0].subnet.to_string())
            .collect()
    }

    #[test]
    fn runtime_ip_ranges_come_first_as_in_the_reference() {
        let ipam = json!({"type": "host-local", "ranges": [[{"subnet": "10.2.0.0/24"}]]});
        let runtime = json!([[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100"}]]);
        let h = HostLocal::parse(&ipam, Some(&runtime)).unwrap();
        assert_eq!(subnets(&h), ["10.1.0.0/24", "10.2.0.0/24"]);
        let err = HostLocal::parse(&ipam, Some(&json!([[{"subnet": "x"}]]))).unwrap_err();
        assert!(err.to_string().contains("runtimeConfig.ipRanges"), "{err}");
    }

    #[test]
    fn a_bad_top_level_range_names_its_key() {
        let err = HostLocal::parse(&json!({"subnet": "10.0.0.0/33"}), None).unwrap_err();
        assert!(err.to_string().contains("ipam.subnet"), "{err}");
    }
}

//! Built-in `static` IPAM: addresses, routes and DNS straight from the config,
//! or from the runtime's requested IPs (which must carry a prefix length).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::{IpamError, IpamRequest, Result};
use crate::cni::{CniResult, Dns, IpConfig, Route};

#[derive(Debug, Deserialize)]
struct RawConf {
    #[serde(default)]
    addresses: Vec<RawAddress>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Debug, Deserialize)]
struct RawAddress {
    address: IpNet,
    gateway: Option<IpAddr>,
}

#[derive(Debug)]
pub struct Static {
    addresses: Vec<IpConfig>,
    routes: Vec<Route>,
    dns: Dns,
}

impl Static {
    pub fn parse(ipam: &Value) -> Result<Static> {
        let raw: RawConf = serde_path_to_error::deserialize(ipam).map_err(|e| {
            IpamError::config(format!("ipam.{}", e.path()), e.into_inner().to_string())
        })?;
        Ok(Static {
            addresses: raw
                .addresses
                .into_iter()
                .map(|a| IpConfig {
                    address: a.address,
                    gateway: a.gateway,
                    interface: None,
                })
                .collect(),
            routes: raw.routes,
            dns: raw.dns,
        })
    }

    pub fn add(&self, req: &IpamRequest) -> Result<CniResult> {
        let ips = if req.requested.is_empty() {
            self.addresses.clone()
        } else {
            req.requested
                .iter()
                .map(|s| {
                    let address = s
                        .parse()
                        .map_err(|_| IpamError::BadRequest { value: s.clone() })?;
                    Ok(IpConfig {
                        address,
                        gateway: None,
                        interface: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        if ips.is_empty() {
            return Err(IpamError::config(
                "ipam.addresses",
                "static IPAM needs at least one address",
            ));
        }
        Ok(CniResult {
            ips,
            routes: self.routes.clone(),
            dns: self.dns.clone(),
            ..CniResult::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req(requested: &[&str]) -> IpamRequest<'static> {
        IpamRequest {
            network: "n",
            container_id: "c",
            ifname: "eth0",
            requested: requested.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn addresses_routes_dns_from_config() {
        let s = Static::parse(&json!({
            "type": "static",
            "addresses": [{"address": "10.10.0.5/24", "gateway": "10.10.0.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.10.0.1"}],
            "dns": {"nameservers": ["10.10.0.53"]}
        }))
        .unwrap();
        let r = s.add(&req(&[])).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.10.0.5/24");
        assert_eq!(r.routes.len(), 1);
        assert_eq!(r.dns.nameservers, ["10.10.0.53"]);
    }

    #[test]
    fn requested_ips_override_and_need_a_prefix() {
        let s = Static::parse(&json!({"type": "static"})).unwrap();
        assert!(matches!(s.add(&req(&[])), Err(IpamError::Config { .. })));
        let r = s.add(&req(&["10.1.0.9/16"])).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.1.0.9/16");
        assert!(matches!(
            s.add(&req(&["10.1.0.9"])),
            Err(IpamError::BadRequest { .. })
        ));
    }

    #[test]
    fn malformed_address_names_the_key() {
        let err = Static::parse(&json!({"addresses": [{"address": "nope"}]})).unwrap_err();
        assert!(matches!(err, IpamError::Config { .. }), "{err}");
        assert!(
            err.to_string().contains("ipam.addresses[0].address"),
            "{err}"
        );
    }
}

//! The CNI result: one internal model (the 1.x shape), converted to and from
//! every wire version a runtime or an IPAM plugin may use.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{Error, Result};
use super::version::Version;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    pub fn via(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

impl CniResult {
    /// Parses a result of any version (prevResult, an IPAM plugin's output).
    pub fn from_wire(value: &Value) -> Result<CniResult> {
        Self::decode(value).map_err(|source| Error::Decode {
            what: "CNI result",
            source,
        })
    }

    /// [`CniResult::from_wire`] for whoever fails in its own terms.
    pub fn decode(value: &Value) -> serde_json::Result<CniResult> {
        if value.get("ip4").is_some() || value.get("ip6").is_some() {
            let legacy: Legacy = serde_json::from_value(value.clone())?;
            return Ok(legacy.into_current());
        }
        // 0.3.x/0.4.0 carry "version" on each IP; serde ignores it.
        serde_json::from_value(value.clone())
    }

    /// Whether the result can be said in `version`: a 0.1.0/0.2.0 result
    /// holds one address of each family, and at least one (the reference
    /// refuses the rest too, rather than drop addresses).
    pub fn fits(&self, version: Version) -> Result<()> {
        if !version.is_legacy() {
            return Ok(());
        }
        let v4 = self
            .ips
            .iter()
            .filter(|i| i.address.addr().is_ipv4())
            .count();
        let v6 = self.ips.len() - v4;
        let reason = match (v4, v6) {
            (0, 0) => "its result needs an address and this network gives none".to_string(),
            (0..=1, 0..=1) => return Ok(()),
            _ => format!(
                "its result holds one address per family; IPAM gave {v4} IPv4 and {v6} IPv6"
            ),
        };
        Err(Error::config(
            "cniVersion",
            format!("{version}: {reason} (use 0.3.0 or later)"),
        ))
    }

    /// Renders the result in the wire format of `version`.
    pub fn to_wire(&self, version: Version) -> Value {
        let mut out = if version.is_legacy() {
            self.to_legacy()
        } else {
            self.to_current(version)
        };
        out.insert("cniVersion".into(), json!(version.to_string()));
        Value::Object(out)
    }

    fn to_current(&self, version: Version) -> Map<String, Value> {
        let mut copy = self.clone();
        if version < Version::V1_1_0 {
            // Interface MTU and the route attributes beyond dst/gw are 1.1.0 fields.
            copy.interfaces.iter_mut().for_each(|i| i.mtu = None);
            copy.routes = copy
                .routes
                .iter()
                .map(|r| Route::via(r.dst, r.gw))
                .collect();
        }
        let Value::Object(mut map) = serde_json::to_value(&copy).expect("result serializes") else {
            unreachable!("a struct serializes to an object")
        };
        if version.tags_ip_version() {
            if let Some(Value::Array(ips)) = map.get_mut("ips") {
                for (ip, cfg) in ips.iter_mut().zip(&self.ips) {
                    let family = if cfg.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    ip["version"] = json!(family);
                }
            }
        }
        map
    }

    fn to_legacy(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (key, v4) in [("ip4", true), ("ip6", false)] {
            let Some(ip) = self.ips.iter().find(|c| c.address.addr().is_ipv4() == v4) else {
                continue;
            };
            let routes: Vec<Value> = self
                .routes
                .iter()
                .filter(|r| r.dst.addr().is_ipv4() == v4)
                .map(|r| json!(Route::via(r.dst, r.gw)))
                .collect();
            let mut entry = json!({ "ip": ip.address.to_string() });
            if let Some(gw) = ip.gateway {
                entry["gateway"] = json!(gw);
            }
            if !routes.is_empty() {
                entry["routes"] = Value::Array(routes);
            }
            map.insert(key.into(), entry);
        }
        if !self.dns.is_empty() {
            map.insert("dns".into(), json!(self.dns));
        }
        map
    }
}

/// The 0.1.0/0.2.0 result layout.
#[derive(Deserialize)]
struct Legacy {
    ip4: Option<LegacyIp>,
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Deserialize)]
struct LegacyIp {
    ip: IpNet,
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<Route>,
}

impl Legacy {
    fn into_current(self) -> CniResult {
        let mut result = CniResult {
            dns: self.dns,
            ..CniResult::default()
        };
        for ip in [self.ip4, self.ip6].into_iter().flatten() {
            result.ips.push(IpConfig {
                address: ip.ip,
                gateway: ip.gateway,
                interface: None,
            });
            result.routes.extend(ip.routes);
        }
        result
    }
}

#[cfg(test)]
mod tests;

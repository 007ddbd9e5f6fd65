//! Reading CNI results of any version (legacy `ip4` or `interfaces`/`ips`).

use serde_json::Value;

/// One address of a result: `address` ("10.244.1.2/24"), `gateway`, and the
/// name of the interface it is on (when the result says).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResultIp {
    pub address: String,
    pub gateway: Option<String>,
    pub interface: Option<String>,
}

/// Addresses of a result, whatever its version.
pub fn ips(result: &Value) -> Vec<ResultIp> {
    if let Some(ip4) = result.get("ip4") {
        let mut v = vec![ResultIp {
            address: ip4["ip"].as_str().unwrap_or_default().to_string(),
            gateway: ip4["gateway"].as_str().map(str::to_string),
            interface: None,
        }];
        if let Some(ip6) = result.get("ip6") {
            v.push(ResultIp {
                address: ip6["ip"].as_str().unwrap_or_default().to_string(),
                gateway: ip6["gateway"].as_str().map(str::to_string),
                interface: None,
            });
        }
        return v;
    }
    let ifaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ip| ResultIp {
            address: ip["address"].as_str().unwrap_or_default().to_string(),
            gateway: ip["gateway"].as_str().map(str::to_string),
            interface: ip["interface"]
                .as_u64()
                .and_then(|i| ifaces.get(i as usize))
                .and_then(|i| i["name"].as_str())
                .map(str::to_string),
        })
        .collect()
}

/// The first address without its prefix length ("10.244.1.2").
pub fn first_ip(result: &Value) -> String {
    let all = ips(result);
    let a = all
        .first()
        .unwrap_or_else(|| panic!("result has no IP: {result}"));
    a.address.split('/').next().unwrap_or_default().to_string()
}

/// Names of the interfaces inside the sandbox (those with a `sandbox`).
pub fn sandbox_interfaces(result: &Value) -> Vec<String> {
    result["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["sandbox"].as_str().is_some_and(|s| !s.is_empty()))
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

/// Names of the host-side interfaces (no `sandbox`), bridge included.
pub fn host_interfaces(result: &Value) -> Vec<String> {
    result["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["sandbox"].as_str().is_none_or(str::is_empty))
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

/// Routes of a result as sorted (dst, gw) pairs.
pub fn routes(result: &Value) -> Vec<(String, Option<String>)> {
    let list = result
        .get("ip4")
        .map(|ip4| &ip4["routes"])
        .unwrap_or(&result["routes"]);
    let mut v: Vec<(String, Option<String>)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["dst"].as_str().unwrap_or_default().to_string(),
                r["gw"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

/// The host-side veth of a result: the host interface that is not `bridge`.
pub fn host_veth(result: &Value, bridge: &str) -> String {
    host_interfaces(result)
        .into_iter()
        .find(|n| n != bridge)
        .unwrap_or_else(|| panic!("result names no host-side veth: {result}"))
}

//! The network configuration: a superset of the reference `bridge` plugin's.
//!
//! Parsing is two steps: stdin must be JSON (else code 6), then each key must
//! have the right type and a sane value (else code 7, naming the key).

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::cni::{env::validate_ifname, CniResult, Dns, Error, Result, Version};
use crate::node::mac::Mac;

pub const DEFAULT_BRIDGE: &str = "cni0";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/lanbridge";
/// The default `pinRoot` on bpffs.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/lanbridge";
/// kubeadm's default service CIDR: without it, a lan-mode pod's traffic to
/// a ClusterIP would follow the LAN's default route.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";

/// The keys as they arrive; validated into [`NetConf`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    #[serde(default = "legacy_version")]
    cni_version: String,
    name: String,
    bridge: Option<String>,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    force_address: bool,
    #[serde(default)]
    ip_masq: bool,
    ip_masq_backend: Option<String>,
    mtu: Option<i64>,
    #[serde(default)]
    hairpin_mode: bool,
    #[serde(default)]
    promisc_mode: bool,
    vlan: Option<i64>,
    #[serde(default)]
    vlan_trunk: Vec<Value>,
    #[serde(default)]
    macspoofchk: bool,
    #[serde(default)]
    port_isolation: bool,
    #[serde(default)]
    enabledad: bool,
    #[serde(default)]
    disable_container_interface: bool,
    uplink: Option<String>,
    enforce: Option<bool>,
    fast_path: Option<bool>,
    service_cidrs: Option<Vec<IpNet>>,
    #[serde(default)]
    cluster_cidrs: Vec<IpNet>,
    state_dir: Option<PathBuf>,
    pin_root: Option<PathBuf>,
    #[serde(default)]
    dns: Dns,
    ipam: Option<Value>,
    #[serde(default)]
    args: Args,
    // Go's JSON decoding ignores case: the reference's own tests write
    // "RuntimeConfig".
    #[serde(default, alias = "RuntimeConfig")]
    runtime_config: RuntimeConfig,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<ValidAttachment>>,
}

#[derive(Debug, Default, Deserialize)]
struct Args {
    #[serde(default)]
    cni: CniArgs,
}

#[derive(Debug, Default, Deserialize)]
struct CniArgs {
    mac: Option<String>,
    #[serde(default)]
    ips: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    mac: Option<String>,
    #[serde(default)]
    ips: Vec<String>,
}

/// One entry of GC's `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// A validated network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub version: Version,
    pub name: String,
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub ip_masq: bool,
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    pub vlan: Option<u16>,
    pub port_isolation: bool,
    pub mac_spoof_check: bool,
    pub enable_dad: bool,
    pub disable_container_interface: bool,
    pub state_dir: PathBuf,
    /// lan mode: the node's NIC towards the LAN (stays out of the bridge).
    pub uplink: Option<String>,
    /// Source guard in `lb_from_pod` (default on).
    pub enforce: bool,
    /// lan mode's eBPF fast path (default on; off: everything is routed by
    /// the stack, through iptables FORWARD).
    pub fast_path: bool,
    /// Destinations that always take the host stack (kube-proxy's DNAT).
    pub service_cidrs: Vec<IpNet>,
    /// The cluster's pod CIDRs: never masqueraded, never fast-pathed in lan mode.
    pub cluster_cidrs: Vec<IpNet>,
    /// bpffs directory holding `<network>/` with the pinned datapath.
    pub pin_root: PathBuf,
    /// DNS settings of the config; when set they win over IPAM's.
    pub dns: Dns,
    /// The `ipam` object, passed as is to built-in or delegated IPAM.
    pub ipam: Option<IpamConf>,
    /// MAC requested by the runtime (`runtimeConfig.mac`, else `args.cni.mac`).
    pub mac: Option<Mac>,
    /// IPs requested by the runtime (`runtimeConfig.ips`, else `args.cni.ips`).
    pub requested_ips: Vec<String>,
    pub prev_result: Option<CniResult>,
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// The config exactly as received, for delegated IPAM.
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub struct IpamConf {
    pub kind: String,
    pub conf: Value,
}

/// Decodes stdin into JSON; only syntax errors are code 6.
pub fn decode(stdin: &[u8]) -> Result<Value> {
    serde_json::from_slice(stdin).map_err(|source| Error::Decode {
        what: "network configuration",
        source,
    })
}

/// A config without `cniVersion` (older guides write them) is 0.1.0, as
/// the reference plugins take it.
const LEGACY_VERSION: &str = "0.1.0";

fn legacy_version() -> String {
    LEGACY_VERSION.to_string()
}

/// The `cniVersion` of a config (0.1.0 when an object has none), so even
/// early errors answer in it.
pub fn peek_version(raw: &Value) -> Option<&str> {
    match raw.get("cniVersion") {
        Some(v) => v.as_str(),
        None => raw.is_object().then_some(LEGACY_VERSION),
    }
}

impl NetConf {
    pub fn parse(raw: Value) -> Result<NetConf> {
        let conf: RawConf = serde_path_to_error::deserialize(&raw).map_err(|e| {
            let key = e.path().to_string();
            Error::config(key, e.into_inner().to_string())
        })?;
        let version = Version::parse(&conf.cni_version)?;
        validate_name(&conf.name)?;

        let bridge = conf.bridge.unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
        validate_ifname(&bridge).map_err(|r| Error::config("bridge", r))?;
        if let Some(uplink) = &conf.uplink {
            validate_ifname(uplink).map_err(|r| Error::config("uplink", r))?;
            let dhcp = conf
                .ipam
                .as_ref()
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                == Some("dhcp");
            if !dhcp {
                return Err(Error::config(
                    "uplink",
                    "lan mode leases from the LAN: it needs \"ipam\": {\"type\": \"dhcp\"}",
                ));
            }
            for (key, set) in [
                ("isGateway", conf.is_gateway),
                ("isDefaultGateway", conf.is_default_gateway),
                ("ipMasq", conf.ip_masq),
            ] {
                if set {
                    return Err(Error::config(key, "contradicts \"uplink\": in lan mode pods use the LAN's router and their own LAN address"));
                }
            }
        }
        if !conf.vlan_trunk.is_empty() {
            return Err(Error::UnsupportedField {
                field: "vlanTrunk",
                reason: "trunk ports are not supported; use vlan".into(),
            });
        }
        match conf.ip_masq_backend.as_deref() {
            // Either way nf_tables over netlink does it, as iptables-nft would.
            None | Some("iptables" | "nftables") => {}
            Some(other) => {
                return Err(Error::config(
                    "ipMasqBackend",
                    format!("{other:?}: \"iptables\" or \"nftables\""),
                ))
            }
        }
        let mtu = match conf.mtu {
            None | Some(0) => None,
            Some(m @ 68..=65535) => Some(m as u32),
            Some(m) => return Err(Error::config("mtu", format!("{m} is not within 68..65535"))),
        };
        let vlan = match conf.vlan {
            None | Some(0) => None,
            Some(v @ 1..=4094) => Some(v as u16),
            Some(v) => return Err(Error::config("vlan", format!("{v} is not within 0..4094"))),
        };
        let mac = match (&conf.runtime_config.mac, &conf.args.cni.mac) {
            (Some(m), _) => {
                Some(Mac::unicast(m).map_err(|r| Error::config("runtimeConfig.mac", r))?)
            }
            (None, Some(m)) => Some(Mac::unicast(m).map_err(|r| Error::config("args.cni.mac", r))?),
            (None, None) => None,
        };
        let requested_ips = if conf.runtime_config.ips.is_empty() {
            conf.args.cni.ips
        } else {
            conf.runtime_config.ips
        };
        // `"ipam": {}` is cni.dev's L2-only example: no addresses, as no `ipam`.
        let ipam = conf
            .ipam
            .filter(|i| i.as_object().is_none_or(|o| !o.is_empty()))
            .map(parse_ipam)
            .transpose()?;
        if conf.disable_container_interface && ipam.is_some() {
            return Err(Error::config(
                "disableContainerInterface",
                "cannot be combined with ipam: the pod's interface stays down and unaddressed",
            ));
        }
        let prev_result = conf
            .prev_result
            .as_ref()
            .map(CniResult::from_wire)
            .transpose()?;

        Ok(NetConf {
            version,
            name: conf.name,
            bridge,
            // As in the reference plugin, a default gateway implies a gateway.
            is_gateway: conf.is_gateway || conf.is_default_gateway,
            is_default_gateway: conf.is_default_gateway,
            force_address: conf.force_address,
            ip_masq: conf.ip_masq,
            mtu,
            hairpin_mode: conf.hairpin_mode,
            promisc_mode: conf.promisc_mode,
            vlan,
            port_isolation: conf.port_isolation,
            mac_spoof_check: conf.macspoofchk,
            enable_dad: conf.enabledad,
            disable_container_interface: conf.disable_container_interface,
            state_dir: conf
                .state_dir
                .unwrap_or_else(|| crate::node::scope::dir(DEFAULT_STATE_DIR)),
            uplink: conf.uplink,
            enforce: conf.enforce.unwrap_or(true),
            fast_path: conf.fast_path.unwrap_or(true),
            service_cidrs: conf
                .service_cidrs
                .unwrap_or_else(|| vec![DEFAULT_SERVICE_CIDR.parse().expect("valid CIDR")]),
            cluster_cidrs: conf.cluster_cidrs,
            pin_root: conf
                .pin_root
                .unwrap_or_else(|| crate::node::scope::dir(DEFAULT_PIN_ROOT)),
            dns: conf.dns,
            ipam,
            mac,
            requested_ips,
            prev_result,
            valid_attachments: conf.valid_attachments,
            raw,
        })
    }
}

fn parse_ipam(value: Value) -> Result<IpamConf> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::config("ipam.type", "missing or not a string"))?;
    if kind.contains('/') {
        return Err(Error::config(
            "ipam.type",
            format!("{kind:?} is not a plugin name"),
        ));
    }
    Ok(IpamConf {
        kind: kind.to_string(),
        conf: value,
    })
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name != "."
        && name != "..";
    if ok {
        return Ok(());
    }
    Err(Error::config(
        "name",
        format!("{name:?} must be non-empty and only alphanumeric, '_', '.' or '-'"),
    ))
}

#[cfg(test)]
mod tests;

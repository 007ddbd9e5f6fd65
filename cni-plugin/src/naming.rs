//! Deterministic names, so DEL and GC find what ADD created.

use sha2::{Digest, Sha256};

fn digest(container_id: &str, ifname: &str) -> String {
    hex::encode(Sha256::digest(format!("{container_id}/{ifname}")))
}

/// Host-side veth: `lb` + 11 hex digits. Never `veth*`, so tools that manage
/// `veth*` links leave ours alone.
pub fn host_veth(container_id: &str, ifname: &str) -> String {
    format!("lb{}", &digest(container_id, ifname)[..11])
}

/// Bridge-side end of the gateway port of VLAN `vid` (the other end is
/// `<bridge>.<vid>` and holds the gateway address).
pub fn vlan_gateway_peer(bridge: &str, vid: u16) -> String {
    format!(
        "lbv{}",
        &hex::encode(Sha256::digest(format!("{bridge}/{vid}")))[..11]
    )
}

/// A locally administered unicast MAC for a new bridge, unique per creation.
pub fn bridge_mac(bridge: &str) -> [u8; 6] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{bridge}/{}/{}", std::process::id(), now.as_nanos());
    let d = Sha256::digest(seed);
    [(d[0] & 0xfc) | 0x02, d[1], d[2], d[3], d[4], d[5]]
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_fit_ifnamsiz_and_differ_per_attachment() {
        let a = super::host_veth("c1", "eth0");
        assert!(a.len() <= 15 && a.starts_with("lb") && !a.starts_with("veth"));
        assert_ne!(a, super::host_veth("c1", "net1"));
        assert_eq!(a, super::host_veth("c1", "eth0"));
        let mac = super::bridge_mac("cni0");
        assert_eq!(mac[0] & 0x03, 0x02, "locally administered unicast");
    }
}

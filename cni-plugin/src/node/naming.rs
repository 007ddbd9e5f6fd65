//! Every name lanbridge gives a node object, deterministic so DEL, GC,
//! cleanup and the agent find what ADD created. (The host firewall's chains
//! and tables are named in its own files until issue 15 gathers them.)

use sha2::{Digest, Sha256};

use crate::node::mac::Mac;

fn digest(container_id: &str, ifname: &str) -> String {
    hex::encode(Sha256::digest(format!("{container_id}/{ifname}")))
}

/// Host-side veth: `lb` + 11 hex digits. Never `veth*`, so tools that manage
/// `veth*` links leave ours alone.
pub fn host_veth(container_id: &str, ifname: &str) -> String {
    format!("lb{}", &digest(container_id, ifname)[..11])
}

/// The kernel's limit on a link alias: `IFALIASZ` (256) counts the NUL
/// rtnetlink sends, and rejects an alias that reaches it.
const ALIAS_MAX: usize = 254;

/// The host veth's alias: says whose port it is to whoever lists links.
/// A container ID too long for the kernel's limit is cut (at a character
/// boundary) and marked with `…`; the interface name is the deterministic
/// key, the alias only a label.
pub fn host_veth_alias(network: &str, container_id: &str, ifname: &str) -> String {
    let full = format!("lanbridge {network} {container_id} {ifname}");
    if full.len() <= ALIAS_MAX {
        return full;
    }
    let fixed = format!("lanbridge {network}  {ifname}…").len();
    let mut cut = ALIAS_MAX.saturating_sub(fixed).min(container_id.len());
    while !container_id.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut alias = format!("lanbridge {network} {}… {ifname}", &container_id[..cut]);
    while alias.len() > ALIAS_MAX {
        alias.pop();
    }
    alias
}

/// iptables' limit on a rule comment (`XT_MAX_COMMENT_LEN` 256, with the NUL).
const COMMENT_MAX: usize = 255;

/// The comment lanbridge puts on an attachment's iptables rules: no spaces,
/// so `-S` prints it unquoted and a rule reads back as plain words. A
/// container ID too long for iptables is replaced by its digest.
pub fn rule_comment(network: &str, container_id: &str) -> String {
    let full = format!("lanbridge:{network}:{container_id}");
    if full.len() <= COMMENT_MAX {
        return full;
    }
    let id = hex::encode(Sha256::digest(container_id));
    format!("lanbridge:{network}:sha256-{id}")
}

/// The comment on a network's own netfilter rules (its FORWARD accepts, its
/// masquerade jump per subnet): the network's tag, a space, `what`. The
/// space sets them apart from an older build's per-attachment comments
/// ([`rule_comment`]). A network name too long for a comment is digested.
pub fn network_rule_comment(network: &str, what: &str) -> String {
    let full = format!("lanbridge:{network} {what}");
    if full.len() <= COMMENT_MAX {
        return full;
    }
    let id = hex::encode(Sha256::digest(network));
    format!("lanbridge:sha256-{id} {what}")
}

/// Whether a rule's comment is one of `network`'s, of this build
/// ([`network_rule_comment`]) or an older one's ([`rule_comment`]).
pub fn is_network_rule(comment: &str, network: &str) -> bool {
    let tag = network_rule_comment(network, "");
    let old = rule_comment(network, "");
    comment.starts_with(&tag) || comment.starts_with(&old)
}

/// lanbridge's own nf_tables tables (`ip`, `ip6`: masquerade; `bridge`:
/// `macspoofchk`).
pub const NFT_TABLE: &str = "lanbridge";

/// lanbridge's chain in iptables' `filter` table, jumped to first from
/// FORWARD.
pub const FORWARD_CHAIN: &str = "LANBRIDGE-FWD";

/// The nat chain masquerading one subnet of a network: named by everything
/// it holds, so a chain that exists is the one wanted.
pub fn masquerade_chain(network: &str, subnet: &str, cluster: &[String]) -> String {
    let digest = Sha256::digest(format!("{network}/{subnet}/{}", cluster.join(",")));
    format!("masq-{}", &hex::encode(digest)[..16])
}

/// An older build's nat chain of one attachment (`LB-` + 20 hex).
pub fn legacy_masquerade_chain(network: &str, container_id: &str) -> String {
    let digest = Sha256::digest(format!("{network}/{container_id}"));
    format!("LB-{}", &hex::encode(digest)[..20].to_uppercase())
}

/// The `macspoofchk` chain of a pod's port.
pub fn mac_spoof_chain(host_veth: &str) -> String {
    format!("mac-spoof-{host_veth}")
}

/// The file of host-local's owner index listing an attachment's addresses.
pub fn ipam_owner_file(container_id: &str, ifname: &str) -> String {
    digest(container_id, ifname)
}

/// Longest file name stem that leaves room for `.json` / `.tmp` (`NAME_MAX` 255).
const STEM_MAX: usize = 250;

/// The attachment record's file name without extension: `<container>:<ifname>`
/// (':' appears in neither), or for IDs too long for a file name the
/// attachment's digest (no ':', so it never reads as an attachment).
pub fn record_file(container_id: &str, ifname: &str) -> String {
    let stem = format!("{container_id}:{ifname}");
    if stem.len() <= STEM_MAX {
        return stem;
    }
    digest(container_id, ifname)
}

/// The attachment a record file's stem names, if it does.
pub fn record_attachment(stem: &str) -> Option<(String, String)> {
    let (cid, ifname) = stem.split_once(':')?;
    Some((cid.to_string(), ifname.to_string()))
}

/// Bridge-side end of the gateway port of VLAN `vid` (the other end is
/// `<bridge>.<vid>` and holds the gateway address).
pub fn vlan_gateway_peer(bridge: &str, vid: u16) -> String {
    format!(
        "lbv{}",
        &hex::encode(Sha256::digest(format!("{bridge}/{vid}")))[..11]
    )
}

/// The VLAN gateway interface of `vid` on `bridge` (holds the gateway address).
pub fn vlan_gateway(bridge: &str, vid: u16) -> String {
    format!("{bridge}.{vid}")
}

/// A network or interface name as a bpffs name. bpffs refuses names with a
/// dot (a network `lan.v1`, a VLAN uplink `eth0.100`); neither a CNI network
/// name nor an interface name can hold a colon, so dots become colons.
pub fn pin_name(name: &str) -> String {
    name.replace('.', ":")
}

/// The name [`pin_name`] made a bpffs name of.
pub fn unpin_name(name: &str) -> String {
    name.replace(':', ".")
}

/// The pin of the TCX link attaching a port's ingress (`link_<ifname>`) or
/// egress (`egress_<ifname>`) program.
pub fn port_link_pin(ifname: &str, egress: bool) -> String {
    let prefix = if egress { "egress" } else { "link" };
    format!("{prefix}_{}", pin_name(ifname))
}

/// A deleted attachment's link, down and renamed by DEL until it is
/// destroyed in the background: `lbgone` + the link's ifindex in hex (≤ 15
/// characters), so DEL frees the host veth's and the pod interface's names
/// at once. The pod end is named after its own ifindex in the pod's
/// namespace. Starts with `lb`: the bridge's own ports, never `veth*`.
pub fn tombstone_link(ifindex: u32) -> String {
    format!("{TOMBSTONE_LINK}{ifindex:x}")
}

const TOMBSTONE_LINK: &str = "lbgone";

/// Whether a link is a [`tombstone_link`].
pub fn is_tombstone_link(name: &str) -> bool {
    name.strip_prefix(TOMBSTONE_LINK)
        .is_some_and(|hex| u32::from_str_radix(hex, 16).is_ok())
}

/// A dead port's TCX link pin (`gone_<ifindex>_link`, `gone_<ifindex>_egress`):
/// renamed from [`port_link_pin`] so the link stays attached until its
/// device is destroyed (unpinning an attached link makes the kernel detach
/// it under RTNL through an RCU grace period; a detached one goes cheaply).
/// Never `link_*` or `egress_*`, which name live ports.
pub fn tombstone_pin(ifindex: u32, egress: bool) -> String {
    let hook = if egress { "egress" } else { "link" };
    format!("{TOMBSTONE_PIN}{ifindex}_{hook}")
}

const TOMBSTONE_PIN: &str = "gone_";

/// The host ifindex a [`tombstone_pin`] names.
pub fn tombstone_pin_ifindex(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TOMBSTONE_PIN)?;
    let (index, hook) = rest.split_once('_')?;
    matches!(hook, "link" | "egress")
        .then(|| index.parse().ok())
        .flatten()
}

/// An attachment's lease file in `<stateDir>/leases/<network>/`.
pub fn lease_file(container_id: &str, ifname: &str) -> String {
    format!("{container_id}:{ifname}.json")
}

/// An attachment's queued release in `<stateDir>/release-queue/`.
pub fn queued_release_file(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{network}_{}", lease_file(container_id, ifname))
}

/// lanbridge's route protocol number (`proto 76` in `ip route`): marks the
/// routes it installs. Free in iproute2's `rt_protos` and the kernel's
/// `RTPROT_*` (which use 0..18, 42, 99, 186..192).
pub const RTPROT_LANBRIDGE: u8 = 76;

/// The scope of a namespace that is not the machine's initial one.
pub fn scope(netns_inode: u64) -> String {
    format!("netns-{netns_inode}")
}

/// A locally administered unicast MAC for a new bridge, unique per creation.
pub fn bridge_mac(bridge: &str) -> Mac {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{bridge}/{}/{}", std::process::id(), now.as_nanos());
    let d = Sha256::digest(seed);
    Mac::new([(d[0] & 0xfc) | 0x02, d[1], d[2], d[3], d[4], d[5]])
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_fit_ifnamsiz_and_differ_per_attachment() {
        let a = super::host_veth("c1", "eth0");
        assert!(a.len() <= 15 && a.starts_with("lb") && !a.starts_with("veth"));
        assert_ne!(a, super::host_veth("c1", "net1"));
        assert_eq!(a, super::host_veth("c1", "eth0"));
        let long = "c".repeat(300);
        assert_ne!(
            super::host_veth(&long, "eth0"),
            super::host_veth(&long, "eth1")
        );
        let mac = super::bridge_mac("cni0");
        assert_eq!(mac.octets()[0] & 0x03, 0x02, "locally administered unicast");
    }

    #[test]
    fn tombstones_fit_ifnamsiz_and_read_back() {
        let gone = super::tombstone_link(u32::MAX);
        assert_eq!(gone, "lbgoneffffffff");
        assert!(gone.len() <= 15 && super::is_tombstone_link(&gone));
        assert!(!super::is_tombstone_link(&super::host_veth("c1", "eth0")));
        assert!(!super::is_tombstone_link("lbgone"));
        for egress in [false, true] {
            let pin = super::tombstone_pin(42, egress);
            assert_eq!(super::tombstone_pin_ifindex(&pin), Some(42));
            assert!(!pin.starts_with("link_") && !pin.starts_with("egress_"));
        }
        assert_eq!(super::tombstone_pin_ifindex("link_lb0123"), None);
        assert_eq!(super::tombstone_pin_ifindex("gone_7_other"), None);
    }

    #[test]
    fn long_container_ids_fit_the_kernels_limits() {
        let short = super::host_veth_alias("net", "c1", "eth0");
        assert_eq!(short, "lanbridge net c1 eth0");
        for id in ["c".repeat(300), "é".repeat(300)] {
            let alias = super::host_veth_alias("net", &id, "eth0");
            assert!(alias.len() <= 254, "{}", alias.len());
            assert!(alias.starts_with("lanbridge net cc") || alias.starts_with("lanbridge net é"));
            assert!(alias.ends_with("… eth0"), "{alias}");
            let stem = super::record_file(&id, "eth0");
            assert!(stem.len() + ".json".len() <= 255);
            assert_eq!(super::record_attachment(&stem), None);
            assert!(super::rule_comment("net", &id).len() <= 255);
            assert!(!super::rule_comment("net", &id).contains(' '));
        }
        assert_eq!(
            super::record_attachment(&super::record_file("a.b", "eth0.1")),
            Some(("a.b".into(), "eth0.1".into()))
        );
    }
}

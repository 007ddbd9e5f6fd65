//! A LAN (bridge + "router" address + one LAN host) and a node whose uplink
//! is on it, all in namespaces the test creates. Pods are plain namespaces.
//!
//! ```text
//!  [lan host ns] eth0 192.168.77.50 ──┐
//!                                     ├── lanbr 192.168.77.1/24  [lan ns]
//!  [node ns]     eth0 192.168.77.11 ──┘
//!                default via 192.168.77.1
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::netns::{unique_prefix, Netns};

pub const LAN_PREFIX_LEN: u8 = 24;
/// The LAN's "router": an address on the LAN bridge inside the LAN namespace.
pub const LAN_ROUTER: &str = "192.168.77.1";
/// A host on the LAN (its own namespace).
pub const LAN_HOST: &str = "192.168.77.50";
/// The first node's uplink address.
pub const NODE_ADDR: &str = "192.168.77.11";
/// Name of the node's uplink interface.
pub const NODE_UPLINK: &str = "eth0";
/// Name of the LAN bridge (inside the LAN namespace).
pub const LAN_BRIDGE: &str = "lanbr";

/// The whole world of one test; everything is removed on drop.
pub struct Topology {
    prefix: String,
    pub lan: Netns,
    pub lan_host: Netns,
    pub node: Netns,
    /// How many [`Topology::lan_client`]s were bridged on (their port names).
    clients: AtomicUsize,
}

impl Topology {
    /// Builds the LAN, its host and one node; `tag` makes namespace names readable.
    pub fn new(tag: &str) -> Topology {
        let prefix = format!("{}{}", unique_prefix(), tag);
        let lan = Netns::create(&format!("{prefix}-lan"));
        lan_bridge(&lan, &format!("{LAN_ROUTER}/{LAN_PREFIX_LEN}"));
        let lan_host = Netns::create(&format!("{prefix}-lanhost"));
        attach(&lan, "h50", &lan_host, LAN_HOST);
        let node = Netns::create(&format!("{prefix}-node"));
        attach(&lan, "n11", &node, NODE_ADDR);
        Topology {
            prefix,
            lan,
            lan_host,
            node,
            clients: AtomicUsize::new(0),
        }
    }

    /// The unique prefix of this topology's namespace names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Adds another node on the LAN with uplink address `addr` (e.g. 192.168.77.12).
    pub fn add_node(&self, index: u32, addr: &str) -> Netns {
        let node = Netns::create(&format!("{}-node{index}", self.prefix));
        attach(&self.lan, &format!("n{index}"), &node, addr);
        node
    }

    /// A new, empty pod namespace (only `lo`), owned by the caller.
    pub fn pod(&self, name: &str) -> Netns {
        Netns::create(&format!("{}-{name}", self.prefix))
    }

    /// A namespace whose `eth0` (MAC `mac`, up, no address) is bridged straight
    /// onto the LAN: what a DHCP client on the LAN sees, without lanbridge.
    pub fn lan_client(&self, name: &str, mac: &str) -> Netns {
        let host = self.pod(name);
        let n = self.clients.fetch_add(1, Ordering::SeqCst);
        plug(&self.lan, &format!("c{n}"), &host);
        host.ip(&["link", "set", NODE_UPLINK, "down"]);
        host.ip(&["link", "set", NODE_UPLINK, "address", mac, "up"]);
        host
    }
}

/// Makes `lan`'s bridge [`LAN_BRIDGE`] holding the router address `router_cidr`.
pub fn lan_bridge(lan: &Netns, router_cidr: &str) {
    lan.ip(&["link", "add", LAN_BRIDGE, "type", "bridge"]);
    lan.ip(&["addr", "add", router_cidr, "dev", LAN_BRIDGE]);
    lan.ip(&["link", "set", LAN_BRIDGE, "up"]);
}

/// Plugs `host` into the LAN bridge: a veth `lan_side` (in the LAN ns,
/// enslaved to the bridge) peered with `eth0` in `host`, both up, no address.
pub fn plug(lan: &Netns, lan_side: &str, host: &Netns) {
    lan.ip(&[
        "link",
        "add",
        lan_side,
        "type",
        "veth",
        "peer",
        "name",
        NODE_UPLINK,
        "netns",
        host.name(),
    ]);
    lan.ip(&["link", "set", lan_side, "master", LAN_BRIDGE, "up"]);
    host.ip(&["link", "set", NODE_UPLINK, "up"]);
}

/// [`plug`]s `host` in and gives its `eth0` `addr_cidr`, default via `router`.
pub fn attach_to(lan: &Netns, lan_side: &str, host: &Netns, addr_cidr: &str, router: &str) {
    plug(lan, lan_side, host);
    host.ip(&["addr", "add", addr_cidr, "dev", NODE_UPLINK]);
    host.ip(&["route", "add", "default", "via", router]);
}

/// Connects `host` to this module's LAN: `addr`/24, default via the router.
fn attach(lan: &Netns, lan_side: &str, host: &Netns, addr: &str) {
    attach_to(
        lan,
        lan_side,
        host,
        &format!("{addr}/{LAN_PREFIX_LEN}"),
        LAN_ROUTER,
    );
}

//! ADD: bridge → veth → eBPF → IPAM → firewall → pod side → node side → record,
//! as [`steps::run`] sequences them: each step that creates something pushes
//! its undo; on failure the undo stack runs in reverse, so a failed ADD
//! leaves nothing behind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lanbridge_common::{NetConfig, CFG_ENFORCE, CFG_FAST_PATH, CFG_LAN_MODE};

use ipnet::IpNet;

use super::steps::{self, Made, Steps, Undo};
use super::{Attachment, Cleanup};
use crate::cni::{CniEnv, CniResult, Error, Interface, IpConfig, Result, Route};
use crate::commands::fault::Step;
use crate::commands::state::{NodeChanges, Record};
use crate::config::NetConf;
use crate::datapath::{Datapath, NetworkSpec, Pins, PortSpec, UplinkSpec};
use crate::dhcp::protocol::NodeSide;
use crate::ipam::Ipam;
use crate::lan;
use crate::node::firewall::{self, Masquerade};
use crate::node::gone::first_error;
use crate::node::mac::Mac;
use crate::node::naming;
use crate::node::netlink::bridge::{BridgePortSpec, BridgeSpec};
use crate::node::netlink::{LinkInfo, Netlink, VethSpec};
use crate::node::netns::NetNs;
use crate::node::{scope, sysctl};

pub async fn run(conf: &NetConf, env: &CniEnv) -> Result<CniResult> {
    scope::claim(&super::SCOPED_DEFAULTS, &[&conf.pin_root, &conf.state_dir])?;
    let att = Attachment::new(conf, env)?;
    let mut plumbing = Plumbing::prepare(&att).await?;
    steps::run(&mut plumbing).await?;
    Ok(plumbing.result())
}

/// ADD's steps on the node: what each leaves for the later ones.
struct Plumbing<'a> {
    att: &'a Attachment<'a>,
    pod_ns: NetNs,
    pod: Netlink,
    bridge: Option<BridgeSide>,
    pair: Option<Pair>,
    datapath: Option<Datapath>,
    addresses: Option<Addresses>,
}

/// The bridge and, in lan mode, its uplink.
struct BridgeSide {
    link: LinkInfo,
    uplink: Option<lan::Uplink>,
}

/// The veth pair: the bridge port and the pod's interface.
struct Pair {
    host: LinkInfo,
    container: LinkInfo,
    mac: Mac,
}

/// What IPAM gave the pod.
struct Addresses {
    result: CniResult,
    v4: Vec<Ipv4Addr>,
}

impl Addresses {
    fn nets(&self) -> Vec<IpNet> {
        self.result.ips.iter().map(|c| c.address).collect()
    }
}

/// What an earlier step left: [`steps::run`] runs them in order.
fn ran<T>(left: &Option<T>) -> &T {
    left.as_ref().expect("ADD's steps run in order")
}

fn ran_mut<T>(left: &mut Option<T>) -> &mut T {
    left.as_mut().expect("ADD's steps run in order")
}

impl Steps for Plumbing<'_> {
    async fn step(&mut self, step: Step, undo: &mut Undo) -> Result<()> {
        match step {
            Step::Bridge => self.bridge().await,
            Step::Veth => self.veth(undo).await,
            Step::Datapath => self.datapath(undo),
            Step::Ipam => self.ipam(undo).await,
            Step::Firewall => self.firewall(),
            Step::Container => self.container().await,
            Step::Host => self.host(undo).await,
            Step::State => self.record(undo),
        }
    }

    async fn undo(&mut self, made: Made) -> Result<()> {
        let (att, env) = (self.att, self.att.env);
        match made {
            Made::HostVeth => {
                // Deleting the host end removes the pair.
                att.node
                    .delete_link(&naming::host_veth(&env.container_id, &env.ifname))
                    .await?;
                Ok(())
            }
            Made::HostRoute(ip) => match att.node.link(&att.conf.bridge).await? {
                Some(bridge) => Ok(att.node.del_host_route(ip, bridge.index).await?),
                None => Ok(()),
            },
            Made::Datapath => {
                let host = naming::host_veth(&env.container_id, &env.ifname);
                let index = att.node.link(&host).await?.map(|l| l.index);
                match Datapath::existing(&att.conf.pin_root, &att.conf.name)? {
                    Some(mut dp) => Ok(dp.remove_port(&host, index)?),
                    None => Ok(()),
                }
            }
            Made::Ipam => match &att.ipam {
                Some(ipam) => Ok(ipam.del(att.conf, env).await?),
                None => Ok(()),
            },
            Made::MacSpoof => Ok(firewall::mac_spoof_teardown(&naming::host_veth(
                &env.container_id,
                &env.ifname,
            ))?),
            Made::Record => att.state.remove(&env.container_id, &env.ifname),
        }
    }
}

impl<'a> Plumbing<'a> {
    /// Opens the pod's namespace and clears what an earlier attempt left.
    async fn prepare(att: &'a Attachment<'a>) -> Result<Plumbing<'a>> {
        let env = att.env;
        let pod_ns = NetNs::open(att.netns_path()?)?;
        let pod = Netlink::open(&pod_ns)?;
        replace_leftovers(att).await?;
        if pod.link(&env.ifname).await?.is_some() {
            return Err(Error::InvalidEnv {
                var: "CNI_IFNAME",
                reason: format!(
                    "{} already exists in {}",
                    env.ifname,
                    pod_ns.path().display()
                ),
            });
        }
        Ok(Plumbing {
            att,
            pod_ns,
            pod,
            bridge: None,
            pair: None,
            datapath: None,
            addresses: None,
        })
    }

    async fn bridge(&mut self) -> Result<()> {
        let (att, conf) = (self.att, self.att.conf);
        let (link, created) = att
            .node
            .ensure_bridge(&BridgeSpec {
                name: &conf.bridge,
                mtu: conf.mtu,
                promisc: conf.promisc_mode,
                vlan_filtering: conf.vlan.is_some(),
            })
            .await?;
        refuse_router_advertisements(att, &link.name)?;
        let uplink = match &conf.uplink {
            Some(name) => Some(lan::prepare(&att.node, &att.node_ns, &link, name).await?),
            None => None,
        };
        note_changes(
            att,
            created.then(|| link.name.clone()),
            uplink
                .as_ref()
                .map(|u| u.changed.clone())
                .unwrap_or_default(),
        )?;
        self.bridge = Some(BridgeSide { link, uplink });
        Ok(())
    }

    async fn veth(&mut self, undo: &mut Undo) -> Result<()> {
        let bridge = &ran(&self.bridge).link;
        let (host, container) =
            create_veth(self.att, &self.pod_ns, &self.pod, bridge, undo).await?;
        refuse_router_advertisements(self.att, &host.name)?;
        let mac = container.mac.ok_or_else(|| Error::LinkMissing {
            name: format!("{} (no Ethernet address)", container.name),
        })?;
        self.pair = Some(Pair {
            host,
            container,
            mac,
        });
        Ok(())
    }

    /// Before IPAM: a DHCP exchange already goes through the port's program.
    fn datapath(&mut self, undo: &mut Undo) -> Result<()> {
        let (att, conf) = (self.att, self.att.conf);
        let BridgeSide {
            link: bridge,
            uplink,
        } = ran(&self.bridge);
        let pair = ran(&self.pair);
        undo.push(Made::Datapath);
        let mut datapath = Datapath::ensure_network(&NetworkSpec {
            pin_root: &conf.pin_root,
            network: &conf.name,
            config: net_config(conf, bridge, uplink.as_ref()),
            cluster_cidrs: (uplink.is_none() && subnet_fast_path(conf))
                .then(|| v4_nets(&conf.cluster_cidrs)),
            uplink: uplink.as_ref().map(|u| UplinkSpec {
                ifname: &u.link.name,
                ifindex: u.link.index,
                slow_cidrs: v4_nets(&[&conf.service_cidrs[..], &conf.cluster_cidrs[..]].concat()),
            }),
        })?;
        let client_id = match &att.ipam {
            Some(Ipam::Dhcp(dhcp)) => Some(dhcp.client_id(att.env, pair.mac)),
            _ => None,
        };
        undo.attaching(datapath.add_port(&PortSpec {
            ifname: &pair.host.name,
            ifindex: pair.host.index,
            mac: pair.mac,
            client_id: client_id.as_deref(),
            isolated: conf.port_isolation,
            dhcp_relay: uplink.is_some(),
            egress: uplink.is_some() || conf.port_isolation,
        })?);
        // A DHCP exchange needs the relay in place; other IPAM does not.
        if uplink.is_some() {
            undo.attached()?;
        }
        self.datapath = Some(datapath);
        Ok(())
    }

    async fn ipam(&mut self, undo: &mut Undo) -> Result<()> {
        let (att, conf) = (self.att, self.att.conf);
        let BridgeSide {
            link: bridge,
            uplink,
        } = ran(&self.bridge);
        let pair = ran(&self.pair);
        let result = match &att.ipam {
            Some(ipam) => {
                undo.push(Made::Ipam);
                let node = NodeSide {
                    bridge: bridge.name.clone(),
                    port: pair.host.name.clone(),
                    port_ifindex: pair.host.index,
                    pin_root: conf.pin_root.clone(),
                    route_src: uplink.as_ref().map(|u| u.address),
                    routed: routed(conf),
                };
                ipam.add(conf, att.env, pair.mac, node).await?
            }
            None => CniResult::default(),
        };
        result.fits(conf.version)?;
        let v4: Vec<Ipv4Addr> = result
            .ips
            .iter()
            .filter_map(|c| match c.address.addr() {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6: Vec<Ipv6Addr> = result
            .ips
            .iter()
            .filter_map(|c| match c.address.addr() {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect();
        // IPAM configured the pod: its IPv6 is what IPAM gave and its link-local.
        let v6 = (!result.ips.is_empty()).then_some(&v6[..]);
        ran_mut(&mut self.datapath).set_port_addresses(pair.host.index, &v4, v6)?;
        self.addresses = Some(Addresses { result, v4 });
        Ok(())
    }

    /// The network's netfilter state: installed by its first ADD, only read
    /// back by the others; nothing in it is the pod's, so nothing to undo.
    fn firewall(&self) -> Result<()> {
        let conf = self.att.conf;
        let addresses = ran(&self.addresses);
        let nets = addresses.nets();
        let network = firewall::Network {
            name: &conf.name,
            forward: (routed(conf) && !addresses.v4.is_empty())
                .then_some(&ran(&self.bridge).link.name[..]),
            masquerade: match (conf.ip_masq, nets.is_empty()) {
                (false, _) => Masquerade::Off,
                (true, true) => Masquerade::Keep,
                (true, false) => Masquerade::On(&nets, &conf.cluster_cidrs),
            },
        };
        network.ensure()?;
        Ok(())
    }

    async fn container(&mut self) -> Result<()> {
        let (att, conf) = (self.att, self.att.conf);
        let result = &mut ran_mut(&mut self.addresses).result;
        complete_gateways(conf, result);
        if !conf.disable_container_interface {
            let container = &ran(&self.pair).container;
            let onlink = matches!(att.ipam, Some(Ipam::Dhcp(_)));
            if onlink {
                keep_others_default_route(&self.pod, container, result).await?;
            }
            configure_pod(conf, &self.pod_ns, &self.pod, container, result, onlink).await?;
        }
        Ok(())
    }

    async fn host(&mut self, undo: &mut Undo) -> Result<()> {
        let (att, conf) = (self.att, self.att.conf);
        let BridgeSide {
            link: bridge,
            uplink,
        } = ran(&self.bridge);
        let pair = ran(&self.pair);
        let addresses = ran(&self.addresses);
        if conf.is_gateway {
            configure_gateway(att, bridge, &addresses.result.ips).await?;
        }
        if let Some(uplink) = uplink {
            for ip in &addresses.v4 {
                undo.push(Made::HostRoute(*ip));
                att.node
                    .add_host_route(*ip, bridge.index, uplink.address)
                    .await?;
            }
        }
        if conf.mac_spoof_check {
            undo.push(Made::MacSpoof);
            firewall::mac_spoof_setup(&pair.host.name, pair.mac)?;
        }
        Ok(())
    }

    /// Last, once the port's programs are in place: a record means a
    /// complete attachment.
    fn record(&self, undo: &mut Undo) -> Result<()> {
        let (att, conf, env) = (self.att, self.att.conf, self.att.env);
        undo.attached()?;
        let pair = ran(&self.pair);
        undo.push(Made::Record);
        att.state.save(&Record {
            container_id: env.container_id.clone(),
            ifname: env.ifname.clone(),
            netns: self.pod_ns.path().display().to_string(),
            netns_inode: self.pod_ns.inode()?,
            bridge: conf.bridge.clone(),
            host_veth: pair.host.name.clone(),
            host_ifindex: pair.host.index,
            ips: ran(&self.addresses).nets(),
            masquerade: conf.ip_masq,
            mac_spoof_check: conf.mac_spoof_check,
            pod_rules: false,
        })?;
        Ok(())
    }

    fn result(self) -> CniResult {
        let (Some(bridge), Some(pair), Some(addresses)) = (self.bridge, self.pair, self.addresses)
        else {
            unreachable!("ADD's steps all ran");
        };
        assemble(
            self.att.conf,
            self.pod_ns.path().display().to_string(),
            [bridge.link, pair.host, pair.container],
            addresses.result,
        )
    }
}

/// Removes what an earlier attachment of this container and interface left
/// behind (its sandbox vanished without DEL, an ADD was killed, a runtime
/// retries ADD after losing track): the port, its pins, map entries,
/// routes, rules and record, so ADD converges instead of failing on them.
/// IPAM keeps the attachment's address. Cheap when there is nothing: two
/// stats of pins, one of the record, one link lookup.
async fn replace_leftovers(att: &Attachment<'_>) -> Result<()> {
    let (conf, env) = (att.conf, att.env);
    let host = naming::host_veth(&env.container_id, &env.ifname);
    let pins = Pins::new(&conf.pin_root, &conf.name);
    let record_path = att.state.path(&env.container_id, &env.ifname);
    let found = att.node.link(&host).await?.is_some()
        || record_path.exists()
        || pins.link(&host, false).exists()
        || pins.link(&host, true).exists();
    if !found {
        return Ok(());
    }
    let record = att
        .state
        .load(&env.container_id, &env.ifname)
        .unwrap_or_else(|e| {
            tracing::warn!("{e}");
            None
        });
    tracing::warn!(
        "replacing what an earlier attachment of {} {} left behind",
        env.container_id,
        env.ifname
    );
    let mut cleanup = Cleanup::new(att)?;
    first_error(
        cleanup
            .attachment(&env.container_id, &env.ifname, record.as_ref(), None)
            .await,
    )
}

/// Creates the pair with the pod end already in the pod namespace under
/// `CNI_IFNAME`, and plugs the host end into the bridge.
async fn create_veth(
    att: &Attachment<'_>,
    pod_ns: &NetNs,
    pod: &Netlink,
    bridge: &LinkInfo,
    undo: &mut Undo,
) -> Result<(LinkInfo, LinkInfo)> {
    let (conf, env) = (att.conf, att.env);
    let peer_mac = requested_mac(conf, env)?;
    let host_name = naming::host_veth(&env.container_id, &env.ifname);
    undo.push(Made::HostVeth);
    att.node
        .add_veth(&VethSpec {
            name: &host_name,
            peer: &env.ifname,
            mtu: conf.mtu,
            peer_mac,
            peer_netns: Some(pod_ns.raw_fd()),
        })
        .await?;

    let host = att.node.existing_link(&host_name).await?;
    att.node
        .set_alias(
            host.index,
            &naming::host_veth_alias(&conf.name, &env.container_id, &env.ifname),
        )
        .await?;
    att.node.set_master(host.index, bridge.index).await?;
    att.node
        .configure_port(
            host.index,
            &BridgePortSpec {
                hairpin: conf.hairpin_mode,
                isolated: conf.port_isolation,
                vlan: conf.vlan,
            },
        )
        .await?;
    att.node.set_up(host.index).await?;
    let container = pod.existing_link(&env.ifname).await?;
    // Up before IPAM: a DHCP client needs a working link.
    if !conf.disable_container_interface {
        pod.set_up(container.index).await?;
    }
    Ok((att.node.existing_link(&host_name).await?, container))
}

/// The node never takes a router advertisement from a pod (the RA guard
/// drops them too): `accept_ra=0` on the bridge and the host-side ports, as
/// the reference bridge plugin does for its bridge.
fn refuse_router_advertisements(att: &Attachment<'_>, dev: &str) -> Result<()> {
    sysctl::set_if_present(
        &att.node_ns,
        &["net", "ipv6", "conf", dev, "accept_ra"],
        "0",
    )?;
    Ok(())
}

/// The node routes the pods' traffic (gateway in subnet mode, lan mode):
/// then it must get through iptables FORWARD even with a DROP policy.
pub fn routed(conf: &NetConf) -> bool {
    conf.is_gateway || conf.uplink.is_some()
}

/// The network's settings as the programs read them; every ADD rewrites
/// them, so a changed config takes effect with the next pod.
fn net_config(conf: &NetConf, bridge: &LinkInfo, uplink: Option<&lan::Uplink>) -> NetConfig {
    let mac6 = |mac: Option<Mac>| mac.map(Mac::octets).unwrap_or_default();
    let mut flags = 0;
    if conf.enforce {
        flags |= CFG_ENFORCE;
    }
    if let Some(uplink) = uplink {
        flags |= CFG_LAN_MODE;
        if conf.fast_path {
            flags |= CFG_FAST_PATH;
        }
        return NetConfig {
            uplink_ifindex: uplink.link.index,
            bridge_ifindex: bridge.index,
            uplink_mac: mac6(uplink.link.mac),
            bridge_mac: mac6(bridge.mac),
            flags,
            _pad: 0,
        };
    }
    if subnet_fast_path(conf) {
        flags |= CFG_FAST_PATH;
    }
    NetConfig {
        bridge_ifindex: bridge.index,
        bridge_mac: mac6(bridge.mac),
        flags,
        ..NetConfig::default()
    }
}

/// Subnet mode forwards pod -> other nodes' pods in eBPF when the node
/// routes for its pods and knows the cluster's CIDRs.
fn subnet_fast_path(conf: &NetConf) -> bool {
    conf.fast_path && conf.is_gateway && !conf.cluster_cidrs.is_empty()
}

/// The IPv4 ones of `nets`, as the programs' prefix maps hold them.
fn v4_nets(nets: &[IpNet]) -> Vec<ipnet::Ipv4Net> {
    nets.iter()
        .filter_map(|n| match n {
            IpNet::V4(v4) => Some(v4.trunc()),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// With `isGateway`, an address without a gateway gets the subnet's first
/// address; `isDefaultGateway` adds a default route through the first
/// gateway of each family, unless IPAM already routes that family's default
/// through a gateway (the reference's rule: IPAM's route wins).
fn complete_gateways(conf: &NetConf, result: &mut CniResult) {
    if !conf.is_gateway {
        return;
    }
    for ip in &mut result.ips {
        if ip.gateway.is_none() {
            ip.gateway = Some(crate::ipam::host_local::next_ip(ip.address.network()));
        }
    }
    if !conf.is_default_gateway {
        return;
    }
    let mut families_done = Vec::new();
    for ip in result.ips.clone() {
        let gw = ip.gateway.expect("completed above");
        let default: IpNet = match gw {
            IpAddr::V4(_) => "0.0.0.0/0".parse().expect("valid"),
            IpAddr::V6(_) => "::/0".parse().expect("valid"),
        };
        if families_done.contains(&default) {
            continue;
        }
        families_done.push(default);
        if !result
            .routes
            .iter()
            .any(|r| r.dst == default && r.gw.is_some())
        {
            result.routes.push(Route::via(default, Some(gw)));
        }
    }
}

/// On a secondary network (Multus' `net1` beside the primary CNI's `eth0`)
/// the pod's default route stays with the interface that has it: the
/// lease's default route is neither added nor reported. Other routes of the
/// lease are added as usual.
async fn keep_others_default_route(
    pod: &Netlink,
    link: &LinkInfo,
    result: &mut CniResult,
) -> Result<()> {
    let live = pod.routes().await?;
    result.routes.retain(|route| {
        let other = live.iter().find(|r| {
            r.dst.prefix_len() == 0
                && r.dst.addr().is_ipv4() == route.dst.addr().is_ipv4()
                && r.oif != Some(link.index)
        });
        match other {
            Some(r) if route.dst.prefix_len() == 0 => {
                tracing::info!(
                    "{}: the pod's default route is via {:?} on interface {:?}; not adding the lease's via {:?}",
                    link.name,
                    r.gw,
                    r.oif,
                    route.gw
                );
                false
            }
            _ => true,
        }
    });
    Ok(())
}

async fn configure_pod(
    conf: &NetConf,
    pod_ns: &NetNs,
    pod: &Netlink,
    link: &LinkInfo,
    result: &CniResult,
    onlink: bool,
) -> Result<()> {
    // Announce the address at once (gratuitous ARP), as the reference does.
    sysctl::set(
        pod_ns,
        &["net", "ipv4", "conf", &link.name, "arp_notify"],
        "1",
    )?;
    for ip in &result.ips {
        pod.add_address(link.index, ip.address, !conf.enable_dad)
            .await?;
    }
    for (i, route) in result.routes.iter().enumerate() {
        // Except for DHCP (where no router means on-link), a route without
        // `gw` goes via the gateway of its family, as in the reference plugin.
        let family_gateway = || {
            result
                .ips
                .iter()
                .find(|ip| ip.address.addr().is_ipv4() == route.dst.addr().is_ipv4())
                .and_then(|ip| ip.gateway)
        };
        let gw = match route.gw {
            None if !onlink => family_gateway(),
            gw => gw,
        };
        // The route's metric, as the reference installs it.
        let metric = route.priority.unwrap_or(0);
        // Another gateway to a destination already routed: both stay, as
        // in the reference (static IPAM's ECMP default routes).
        if result.routes[..i].iter().any(|r| r.dst == route.dst) {
            pod.add_route_beside(route.dst, gw, link.index, metric)
                .await?;
        } else {
            pod.add_route(route.dst, gw, link.index, metric).await?;
        }
    }
    Ok(())
}

/// Gateway addresses on the bridge and forwarding in the node.
async fn configure_gateway(
    att: &Attachment<'_>,
    bridge: &LinkInfo,
    ips: &[IpConfig],
) -> Result<()> {
    // With a VLAN the gateway lives on a port of that VLAN, as in the reference.
    let gw_link = match att.conf.vlan {
        Some(vid) => {
            &att.node
                .ensure_vlan_gateway(bridge, vid, att.conf.mtu)
                .await?
        }
        None => bridge,
    };
    let existing = att.node.addresses(gw_link.index).await?;
    for ip in ips {
        let Some(gw) = ip.gateway else { continue };
        let want = IpNet::new(gw, ip.address.prefix_len()).expect("prefix from address");
        for other in existing
            .iter()
            .filter(|e| e.trunc() == want.trunc() && **e != want)
        {
            if !att.conf.force_address {
                return Err(Error::config(
                    "forceAddress",
                    format!(
                        "{} already has {other} in the same subnet as {want}",
                        gw_link.name
                    ),
                ));
            }
            att.node.del_address(gw_link.index, *other).await?;
        }
        att.node.add_address(gw_link.index, want, true).await?;
        let key: &[&str] = match gw {
            IpAddr::V4(_) => &["net", "ipv4", "ip_forward"],
            IpAddr::V6(_) => &["net", "ipv6", "conf", "all", "forwarding"],
        };
        let changed = sysctl::change(&att.node_ns, &[(key, "1")])?;
        note_changes(att, None, changed)?;
    }
    Ok(())
}

/// Records what was changed on the node (nothing: no I/O), for `lanbridge cleanup`.
fn note_changes(
    att: &Attachment<'_>,
    created_bridge: Option<String>,
    sysctls: Vec<(String, String)>,
) -> Result<()> {
    if created_bridge.is_none() && sysctls.is_empty() {
        return Ok(());
    }
    att.state.note_changes(NodeChanges {
        created_bridge,
        sysctls: sysctls.into_iter().collect(),
    })
}

/// The result: prevResult's entries first (chaining), then ours.
/// The pod's MAC as the reference takes it: `runtimeConfig.mac`, else
/// `args.cni.mac`, else `CNI_ARGS` `MAC=`.
fn requested_mac(conf: &NetConf, env: &CniEnv) -> Result<Option<Mac>> {
    match (conf.mac, env.arg("MAC")) {
        (Some(mac), _) => Ok(Some(mac)),
        (None, Some(arg)) => Mac::unicast(arg)
            .map(Some)
            .map_err(|reason| Error::InvalidEnv {
                var: "CNI_ARGS",
                reason: format!("MAC: {reason}"),
            }),
        (None, None) => Ok(None),
    }
}

fn assemble(conf: &NetConf, sandbox: String, links: [LinkInfo; 3], ipam: CniResult) -> CniResult {
    let mut result = conf.prev_result.clone().unwrap_or_default();
    let base = result.interfaces.len();
    let [bridge, host, container] = links;
    for (i, link) in [bridge, host, container].into_iter().enumerate() {
        result.interfaces.push(Interface {
            name: link.name,
            mac: link.mac.map(|m| m.to_string()).unwrap_or_default(),
            mtu: Some(link.mtu),
            sandbox: if i == 2 {
                sandbox.clone()
            } else {
                String::new()
            },
        });
    }
    result.ips.extend(ipam.ips.into_iter().map(|ip| IpConfig {
        interface: Some(base + 2),
        ..ip
    }));
    result.routes.extend(ipam.routes);
    if !conf.dns.is_empty() {
        result.dns = conf.dns.clone();
    } else if !ipam.dns.is_empty() {
        result.dns = ipam.dns;
    }
    result
}

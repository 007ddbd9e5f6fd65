//! The eBPF datapath of one network: programs and maps loaded once and
//! pinned under `<pinRoot>/<network>/`, a TCX link per attached interface,
//! and the map entries of each pod port.

mod attach;
mod error;
mod events;
mod load;
mod maps;
pub mod object;
mod pins;
mod raw;
mod upgrade;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use lanbridge_common::{
    Endpoint, NetConfig, StatKey, EP_DHCP_RELAY, EP_GUARD_IP, EP_GUARD_IP6, EP_ISOLATED,
    MAP_CLUSTER, MAP_SLOW_CIDRS, MAX_CLIENT_ID, MAX_IPS, MAX_IPS6, PROG_FROM_POD, PROG_FROM_UPLINK,
    PROG_TO_POD, PROG_TO_UPLINK, STAT_DEPARTED,
};

use attach::Hook;

use crate::node::mac::Mac;

pub use error::DatapathError;
pub use events::EventRing;
pub use maps::{ip_from_key, ip_key};
pub use pins::{networks, Pins};

/// A network's datapath as ADD wants it: [`Datapath::ensure_network`].
pub struct NetworkSpec<'a> {
    pub pin_root: &'a Path,
    pub network: &'a str,
    /// The settings the programs read; every ADD rewrites them, so a
    /// changed config takes effect with the next pod.
    pub config: NetConfig,
    /// Subnet mode's fast path: the destinations forwarded in eBPF.
    pub cluster_cidrs: Option<Vec<Ipv4Net>>,
    /// lan mode: the LAN uplink.
    pub uplink: Option<UplinkSpec<'a>>,
}

/// lan mode's uplink and the destinations that always take the host stack.
pub struct UplinkSpec<'a> {
    pub ifname: &'a str,
    pub ifindex: u32,
    pub slow_cidrs: Vec<Ipv4Net>,
}

/// A pod port as ADD plugs it in: [`Datapath::add_port`].
pub struct PortSpec<'a> {
    pub ifname: &'a str,
    pub ifindex: u32,
    /// The pod interface's MAC.
    pub mac: Mac,
    /// The client identifier its DHCP lease is taken with: DHCP snooping
    /// lets the pod use only that one.
    pub client_id: Option<&'a [u8]>,
    /// Ports that must not reach each other.
    pub isolated: bool,
    /// lan mode: its DHCP goes through the relay.
    pub dhcp_relay: bool,
    /// `lb_to_pod` on the port's egress too (lan mode's flow records, and
    /// isolation of what the node's stack routes between pods).
    pub egress: bool,
}

/// The name of a port (or the uplink) in this namespace, or `#<ifindex>`
/// when there is none here (gone, or another namespace's index);
/// `departed` for the counters of pods removed from the network.
pub fn port_name(ifindex: u32) -> String {
    if ifindex == STAT_DEPARTED {
        return "departed".to_string();
    }
    // Another namespace's index may come back as an empty name.
    nix::net::if_::if_indextoname(ifindex)
        .ok()
        .and_then(|c| c.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("#{ifindex}"))
}

/// An endpoint's addresses.
pub fn ips_of(ep: &Endpoint) -> Vec<Ipv4Addr> {
    ep.ipv4
        .iter()
        .filter(|k| **k != 0)
        .map(|k| ip_from_key(*k))
        .collect()
}

/// One pinned program, as `lanbridge inspect` shows it.
#[derive(Debug, serde::Serialize)]
pub struct ProgramReport {
    pub name: &'static str,
    pub id: u32,
    pub tag: String,
    pub pinned: String,
    pub verified_instructions: Option<u32>,
    /// Counted only while `kernel.bpf_stats_enabled` is 1.
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// A port's program attachment under way.
#[must_use = "wait for the attachment before the pod may send"]
pub struct PortAttach(std::thread::JoinHandle<Result<(), DatapathError>>);

impl PortAttach {
    pub fn wait(self) -> Result<(), DatapathError> {
        self.0.join().unwrap_or(Err(DatapathError::AttachPanicked))
    }
}

pub struct Datapath {
    pins: Pins,
    maps: maps::Maps,
}

impl Datapath {
    /// Opens the network's datapath, loading and pinning it on first use
    /// (another build's is replaced in place).
    pub fn open(pin_root: &Path, network: &str) -> Result<Datapath, DatapathError> {
        let pins = Pins::new(pin_root, network);
        load::ensure_loaded(&pins)?;
        Ok(Datapath {
            maps: maps::Maps::open(&pins)?,
            pins,
        })
    }

    /// The datapath if it was ever loaded (DEL, GC, inspect never load it;
    /// another build's is replaced in place first, so its maps are ours).
    pub fn existing(pin_root: &Path, network: &str) -> Result<Option<Datapath>, DatapathError> {
        let pins = Pins::new(pin_root, network);
        if !load::ensure_current(&pins)? {
            return Ok(None);
        }
        Ok(Some(Datapath {
            maps: maps::Maps::open(&pins)?,
            pins,
        }))
    }

    /// What the kernel reports about the network's pinned programs.
    pub fn programs(&self) -> Result<Vec<ProgramReport>, DatapathError> {
        object::PROGRAMS
            .iter()
            .map(|&name| {
                let info = aya::programs::ProgramInfo::from_pin(self.pins.object(name))
                    .map_err(|source| DatapathError::Program { name, source })?;
                Ok(ProgramReport {
                    name,
                    id: info.id(),
                    tag: format!("{:016x}", info.tag()),
                    pinned: self.pins.object(name).display().to_string(),
                    verified_instructions: info.verified_instruction_count(),
                    run_count: info.run_count(),
                    run_time_ns: info.run_time().as_nanos() as u64,
                })
            })
            .collect()
    }

    /// The network's settings as the loader wrote them.
    pub fn config(&self) -> Result<NetConfig, DatapathError> {
        self.maps.config()
    }

    /// Opens (loading at first use) the network's programs and maps and
    /// sets them as `spec` says: its settings, fast-path CIDRs and uplink.
    pub fn ensure_network(spec: &NetworkSpec<'_>) -> Result<Datapath, DatapathError> {
        let mut datapath = Datapath::open(spec.pin_root, spec.network)?;
        datapath.maps.set_config(spec.config)?;
        if let Some(cidrs) = &spec.cluster_cidrs {
            maps::set_prefixes(&mut datapath.maps.cluster, MAP_CLUSTER, cidrs)?;
            datapath
                .maps
                .set_inline_prefixes(|p| &mut p.cluster, cidrs)?;
        }
        if let Some(uplink) = &spec.uplink {
            maps::set_prefixes(
                &mut datapath.maps.slow_cidrs,
                MAP_SLOW_CIDRS,
                &uplink.slow_cidrs,
            )?;
            datapath
                .maps
                .set_inline_prefixes(|p| &mut p.slow, &uplink.slow_cidrs)?;
            datapath.ensure_uplink(uplink.ifname, uplink.ifindex)?;
        }
        Ok(datapath)
    }

    /// Records a pod port's endpoint and starts attaching `lb_from_pod` to
    /// it (and `lb_to_pod` to its egress when the spec asks) on a thread of
    /// its own: a TCX attach waits for an RCU grace period, which ADD spends
    /// on its other steps. [`PortAttach::wait`] before relying on the
    /// programs.
    pub fn add_port(&mut self, spec: &PortSpec<'_>) -> Result<PortAttach, DatapathError> {
        let mut ep = Endpoint {
            mac: spec.mac.octets(),
            ..Endpoint::default()
        };
        if spec.isolated {
            ep.flags |= EP_ISOLATED;
        }
        if spec.dhcp_relay {
            ep.flags |= EP_DHCP_RELAY;
        }
        if let Some(id) = spec.client_id {
            if !ep.set_client_id(id) {
                return Err(DatapathError::ClientIdTooLong {
                    len: id.len(),
                    max: MAX_CLIENT_ID,
                });
            }
        }
        self.maps.put_endpoint(spec.ifindex, ep)?;
        let (pins, ifname, egress) = (self.pins.clone(), spec.ifname.to_string(), spec.egress);
        // A new thread starts in this thread's (the node's) namespace.
        let thread = std::thread::Builder::new()
            .name("attach".into())
            .spawn(move || {
                attach::attach(&pins, PROG_FROM_POD, &ifname, Hook::Ingress)?;
                if egress {
                    attach::attach(&pins, PROG_TO_POD, &ifname, Hook::Egress)?;
                }
                Ok(())
            })
            .map_err(|source| DatapathError::Io {
                context: "starting the attach thread".into(),
                source,
            })?;
        Ok(PortAttach(thread))
    }

    /// The addresses IPAM gave the pod behind `ifindex`: IPv4, and IPv6
    /// once IPAM configured the pod (until then its link-local only).
    pub fn set_port_addresses(
        &mut self,
        ifindex: u32,
        v4: &[Ipv4Addr],
        v6: Option<&[Ipv6Addr]>,
    ) -> Result<(), DatapathError> {
        self.set_port_ips(ifindex, v4)?;
        match v6 {
            Some(v6) => self.set_port_ips6(ifindex, v6),
            None => Ok(()),
        }
    }

    /// The IPv4 addresses the pod behind `ifindex` holds now.
    pub fn set_port_ips(&mut self, ifindex: u32, ips: &[Ipv4Addr]) -> Result<(), DatapathError> {
        let Some(mut ep) = self.maps.endpoint(ifindex)? else {
            return Ok(());
        };
        self.maps.remove_ips(ifindex, &ep)?;
        ep.ipv4 = [0; MAX_IPS];
        for (slot, ip) in ep.ipv4.iter_mut().zip(ips) {
            *slot = ip_key(*ip);
        }
        if !ips.is_empty() {
            ep.flags |= EP_GUARD_IP;
        }
        self.maps.put_endpoint(ifindex, ep)
    }

    /// The IPv6 addresses IPAM gave the pod behind `ifindex` (none: its
    /// link-local only), and from now on its IPv6 sources and neighbour
    /// discovery are checked against them.
    fn set_port_ips6(&mut self, ifindex: u32, ips: &[Ipv6Addr]) -> Result<(), DatapathError> {
        let Some(mut ep) = self.maps.endpoint(ifindex)? else {
            return Ok(());
        };
        self.maps.remove_ips(ifindex, &ep)?;
        if ips.len() > MAX_IPS6 {
            tracing::warn!(
                "the pod behind ifindex {ifindex} has {} IPv6 addresses; the source guard \
                 accepts the first {MAX_IPS6}: {:?}",
                ips.len(),
                &ips[..MAX_IPS6]
            );
        }
        ep.ipv6 = [[0; 16]; MAX_IPS6];
        for (slot, ip) in ep.ipv6.iter_mut().zip(ips) {
            *slot = ip.octets();
        }
        ep.flags |= EP_GUARD_IP6;
        self.maps.put_endpoint(ifindex, ep)
    }

    /// The pod addresses a port's endpoint holds (none if it has no entry).
    pub fn port_ips(&self, ifindex: u32) -> Result<Vec<Ipv4Addr>, DatapathError> {
        Ok(self
            .maps
            .endpoint(ifindex)?
            .map(|ep| ips_of(&ep))
            .unwrap_or_default())
    }

    /// Detaches from a port and forgets its entries; tolerates either being gone.
    pub fn remove_port(&mut self, ifname: &str, ifindex: Option<u32>) -> Result<(), DatapathError> {
        attach::detach(&self.pins, ifname, Hook::Ingress)?;
        attach::detach(&self.pins, ifname, Hook::Egress)?;
        match ifindex {
            Some(index) => self.forget_port(index),
            None => Ok(()),
        }
    }

    /// Forgets a port whose interface (index `ifindex`) is retired, not yet
    /// destroyed: its map entries go, its link pins are renamed to the dead
    /// port's so the links stay attached until the device goes (see
    /// [`attach::retire`]); returns those pins, for whoever destroys it.
    pub fn retire_port(
        &mut self,
        ifname: &str,
        ifindex: u32,
    ) -> Result<Vec<PathBuf>, DatapathError> {
        let mut retired = Vec::new();
        for hook in [Hook::Ingress, Hook::Egress] {
            retired.extend(attach::retire(&self.pins, ifname, ifindex, hook)?);
        }
        self.forget_port(ifindex)?;
        Ok(retired)
    }

    /// Unpins dead ports' links but those of the retired interfaces (by
    /// index) `alive` keeps, still to be destroyed with their devices.
    pub fn remove_tombstones(&self, alive: impl Fn(u32) -> bool) -> Result<(), DatapathError> {
        self.pins.remove_tombstones(alive)
    }

    /// Forgets a port's map entries (its interface is gone).
    pub fn forget_port(&mut self, ifindex: u32) -> Result<(), DatapathError> {
        self.maps.remove_port(ifindex)
    }

    /// Attaches `lb_from_uplink` and `lb_to_uplink` to the uplink (index
    /// `ifindex`) unless they already are; a pin whose link is on another
    /// interface, or on none (the uplink was recreated), is replaced.
    fn ensure_uplink(&self, ifname: &str, ifindex: u32) -> Result<(), DatapathError> {
        for (prog, hook) in [
            (PROG_FROM_UPLINK, Hook::Ingress),
            (PROG_TO_UPLINK, Hook::Egress),
        ] {
            if attach::is_attached(&self.pins, ifname, hook) {
                let pin = self.pins.link(ifname, hook == Hook::Egress);
                match raw::tcx_link_ifindex(&pin) {
                    Ok(index) if index == ifindex => continue,
                    // Not a TCX link (an older kernel's netlink filter): trust it.
                    Err(_) => continue,
                    Ok(other) => tracing::warn!(
                        "{} is a stale link (on ifindex {other}, {ifname} is {ifindex}): replacing it",
                        pin.display()
                    ),
                }
            }
            attach::attach(&self.pins, prog, ifname, hook)?;
        }
        Ok(())
    }

    pub fn endpoints(&self) -> Result<Vec<(u32, Endpoint)>, DatapathError> {
        self.maps.endpoints()
    }

    pub fn stats(&self) -> Result<Vec<(StatKey, u64)>, DatapathError> {
        self.maps.stats()
    }

    /// Detaches every program of a network (its pods' ports and the
    /// uplink) and removes its pins; returns the interfaces it detached.
    pub fn remove_network(pin_root: &Path, network: &str) -> Result<Vec<String>, DatapathError> {
        let pins = Pins::new(pin_root, network);
        let detached = pins.linked_interfaces();
        for ifname in &detached {
            attach::detach(&pins, ifname, Hook::Ingress)?;
            attach::detach(&pins, ifname, Hook::Egress)?;
        }
        pins.remove_tombstones(|_| false)?;
        load::remove_objects(&pins)?;
        crate::node::gone::done(std::fs::remove_dir(pins.dir()))
            .map_err(|e| DatapathError::io(format!("removing {}", pins.dir().display()), e))?;
        Ok(detached)
    }

    /// Interfaces with a pinned link of this network.
    pub fn attached_interfaces(&self) -> Vec<String> {
        self.pins.linked_interfaces()
    }
}

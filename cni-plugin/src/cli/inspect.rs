//! `lanbridge inspect`: a network's programs, attachments, endpoints, leases
//! and counters, read from its pins and state (no daemon needed).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use lanbridge_common::{Reason, EP_DHCP_RELAY};
use serde::Serialize;

use super::status::LeaseView;
use crate::cni::{Error, Result};
use crate::datapath::{ips_of, port_name as ifname, Datapath, Pins, ProgramReport};
use crate::dhcp::store::LeaseStore;
use crate::node::mac::{colon_hex, Mac};

#[derive(Serialize)]
pub struct Report {
    network: String,
    pins: String,
    loaded: bool,
    programs: Vec<ProgramReport>,
    attachments: Vec<String>,
    endpoints: Vec<EndpointReport>,
    leases: Vec<LeaseView>,
    counters: Vec<CounterReport>,
}

#[derive(Serialize)]
struct EndpointReport {
    port: String,
    ifindex: u32,
    mac: Mac,
    ips: Vec<Ipv4Addr>,
    /// The IPv6 addresses the guard accepts besides the link-local one.
    ipv6: Vec<Ipv6Addr>,
    dhcp_relay: bool,
    /// The only DHCP client identifier the pod may send (hex, as servers
    /// log it); none when another IPAM than lanbridge's DHCP gave addresses.
    client_id: Option<String>,
}

#[derive(Serialize)]
struct CounterReport {
    interface: String,
    reason: String,
    drop: bool,
    packets: u64,
}

pub fn report(network: &str, pin_root: &Path, state_dir: &Path) -> Result<Report> {
    let dp = Datapath::existing(pin_root, network)?;
    let leases: Vec<LeaseView> = LeaseStore::new(state_dir)
        .all()?
        .iter()
        .filter(|l| l.holder.key.network == network)
        .map(|l| LeaseView::new(l, None))
        .collect();
    if dp.is_none() && leases.is_empty() {
        return Err(Error::io(
            format!("inspecting network {network:?}"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                super::unknown_network(pin_root, network),
            ),
        ));
    }
    let mut report = Report {
        network: network.to_string(),
        pins: Pins::new(pin_root, network).dir().display().to_string(),
        loaded: dp.is_some(),
        programs: Vec::new(),
        attachments: Vec::new(),
        endpoints: Vec::new(),
        leases,
        counters: Vec::new(),
    };
    let Some(dp) = dp else {
        return Ok(report);
    };
    report.programs = dp.programs()?;
    report.attachments = dp.attached_interfaces();
    report.attachments.sort();
    report.endpoints = dp
        .endpoints()?
        .into_iter()
        .map(|(ifindex, ep)| EndpointReport {
            port: ifname(ifindex),
            ifindex,
            mac: ep.mac.into(),
            ips: ips_of(&ep),
            ipv6: ep
                .ipv6
                .iter()
                .filter(|ip| **ip != [0; 16])
                .map(|ip| Ipv6Addr::from(*ip))
                .collect(),
            dhcp_relay: ep.flags & EP_DHCP_RELAY != 0,
            client_id: (ep.client_id_len != 0).then(|| {
                let id = &ep.client_id[..usize::from(ep.client_id_len).min(ep.client_id.len())];
                colon_hex(id)
            }),
        })
        .collect();
    report.endpoints.sort_by_key(|e| e.ifindex);
    report.counters = dp
        .stats()?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, packets)| {
            let reason = Reason::from_u32(key.reason);
            CounterReport {
                interface: ifname(key.ifindex),
                reason: reason.map_or_else(
                    || format!("reason {}", key.reason),
                    |r| r.name().to_string(),
                ),
                drop: reason.is_some_and(Reason::is_drop),
                packets,
            }
        })
        .collect();
    report
        .counters
        .sort_by(|a, b| (&a.interface, &a.reason).cmp(&(&b.interface, &b.reason)));
    Ok(report)
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = format!("network {}  (pins: {})\n", self.network, self.pins);
        if !self.loaded {
            out += "  datapath not loaded (no ADD on this node yet)\n";
        }
        out += "\nprograms\n";
        for p in &self.programs {
            let per_run = match p.run_count {
                0 => "-".to_string(),
                n => format!("{} ns/run", p.run_time_ns / n),
            };
            out += &format!(
                "  {:<15} id {:<6} tag {}  insns {:<6} runs {:<10} {}\n",
                p.name,
                p.id,
                p.tag,
                p.verified_instructions
                    .map_or("-".into(), |n| n.to_string()),
                p.run_count,
                per_run
            );
        }
        if self.programs.iter().all(|p| p.run_count == 0) && !self.programs.is_empty() {
            out += "  (runs stay 0 while kernel.bpf_stats_enabled is 0)\n";
        }
        out += "\nattachments (TCX ingress, `bpftool link show`)\n";
        for a in &self.attachments {
            out += &format!("  {a}\n");
        }
        out += "\nendpoints\n";
        for e in &self.endpoints {
            let ips: Vec<String> = e
                .ips
                .iter()
                .map(|i| i.to_string())
                .chain(e.ipv6.iter().map(|i| i.to_string()))
                .collect();
            out += &format!(
                "  {:<15} ifindex {:<5} mac {}  ips {:<18} {}{}\n",
                e.port,
                e.ifindex,
                e.mac,
                if ips.is_empty() {
                    "-".into()
                } else {
                    ips.join(",")
                },
                if e.dhcp_relay { "dhcp-relay" } else { "" },
                e.client_id
                    .as_ref()
                    .map_or_else(String::new, |id| format!(" client-id {id}"))
            );
        }
        out += "\nleases (absolute times, UTC; states: `lanbridge status`)\n";
        for l in &self.leases {
            out += &format!(
                "  {}/{:<6} {:<18} from {:<15} renew {} expires {}{}\n",
                l.container_id.chars().take(12).collect::<String>(),
                l.ifname,
                l.address,
                l.server,
                l.renew_at.as_deref().unwrap_or("never"),
                l.expires_at.as_deref().unwrap_or("never"),
                if l.state == "expired" {
                    "  (lost: withdrawn, re-acquiring)"
                } else {
                    ""
                }
            );
        }
        out += "\ncounters\n";
        for c in &self.counters {
            out += &format!(
                "  {:<15} {:<18} {:>10}{}\n",
                c.interface,
                c.reason,
                c.packets,
                if c.drop { "  (drop)" } else { "" }
            );
        }
        if self
            .endpoints
            .iter()
            .map(|e| &e.port)
            .chain(&self.attachments)
            .any(|name| name.starts_with('#'))
        {
            out += "\nwarning: interfaces shown as #ifindex have no name in this network \
                    namespace: run inspect in the node's (nsenter --net=...)\n";
        }
        out
    }
}

//! `lanbridge status`: the node at a glance — the daemon, each network
//! (mode, bridge, uplink, programs, attachments) and each pod with its
//! address and lease (state, server, absolute renew/rebind/expiry times,
//! last error). Read from the pins and the lease store; lease states and
//! errors from the daemon when it answers.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;
use lanbridge_common::CFG_LAN_MODE;
use serde::Serialize;

use crate::config::{DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR};
use crate::datapath::{ips_of, networks, port_name as ifname, Datapath, Pins};
use crate::dhcp::protocol::{
    read_message, utc, write_message, LeaseKey, LeaseRecord, LeaseState, LeaseStatus, Request,
    Response, DEFAULT_SOCKET,
};
use crate::dhcp::store::LeaseStore;
use crate::dhcp::RecordError;
use crate::node::mac::{colon_hex, Mac};
use crate::node::scope;

#[derive(clap::Args)]
pub struct Args {
    /// Only this network.
    #[arg(long)]
    network: Option<String>,
    /// Print JSON (stable keys; MACs and client IDs as strings).
    #[arg(long)]
    json: bool,
    /// The daemon's socket (the default is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::file(DEFAULT_SOCKET))]
    socket: PathBuf,
    /// The networks' `pinRoot` (the default is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
    pin_root: PathBuf,
    /// The daemon's `--state-dir`, where it keeps the leases (the default
    /// is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::dir(DEFAULT_STATE_DIR))]
    state_dir: PathBuf,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    daemon: DaemonView,
    /// Whether the kernel counts program runs (`kernel.bpf_stats_enabled`).
    bpf_stats_enabled: bool,
    networks: Vec<NetworkView>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DaemonView {
    socket: String,
    reachable: bool,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkView {
    name: String,
    /// `lan` or `subnet`.
    mode: &'static str,
    bridge: Option<String>,
    uplink: Option<String>,
    pins: String,
    /// The programs pinned (loaded) for the network.
    programs: Vec<&'static str>,
    /// Interfaces with a program attached (pod ports and the uplink).
    attachments: Vec<String>,
    pods: Vec<PodView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodView {
    /// The host-side port; null for a lease whose port is gone.
    port: Option<String>,
    ifindex: Option<u32>,
    mac: Mac,
    ips: Vec<Ipv4Addr>,
    lease: Option<LeaseView>,
}

/// A lease as people and scripts read it: absolute UTC times, strings for
/// the MAC and the client identifier.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    pub container_id: String,
    pub ifname: String,
    pub address: Ipv4Net,
    /// `bound`, `renewing`, `rebinding`, `expired`, `refused`.
    pub state: &'static str,
    /// When the state last changed (known to the daemon only).
    pub since: Option<String>,
    pub server: Ipv4Addr,
    /// Null for an infinite lease.
    pub renew_at: Option<String>,
    pub rebind_at: Option<String>,
    pub expires_at: Option<String>,
    pub mac: Mac,
    /// Option 61 in hex, as servers log it.
    pub client_id: String,
    pub last_error: Option<String>,
}

impl LeaseView {
    pub fn new(record: &LeaseRecord, status: Option<&LeaseStatus>) -> LeaseView {
        let lease = &record.lease;
        let state = match status {
            Some(s) => s.state,
            None if record.withdrawn => LeaseState::Expired,
            None => LeaseState::Bound,
        };
        LeaseView {
            container_id: record.holder.key.container_id.clone(),
            ifname: record.holder.key.ifname.clone(),
            address: lease.network(),
            state: state.name(),
            since: status.map(|s| utc(s.since)),
            server: lease.server_id,
            renew_at: lease.renew_at().map(utc),
            rebind_at: lease.rebind_at().map(utc),
            expires_at: lease.expires_at().map(utc),
            mac: record.holder.mac,
            client_id: colon_hex(&record.holder.client_id),
            last_error: status.and_then(|s| s.last_error.clone()),
        }
    }
}

pub fn main(args: &Args) -> Result<(), String> {
    let status = gather(args)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes")
        );
    } else {
        print!("{}", status.render());
        for w in &status.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

fn gather(args: &Args) -> Result<Status, String> {
    let mut names = networks(&args.pin_root);
    if let Some(only) = &args.network {
        if !names.contains(only) {
            return Err(super::unknown_network(&args.pin_root, only));
        }
        names.retain(|n| n == only);
    }
    let (daemon, states) = daemon_states(args);
    let records = LeaseStore::new(&args.state_dir)
        .all()
        .map_err(|e| format!("reading the leases in {}: {e}", args.state_dir.display()))?;
    let mut warnings = Vec::new();
    let mut networks = Vec::new();
    for name in names {
        let Some(dp) = Datapath::existing(&args.pin_root, &name).map_err(|e| e.to_string())? else {
            continue;
        };
        let leases: Vec<&LeaseRecord> = records
            .iter()
            .filter(|r| r.holder.key.network == name)
            .collect();
        networks.push(network(&args.pin_root, &name, &dp, &leases, &states)?);
    }
    let blank = networks
        .iter()
        .flat_map(|n| {
            n.attachments
                .iter()
                .chain(n.pods.iter().filter_map(|p| p.port.as_ref()))
        })
        .any(|name| name.starts_with('#'));
    if blank {
        warnings.push(
            "some interfaces have no name here (shown as #ifindex): run lanbridge status in \
             the node's network namespace (e.g. nsenter --net=/proc/<daemon pid>/ns/net)"
                .into(),
        );
    }
    if !daemon.reachable && !records.is_empty() {
        warnings.push("the daemon does not answer: lease states are from its files".into());
    }
    let bpf_stats_enabled = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .is_ok_and(|v| v.trim() == "1");
    Ok(Status {
        daemon,
        bpf_stats_enabled,
        networks,
        warnings,
    })
}

type States = HashMap<LeaseKey, LeaseStatus>;

/// Whether the daemon answers, and where its leases stand.
fn daemon_states(args: &Args) -> (DaemonView, States) {
    let socket = args.socket.clone();
    let asked = super::runtime(1).map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let exchange = async {
                let stream = tokio::net::UnixStream::connect(&socket)
                    .await
                    .map_err(|e| {
                        RecordError::io(format!("connecting to {}", socket.display()), e)
                    })?;
                let (reader, mut writer) = stream.into_split();
                write_message(&mut writer, &Request::LeaseStates).await?;
                read_message::<_, Response>(reader).await
            };
            match tokio::time::timeout(Duration::from_secs(2), exchange).await {
                Ok(Ok(Response::LeaseStates { states })) => Ok(states),
                Ok(Ok(other)) => Err(format!("unexpected answer {other:?}")),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 2 s".into()),
            }
        })
    });
    let view = |error: Option<String>| DaemonView {
        socket: args.socket.display().to_string(),
        reachable: error.is_none(),
        error,
    };
    match asked {
        Ok(states) => (view(None), states.into_iter().collect()),
        Err(e) => (view(Some(e)), HashMap::new()),
    }
}

fn network(
    pin_root: &std::path::Path,
    name: &str,
    dp: &Datapath,
    leases: &[&LeaseRecord],
    states: &States,
) -> Result<NetworkView, String> {
    let cfg = dp.config().map_err(|e| e.to_string())?;
    let named = |index: u32| (index != 0).then(|| ifname(index));
    let programs = dp
        .programs()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut pods = Vec::new();
    let mut matched = vec![false; leases.len()];
    for (ifindex, ep) in dp.endpoints().map_err(|e| e.to_string())? {
        let lease = leases.iter().position(|r| {
            r.holder
                .node
                .as_ref()
                .is_some_and(|n| n.port_ifindex == ifindex)
                || r.holder.mac == Mac::from(ep.mac)
        });
        if let Some(i) = lease {
            matched[i] = true;
        }
        pods.push(PodView {
            port: Some(ifname(ifindex)),
            ifindex: Some(ifindex),
            mac: ep.mac.into(),
            ips: ips_of(&ep),
            lease: lease.map(|i| LeaseView::new(leases[i], states.get(&leases[i].holder.key))),
        });
    }
    // Leases whose port is gone (a pod being removed, a lost lease).
    for (record, _) in leases.iter().zip(matched).filter(|(_, m)| !m) {
        pods.push(PodView {
            port: None,
            ifindex: None,
            mac: record.holder.mac,
            ips: Vec::new(),
            lease: Some(LeaseView::new(record, states.get(&record.holder.key))),
        });
    }
    pods.sort_by(|a, b| a.port.cmp(&b.port));
    Ok(NetworkView {
        name: name.to_string(),
        mode: if cfg.flags & CFG_LAN_MODE != 0 {
            "lan"
        } else {
            "subnet"
        },
        bridge: named(cfg.bridge_ifindex),
        uplink: named(cfg.uplink_ifindex),
        pins: Pins::new(pin_root, name).dir().display().to_string(),
        programs,
        attachments: dp.attached_interfaces(),
        pods,
    })
}

impl Status {
    /// Tables that fit 100 columns.
    pub fn render(&self) -> String {
        let mut out = match &self.daemon.error {
            None => format!("daemon    running ({})\n", self.daemon.socket),
            Some(e) => format!("daemon    NOT REACHABLE: {e}\n"),
        };
        if !self.bpf_stats_enabled {
            out += "note      program run counts stay 0: kernel.bpf_stats_enabled is 0\n";
        }
        if self.networks.is_empty() {
            out += "\nno lanbridge network on this node\n";
            return out;
        }
        out += &format!(
            "\n{:<16} {:<7} {:<15} {:<15} {:>8} {:>8} {:>5}\n",
            "NETWORK", "MODE", "BRIDGE", "UPLINK", "PROGRAMS", "ATTACHED", "PODS"
        );
        for n in &self.networks {
            out += &format!(
                "{:<16} {:<7} {:<15} {:<15} {:>8} {:>8} {:>5}\n",
                n.name,
                n.mode,
                n.bridge.as_deref().unwrap_or("-"),
                n.uplink.as_deref().unwrap_or("-"),
                n.programs.len(),
                n.attachments.len(),
                n.pods.len()
            );
        }
        for n in self.networks.iter().filter(|n| !n.pods.is_empty()) {
            out += &format!(
                "\n{} pods\n{:<15} {:<17} {:<18} {:<9} {:<15} {}\n",
                n.name, "PORT", "MAC", "ADDRESS", "LEASE", "SERVER", "CONTAINER"
            );
            for p in &n.pods {
                let address = match (&p.lease, p.ips.first()) {
                    (Some(l), _) => l.address.to_string(),
                    (None, Some(ip)) => ip.to_string(),
                    (None, None) => "-".into(),
                };
                let (state, server, container) = match &p.lease {
                    Some(l) => (l.state, l.server.to_string(), short(&l.container_id)),
                    None => ("-", "-".into(), String::new()),
                };
                out += &format!(
                    "{:<15} {:<17} {:<18} {:<9} {:<15} {}\n",
                    p.port.as_deref().unwrap_or("(gone)"),
                    p.mac,
                    address,
                    state,
                    server,
                    container
                );
                if let Some(l) = &p.lease {
                    let at = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".into());
                    out += &format!(
                        "  renew {}  rebind {}  expires {}\n",
                        at(&l.renew_at),
                        at(&l.rebind_at),
                        at(&l.expires_at)
                    );
                    if let Some(e) = &l.last_error {
                        out += &format!("  last error: {e}\n");
                    }
                }
            }
        }
        out
    }
}

/// A container ID as runtimes abbreviate it.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

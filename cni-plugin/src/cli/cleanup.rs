//! `lanbridge cleanup`: removes what lanbridge made on this node for
//! networks without live attachments: programs and their links (pods' ports
//! and the uplink), pins, the rules tagged with the network (and the
//! `LANBRIDGE-FWD` chain and jump once no network uses them), lanbridge's nft
//! table once unused, the bridge it created, the sysctls it changed (put
//! back), and the network's state. The uplink's own addresses and routes
//! are never touched. Running it twice changes nothing the second time.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cni::{Error, Result};
use crate::commands::state::{NodeChanges, StateDir};
use crate::commands::Cleanup;
use crate::config::{DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR};
use crate::datapath::{Datapath, Pins};
use crate::node::firewall;
use crate::node::gone::{done, found};
use crate::node::naming::unpin_name;
use crate::node::netlink::Netlink;
use crate::node::netns::NetNs;
use crate::node::{scope, sysctl};

#[derive(clap::Args)]
pub struct Args {
    /// Only this network (default: every network found in the pin root and
    /// the state dir).
    #[arg(long)]
    network: Option<String>,
    /// Print what would be removed and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also remove networks that still have attachments (their pods lose
    /// their network).
    #[arg(long)]
    force: bool,
    /// The networks' `pinRoot` (the default is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
    pin_root: PathBuf,
    /// The networks' `stateDir` (the default is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::dir(DEFAULT_STATE_DIR))]
    state_dir: PathBuf,
}

pub fn main(args: Args) -> Result<(), Error> {
    super::runtime(1)
        .map_err(|e| Error::io("starting the runtime", e))?
        .block_on(run(&args))
}

async fn run(args: &Args) -> Result<()> {
    let found = networks(args);
    let targets: Vec<String> = match &args.network {
        Some(n) => vec![n.clone()],
        None => found.clone(),
    };
    // Refuse before touching anything.
    let mut busy = Vec::new();
    for network in &targets {
        let (records, bad) = StateDir::new(&args.state_dir, network).list()?;
        let n = records.len() + bad.len();
        if n > 0 && !args.force {
            let ids: Vec<&str> = records.iter().map(|r| r.container_id.as_str()).collect();
            busy.push(format!("{network}: {n} attachment(s) {ids:?}"));
        }
    }
    if !busy.is_empty() {
        return Err(Error::NotAvailable {
            reason: format!(
                "live attachments, nothing removed (DEL them first, or --force): {}",
                busy.join("; ")
            ),
        });
    }
    let node_ns = NetNs::current()?;
    let node = Netlink::open(&node_ns)?;
    for (i, network) in targets.iter().enumerate() {
        let remaining: Vec<&String> = found
            .iter()
            .filter(|n| !targets[..=i].contains(n))
            .collect();
        let ctx = Network {
            args,
            name: network,
            node: &node,
            node_ns: &node_ns,
            heir: remaining.first().map(|n| n.as_str()),
        };
        ctx.clean().await?;
    }
    // The roots too, once nothing is left in them, and then the scope's
    // marker in /run, once the scoped defaults are gone.
    if !args.dry_run {
        for root in [&args.pin_root, &args.state_dir] {
            if fs::remove_dir(root).is_ok() {
                println!("removed {}", root.display());
            }
        }
        let defaults = [DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR];
        if defaults.iter().all(|d| !scope::dir(d).exists()) {
            if let Some(marker) = scope::forget() {
                println!("removed {}", marker.display());
            }
        }
    }
    Ok(())
}

/// Networks with pins or state on this node (the daemon's directories and
/// other namespaces' scopes are not networks).
fn networks(args: &Args) -> Vec<String> {
    let mut names = Vec::new();
    for dir in [&args.pin_root, &args.state_dir] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for name in entries.filter_map(|e| {
            let e = e.ok()?;
            e.file_type()
                .ok()?
                .is_dir()
                .then(|| e.file_name().into_string().ok())?
        }) {
            // Pin directories hold network names as bpffs allows them.
            let name = if dir == &args.pin_root {
                unpin_name(&name)
            } else {
                name
            };
            let daemon_dir = ["leases", "release-queue"].contains(&name.as_str());
            if !daemon_dir && !name.starts_with("netns-") && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

struct Network<'a> {
    args: &'a Args,
    name: &'a str,
    node: &'a Netlink,
    node_ns: &'a NetNs,
    /// A network staying on the node: it inherits the node-wide sysctls
    /// this one changed, which it may still need.
    heir: Option<&'a str>,
}

impl Network<'_> {
    fn say(&self, what: impl std::fmt::Display) {
        let verb = if self.args.dry_run { "would " } else { "" };
        println!("{}: {verb}{what}", self.name);
    }

    async fn clean(&self) -> Result<()> {
        let state = StateDir::new(&self.args.state_dir, self.name);
        let changes = state.node_changes().unwrap_or_else(|e| {
            tracing::warn!("{e}: sysctls stay as they are");
            NodeChanges::default()
        });
        self.attachments(&state, &changes).await?;
        let pins = Pins::new(&self.args.pin_root, self.name)
            .dir()
            .to_path_buf();
        if pins.exists() {
            self.say(format!("detach its programs and remove {}", pins.display()));
            if !self.args.dry_run {
                for ifname in Datapath::remove_network(&self.args.pin_root, self.name)? {
                    println!("{}: detached from {ifname}", self.name);
                }
            }
        }
        self.firewall()?;
        if let Some(bridge) = &changes.created_bridge {
            self.bridge(bridge).await?;
        }
        self.sysctls(&changes, changes.created_bridge.as_deref())?;
        for dir in [
            state.dir().to_path_buf(),
            self.args.state_dir.join("leases").join(self.name),
        ] {
            if dir.exists() {
                self.say(format!("remove {}", dir.display()));
                if !self.args.dry_run {
                    done(fs::remove_dir_all(&dir))
                        .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
                }
            }
        }
        Ok(())
    }

    /// `--force`: what DEL would remove of each attachment (not its IPAM).
    async fn attachments(&self, state: &StateDir, changes: &NodeChanges) -> Result<()> {
        let (records, bad) = state.list()?;
        let bridge = changes.created_bridge.as_deref().unwrap_or_default();
        let mut cleanup = Cleanup {
            node: self.node,
            state,
            datapath: Datapath::existing(&self.args.pin_root, self.name)?,
            network: self.name,
            bridge,
            lan: true,
            routed: true,
            defer: false,
        };
        let named = bad.iter().filter_map(|b| b.attachment.clone());
        let all: Vec<_> = records
            .iter()
            .map(|r| (r.container_id.clone(), r.ifname.clone(), Some(r)))
            .chain(named.map(|(c, i)| (c, i, None)))
            .collect();
        for (cid, ifname, record) in all {
            self.say(format!("remove attachment {cid} {ifname}"));
            if !self.args.dry_run {
                crate::node::gone::first_error(
                    cleanup.attachment(&cid, &ifname, record, None).await,
                )?;
            }
        }
        // What a killed deleter left of DELs and GCs.
        if !self.args.dry_run {
            cleanup.sweep_retired().await?;
        }
        Ok(())
    }

    fn firewall(&self) -> Result<()> {
        let removal = firewall::Removal::plan(self.name)?;
        let plan = removal.describe();
        if plan.is_empty() {
            return Ok(());
        }
        self.say(plan);
        if self.args.dry_run {
            return Ok(());
        }
        Ok(removal.apply()?)
    }

    /// The bridge lanbridge created, with its VLAN gateway ports; left alone
    /// while a port that is not lanbridge's is on it.
    async fn bridge(&self, name: &str) -> Result<()> {
        let Some(bridge) = self.node.link(name).await? else {
            return Ok(());
        };
        let ports: Vec<_> = self
            .node
            .links()
            .await?
            .into_iter()
            .filter(|l| l.master == Some(bridge.index))
            .collect();
        if let Some(foreign) = ports.iter().find(|p| !p.name.starts_with("lb")) {
            self.say(format!(
                "keep bridge {name}: {} is still on it (not lanbridge's)",
                foreign.name
            ));
            return Ok(());
        }
        for port in ports.iter().chain([&bridge]) {
            self.say(format!("delete link {}", port.name));
            if !self.args.dry_run {
                self.node.delete_link(&port.name).await?;
            }
        }
        Ok(())
    }

    /// Puts back the sysctls the network changed, or hands the node-wide
    /// ones to a network that stays (it may rely on them).
    fn sysctls(&self, changes: &NodeChanges, bridge: Option<&str>) -> Result<()> {
        let of_bridge = |key: &str| bridge.is_some_and(|b| key.split('/').any(|c| c == b));
        let keep: Vec<(&String, &String)> = changes
            .sysctls
            .iter()
            .filter(|(key, _)| !of_bridge(key))
            .collect();
        if keep.is_empty() {
            return Ok(());
        }
        if let Some(heir) = self.heir {
            self.say(format!(
                "leave {} sysctl(s) to {heir}, which stays",
                keep.len()
            ));
            if !self.args.dry_run {
                StateDir::new(&self.args.state_dir, heir).note_changes(NodeChanges {
                    created_bridge: None,
                    sysctls: keep
                        .into_iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })?;
            }
            return Ok(());
        }
        for (key, old) in keep {
            let exists =
                found(fs::metadata(Path::new("/proc/sys").join(key))).is_ok_and(|m| m.is_some());
            if !exists {
                continue;
            }
            self.say(format!("set {} back to {old}", key.replace('/', ".")));
            if !self.args.dry_run {
                sysctl::restore(self.node_ns, key, old)?;
            }
        }
        Ok(())
    }
}

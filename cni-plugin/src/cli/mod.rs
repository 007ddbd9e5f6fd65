//! `lanbridge` run by a person rather than a runtime.

pub mod cleanup;
pub mod inspect;
pub mod install;
pub mod monitor;
mod routes;
pub mod status;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::agent::{self, DaemonOpts};
use crate::cni::version::SUPPORTED;
use crate::config::{DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR};
use crate::dhcp::protocol::DEFAULT_SOCKET;
use crate::node::scope;

/// A failure already reported to whoever ran the binary (the CNI error
/// object on stdout for a runtime, a line on stderr for a person): `main`
/// turns it into the exit code, the one place that chooses it.
#[derive(Debug)]
pub struct Reported;

/// A subcommand's failure, reported once by [`main`] as `lanbridge <subcommand>: <error>`.
type Failure = Box<dyn std::error::Error>;

#[derive(Parser)]
#[command(
    name = "lanbridge",
    version,
    about = "CNI bridge plugin with a TC eBPF datapath",
    long_about = "CNI bridge plugin with a TC eBPF datapath.\n\n\
        A container runtime runs this binary with CNI_COMMAND set (ADD, DEL, CHECK, \
        VERSION, STATUS, GC) and the network configuration on stdin. Without \
        CNI_COMMAND it is this command-line tool."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the plugin version, the CNI versions it speaks and its eBPF object.
    Version,
    /// Show the node: the daemon, each network (mode, bridge, uplink,
    /// programs, attachments) and each pod's address and lease.
    Status(status::Args),
    /// Show a network's eBPF programs, attachments, endpoints, leases and counters.
    Inspect {
        /// The network's `name`.
        network: String,
        /// The network's `pinRoot` (the default is scoped per network namespace).
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
        pin_root: PathBuf,
        /// The daemon's `--state-dir`, where it keeps the leases (the
        /// default is scoped per network namespace).
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_STATE_DIR))]
        state_dir: PathBuf,
        /// Print JSON instead of tables (MACs and client IDs as strings).
        #[arg(long)]
        json: bool,
    },
    /// Stream the node's drops as they happen (from the daemon): each
    /// packet's port, reason, MACs, addresses and ports.
    Monitor(monitor::Args),
    /// Run the node agent: owns DHCP leases (acquire, renew, rebind, release)
    /// for pods on networks with `"ipam": {"type": "dhcp"}`.
    Daemon {
        /// Unix socket the plugin talks to (mode 0600; the default is scoped
        /// per network namespace).
        #[arg(long, default_value_os_t = scope::file(DEFAULT_SOCKET))]
        socket: PathBuf,
        /// Where leases are persisted (the networks' `stateDir`).
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_STATE_DIR))]
        state_dir: PathBuf,
        /// Where the networks' programs and maps are pinned (their
        /// `pinRoot`): drop events are read from there.
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
        pin_root: PathBuf,
        /// Serve Prometheus metrics (`/metrics`) and probes (`/healthz`,
        /// `/readyz`) on this address (e.g. `0.0.0.0:9465`); off by default.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics_address: Option<String>,
        #[command(flatten)]
        peers: routes::FollowArgs,
    },
    /// Routes to the other nodes' pod subnets, from a peers file.
    Routes {
        #[command(subcommand)]
        command: routes::Command,
    },
    /// Copy this binary into the CNI bin directory and a network config into
    /// the runtime's config directory (atomically; identical files are left alone).
    Install(install::Args),
    /// Remove what lanbridge made on this node for networks without
    /// attachments: programs, pins, rules, its bridge, sysctls, state.
    Cleanup(cleanup::Args),
}

/// Runs the subcommand; a failure is reported on stderr.
pub fn main() -> Result<(), Reported> {
    let command = Cli::parse().command;
    let name = command.name();
    run(command).map_err(|e| {
        eprintln!("lanbridge {name}: {e}");
        Reported
    })
}

impl Cmd {
    /// The subcommand as a person typed it.
    fn name(&self) -> &'static str {
        match self {
            Cmd::Version => "version",
            Cmd::Inspect { .. } => "inspect",
            Cmd::Daemon { .. } => "daemon",
            Cmd::Routes { .. } => "routes sync",
            Cmd::Install(_) => "install",
            Cmd::Cleanup(_) => "cleanup",
            Cmd::Monitor(_) => "monitor",
            Cmd::Status(_) => "status",
        }
    }
}

fn run(command: Cmd) -> Result<(), Failure> {
    match command {
        Cmd::Version => {
            println!("lanbridge {}", env!("CARGO_PKG_VERSION"));
            println!("CNI versions: {}", SUPPORTED.join(" "));
            match crate::datapath::object::embedded_object() {
                Some(obj) => println!("eBPF object: embedded ({} bytes)", obj.len()),
                None => println!("eBPF object: not embedded (run `cargo xtask build-ebpf`)"),
            }
            Ok(())
        }
        Cmd::Inspect {
            network,
            pin_root,
            state_dir,
            json,
        } => {
            let report = inspect::report(&network, &pin_root, &state_dir)?;
            match json {
                true => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                ),
                false => print!("{}", report.render()),
            }
            Ok(())
        }
        Cmd::Monitor(args) => Ok(monitor::main(&args)?),
        Cmd::Status(args) => Ok(status::main(&args)?),
        Cmd::Daemon {
            socket,
            state_dir,
            pin_root,
            metrics_address,
            peers,
        } => {
            // A dead namespace's leases are not this one's to resume.
            scope::claim(&crate::commands::SCOPED_DEFAULTS, &[&state_dir])?;
            let opts = DaemonOpts {
                socket,
                state_dir,
                pin_root,
                metrics_address,
                routes: peers.follow(),
            };
            runtime(2)
                .map_err(|e| format!("starting the runtime: {e}"))?
                .block_on(agent::run(&opts))?;
            Ok(())
        }
        Cmd::Routes { command } => routes::main(command),
        Cmd::Install(args) => install::main(args),
        Cmd::Cleanup(args) => Ok(cleanup::main(args)?),
    }
}

/// The one tokio runtime builder of the binary: `workers` threads (the
/// daemon's leases renew while it serves), or the current thread for one.
/// Why `network` is not one of this node's: where its pins would be and
/// the networks that are (one message for `status`, `inspect`, `monitor`).
fn unknown_network(pin_root: &Path, network: &str) -> String {
    let known = crate::datapath::networks(pin_root);
    format!(
        "no network {network:?} on this node (nothing under {}; networks here: {})",
        crate::datapath::Pins::new(pin_root, network)
            .dir()
            .display(),
        if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        }
    )
}

pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match workers {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().build()
}

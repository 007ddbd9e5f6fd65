//! `lanbridge` run by a person rather than a runtime.

pub mod cleanup;
pub mod inspect;
pub mod install;
mod routes;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::path::PathBuf;

use crate::agent::{self, DaemonOpts};
use crate::cni::version::SUPPORTED;
use crate::config::{DEFAULT_PIN_ROOT, DEFAULT_STATE_DIR};
use crate::dhcp::protocol::DEFAULT_SOCKET;
use crate::node::scope;

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
    /// Show a network's eBPF programs, attachments, endpoints, leases and counters.
    Inspect {
        /// The network's `name`.
        network: String,
        /// The network's `pinRoot` (the default is scoped per network namespace).
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
        pin_root: PathBuf,
        /// The network's `stateDir` (the default is scoped per network namespace).
        #[arg(long, default_value_os_t = scope::dir(DEFAULT_STATE_DIR))]
        state_dir: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
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

pub fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Version => {
            println!("lanbridge {}", env!("CARGO_PKG_VERSION"));
            println!("CNI versions: {}", SUPPORTED.join(" "));
            match crate::datapath::object::embedded_object() {
                Some(obj) => println!("eBPF object: embedded ({} bytes)", obj.len()),
                None => println!("eBPF object: not embedded (run `cargo xtask build-ebpf`)"),
            }
            ExitCode::SUCCESS
        }
        Cmd::Inspect {
            network,
            pin_root,
            state_dir,
            json,
        } => match inspect::report(&network, &pin_root, &state_dir) {
            Ok(report) if json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
                ExitCode::SUCCESS
            }
            Ok(report) => {
                print!("{}", report.render());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lanbridge inspect: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Daemon {
            socket,
            state_dir,
            peers,
        } => {
            // A dead namespace's leases are not this one's to resume.
            if let Err(e) = scope::claim(&crate::commands::SCOPED_DEFAULTS, &[&state_dir]) {
                eprintln!("lanbridge daemon: {e}");
                return ExitCode::FAILURE;
            }
            daemon(DaemonOpts {
                socket,
                state_dir,
                routes: peers.follow(),
            })
        }
        Cmd::Routes { command } => routes::main(command),
        Cmd::Install(args) => install::main(args),
        Cmd::Cleanup(args) => cleanup::main(args),
    }
}

/// The one tokio runtime builder of the binary: `workers` threads (the
/// daemon's leases renew while it serves), or the current thread for one.
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

fn daemon(opts: DaemonOpts) -> ExitCode {
    let runtime = match runtime(2) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(agent::run(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

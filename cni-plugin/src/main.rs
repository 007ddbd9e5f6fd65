//! lanbridge: a CNI plugin when a runtime sets `CNI_COMMAND`, a CLI otherwise.

mod cleanup;
mod cli;
mod cni;
mod commands;
mod config;
mod daemon;
mod datapath;
mod dhcp;
mod fault;
mod firewall;
mod gone;
mod inspect;
mod install;
mod ipam;
mod lan;
mod naming;
mod netlink;
mod netns;
mod peers;
mod plugin;
mod routes;
mod scope;
mod state;
mod sysctl;

use std::process::ExitCode;

fn main() -> ExitCode {
    fault::start_clock();
    // Logs go to stderr only: stdout belongs to the CNI result.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANBRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match std::env::var("CNI_COMMAND") {
        Ok(command) => plugin::main(&command),
        Err(_) => cli::main(),
    }
}

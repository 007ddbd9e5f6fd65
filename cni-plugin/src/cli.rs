//! `lanbridge` run by a person rather than a runtime.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cni::version::SUPPORTED;

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
    }
}

//! lanbridge: a CNI plugin when a runtime sets `CNI_COMMAND`, a CLI otherwise.

use std::process::ExitCode;

use lanbridge::{cli, commands::fault, plugin};

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

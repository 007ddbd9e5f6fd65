//! lanbridge: a CNI plugin when a runtime sets `CNI_COMMAND`, a CLI otherwise.

use std::process::ExitCode;

use lanbridge::cli::{self, Reported};
use lanbridge::node::reaper;
use lanbridge::{commands::fault, plugin};

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
    let outcome = match std::env::var("CNI_COMMAND") {
        Ok(command) => plugin::main(&command),
        Err(_) => cli::main(),
    };
    // The answer is out (stdout flushed, the runtime dropped): what DEL
    // left to destroy in the background goes now.
    reaper::finish(fault::deleter());
    // The one place the exit code is chosen; the failure was reported already.
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::FAILURE,
    }
}

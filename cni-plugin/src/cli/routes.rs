//! `lanbridge routes ...`: the routes to the other nodes' pod subnets.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent::routes::{follow, sync_file, Follow, Outcome};

/// `lanbridge routes ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Install, update and remove the routes to the other nodes' pod subnets
    /// (`<podCidr> via <address> proto 76`), as the peers file says.
    /// Routes lanbridge did not create are never touched.
    Sync {
        /// The peers file: {"nodes": [{"name", "address", "podCidr"}, ...]}.
        #[arg(long, value_name = "FILE")]
        peers: PathBuf,
        /// This node's name in the peers file.
        #[arg(long, value_name = "NAME", env = "NODE_NAME")]
        node: String,
        /// Print the plan (add / replace / delete / skip lines) and change nothing.
        #[arg(long, conflicts_with = "watch")]
        dry_run: bool,
        /// Keep running: sync again whenever the file changes (and every 10 s).
        #[arg(long)]
        watch: bool,
    },
}

/// The daemon's `--peers FILE --node NAME`.
#[derive(clap::Args, Debug, Clone)]
pub struct FollowArgs {
    /// Keep the routes to the other nodes' pod subnets as this peers file
    /// says, following its changes.
    #[arg(long, value_name = "FILE", requires = "node")]
    pub peers: Option<PathBuf>,
    /// This node's name in the peers file.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node: Option<String>,
}

impl FollowArgs {
    pub fn follow(self) -> Option<Follow> {
        Some(Follow {
            peers: self.peers?,
            node: self.node?,
        })
    }
}

pub fn main(cmd: Command) -> ExitCode {
    let Command::Sync {
        peers,
        node,
        dry_run,
        watch,
    } = cmd;
    let runtime = match super::runtime(1) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanbridge routes sync: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if watch {
            let follow = follow(Follow { peers, node });
            tokio::select! {
                () = follow => {}
                r = shutdown() => if let Err(e) = r {
                    eprintln!("lanbridge routes sync: {e}");
                    return ExitCode::FAILURE;
                },
            }
            return ExitCode::SUCCESS;
        }
        match sync_file(&peers, &node, dry_run).await {
            Ok(outcome) => report(&node, &outcome, dry_run),
            Err(e) => {
                eprintln!("lanbridge routes sync: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Prints the plan and what failed; success only when the table is as wanted
/// (or, for a dry run, when there is a plan).
fn report(node: &str, outcome: &Outcome, dry_run: bool) -> ExitCode {
    let plan = &outcome.plan;
    for action in &plan.actions {
        println!("{action}");
    }
    for (action, e) in &outcome.failures {
        eprintln!("lanbridge routes sync: {action}: {e}");
    }
    if dry_run {
        println!("{node}: {} (dry run: nothing changed)", plan.summary());
        return ExitCode::SUCCESS;
    }
    if plan.changes() || plan.conflicts() > 0 {
        println!("{node}: {}", plan.summary());
    } else {
        println!(
            "{node}: nothing to change ({} routes in place)",
            plan.unchanged.len()
        );
    }
    if !outcome.failures.is_empty() || plan.conflicts() > 0 {
        eprintln!(
            "lanbridge routes sync: {} of {} routes are not as the peers file wants",
            outcome.failures.len() + plan.conflicts(),
            plan.actions.len() + plan.unchanged.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn shutdown() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

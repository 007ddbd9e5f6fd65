//! One sync of the routes with a peers file, and the daemon's task that
//! follows the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::{plan, wanted, Action, Plan, Wanted};
use crate::agent::peers::{Peers, PeersError};
use crate::node::error::Error as NodeError;
use crate::node::netlink::Netlink;

/// How often the followed peers file is re-read (a ConfigMap update is a
/// symlink swap: the path is opened anew each time).
const POLL: Duration = Duration::from_secs(1);
/// How often the table is compared with the peers file even when the file did
/// not change: routes via a gateway vanish when the uplink goes down and up.
const RECONCILE: Duration = Duration::from_secs(10);

/// What the daemon follows.
#[derive(Debug, Clone)]
pub struct Follow {
    pub peers: PathBuf,
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0} (no route changed)")]
    Peers(#[from] PeersError),
    #[error("{0}")]
    Table(#[from] NodeError),
}

/// What one sync did.
pub struct Outcome {
    pub plan: Plan,
    pub failures: Vec<(Action, NodeError)>,
}

pub async fn sync_file(peers: &Path, node: &str, dry_run: bool) -> Result<Outcome, SyncError> {
    // The file is validated whole before the table is even read.
    let wanted = wanted(&Peers::load(peers)?, node)?;
    let table = Netlink::current()?;
    sync(&table, &wanted, dry_run).await
}

async fn sync(table: &Netlink, wanted: &[Wanted], dry_run: bool) -> Result<Outcome, SyncError> {
    let plan = plan(wanted, &table.main_routes().await?);
    let mut failures = Vec::new();
    if !dry_run {
        for action in &plan.actions {
            if let Err(e) = apply(table, action).await {
                failures.push((action.clone(), e));
            }
        }
    }
    Ok(Outcome { plan, failures })
}

/// The daemon's task: syncs at start, whenever the peers file changes, and
/// every [`RECONCILE`]. A file that cannot be read or is invalid is reported
/// (once per distinct problem) and the routes of the last valid one stay.
pub async fn follow(opts: Follow) {
    let path = opts.peers.display().to_string();
    let table = match Netlink::current() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("routes: {e}; not following {path}");
            return;
        }
    };
    tracing::info!("routes: following {path} as node {:?}", opts.node);
    // The file's last contents, and whether they were valid.
    let mut seen: Option<(Vec<u8>, bool)> = None;
    let mut want: Option<Vec<Wanted>> = None;
    let mut problem = String::new();
    let mut notes = BTreeSet::new();
    let mut next_reconcile = Instant::now();
    loop {
        match tokio::fs::read(&opts.peers).await {
            Err(e) => once(
                &mut problem,
                format!("peers file {path}: {e}; the routes in place stay"),
            ),
            Ok(bytes) if seen.as_ref().is_some_and(|(s, _)| *s == bytes) => {
                if seen.as_ref().is_some_and(|(_, valid)| *valid) {
                    problem.clear();
                }
            }
            Ok(bytes) => {
                let first = seen.is_none();
                let parsed = Peers::parse(&bytes).and_then(|p| {
                    let w = wanted(&p, &opts.node)?;
                    Ok((p.nodes.len(), w))
                });
                let valid = parsed.is_ok();
                match parsed {
                    Ok((nodes, w)) => {
                        tracing::info!(
                            "routes: peers file {path} {}: {nodes} nodes",
                            if first { "read" } else { "changed" }
                        );
                        want = Some(w);
                        problem.clear();
                        next_reconcile = Instant::now();
                    }
                    Err(e) => once(
                        &mut problem,
                        format!("{path}: {e}; the routes in place stay"),
                    ),
                }
                seen = Some((bytes, valid));
            }
        }
        if let Some(w) = &want {
            if Instant::now() >= next_reconcile {
                reconcile(&table, w, &mut notes).await;
                next_reconcile = Instant::now() + RECONCILE;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Logs `msg` unless it is the problem already reported.
fn once(last: &mut String, msg: String) {
    if *last != msg {
        tracing::error!("routes: {msg}");
        *last = msg;
    }
}

/// One sync of the daemon: every change is logged; conflicts and failures
/// only when they first appear (they are retried every round).
async fn reconcile(table: &Netlink, wanted: &[Wanted], notes: &mut BTreeSet<String>) {
    let outcome = match sync(table, wanted, false).await {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("routes: {e}");
            if notes.insert(msg.clone()) {
                tracing::warn!("{msg}");
            }
            return;
        }
    };
    let mut now = BTreeSet::new();
    for action in &outcome.plan.actions {
        let failed = outcome.failures.iter().find(|(a, _)| a == action);
        match (action, failed) {
            (Action::Conflict { .. }, _) => {
                let msg = format!("routes: {action}");
                if !notes.contains(&msg) {
                    tracing::warn!("{msg}");
                }
                now.insert(msg);
            }
            (_, Some((_, e))) => {
                let msg = format!("routes: {action}: {e}");
                if !notes.contains(&msg) {
                    tracing::warn!("{msg}");
                }
                now.insert(msg);
            }
            (_, None) => tracing::info!("routes: {action}"),
        }
    }
    *notes = now;
}

/// Carries out one action; conflicts are not actions.
async fn apply(table: &Netlink, action: &Action) -> Result<(), NodeError> {
    match action {
        Action::Add(w) => table.put_route(w.dst, w.via, 0, false).await,
        Action::Replace { want, was } => {
            table.put_route(want.dst, want.via, was.metric, true).await
        }
        Action::Delete(r) => table.delete_route(r).await,
        Action::Conflict { .. } => Ok(()),
    }
}

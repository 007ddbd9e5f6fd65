//! `lanbridge daemon`: the node agent that owns every DHCP lease.
//!
//! It serves the plugin over a unix socket, persists each lease so a
//! restart resumes its timers, renews at T1 (unicast), rebinds at T2
//! (broadcast), withdraws what the node did for an address when its lease
//! ends and moves it to the next lease ([`lifecycle`], [`claim`]), and
//! sends releases that DEL had to queue while it was down. It drains the
//! programs' drop events into its log and to `lanbridge monitor` ([`monitor`]).

mod book;
mod claim;
mod error;
mod lifecycle;
pub mod metrics;
mod monitor;
mod release;
mod server;

pub mod peers;
pub mod routes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::dhcp::protocol::{
    AcquireRequest, LeaseHolder, LeaseKey, LeaseRecord, LeaseState, LeaseStatus,
};
use crate::dhcp::store::LeaseStore;
use crate::dhcp::{self, DhcpSocket, Lease};
use book::Book;
pub use error::AgentError;
use error::Result;
use lifecycle::Ctx;

pub struct DaemonOpts {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// Where the networks' programs and maps are pinned: their drop events
    /// are read from there.
    pub pin_root: PathBuf,
    /// `--metrics-address`: where `/metrics`, `/healthz` and `/readyz` are
    /// served (none by default).
    pub metrics_address: Option<String>,
    /// `--peers FILE --node NAME`: keep the routes to the other nodes' pod subnets.
    pub routes: Option<crate::agent::routes::Follow>,
}

pub struct Daemon {
    store: LeaseStore,
    /// Where each lease stands.
    book: Book,
    /// See [`Ctx::claims`].
    claims: Arc<tokio::sync::Mutex<()>>,
    /// The renewal task of each lease.
    tasks: Mutex<HashMap<LeaseKey, JoinHandle<()>>>,
    /// The networks' drop events, for `lanbridge monitor`.
    drops: Arc<monitor::Drops>,
}

pub async fn run(opts: &DaemonOpts) -> Result<()> {
    let daemon = Arc::new(Daemon {
        store: LeaseStore::new(&opts.state_dir),
        book: Book::default(),
        claims: Arc::default(),
        tasks: Mutex::new(HashMap::new()),
        drops: Arc::default(),
    });
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(address) = &opts.metrics_address {
        let endpoint = metrics::Endpoint::bind(
            address,
            opts.pin_root.clone(),
            daemon.store.clone(),
            daemon.book.clone(),
            ready.clone(),
        )
        .await?;
        tracing::info!("serving metrics and probes on {address}");
        tokio::spawn(endpoint.serve());
    }
    let (listener, activated) = server::listen(&opts.socket).await?;
    tracing::info!("listening on {}", opts.socket.display());
    daemon.resume()?;
    ready.store(true, Ordering::Relaxed);
    tokio::spawn(release::flush_queue(daemon.store.clone()));
    tokio::spawn(monitor::watch(opts.pin_root.clone(), daemon.drops.clone()));
    if let Some(follow) = opts.routes.clone() {
        // Syncs at start and on every change of the file; never ends the daemon.
        tokio::spawn(crate::agent::routes::follow(follow));
    }
    let outcome = tokio::select! {
        r = server::serve(listener, daemon.clone()) => r,
        r = shutdown() => r,
    };
    // Leases stay on disk: the next daemon picks their timers up again.
    // A socket systemd passed stays too: systemd owns it.
    if !activated {
        if let Err(e) = std::fs::remove_file(&opts.socket) {
            tracing::warn!("removing {}: {e}", opts.socket.display());
        }
    }
    outcome
}

async fn shutdown() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| AgentError::io("SIGTERM handler", e))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| AgentError::io("SIGINT handler", e))?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    Ok(())
}

impl Daemon {
    /// Restarts the timers of every persisted lease.
    fn resume(self: &Arc<Self>) -> Result<()> {
        for record in self.store.all()? {
            tracing::info!(
                "resuming lease {} of {}/{}{}",
                record.lease.address,
                record.holder.key.container_id,
                record.holder.key.ifname,
                if record.withdrawn {
                    " (lost: re-acquiring)"
                } else {
                    ""
                }
            );
            let state = match record.withdrawn {
                true => LeaseState::Expired,
                false => LeaseState::Bound,
            };
            self.book.set(&record, state, None);
            self.spawn_renewal(record);
        }
        Ok(())
    }

    async fn acquire(self: &Arc<Self>, req: AcquireRequest) -> Result<Lease> {
        let holder = req.holder;
        self.stop_renewal(&holder.key).await;
        self.book.forget(&holder.key);
        let params = holder.params(Duration::from_millis(req.timeout_ms));
        let ns = holder.open_netns()?;
        let netns_inode = ns.inode()?;
        let socket = DhcpSocket::open(&ns, &holder.key.ifname)?;
        let started = std::time::Instant::now();
        let lease = dhcp::acquire(&socket, &params).await;
        socket.close_in_background();
        metrics::exchange(
            &holder.key.network,
            "acquire",
            lease.is_ok(),
            started.elapsed(),
        );
        let lease = lease?;
        tracing::info!(
            "leased {} to {}/{} from {} for {} s",
            lease.network(),
            holder.key.container_id,
            holder.key.ifname,
            lease.server_id,
            lease.lease_time
        );
        let record = LeaseRecord {
            holder: LeaseHolder {
                netns_inode,
                ..holder
            },
            lease: lease.clone(),
            withdrawn: false,
        };
        self.store.save(&record)?;
        self.book.set(&record, LeaseState::Bound, None);
        self.spawn_renewal(record);
        Ok(lease)
    }

    /// Sends RELEASE for the attachment's lease and forgets it; `false` if
    /// there was no lease (or it was already lost). Only DEL and GC release,
    /// and right after they remove the pod's link, its port (the address
    /// with it) and its routes: withdrawing the node's part here too would
    /// double the slowest part of their work (opening the datapath, the
    /// node's netlink) for nothing.
    async fn release(&self, key: &LeaseKey) -> Result<bool> {
        self.stop_renewal(key).await;
        self.book.forget(key);
        let Some(record) = self.store.load(key)? else {
            return Ok(false);
        };
        let held = !record.withdrawn;
        if held {
            release::send(&record).await;
        }
        self.store.remove(key)?;
        Ok(held)
    }

    fn leases(&self) -> Result<Vec<LeaseRecord>> {
        Ok(self.store.all()?)
    }

    fn status(&self, key: &LeaseKey) -> Option<LeaseStatus> {
        self.book.get(key)
    }

    fn spawn_renewal(self: &Arc<Self>, record: LeaseRecord) {
        let key = record.holder.key.clone();
        let ctx = Ctx {
            store: self.store.clone(),
            book: self.book.clone(),
            claims: self.claims.clone(),
        };
        let task = tokio::spawn(lifecycle::maintain(ctx, record));
        if let Some(old) = self.lock_tasks().insert(key, task) {
            old.abort();
        }
    }

    /// Stops the lease's task, never in the middle of a change of the claim.
    async fn stop_renewal(&self, key: &LeaseKey) {
        let _claims = self.claims.lock().await;
        if let Some(task) = self.lock_tasks().remove(key) {
            task.abort();
        }
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseKey, JoinHandle<()>>> {
        // A panicked renewal task cannot leave the map half-updated.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

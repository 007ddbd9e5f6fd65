//! One lease's life after ACK, as RFC 2131 §4.4.5 has it: renew with its
//! server from T1 (unicast), any server from T2 (broadcast); at expiry or on
//! a DHCPNAK the node withdraws everything it did for the address
//! ([`claim`]) and goes back to INIT, acquiring again with a bounded backoff
//! until a lease comes back, to which the pod and the node then move.
//!
//! Renewal retries wait half the remaining time, at least a second here
//! (leases in tests last seconds), at most a minute, also when an attempt
//! fails at once; a NAK ends the attempts at once. One log line per state
//! change, never per retry.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::book::Book;
use super::claim;
use super::error::{AgentError, Result};
use super::release;
use crate::dhcp::protocol::{LeaseRecord, LeaseState};
use crate::dhcp::store::LeaseStore;
use crate::dhcp::{self, DhcpError, DhcpSocket, Lease, Params};
use crate::node;

/// INIT's pause between acquisitions: from a second (above the relay's per-pod
/// DHCP rate limit) doubling to a minute.
const INIT_FIRST: Duration = Duration::from_secs(1);
const INIT_MAX: Duration = Duration::from_secs(60);
/// One acquisition in INIT (DISCOVERs retransmitted inside it).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a lifecycle task works with.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub store: LeaseStore,
    pub book: Book,
    /// Held while a task changes the node's claim and its record, and by
    /// whoever stops a task: a task is never stopped half-way through.
    pub claims: Arc<tokio::sync::Mutex<()>>,
}

pub async fn maintain(ctx: Ctx, mut record: LeaseRecord) {
    loop {
        if !record.withdrawn {
            let (state, error) = match keep(&ctx, &mut record).await {
                End::Expired(e) => (LeaseState::Expired, e),
                End::Refused(e) => (LeaseState::Refused, Some(e)),
                End::PodGone => return forget(&ctx, &record).await,
            };
            lose(&ctx, &mut record, state, error).await;
        }
        let Some(lease) = reacquire(&ctx, &record).await else {
            return forget(&ctx, &record).await;
        };
        regain(&ctx, &mut record, lease).await;
    }
}

/// How holding a lease ended.
enum End {
    /// With the last error of the rebinding attempts, if any.
    Expired(Option<String>),
    /// DHCPNAK.
    Refused(String),
    /// The pod's namespace is gone (deleted without DEL).
    PodGone,
}

/// Renews and rebinds `record`'s lease for as long as a server extends it,
/// moving the pod and the node when an extension grants another address.
async fn keep(ctx: &Ctx, record: &mut LeaseRecord) -> End {
    loop {
        let lease = &record.lease;
        let (Some(t1), Some(t2), Some(expiry)) =
            (lease.renew_at(), lease.rebind_at(), lease.expires_at())
        else {
            return std::future::pending().await; // an infinite lease
        };
        if until(expiry).is_zero() {
            return End::Expired(None); // resumed after its end
        }
        sleep_until(t1).await;
        ctx.book.set(record, LeaseState::Renewing, None);
        let (lease, how) = match extend(record, Step::Renew, t2).await {
            Ok(lease) => (lease, "renewed"),
            Err(Ext::Refused(e)) => return End::Refused(e),
            Err(Ext::PodGone) => return End::PodGone,
            Err(Ext::Timeout(e)) => {
                tracing::warn!(
                    "Renew of {} for {} failed until T2 ({}): rebinding",
                    record.lease.address,
                    who(record),
                    e.as_deref().unwrap_or("no time left")
                );
                ctx.book.set(record, LeaseState::Rebinding, e);
                match extend(record, Step::Rebind, expiry).await {
                    Ok(lease) => (lease, "rebound"),
                    Err(Ext::Refused(e)) => return End::Refused(e),
                    Err(Ext::PodGone) => return End::PodGone,
                    Err(Ext::Timeout(e)) => return End::Expired(e),
                }
            }
        };
        let _claiming = ctx.claims.lock().await;
        if lease.address != record.lease.address {
            tracing::warn!(
                "{how} {} of {} as {}: moving the pod and the node to it",
                record.lease.address,
                who(record),
                lease.address
            );
            if let Err(e) = claim::restore(record, &lease).await {
                tracing::error!("moving {} to {}: {e}", who(record), lease.address);
            }
        }
        tracing::info!(
            "{how} {} of {} for {} s",
            lease.address,
            who(record),
            lease.lease_time
        );
        record.lease = lease;
        persist(ctx, record);
        ctx.book.set(record, LeaseState::Bound, None);
    }
}

/// The lease is gone: the pod and the node give the address up.
async fn lose(ctx: &Ctx, record: &mut LeaseRecord, state: LeaseState, error: Option<String>) {
    let why = match (state, &error) {
        (LeaseState::Refused, Some(e)) => format!("was refused ({e})"),
        (_, Some(e)) => format!("expired without renewal ({e})"),
        _ => "expired without renewal".to_string(),
    };
    let _claiming = ctx.claims.lock().await;
    tracing::warn!(
        "lease {} of {} {why}: withdrawing it from the pod and the node; re-acquiring",
        record.lease.address,
        who(record)
    );
    // Marked first: a daemon restarted half-way re-acquires, and the
    // restore then replaces whatever the withdrawal left.
    record.withdrawn = true;
    persist(ctx, record);
    ctx.book.set(record, state, error);
    if let Err(e) = claim::withdraw(record, true).await {
        tracing::error!(
            "withdrawing {} of {}: {e}",
            record.lease.address,
            who(record)
        );
    }
}

/// INIT: DISCOVER (asking for the last address) until a server grants a
/// lease; none when the pod is gone.
async fn reacquire(ctx: &Ctx, record: &LeaseRecord) -> Option<Lease> {
    let mut pause = INIT_FIRST;
    loop {
        let params = Params {
            requested_ip: Some(record.lease.address),
            ..record.holder.params(ACQUIRE_TIMEOUT)
        };
        let acquired = async {
            let Some(socket) = open_socket(record)? else {
                return Ok(None);
            };
            let started = Instant::now();
            let lease = dhcp::acquire(&socket, &params).await;
            socket.close_in_background();
            let network = &record.holder.key.network;
            super::metrics::exchange(network, "acquire", lease.is_ok(), started.elapsed());
            Ok::<_, AgentError>(Some(lease?))
        };
        match acquired.await {
            Ok(lease) => return lease,
            Err(e) => {
                tracing::debug!("acquiring for {}: {e}", who(record));
                ctx.book.error(&record.holder.key, e.to_string());
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(INIT_MAX);
    }
}

/// A lease is back: the pod and the node move to it.
async fn regain(ctx: &Ctx, record: &mut LeaseRecord, lease: Lease) {
    let _claiming = ctx.claims.lock().await;
    tracing::info!(
        "re-acquired {} for {} from {} for {} s (had {})",
        lease.network(),
        who(record),
        lease.server_id,
        lease.lease_time,
        record.lease.address
    );
    if let Err(e) = claim::restore(record, &lease).await {
        tracing::error!("restoring {} of {}: {e}", lease.address, who(record));
    }
    record.lease = lease;
    record.withdrawn = false;
    persist(ctx, record);
    ctx.book.set(record, LeaseState::Bound, None);
}

/// The pod vanished without DEL: the lease goes back to the server and the
/// node forgets it.
async fn forget(ctx: &Ctx, record: &LeaseRecord) {
    let _claiming = ctx.claims.lock().await;
    tracing::warn!(
        "the namespace of {} is gone: releasing {} and forgetting the lease",
        who(record),
        record.lease.address
    );
    if !record.withdrawn {
        if let Err(e) = claim::withdraw(record, false).await {
            tracing::error!(
                "withdrawing {} of {}: {e}",
                record.lease.address,
                who(record)
            );
        }
        release::send(record).await;
    }
    if let Err(e) = ctx.store.remove(&record.holder.key) {
        tracing::error!("forgetting the lease of {}: {e}", who(record));
    }
    ctx.book.forget(&record.holder.key);
}

fn persist(ctx: &Ctx, record: &LeaseRecord) {
    if let Err(e) = ctx.store.save(record) {
        tracing::error!("persisting the lease of {}: {e}", who(record));
    }
}

fn who(record: &LeaseRecord) -> String {
    format!(
        "{}/{}",
        record.holder.key.container_id, record.holder.key.ifname
    )
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Renew,
    Rebind,
}

/// Why extending stopped.
enum Ext {
    Refused(String),
    PodGone,
    /// The deadline passed; the last attempt's error.
    Timeout(Option<String>),
}

/// Tries `step` until `deadline` (unix seconds).
async fn extend(record: &LeaseRecord, step: Step, deadline: u64) -> Result<Lease, Ext> {
    let mut last = None;
    loop {
        let left = until(deadline);
        if left.is_zero() {
            return Err(Ext::Timeout(last));
        }
        let wait = (left / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let began = Instant::now();
        match attempt(record, step, wait).await {
            Ok(lease) => return Ok(lease),
            Err(Failure::Stop(ext)) => return Err(ext),
            Err(Failure::Retry(e)) => {
                tracing::debug!("{step:?} of {}: {e}", record.lease.address);
                last = Some(e.to_string());
            }
        }
        // An attempt that failed at once (no route, a socket error) still
        // waits its turn.
        let turn = (began + wait).min(Instant::now() + until(deadline));
        tokio::time::sleep_until(turn.into()).await;
    }
}

/// Why one renewal or rebinding failed.
enum Failure {
    /// Extending stops (a NAK, the pod gone).
    Stop(Ext),
    /// Worth another try before the deadline.
    Retry(AgentError),
}

async fn attempt(record: &LeaseRecord, step: Step, timeout: Duration) -> Result<Lease, Failure> {
    let params = record.holder.params(timeout);
    let socket = match open_socket(record) {
        Ok(Some(socket)) => socket,
        Ok(None) => return Err(Failure::Stop(Ext::PodGone)),
        Err(e) => return Err(Failure::Retry(e)),
    };
    let started = Instant::now();
    let (exchange, lease) = match step {
        Step::Renew => ("renew", dhcp::renew(&socket, &params, &record.lease).await),
        Step::Rebind => (
            "rebind",
            dhcp::rebind(&socket, &params, &record.lease).await,
        ),
    };
    socket.close_in_background();
    let network = &record.holder.key.network;
    super::metrics::exchange(network, exchange, lease.is_ok(), started.elapsed());
    lease.map_err(|e| match e {
        DhcpError::Nak { .. } => Failure::Stop(Ext::Refused(e.to_string())),
        e => Failure::Retry(e.into()),
    })
}

/// The pod's DHCP socket; none when its namespace is gone (or its path
/// names another namespace now).
fn open_socket(record: &LeaseRecord) -> Result<Option<DhcpSocket>> {
    let ns = match record.holder.open_netns() {
        Ok(ns) => ns,
        Err(node::error::Error::NetnsNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(DhcpSocket::open(&ns, &record.holder.key.ifname)?))
}

/// Time left until `unix_secs`, to the nanosecond (whole seconds would wake
/// up to a second early).
fn until(unix_secs: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_secs(unix_secs))
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

async fn sleep_until(unix_secs: u64) {
    tokio::time::sleep(until(unix_secs)).await;
}

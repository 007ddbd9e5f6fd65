//! One lease's life after ACK: renew with its server from T1 (unicast), any
//! server from T2 (broadcast), and at expiry take the address off the pod.
//! Retries follow RFC 2131 §4.4.5: half the remaining time, at least a
//! second here (leases in tests last seconds), at most a minute.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use super::protocol::LeaseRecord;
use super::store::LeaseStore;
use crate::cni::{Error, Result};
use crate::dhcp::{self, DhcpSocket, Lease, Params};
use crate::netlink::Netlink;
use crate::netns::NetNs;

pub async fn maintain(store: LeaseStore, mut record: LeaseRecord) {
    loop {
        let lease = &record.lease;
        let (Some(t1), Some(t2), Some(expiry)) =
            (lease.renew_at(), lease.rebind_at(), lease.expires_at())
        else {
            return; // an infinite lease
        };
        sleep_until(t1).await;
        let renewed = match extend(&record, Step::Renew, t2).await {
            Some(lease) => Some((lease, "renewed")),
            None => extend(&record, Step::Rebind, expiry)
                .await
                .map(|lease| (lease, "rebound")),
        };
        let Some((lease, how)) = renewed else {
            expire(&store, &record).await;
            return;
        };
        tracing::info!(
            "{how} {} of {}/{} for {} s",
            lease.address,
            record.key.container_id,
            record.key.ifname,
            lease.lease_time
        );
        record.lease = lease;
        if let Err(e) = store.save(&record) {
            tracing::error!(
                "persisting the renewed lease of {}: {e}",
                record.key.container_id
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Renew,
    Rebind,
}

/// Tries `step` until `deadline` (unix seconds); the new lease, if any.
async fn extend(record: &LeaseRecord, step: Step, deadline: u64) -> Option<Lease> {
    loop {
        let left = until(deadline);
        if left.is_zero() {
            return None;
        }
        let wait = (left / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        match attempt(record, step, wait).await {
            Ok(lease) => return Some(lease),
            Err(e) => tracing::warn!(
                "{step:?} of {} for {}/{}: {e}",
                record.lease.address,
                record.key.container_id,
                record.key.ifname
            ),
        }
    }
}

async fn attempt(record: &LeaseRecord, step: Step, timeout: Duration) -> Result<Lease> {
    let params = params(record, timeout);
    let ns = NetNs::open(&record.netns)?;
    let socket = DhcpSocket::open(&ns, &record.key.ifname)?;
    Ok(match step {
        Step::Renew => dhcp::renew(&socket, &params, &record.lease).await?,
        Step::Rebind => dhcp::rebind(&socket, &params, &record.lease).await?,
    })
}

pub fn params(record: &LeaseRecord, timeout: Duration) -> Params {
    Params {
        mac: record.mac,
        client_id: record.client_id.clone(),
        hostname: record.hostname.clone(),
        timeout,
        requested_ip: None,
    }
}

/// The lease ran out: the pod must stop using the address.
async fn expire(store: &LeaseStore, record: &LeaseRecord) {
    tracing::warn!(
        "lease {} of {}/{} expired without renewal: removing the address from the pod",
        record.lease.address,
        record.key.container_id,
        record.key.ifname
    );
    if let Err(e) = remove_address(record).await {
        tracing::error!("removing expired {}: {e}", record.lease.address);
    }
    if let Err(e) = store.remove(&record.key) {
        tracing::error!("forgetting expired lease {}: {e}", record.lease.address);
    }
}

async fn remove_address(record: &LeaseRecord) -> Result<()> {
    let ns = NetNs::open(&record.netns)?;
    let pod = Netlink::open(&ns)?;
    let link = pod.existing_link(&record.key.ifname).await?;
    pod.del_address(link.index, IpNet::V4(record.lease.network()))
        .await
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

impl From<dhcp::DhcpError> for Error {
    fn from(e: dhcp::DhcpError) -> Error {
        Error::Dhcp(Box::new(e))
    }
}

//! DHCPRELEASE: unicast to the granting server with ciaddr = the leased
//! address, from that address (dnsmasq ignores releases from 0.0.0.0).
//! Normally sent from the pod; when the pod is already gone (a release
//! queued while the daemon was down) it is sent from the node with the
//! leased address as source (IP_TRANSPARENT: FREEBIND would allow the bind
//! but not the route lookup), as no interface holds it anymore.

use std::net::SocketAddrV4;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::dhcp::protocol::LeaseRecord;
use crate::dhcp::store::LeaseStore;
use crate::dhcp::{self, UnicastSocket};

/// Best effort: a release that can't be sent only costs the server a lease
/// until it expires, so failures are logged, not returned.
pub async fn send(record: &LeaseRecord) {
    if record.holder.sticky {
        tracing::info!(
            "not releasing {} of {}/{}: its client identifier names the pod, which may come back",
            record.lease.address,
            record.holder.key.container_id,
            record.holder.key.ifname
        );
        return;
    }
    let from_pod = async {
        let ns = record.holder.open_netns()?;
        let socket = UnicastSocket::open(&ns, &record.holder.key.ifname)?;
        dhcp::release(
            &socket,
            &record.holder.params(Duration::from_secs(1)),
            &record.lease,
        )
        .await?;
        Ok::<_, super::error::AgentError>(())
    };
    match from_pod.await {
        Ok(()) => log_sent(record, "the pod"),
        Err(pod_err) => match from_node(record) {
            Ok(()) => log_sent(record, "the node (pod gone)"),
            Err(e) => tracing::warn!(
                "RELEASE of {} not sent: from the pod: {pod_err}; from the node: {e}",
                record.lease.address
            ),
        },
    }
}

fn log_sent(record: &LeaseRecord, from: &str) {
    tracing::info!(
        "released {} of {}/{} to {} from {from}",
        record.lease.address,
        record.holder.key.container_id,
        record.holder.key.ifname,
        record.lease.server_id
    );
}

fn from_node(record: &LeaseRecord) -> std::io::Result<()> {
    let lease = &record.lease;
    let message = dhcp::message::release(
        &record.holder.params(Duration::from_secs(1)),
        rand_xid(),
        lease.address,
        lease.server_id,
    )
    .map_err(std::io::Error::other)?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_ip_transparent_v4(true)?;
    socket.bind(&SocketAddrV4::new(lease.address, 68).into())?;
    socket.send_to(&message, &SocketAddrV4::new(lease.server_id, 67).into())?;
    Ok(())
}

fn rand_xid() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

/// Sends the releases DEL queued while the daemon was down.
pub async fn flush_queue(store: LeaseStore) {
    let queued = match store.queued_releases() {
        Ok(q) => q,
        Err(e) => {
            tracing::error!("reading the release queue: {e}");
            return;
        }
    };
    for record in queued {
        // A lost lease has nothing left to give back.
        if !record.withdrawn {
            send(&record).await;
        }
        if let Err(e) = store.dequeue_release(&record.holder.key) {
            tracing::error!("dequeueing the release of {}: {e}", record.lease.address);
        }
    }
}

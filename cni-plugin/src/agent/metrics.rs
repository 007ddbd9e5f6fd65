//! The daemon's Prometheus metrics and probes, served on
//! `--metrics-address` (off by default): `/metrics` (text exposition),
//! `/healthz` (the daemon answers) and `/readyz` (it serves the plugin:
//! socket bound, persisted leases resumed).
//!
//! Packet counters are read from each network's `lb_stats` at scrape time
//! (the kernel keeps them; a removed pod's are folded into the network's
//! `departed` row by DEL); DHCP exchanges and the plugin's reports of its
//! commands are counted as they happen.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use lanbridge_common::Reason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::book::Book;
use super::error::{AgentError, Result};
use crate::datapath::{networks, port_name, Datapath};
use crate::dhcp::protocol::{LeaseState, OpReport};
use crate::dhcp::store::LeaseStore;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExchangeLabels {
    network: String,
    /// `acquire`, `renew`, `rebind`.
    exchange: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    command: String,
    network: String,
    /// The CNI error code; 0 for success.
    code: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    network: String,
}

/// What the daemon counts as it happens.
struct Live {
    exchanges: Family<ExchangeLabels, Histogram>,
    ops: Family<OpLabels, Counter>,
    op_seconds: Family<CommandLabels, Histogram>,
}

static LIVE: LazyLock<Live> = LazyLock::new(|| Live {
    exchanges: Family::new_with_constructor(exchange_buckets),
    ops: Family::default(),
    op_seconds: Family::new_with_constructor(op_buckets),
});

/// 1 ms .. ~33 s: a LAN server answers in milliseconds, a missing one runs
/// into the client's timeout.
fn exchange_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// 5 ms .. ~41 s: a warm DEL takes milliseconds, an ADD waits for a lease.
fn op_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Records one DHCP exchange of the daemon and how long it took.
pub fn exchange(network: &str, exchange: &'static str, ok: bool, took: Duration) {
    let labels = ExchangeLabels {
        network: network.to_string(),
        exchange,
        outcome: if ok { "ok" } else { "error" },
    };
    LIVE.exchanges
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
}

/// Records a command the plugin ran and reported.
pub fn operation(report: &OpReport) {
    LIVE.ops
        .get_or_create(&OpLabels {
            command: report.command.clone(),
            network: report.network.clone(),
            code: report.code,
        })
        .inc();
    LIVE.op_seconds
        .get_or_create(&CommandLabels {
            command: report.command.clone(),
            network: report.network.clone(),
        })
        .observe(report.seconds);
}

/// What is read at scrape time: the networks' counters and the leases.
#[derive(Debug)]
struct Node {
    pin_root: PathBuf,
    store: LeaseStore,
    book: Book,
}

impl Node {
    /// (network, interface, reason, packets) of every counter.
    fn packets(&self) -> Vec<(String, String, Reason, u64)> {
        let mut rows = Vec::new();
        for network in networks(&self.pin_root) {
            let stats = match Datapath::existing(&self.pin_root, &network) {
                Ok(Some(dp)) => dp.stats(),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            let stats = match stats {
                Ok(stats) => stats,
                Err(e) => {
                    tracing::warn!("metrics: counters of network {network}: {e}");
                    continue;
                }
            };
            for (key, packets) in stats {
                let Some(reason) = Reason::from_u32(key.reason) else {
                    continue;
                };
                let interface = port_name(key.ifindex);
                rows.push((network.clone(), interface, reason, packets));
            }
        }
        rows
    }

    /// (network, state) of every lease the daemon holds.
    fn leases(&self) -> Vec<(String, LeaseState)> {
        let records = self.store.all().unwrap_or_else(|e| {
            tracing::warn!("metrics: reading the leases: {e}");
            Vec::new()
        });
        records
            .into_iter()
            .map(|r| {
                let state = match self.book.get(&r.holder.key) {
                    Some(status) => status.state,
                    None if r.withdrawn => LeaseState::Expired,
                    None => LeaseState::Bound,
                };
                (r.holder.key.network, state)
            })
            .collect()
    }
}

impl Collector for Node {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), fmt::Error> {
        let packets = self.packets();
        let mut family = encoder.encode_descriptor(
            "lanbridge_packets",
            "Packets the programs judged, by network, port (departed: pods removed) and reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (network, interface, reason, n) in &packets {
            let labels = [
                ("network", network.as_str()),
                ("interface", interface.as_str()),
                ("reason", reason.name()),
            ];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        let mut drops = std::collections::BTreeMap::new();
        for (network, _, reason, n) in packets.iter().filter(|p| p.2.is_drop()) {
            *drops
                .entry((network.as_str(), reason.name()))
                .or_insert(0u64) += n;
        }
        let mut family = encoder.encode_descriptor(
            "lanbridge_drops",
            "Packets dropped, by network and reason, removed pods included",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for ((network, reason), n) in drops {
            let labels = [("network", network), ("reason", reason)];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        let mut leases = std::collections::BTreeMap::new();
        for (network, state) in self.leases() {
            *leases.entry((network, state.name())).or_insert(0i64) += 1;
        }
        let mut family = encoder.encode_descriptor(
            "lanbridge_leases",
            "DHCP leases the daemon holds, by network and state",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for ((network, state), n) in &leases {
            let labels = [("network", network.as_str()), ("state", *state)];
            ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn registry(node: Node) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "lanbridge_dhcp_exchange_seconds",
        "The daemon's DHCP exchanges (acquire, renew, rebind) and how long they took",
        LIVE.exchanges.clone(),
    );
    registry.register(
        "lanbridge_cni_operations",
        "Commands the plugin ran (ADD, DEL, CHECK, GC, STATUS), by CNI result code (0: success)",
        LIVE.ops.clone(),
    );
    registry.register(
        "lanbridge_cni_operation_seconds",
        "How long the plugin's commands took",
        LIVE.op_seconds.clone(),
    );
    registry.register_collector(Box::new(node));
    registry
}

/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// The longest request head read.
const MAX_REQUEST: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Endpoint {
    listener: TcpListener,
    registry: Registry,
    ready: Arc<AtomicBool>,
}

impl Endpoint {
    pub async fn bind(
        address: &str,
        pin_root: PathBuf,
        store: LeaseStore,
        book: Book,
        ready: Arc<AtomicBool>,
    ) -> Result<Endpoint> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| AgentError::io(format!("binding the metrics address {address}"), e))?;
        Ok(Endpoint {
            listener,
            registry: registry(Node {
                pin_root,
                store,
                book,
            }),
            ready,
        })
    }

    /// Serves until the daemon stops; a failed connection is only logged.
    pub async fn serve(self) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let slot = slots.clone().acquire_owned().await.expect("never closed");
            let stream = match this.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics: accepting: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let this = this.clone();
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(e) = this.answer(stream).await {
                    tracing::debug!("metrics connection: {e}");
                }
            });
        }
    }

    async fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
        let mut parts = head.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let (status, kind, body) = match (method, path) {
            ("GET", "/metrics") => {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
                    Ok(()) => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        text,
                    ),
                    Err(_) => (
                        "500 Internal Server Error",
                        "text/plain",
                        "encoding\n".into(),
                    ),
                }
            }
            ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".into()),
            ("GET", "/readyz") if self.ready.load(Ordering::Relaxed) => {
                ("200 OK", "text/plain", "ready\n".into())
            }
            ("GET", "/readyz") => ("503 Service Unavailable", "text/plain", "starting\n".into()),
            ("GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
            _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }
}

/// The request head (up to the blank line), bounded by [`MAX_REQUEST`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head cut or too long",
            ));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

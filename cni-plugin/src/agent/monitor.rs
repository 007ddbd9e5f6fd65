//! Drop events: the daemon drains each network's `lb_events` ring (found
//! under its pin root, looked for again every [`WATCH_INTERVAL`]), logs the
//! drops (rate limited per network) and streams them to `lanbridge monitor`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lanbridge_common::gcra;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::datapath::{networks, port_name, EventRing, Pins};
use crate::dhcp::protocol::DropRecord;

/// How often the pin root is looked at for networks loaded or removed.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Events kept for a slow `monitor` client before it is told some were lost.
const BACKLOG: usize = 1024;
/// Drop lines in the daemon's log, per network: 5 a second, bursts of 20
/// (the kernel already limits each port to 100 events a second).
const LOG_INTERVAL_NS: u64 = 200_000_000;
const LOG_BURST: u64 = 20;

/// The drops of every network, for whoever listens.
pub struct Drops {
    tx: broadcast::Sender<Arc<DropRecord>>,
}

impl Default for Drops {
    fn default() -> Self {
        Drops {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Drops {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DropRecord>> {
        self.tx.subscribe()
    }
}

/// Drains the ring of every network under `pin_root`, for as long as the
/// daemon runs: a network loaded later is picked up, one removed or
/// reloaded (another map behind the pin) is let go or opened again.
pub async fn watch(pin_root: PathBuf, drops: Arc<Drops>) {
    let mut rings: HashMap<String, (u32, JoinHandle<()>)> = HashMap::new();
    let mut failed = HashSet::new();
    loop {
        rings.retain(|network, (id, task)| {
            let current = EventRing::pinned_id(&Pins::new(&pin_root, network)) == Some(*id);
            if !current || task.is_finished() {
                task.abort();
            }
            current && !task.is_finished()
        });
        for network in networks(&pin_root) {
            if rings.contains_key(&network) {
                continue;
            }
            match EventRing::open(&Pins::new(&pin_root, &network)) {
                Ok(Some(ring)) => {
                    tracing::info!("watching drop events of network {network}");
                    failed.remove(&network);
                    let id = ring.id();
                    let task = tokio::spawn(drain(network.clone(), ring, drops.clone()));
                    rings.insert(network, (id, task));
                }
                Ok(None) => {}
                // Said once, not every round.
                Err(e) if failed.insert(network.clone()) => {
                    tracing::warn!("drop events of network {network}: {e}")
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

async fn drain(network: String, mut ring: EventRing, drops: Arc<Drops>) {
    let mut log = LogLimit::default();
    loop {
        let events = match ring.next().await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!("reading the drop events of network {network}: {e}");
                return;
            }
        };
        for ev in events {
            // Unnamed in the node: gone already.
            let interface = Some(port_name(ev.ifindex)).filter(|n| !n.starts_with('#'));
            let record = DropRecord::new(&network, &ev, interface, SystemTime::now());
            log.log(&record);
            // No listener is no error.
            let _ = drops.tx.send(Arc::new(record));
        }
    }
}

/// The log's share of a network's drops.
#[derive(Default)]
struct LogLimit {
    due_ns: u64,
    skipped: u64,
}

impl LogLimit {
    fn log(&mut self, record: &DropRecord) {
        let now = monotonic_ns();
        match gcra(self.due_ns, now, LOG_INTERVAL_NS, LOG_BURST) {
            Some(due) => {
                self.due_ns = due;
                match std::mem::take(&mut self.skipped) {
                    0 => tracing::warn!("drop: {record}"),
                    n => tracing::warn!("drop: {record} [{n} drops not logged before it]"),
                }
            }
            None => self.skipped += 1,
        }
    }
}

fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    // Offset by one so the first call is not "never sent" (0).
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
        + 1
}

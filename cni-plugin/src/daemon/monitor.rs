//! Drop events: the daemon drains each network's `lb_events` ring (found
//! under its pin root, looked for again every [`WATCH_INTERVAL`]), logs the
//! drops (rate limited per network) and streams them to `lanbridge monitor`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanbridge_common::event::DropEvent;
use lanbridge_common::{gcra, Reason};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::protocol::utc;
use crate::config::format_mac;
use crate::datapath::{networks, EventRing, Pins};

/// How often the pin root is looked at for networks loaded or removed.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Events kept for a slow `monitor` client before it is told some were lost.
const BACKLOG: usize = 1024;
/// Drop lines in the daemon's log, per network: 5 a second, bursts of 20
/// (the kernel already limits each port to 100 events a second).
const LOG_INTERVAL_NS: u64 = 200_000_000;
const LOG_BURST: u64 = 20;

/// One dropped packet, as the log and `lanbridge monitor` show it. Every key
/// is always present (null when the packet has no such field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DropRecord {
    /// UTC, milliseconds.
    pub time: String,
    pub network: String,
    pub ifindex: u32,
    /// The port's (or uplink's) name in the node; null when it is gone.
    pub interface: Option<String>,
    pub reason: String,
    pub src_mac: String,
    pub dst_mac: String,
    /// `ipv4`, `ipv6`, `arp`, or the EtherType in hex.
    pub ethertype: String,
    /// The VLAN id of a tag inside the frame.
    pub vlan: Option<u16>,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or the protocol number.
    pub protocol: Option<String>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub length: u32,
    /// The port's drops the kernel did not report just before this one
    /// (its rate limit).
    pub suppressed: u32,
}

impl DropRecord {
    pub fn new(network: &str, ev: &DropEvent, interface: Option<String>, now: SystemTime) -> Self {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let time = utc(since.as_secs());
        let time = format!(
            "{}.{:03}Z",
            time.trim_end_matches('Z'),
            since.subsec_millis()
        );
        type Addr = fn(&[u8; 16]) -> IpAddr;
        fn v4(a: &[u8; 16]) -> IpAddr {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        }
        fn v6(a: &[u8; 16]) -> IpAddr {
            IpAddr::V6(Ipv6Addr::from(*a))
        }
        let (ethertype, addrs): (String, Option<Addr>) = match ev.ethertype {
            0x0800 => ("ipv4".into(), Some(v4)),
            0x0806 => ("arp".into(), Some(v4)),
            0x86dd => ("ipv6".into(), Some(v6)),
            other => (format!("0x{other:04x}"), None),
        };
        let ip = matches!(ev.ethertype, 0x0800 | 0x86dd);
        let ports = matches!(ev.proto, 6 | 17) && (ev.sport, ev.dport) != (0, 0);
        DropRecord {
            time,
            network: network.to_string(),
            ifindex: ev.ifindex,
            interface,
            reason: Reason::from_u32(ev.reason)
                .map_or_else(|| format!("reason_{}", ev.reason), |r| r.name().to_string()),
            src_mac: format_mac(&ev.src_mac),
            dst_mac: format_mac(&ev.dst_mac),
            ethertype,
            vlan: (ev.vlan != 0).then_some(ev.vlan),
            protocol: ip.then(|| protocol(ev.proto)),
            src: addrs.map(|f| f(&ev.saddr)),
            dst: addrs.map(|f| f(&ev.daddr)),
            src_port: ports.then_some(ev.sport),
            dst_port: ports.then_some(ev.dport),
            length: ev.len,
            suppressed: ev.suppressed,
        }
    }
}

fn protocol(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

impl fmt::Display for DropRecord {
    /// `<time> <network> <interface> <reason> <src mac> > <dst mac> <what>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interface = self
            .interface
            .clone()
            .unwrap_or_else(|| format!("ifindex {}", self.ifindex));
        write!(
            f,
            "{} {} {} {}: {} > {} {}",
            self.time,
            self.network,
            interface,
            self.reason,
            self.src_mac,
            self.dst_mac,
            self.protocol.as_deref().unwrap_or(&self.ethertype)
        )?;
        if let Some(vlan) = self.vlan {
            write!(f, " vlan {vlan}")?;
        }
        let end = |ip: Option<IpAddr>, port: Option<u16>| match (ip, port) {
            (Some(IpAddr::V6(ip)), Some(port)) => format!("[{ip}]:{port}"),
            (Some(ip), Some(port)) => format!("{ip}:{port}"),
            (Some(ip), None) => ip.to_string(),
            (None, _) => String::new(),
        };
        if self.src.is_some() {
            write!(
                f,
                " {} > {}",
                end(self.src, self.src_port),
                end(self.dst, self.dst_port)
            )?;
        }
        write!(f, " length {}", self.length)?;
        if self.suppressed != 0 {
            write!(f, " ({} earlier drops not reported)", self.suppressed)?;
        }
        Ok(())
    }
}

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
            let record =
                DropRecord::new(&network, &ev, interface_name(ev.ifindex), SystemTime::now());
            log.log(&record);
            // No listener is no error.
            let _ = drops.tx.send(Arc::new(record));
        }
    }
}

/// The name of interface `ifindex` in the daemon's (the node's) namespace.
fn interface_name(ifindex: u32) -> Option<String> {
    nix::net::if_::if_indextoname(ifindex)
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_every_field_and_read_as_one_line() {
        let mut ev = DropEvent {
            ifindex: 7,
            reason: Reason::DropSpoofIp as u32,
            suppressed: 3,
            len: 60,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [0xff; 6],
            ethertype: 0x0800,
            proto: 17,
            sport: 68,
            dport: 67,
            ..DropEvent::default()
        };
        ev.saddr[..4].copy_from_slice(&[10, 6, 6, 6]);
        ev.daddr[..4].copy_from_slice(&[255; 4]);
        let at = UNIX_EPOCH + Duration::from_millis(951_782_400_250);
        let r = DropRecord::new("lan", &ev, Some("veth1".into()), at);
        assert_eq!(
            r.to_string(),
            "2000-02-29T00:00:00.250Z lan veth1 drop_spoof_ip: 02:00:00:00:00:01 > \
             ff:ff:ff:ff:ff:ff udp 10.6.6.6:68 > 255.255.255.255:67 length 60 \
             (3 earlier drops not reported)"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["srcMac"], "02:00:00:00:00:01");
        assert_eq!(json["src"], "10.6.6.6");
        assert_eq!(json["vlan"], serde_json::Value::Null);
        assert_eq!(json.as_object().unwrap().len(), 16);

        let arp = DropEvent {
            ethertype: 0x0806,
            proto: 0,
            ..ev
        };
        let r = DropRecord::new("lan", &arp, None, at);
        assert_eq!((r.protocol.as_deref(), r.src_port), (None, None));
        assert!(r.to_string().contains("ifindex 7 drop_spoof_ip: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff arp 10.6.6.6 > 255.255.255.255"), "{r}");
    }
}

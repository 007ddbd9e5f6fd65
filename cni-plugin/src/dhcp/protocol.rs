//! The plugin ↔ daemon protocol: one JSON request and one JSON response per
//! connection on the daemon's unix socket, each a single line.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanbridge_common::event::DropEvent;
use lanbridge_common::Reason;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::dhcp::{ClientOptions, Lease, Params, RecordError};
use crate::node::mac::{self, Mac};
use crate::node::netns::NetNs;

pub const DEFAULT_SOCKET: &str = "/run/lanbridge/lanbridge.sock";

/// The longest message either side accepts: a peer can't make the other
/// buffer without bound (a node's full lease list stays far below it).
pub const MAX_MESSAGE: u64 = 4 << 20;

/// Which attachment a lease belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseKey {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

/// Who holds a lease and what comes with it: what the plugin's request
/// says and the daemon's record keeps, to renew and release it and to put
/// the node side back after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseHolder {
    pub key: LeaseKey,
    pub netns: PathBuf,
    /// The inode of `netns`: the daemon may resolve paths elsewhere (a
    /// container without hostPID sees other PIDs) and must not lease in
    /// another namespace; a path naming another namespace later counts as
    /// the pod gone (0 from older plugins and records: any).
    #[serde(default)]
    pub netns_inode: u64,
    /// The pod interface's MAC (`chaddr`).
    #[serde(with = "mac::octets")]
    pub mac: Mac,
    pub client_id: Vec<u8>,
    pub hostname: Option<String>,
    /// What the node does for the address (absent from older plugins and
    /// records).
    #[serde(default)]
    pub node: Option<NodeSide>,
    /// The lease belongs to the pod's name, which outlives the container
    /// (`"clientId": "pod"`): DEL does not release it, so the pod restarted
    /// under the same name asks with the same identifier and the server
    /// gives it the same address (a deleted pod's lease runs out at the
    /// server).
    #[serde(default)]
    pub sticky: bool,
    /// `request` and `provide` of the config, for every exchange.
    #[serde(default)]
    pub options: ClientOptions,
    /// The metric of the lease's routes in the pod (`ipam.priority`; 0: none).
    #[serde(default)]
    pub route_priority: u32,
}

impl LeaseHolder {
    /// The pod's namespace, while `netns` still names it.
    pub fn open_netns(&self) -> crate::node::error::Result<NetNs> {
        NetNs::open_same(&self.netns, self.netns_inode)
    }

    /// The exchange's parameters to acquire, renew, rebind or release with.
    pub fn params(&self, timeout: Duration) -> Params {
        Params {
            mac: self.mac,
            client_id: self.client_id.clone(),
            hostname: self.hostname.clone(),
            timeout,
            requested_ip: None,
            options: self.options.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcquireRequest {
    #[serde(flatten)]
    pub holder: LeaseHolder,
    pub timeout_ms: u64,
}

/// What the node does for a leased address, as ADD set it up, so the daemon
/// can withdraw it when the lease ends and move it when the address changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSide {
    pub bridge: String,
    /// The pod's host-side port: its ifindex keys the datapath maps.
    pub port: String,
    pub port_ifindex: u32,
    /// bpffs directory of the network's pins, as the plugin resolved it.
    pub pin_root: PathBuf,
    /// lan mode: the /32 route on the bridge takes this source (the
    /// uplink's address); none in other modes (no route).
    pub route_src: Option<Ipv4Addr>,
    /// The node routes for the pod: FORWARD accepts for its address.
    pub routed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    Acquire(Box<AcquireRequest>),
    Release {
        key: LeaseKey,
    },
    /// Every lease the daemon holds (for `lanbridge inspect`).
    Leases,
    /// Where one attachment's lease stands (for CHECK).
    Status {
        key: LeaseKey,
    },
    /// Where every lease stands (for `lanbridge status`).
    LeaseStates,
    /// The plugin ran a command (for the metrics).
    Report(OpReport),
    /// Drop events as they happen (of one network, or all), one
    /// [`MonitorEvent`] a line, until the client closes the connection.
    Monitor {
        #[serde(default)]
        network: Option<String>,
    },
}

/// A command the plugin ran, its outcome and duration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpReport {
    /// `ADD`, `DEL`, `CHECK`, `GC`, `STATUS`.
    pub command: String,
    pub network: String,
    /// The CNI error code; 0 for success.
    pub code: u32,
    pub seconds: f64,
}

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
    pub src_mac: Mac,
    pub dst_mac: Mac,
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
    /// The event of `network`'s programs, seen at `now`, on the port named
    /// `interface` in the node (none when it has no name there).
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
            src_mac: ev.src_mac.into(),
            dst_mac: ev.dst_mac.into(),
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

/// A line of the stream a [`Request::Monitor`] gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum MonitorEvent {
    Drop(Box<DropRecord>),
    /// The client read too slowly: this many events were not sent to it.
    Lost {
        count: u64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Response {
    Lease {
        lease: Lease,
    },
    Released {
        sent: bool,
    },
    Leases {
        leases: Vec<LeaseRecord>,
    },
    Status {
        status: Option<LeaseStatus>,
    },
    Noted,
    LeaseStates {
        states: Vec<(LeaseKey, LeaseStatus)>,
    },
    Error {
        code: u32,
        msg: String,
    },
}

/// A lease and everything needed to renew and release it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    #[serde(flatten)]
    pub holder: LeaseHolder,
    /// The last lease granted; see `withdrawn`.
    pub lease: Lease,
    /// The lease ended (expiry, NAK) and everything done for its address
    /// was withdrawn: the daemon is acquiring a new one.
    #[serde(default)]
    pub withdrawn: bool,
}

/// A lease's state in RFC 2131's terms, with when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStatus {
    pub state: LeaseState,
    /// The address held (bound, renewing, rebinding) or lost (expired, refused).
    pub address: Ipv4Addr,
    /// Unix seconds of the last change of `state`.
    pub since: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeaseState {
    Bound,
    Renewing,
    Rebinding,
    /// Ran out without renewal; acquiring again (INIT).
    Expired,
    /// The server answered DHCPNAK; acquiring again (INIT).
    Refused,
}

impl LeaseState {
    pub fn name(self) -> &'static str {
        match self {
            LeaseState::Bound => "bound",
            LeaseState::Renewing => "renewing",
            LeaseState::Rebinding => "rebinding",
            LeaseState::Expired => "expired",
            LeaseState::Refused => "refused",
        }
    }
}

impl LeaseStatus {
    /// Whether the address is lost and the daemon is acquiring a new one.
    pub fn lost(&self) -> bool {
        matches!(self.state, LeaseState::Expired | LeaseState::Refused)
    }
}

impl std::fmt::Display for LeaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = utc(self.since);
        match self.state {
            LeaseState::Bound => write!(f, "{} bound since {at}", self.address),
            LeaseState::Renewing => write!(f, "{} renewing since {at}", self.address),
            LeaseState::Rebinding => write!(f, "{} rebinding since {at}", self.address),
            LeaseState::Expired => write!(f, "lease of {} expired at {at}", self.address),
            LeaseState::Refused => write!(f, "lease of {} NAKed at {at}", self.address),
        }?;
        if self.lost() {
            f.write_str(", re-acquiring")?;
        }
        match &self.last_error {
            Some(e) => write!(f, " (last error: {e})"),
            None => Ok(()),
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (days to civil date: H. Hinnant's algorithm).
pub fn utc(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub async fn write_message<W, T>(w: &mut W, msg: &T) -> Result<(), RecordError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut line = serde_json::to_vec(msg).expect("protocol messages serialize");
    line.push(b'\n');
    w.write_all(&line)
        .await
        .map_err(|e| RecordError::io("writing to the lanbridge daemon socket", e))?;
    w.flush()
        .await
        .map_err(|e| RecordError::io("writing to the lanbridge daemon socket", e))
}

pub async fn read_message<R, T>(r: R) -> Result<T, RecordError>
where
    R: AsyncRead + Unpin,
    T: for<'de> Deserialize<'de>,
{
    let mut line = String::new();
    let read = BufReader::new(r.take(MAX_MESSAGE))
        .read_line(&mut line)
        .await
        .map_err(|e| RecordError::io("reading from the lanbridge daemon socket", e))?;
    if read == 0 {
        return Err(RecordError::io(
            "reading from the lanbridge daemon socket",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a message"),
        ));
    }
    if !line.ends_with('\n') {
        let (kind, why) = match read as u64 {
            MAX_MESSAGE => (
                std::io::ErrorKind::InvalidData,
                format!("message longer than {MAX_MESSAGE} bytes"),
            ),
            _ => (
                std::io::ErrorKind::UnexpectedEof,
                "closed in the middle of a message".to_string(),
            ),
        };
        return Err(RecordError::io(
            "reading from the lanbridge daemon socket",
            std::io::Error::new(kind, why),
        ));
    }
    serde_json::from_str(&line).map_err(|source| RecordError::Decode {
        what: "daemon protocol message",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_043_252), "2026-11-30T12:54:12Z");
    }

    #[tokio::test]
    async fn oversized_and_cut_messages_are_refused() {
        let big = vec![b'x'; MAX_MESSAGE as usize + 10];
        let err = read_message::<_, Request>(&big[..]).await.unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let err = read_message::<_, Request>(&b"{\"op\":"[..])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("middle of a message"), "{err}");
    }

    #[test]
    fn statuses_read_as_check_reports_them() {
        let status = |state, last_error: Option<&str>| LeaseStatus {
            state,
            address: Ipv4Addr::new(192, 168, 77, 100),
            since: 951_782_400,
            last_error: last_error.map(str::to_string),
        };
        assert_eq!(
            status(LeaseState::Expired, None).to_string(),
            "lease of 192.168.77.100 expired at 2000-02-29T00:00:00Z, re-acquiring"
        );
        assert_eq!(
            status(LeaseState::Refused, Some("no DHCPOFFER")).to_string(),
            "lease of 192.168.77.100 NAKed at 2000-02-29T00:00:00Z, re-acquiring \
             (last error: no DHCPOFFER)"
        );
        assert_eq!(
            status(LeaseState::Bound, None).to_string(),
            "192.168.77.100 bound since 2000-02-29T00:00:00Z"
        );
        assert!(!status(LeaseState::Rebinding, None).lost());
    }

    #[test]
    fn records_without_the_node_side_still_load() {
        let old = r#"{"key":{"network":"n","containerId":"c","ifname":"eth0"},
            "netns":"/run/netns/p","mac":[2,0,0,0,0,1],"clientId":[0,1],"hostname":null,
            "lease":{"address":"192.168.77.100","prefix_len":24,"router":null,
            "dns_servers":[],"domain":null,"classless_routes":[],"server_id":"192.168.77.1",
            "lease_time":60,"t1":30,"t2":52,"acquired_at":1}}"#;
        let r: LeaseRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.holder.node, None);
        assert!(!r.withdrawn);
    }

    /// A lease file as the daemon wrote it before [`LeaseHolder`] (`store`'s
    /// pretty JSON, MACs as arrays of octets).
    const LEASE_FILE: &str = r#"{
  "key": {
    "network": "lan",
    "containerId": "c1",
    "ifname": "eth0"
  },
  "netns": "/run/netns/p",
  "netnsInode": 4026532801,
  "mac": [
    10,
    88,
    10,
    244,
    1,
    5
  ],
  "clientId": [
    1,
    10,
    88,
    10,
    244,
    1,
    5
  ],
  "hostname": "web-0",
  "lease": {
    "address": "192.168.77.100",
    "prefix_len": 24,
    "router": "192.168.77.1",
    "dns_servers": [
      "192.168.77.1"
    ],
    "domain": null,
    "classless_routes": [
      {
        "destination": "10.9.0.0/16",
        "gateway": null
      }
    ],
    "server_id": "192.168.77.1",
    "lease_time": 60,
    "t1": 30,
    "t2": 52,
    "acquired_at": 1796043252
  },
  "node": {
    "bridge": "lanbr",
    "port": "lb0123456789ab",
    "portIfindex": 7,
    "pinRoot": "/sys/fs/bpf/lanbridge",
    "routeSrc": "192.168.77.2",
    "routed": true
  },
  "withdrawn": false,
  "sticky": true,
  "options": {
    "parameters": [
      1,
      3
    ],
    "provided": [
      [
        60,
        [
          108,
          98
        ]
      ]
    ]
  },
  "routePriority": 100
}"#;

    /// Read and written back, the same JSON: every key and value (the
    /// holder's keys now come first: object order means nothing to a reader).
    #[test]
    fn lease_files_read_and_write_unchanged() {
        let r: LeaseRecord = serde_json::from_str(LEASE_FILE).unwrap();
        assert_eq!(r.holder.mac, Mac::new([0x0a, 0x58, 0x0a, 0xf4, 1, 5]));
        assert_eq!(r.holder.route_priority, 100);
        let written = serde_json::to_string_pretty(&r).unwrap();
        let value = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(value(&written), value(LEASE_FILE));
        assert_eq!(serde_json::from_str::<LeaseRecord>(&written).unwrap(), r);
    }

    /// An acquisition as the plugin sent it before [`LeaseHolder`]: one line.
    const ACQUIRE: &str = r#"{"op":"acquire","key":{"network":"lan","containerId":"c1","ifname":"eth0"},"netns":"/run/netns/p","netnsInode":4026532801,"mac":[10,88,10,244,1,5],"clientId":[1,10,88,10,244,1,5],"hostname":null,"timeoutMs":10000,"node":{"bridge":"lanbr","port":"lb0123456789ab","portIfindex":7,"pinRoot":"/sys/fs/bpf/lanbridge","routeSrc":null,"routed":false},"sticky":false,"options":{"parameters":null,"provided":[]},"routePriority":0}"#;

    #[test]
    fn acquire_requests_keep_their_wire_form() {
        let Request::Acquire(req) = serde_json::from_str(ACQUIRE).unwrap() else {
            panic!("not an acquisition");
        };
        assert_eq!(req.timeout_ms, 10_000);
        assert_eq!(req.holder.key.container_id, "c1");
        assert_eq!(req.holder.node.as_ref().unwrap().port_ifindex, 7);
        let sent = serde_json::to_value(Request::Acquire(req)).unwrap();
        assert_eq!(
            sent,
            serde_json::from_str::<serde_json::Value>(ACQUIRE).unwrap()
        );
        // An older plugin's: no inode, node side, stickiness, options, priority.
        let old = r#"{"op":"acquire","key":{"network":"n","containerId":"c","ifname":"eth0"},"netns":"/p","mac":[2,0,0,0,0,1],"clientId":[0,1],"hostname":"h","timeoutMs":1}"#;
        let Request::Acquire(req) = serde_json::from_str(old).unwrap() else {
            panic!("not an acquisition");
        };
        assert_eq!(
            (req.holder.netns_inode, req.holder.node, req.holder.sticky),
            (0, None, false)
        );
    }

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

//! Real DHCP servers for the LAN namespace (or a pod): dnsmasq and ISC Kea,
//! started by the test with their files in a directory of its own, killed by
//! PID on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::background::Background;
use crate::netns::Netns;
use crate::process::{self, DEFAULT_TIMEOUT};
use crate::topology::{LAN_BRIDGE, LAN_ROUTER};

/// How long a server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The LAN's pool (both servers).
pub const POOL_START: &str = "192.168.77.100";
pub const POOL_END: &str = "192.168.77.150";

/// Whether `ip` (dotted quad) lies in the LAN pool.
pub fn in_pool(ip: &str) -> bool {
    let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    let start: std::net::Ipv4Addr = POOL_START.parse().expect("pool start");
    let end: std::net::Ipv4Addr = POOL_END.parse().expect("pool end");
    ip >= start && ip <= end
}

/// What a dnsmasq instance serves.
#[derive(Debug, Clone)]
pub struct DnsmasqConf {
    pub interface: String,
    pub range_start: String,
    pub range_end: String,
    /// dnsmasq's lease time syntax: "1h", "10m" (dnsmasq's minimum is 2 minutes).
    pub lease: String,
    /// Option 3; dnsmasq offers its own address when `None`.
    pub router: Option<String>,
    /// dnsmasq's ping check (its default, as shipped): an ICMP echo to a
    /// pool address before offering it, which holds the OFFER (and every
    /// other DHCP packet) for 3 s when nothing answers. Off: `--no-ping`.
    pub ping: bool,
    /// More command-line options.
    pub extra: Vec<String>,
}

impl DnsmasqConf {
    /// The LAN's server: on the LAN bridge, pool .100–.150, router .1.
    pub fn lan() -> DnsmasqConf {
        DnsmasqConf {
            interface: LAN_BRIDGE.into(),
            range_start: POOL_START.into(),
            range_end: POOL_END.into(),
            lease: "1h".into(),
            router: Some(LAN_ROUTER.into()),
            ping: false,
            extra: vec![],
        }
    }

    /// [`DnsmasqConf::lan`] as dnsmasq ships: ping check on.
    pub fn lan_pinging() -> DnsmasqConf {
        DnsmasqConf {
            ping: true,
            ..DnsmasqConf::lan()
        }
    }
}

/// One line of dnsmasq's lease file: `<expiry> <mac> <ip> <hostname> <client-id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqLease {
    pub expiry: u64,
    pub mac: String,
    pub ip: String,
    /// `*` when the client sent none.
    pub hostname: String,
    /// Colon-separated hex as dnsmasq prints it, `*` when none.
    pub client_id: String,
}

/// A dnsmasq (DHCP only: `--port=0`) in a namespace.
pub struct Dnsmasq {
    proc: Background,
    dir: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq in `ns` with its files in `dir` (created) and waits until it serves.
    pub fn start(ns: &Netns, dir: &Path, conf: &DnsmasqConf) -> Dnsmasq {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let lease_file = dir.join("leases");
        let mut cmd = ns.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--user=root",
            "--bind-interfaces",
            "--log-dhcp",
            "--log-facility=-",
        ])
        .arg(format!("--interface={}", conf.interface))
        .arg(format!(
            "--dhcp-range={},{},{}",
            conf.range_start, conf.range_end, conf.lease
        ))
        .arg(format!("--dhcp-leasefile={}", lease_file.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(&conf.extra);
        if let Some(router) = &conf.router {
            cmd.arg(format!("--dhcp-option=option:router,{router}"));
        }
        if !conf.ping {
            cmd.arg("--no-ping");
        }
        let log = dir.join("log");
        // A restart appends to the log of the earlier run.
        let runs = starts(&log, "DHCP, IP range");
        let mut proc = Background::spawn("dnsmasq", cmd, &log);
        let up = process::wait_until(START_TIMEOUT, || {
            starts(&log, "DHCP, IP range") > runs || !proc.running()
        });
        assert!(
            up && proc.running(),
            "dnsmasq in {} did not start:\n{}",
            ns.name(),
            proc.log()
        );
        Dnsmasq {
            proc,
            dir: dir.to_path_buf(),
        }
    }

    /// The lease file's entries (empty before the first lease).
    pub fn leases(&self) -> Vec<DnsmasqLease> {
        parse_dnsmasq_leases(&crate::background::read_log(&self.dir.join("leases")))
    }

    /// The lease of address `ip`, if the lease file lists it.
    pub fn lease_of(&self, ip: &str) -> Option<DnsmasqLease> {
        self.leases().into_iter().find(|l| l.ip == ip)
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.proc.wait_log(needle, timeout)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// Stops the server now (SIGKILL by PID).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Kills the server and starts it again in `ns` serving `conf`, with an
    /// empty lease file (the log goes on in the same file).
    pub fn restart_empty(&mut self, ns: &Netns, conf: &DnsmasqConf) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.join("leases"));
        *self = Dnsmasq::start(ns, &self.dir.clone(), conf);
    }
}

/// A minimal DHCP server that answers every DHCPREQUEST with a DHCPACK of
/// one fixed `address` (whatever was asked for): what a real server does
/// when its pool is renumbered under a running client. Unicast replies go
/// to `ciaddr`, others are broadcast on the LAN bridge. Stopped on drop.
pub struct Readdresser {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Readdresser {
    /// Serves in `ns` (port 67 must be free there) as server `server_id`,
    /// granting `address`/24 with router `server_id` for `lease` seconds.
    pub fn start(ns: &Netns, server_id: &str, address: &str, lease: u32) -> Readdresser {
        use std::net::{Ipv4Addr, UdpSocket};
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let server: Ipv4Addr = server_id.parse().expect("server id");
        let address: Ipv4Addr = address.parse().expect("address");
        let socket = ns.within(|| UdpSocket::bind("0.0.0.0:67").expect("bind :67"));
        socket.set_broadcast(true).expect("SO_BROADCAST");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut acks = 0;
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, _)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let m = &buf[..n];
                // A BOOTREQUEST carrying option 53 = 3 (DHCPREQUEST).
                if n < 240 || m[0] != 1 || !m[240..].windows(3).any(|w| w == [53, 1, 3]) {
                    continue;
                }
                let mut ack = m[..240].to_vec();
                ack[0] = 2;
                ack[16..20].copy_from_slice(&address.octets());
                for (code, value) in [
                    (53u8, vec![5u8]),
                    (54, server.octets().to_vec()),
                    (51, lease.to_be_bytes().to_vec()),
                    (1, vec![255, 255, 255, 0]),
                    (3, server.octets().to_vec()),
                ] {
                    ack.push(code);
                    ack.push(value.len() as u8);
                    ack.extend(value);
                }
                ack.push(255);
                let ciaddr = Ipv4Addr::new(m[12], m[13], m[14], m[15]);
                let to = match ciaddr.is_unspecified() {
                    true => Ipv4Addr::BROADCAST,
                    false => ciaddr,
                };
                if socket.send_to(&ack, (to, 68)).is_ok() {
                    acks += 1;
                }
            }
            acks
        });
        Readdresser {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops serving; the number of DHCPACKs sent.
    pub fn stop(&mut self) -> u32 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .map_or(0, |t| t.join().unwrap_or_default())
    }
}

impl Drop for Readdresser {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How often a server's log says it started.
fn starts(log: &Path, needle: &str) -> usize {
    crate::background::read_log(log).matches(needle).count()
}

pub fn parse_dnsmasq_leases(text: &str) -> Vec<DnsmasqLease> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "duid ..." lines are DHCPv6 bookkeeping.
            if f.len() < 5 || f[0] == "duid" {
                return None;
            }
            Some(DnsmasqLease {
                expiry: f[0].parse().ok()?,
                mac: f[1].to_lowercase(),
                ip: f[2].to_string(),
                hostname: f[3].to_string(),
                client_id: f[4].to_lowercase(),
            })
        })
        .collect()
}

/// Lifetimes of a Kea subnet, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct KeaTimers {
    pub valid: u32,
    pub renew: u32,
    pub rebind: u32,
}

/// One row of Kea's memfile lease CSV (`kea-leases4.csv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeaLease {
    pub address: String,
    pub hwaddr: String,
    pub client_id: String,
    pub valid_lifetime: u64,
    pub expire: u64,
    pub hostname: String,
    /// 0 default (assigned), 1 declined, 2 expired-reclaimed.
    pub state: u32,
}

/// ISC Kea (`kea-dhcp4`) serving the LAN bridge, memfile leases persisted
/// to a CSV the test reads (`lfc-interval` 0: every change is appended).
pub struct Kea {
    proc: Background,
    dir: PathBuf,
}

impl Kea {
    /// Writes the config into `dir` (created), checks it with `kea-dhcp4 -t`
    /// inside `ns`, starts the server there and waits until it serves.
    pub fn start(ns: &Netns, dir: &Path, timers: KeaTimers) -> Kea {
        Kea::start_with(ns, dir, timers, &[])
    }

    /// [`Kea::start`] with host reservations `(MAC, address)`.
    pub fn start_with(
        ns: &Netns,
        dir: &Path,
        timers: KeaTimers,
        reservations: &[(&str, &str)],
    ) -> Kea {
        let reservations: Vec<_> = reservations
            .iter()
            .map(|(mac, ip)| json!({"hw-address": mac, "ip-address": ip}))
            .collect();
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let config = dir.join("kea-dhcp4.json");
        let conf = json!({"Dhcp4": {
            "interfaces-config": {"interfaces": [LAN_BRIDGE]},
            "lease-database": {
                "type": "memfile",
                "persist": true,
                "name": dir.join("kea-leases4.csv").display().to_string(),
                "lfc-interval": 0
            },
            "valid-lifetime": timers.valid,
            "min-valid-lifetime": timers.valid,
            "max-valid-lifetime": timers.valid,
            "renew-timer": timers.renew,
            "rebind-timer": timers.rebind,
            "subnet4": [{
                "id": 1,
                "subnet": "192.168.77.0/24",
                "pools": [{"pool": format!("{POOL_START} - {POOL_END}")}],
                "option-data": [{"name": "routers", "data": LAN_ROUTER}],
                "reservations": reservations
            }],
            "loggers": [{
                "name": "kea-dhcp4",
                "output_options": [{"output": "stdout"}],
                "severity": "INFO"
            }]
        }});
        std::fs::write(&config, serde_json::to_vec_pretty(&conf).expect("json"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let kea = |args: &[&str]| {
            let mut c = ns.command("kea-dhcp4");
            c.args(args)
                .env("KEA_PIDFILE_DIR", dir)
                .env("KEA_LOCKFILE_DIR", dir);
            c
        };
        let config_s = config.display().to_string();
        let check = process::run(&mut kea(&["-t", &config_s]), None, DEFAULT_TIMEOUT);
        assert!(
            check.success(),
            "kea-dhcp4 -t {config_s} failed:\n{}\n{}",
            check.stdout,
            check.stderr
        );
        let log = dir.join("log");
        let runs = starts(&log, "DHCP4_STARTED");
        let mut proc = Background::spawn("kea-dhcp4", kea(&["-c", &config_s]), &log);
        let up = process::wait_until(START_TIMEOUT, || {
            starts(&log, "DHCP4_STARTED") > runs || !proc.running()
        });
        assert!(
            up && proc.running(),
            "kea-dhcp4 in {} did not start:\n{}",
            ns.name(),
            proc.log()
        );
        Kea {
            proc,
            dir: dir.to_path_buf(),
        }
    }

    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("kea-leases4.csv")
    }

    /// Every row of the lease CSV in file order (Kea appends a row per change).
    pub fn lease_rows(&self) -> Vec<KeaLease> {
        parse_kea_csv(&crate::background::read_log(&self.lease_file()))
    }

    /// The rows of address `ip`, oldest first.
    pub fn rows_of(&self, ip: &str) -> Vec<KeaLease> {
        self.lease_rows()
            .into_iter()
            .filter(|l| l.address == ip)
            .collect()
    }

    /// The latest row of address `ip`.
    pub fn last_row(&self, ip: &str) -> Option<KeaLease> {
        self.rows_of(ip).pop()
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.proc.wait_log(needle, timeout)
    }

    /// Stops the server now (SIGKILL by PID).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// SIGSTOP: the server hears nothing and answers nothing until [`Kea::resume`].
    pub fn pause(&self) {
        self.proc.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`Kea::pause`].
    pub fn resume(&self) {
        self.proc.signal(libc::SIGCONT);
    }

    /// Kills the server and starts it again in `ns` with an empty lease
    /// database and `reservations` (the log goes on in the same file).
    pub fn restart_empty(&mut self, ns: &Netns, timers: KeaTimers, reservations: &[(&str, &str)]) {
        self.kill();
        let _ = std::fs::remove_file(self.lease_file());
        *self = Kea::start_with(ns, &self.dir.clone(), timers, reservations);
    }
}

/// Kea's CSV, columns found by the header line.
pub fn parse_kea_csv(text: &str) -> Vec<KeaLease> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return vec![];
    };
    let cols: BTreeMap<&str, usize> = header
        .split(',')
        .enumerate()
        .map(|(i, c)| (c.trim(), i))
        .collect();
    let field = |f: &[&str], name: &str| -> String {
        cols.get(name)
            .and_then(|i| f.get(*i))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(KeaLease {
                address: field(&f, "address"),
                hwaddr: field(&f, "hwaddr").to_lowercase(),
                client_id: field(&f, "client_id").to_lowercase(),
                valid_lifetime: field(&f, "valid_lifetime").parse().ok()?,
                expire: field(&f, "expire").parse().ok()?,
                hostname: field(&f, "hostname"),
                state: field(&f, "state").parse().unwrap_or(0),
            })
        })
        .collect()
}

/// Runs `busybox udhcpc` once on `ifname` in `ns` without touching the
/// interface (`-s /bin/true`): up to `tries` DISCOVERs a second apart; the
/// result (success = a lease was obtained).
pub fn udhcpc_once(ns: &Netns, ifname: &str, tries: u32) -> process::Finished {
    let mut c = ns.command("busybox");
    c.args(["udhcpc", "-i", ifname, "-n", "-q", "-f", "-s", "/bin/true"])
        .args(["-t", &tries.to_string(), "-T", "1"]);
    process::run(&mut c, None, Duration::from_secs(u64::from(tries) * 3 + 10))
}

/// `nsenter --net=<ns> nft -f -` with `rules` (e.g. a bridge-family filter
/// in the LAN namespace); panics on failure.
pub fn nft(ns: &Netns, rules: &str) {
    let mut c: Command = ns.command("nft");
    c.args(["-f", "-"]);
    let f = process::run(&mut c, Some(rules.as_bytes()), DEFAULT_TIMEOUT);
    assert!(
        f.success(),
        "nft in {} failed: {}\n{rules}",
        ns.name(),
        f.stderr
    );
}

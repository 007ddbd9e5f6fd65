//! Test-only worlds for the DHCP client: a "LAN" namespace holding a bridge
//! (192.168.79.1/24) and optionally dnsmasq, and "pod" namespaces whose
//! `eth0` is a veth into that bridge. Nothing touches the machine's own
//! namespace; everything is removed on drop, also when a test panics.
//! (The tests crate has similar helpers but cannot reach this binary's
//! private modules, so these tests live here.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::node::netns::NetNs;

pub const BRIDGE: &str = "br0";
pub const SERVER: &str = "192.168.79.1";
pub const RANGE_START: u8 = 100;
pub const RANGE_END: u8 = 150;
pub const DNS: &str = "192.168.79.53";
pub const DOMAIN: &str = "lan.test";
pub const LEASE_SECS: u32 = 600;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Fails (never skips) the test unless it runs as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the DHCP client tests create network namespaces: run them as root"
    );
}

/// Runs a command, panicking with its stderr unless it succeeds.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named namespace (`ip netns add`), deleted on drop.
pub struct Ns {
    name: String,
}

impl Ns {
    fn create(tag: &str) -> Ns {
        let name = format!(
            "lbd{}x{}{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n <ns> args...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command run in this namespace by `nsenter --net` (which, unlike
    /// `ip netns exec`, does not remount /sys).
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("[dhcp tests] ip netns del {}: {out:?}", self.name);
        }
    }
}

/// dnsmasq in the LAN namespace, killed (by its PID) on drop.
struct Dnsmasq {
    child: Child,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("[dhcp tests] killing dnsmasq {}: {e}", self.child.id());
        }
        // Reap it; the exit status of a killed server says nothing.
        self.child.wait().ok();
    }
}

/// The LAN: a bridge with the server's address, maybe dnsmasq on it.
pub struct Lan {
    // Dropped in this order: the server, then the namespace it lives in.
    dnsmasq: Option<Dnsmasq>,
    pub ns: Ns,
    dir: tempfile::TempDir,
    pods: AtomicUsize,
}

impl Lan {
    pub fn new() -> Lan {
        require_root();
        let ns = Ns::create("lan");
        ns.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        ns.ip(&["addr", "add", &format!("{SERVER}/24"), "dev", BRIDGE]);
        ns.ip(&["link", "set", BRIDGE, "up"]);
        Lan {
            dnsmasq: None,
            ns,
            dir: tempfile::tempdir().expect("tempdir"),
            pods: AtomicUsize::new(0),
        }
    }

    /// Starts dnsmasq on the bridge with the test's range and options plus `extra`.
    pub fn start_dnsmasq(&mut self, extra: &[&str]) {
        let d = self.dir.path();
        let pid_file = d.join("dnsmasq.pid");
        let mut c = self.ns.command("dnsmasq");
        c.args([
            "--conf-file=/dev/null",
            "--keep-in-foreground",
            "--no-ping",
            "--port=0",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--bind-interfaces",
        ])
        .arg(format!("--interface={BRIDGE}"))
        .arg(format!(
            "--dhcp-range=192.168.79.{RANGE_START},192.168.79.{RANGE_END},255.255.255.0,{LEASE_SECS}"
        ))
        .arg(format!("--dhcp-option=option:dns-server,{DNS}"))
        .arg(format!("--dhcp-option=option:domain-name,{DOMAIN}"))
        .arg(format!("--dhcp-leasefile={}", self.lease_file().display()))
        .arg(format!("--pid-file={}", pid_file.display()))
        .arg("--log-dhcp")
        .arg(format!("--log-facility={}", d.join("dnsmasq.log").display()))
        .args(extra)
        .stdin(Stdio::null());
        let child = c.spawn().expect("spawning dnsmasq (package dnsmasq-base)");
        self.dnsmasq = Some(Dnsmasq { child });
        let ready = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
        });
        assert!(ready, "dnsmasq did not start: {}", self.log());
    }

    pub fn lease_file(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.leases")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }

    /// dnsmasq's lease lines: expiry, MAC, address, hostname, client id.
    pub fn leases(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.lease_file())
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    /// A pod namespace with `eth0` (MAC `mac`, up, no address) bridged to the LAN.
    pub fn pod(&self, mac: [u8; 6]) -> Ns {
        let pod = Ns::create("pod");
        let port = format!("p{}", self.pods.fetch_add(1, Ordering::SeqCst));
        self.ns.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
        ]);
        self.ns.ip(&["link", "set", &port, "master", BRIDGE, "up"]);
        pod.ip(&["link", "set", "eth0", "address", &mac_string(&mac), "up"]);
        pod
    }
}

pub fn netns(ns: &Ns) -> NetNs {
    NetNs::open(Path::new(&ns.path())).expect("open pod netns")
}

/// Sets a sysctl of the namespace (e.g. `net.ipv4.conf.all.rp_filter`).
pub fn sysctl(ns: &Ns, key: &str, value: &str) {
    let out = ns
        .command("sysctl")
        .args(["-w", &format!("{key}={value}")])
        .output()
        .expect("spawning sysctl");
    assert!(out.status.success(), "sysctl {key}: {out:?}");
}

pub use crate::node::mac::format_mac as mac_string;

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

//! A named network namespace (`ip netns add`) owned by a test, removed on drop.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::process::{self, Finished, DEFAULT_TIMEOUT};

/// Every namespace this process created and has not removed yet (for SIGINT cleanup).
static REGISTRY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A process-unique name prefix, `lbt<pid>x<n>`.
pub fn unique_prefix() -> String {
    format!(
        "lbt{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn registry() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes every namespace still registered (used by signal handlers).
pub fn cleanup_registered() {
    let names: Vec<String> = registry().iter().cloned().collect();
    for name in names {
        remove_netns(&name);
    }
}

/// lanbridge's default paths as scoped for the namespace with inode `ino`
/// (cni-plugin/src/scope.rs): pins, state, the daemon's socket dir and marker.
pub fn scoped_defaults(ino: u64) -> [PathBuf; 3] {
    let scope = format!("netns-{ino}");
    [
        Path::new("/sys/fs/bpf/lanbridge").join(&scope),
        Path::new("/var/lib/cni/lanbridge").join(&scope),
        Path::new("/run/lanbridge").join(&scope),
    ]
}

/// Removes what lanbridge kept under its default paths for a namespace
/// (and the parents it created, when that leaves them empty).
fn remove_scoped_defaults(ino: u64) {
    for dir in scoped_defaults(ino) {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("[harness] removing {}: {e}", dir.display());
            }
        }
        for parent in dir.ancestors().skip(1) {
            if std::fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }
}

/// Kills the processes living in namespace `name` (ours: we created it) and
/// deletes it, with what lanbridge kept for it under its default paths.
fn remove_netns(name: &str) {
    let ino = std::fs::metadata(Path::new("/run/netns").join(name)).map(|m| m.ino());
    let pids = process::run(
        Command::new("ip").args(["netns", "pids", name]),
        None,
        DEFAULT_TIMEOUT,
    );
    for pid in pids.stdout.split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            // SAFETY: plain syscall on a PID that lives in a namespace this process created.
            if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
                eprintln!(
                    "[harness] kill {pid} in netns {name}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    // While the namespace lives, no new one can have its inode.
    if let Ok(ino) = ino {
        remove_scoped_defaults(ino);
    }
    let del = process::run(
        Command::new("ip").args(["netns", "del", name]),
        None,
        DEFAULT_TIMEOUT,
    );
    if !del.success() {
        eprintln!("[harness] ip netns del {name}: {}", del.stderr.trim());
    }
    registry().remove(name);
}

/// A network namespace created by the test, deleted (with its processes) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    deleted: bool,
}

impl Netns {
    /// Creates namespace `name` and brings its loopback up.
    pub fn create(name: &str) -> Netns {
        assert!(
            !name.is_empty() && name.len() < 200 && !name.contains('/'),
            "bad netns name {name:?}"
        );
        // After a signal the cleanup thread is removing every namespace.
        assert!(
            !crate::cleanup::interrupted(),
            "interrupted: no new namespace {name}"
        );
        process::run_ok(Command::new("ip").args(["netns", "add", name]));
        registry().insert(name.to_string());
        let ns = Netns {
            name: name.to_string(),
            deleted: false,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's inode, as `lsns -t net` shows it.
    pub fn inode(&self) -> u64 {
        std::fs::metadata(self.path())
            .unwrap_or_else(|e| panic!("netns {}: {e}", self.name))
            .ino()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`: what goes into `CNI_NETNS` or `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    pub fn path_str(&self) -> String {
        self.path().display().to_string()
    }

    /// A command that runs `program` inside this namespace (network namespace only,
    /// via `nsenter --net`, so /sys is not remounted).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `argv` inside the namespace; returns whatever happened.
    pub fn exec(&self, argv: &[&str]) -> Finished {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        process::run(&mut c, None, DEFAULT_TIMEOUT)
    }

    /// Runs `argv` inside the namespace, panics unless it succeeds; returns stdout.
    pub fn run(&self, argv: &[&str]) -> String {
        let mut c = self.command(argv[0]);
        c.args(&argv[1..]);
        process::run_ok(&mut c)
    }

    /// `ip -n <name> args...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        process::run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip -n <name> args...`, returning whatever happened.
    pub fn try_ip(&self, args: &[&str]) -> Finished {
        process::run(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            None,
            DEFAULT_TIMEOUT,
        )
    }

    /// `ip -j -n <name> args...` parsed as JSON (an empty array when there is no output).
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let out = process::run_ok(
            Command::new("ip")
                .arg("-j")
                .arg("-n")
                .arg(&self.name)
                .args(args),
        );
        if out.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
    }

    /// Names of all links in the namespace (sorted).
    pub fn links(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ip_json(&["link", "show"])
            .as_array()
            .expect("ip link JSON array")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }

    /// Whether link `ifname` exists here.
    pub fn has_link(&self, ifname: &str) -> bool {
        self.links().iter().any(|l| l == ifname)
    }

    /// IPv4 addresses of `ifname` as `a.b.c.d/len` (empty if the link is missing).
    pub fn ipv4_addrs(&self, ifname: &str) -> Vec<String> {
        if !self.has_link(ifname) {
            return vec![];
        }
        let j = self.ip_json(&["-4", "addr", "show", "dev", ifname]);
        j.as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| {
                Some(format!(
                    "{}/{}",
                    a["local"].as_str()?,
                    a["prefixlen"].as_u64()?
                ))
            })
            .collect()
    }

    /// IPv4 routes of the main table as JSON objects from `ip -j route`.
    pub fn routes4(&self) -> Vec<Value> {
        self.ip_json(&["-4", "route", "show"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The default IPv4 gateway, if any.
    pub fn default_gateway(&self) -> Option<String> {
        self.routes4()
            .iter()
            .find(|r| r["dst"] == "default")
            .and_then(|r| r["gateway"].as_str().map(str::to_string))
    }

    /// One ICMP echo to `dst` (busybox ping), retried a few times for ARP / setup races.
    pub fn ping(&self, dst: &str) -> bool {
        (0..3).any(|_| {
            self.exec(&["busybox", "ping", "-c", "1", "-W", "1", dst])
                .success()
        })
    }

    /// Runs `f` on a fresh thread whose network namespace is this one; sockets
    /// it opens live here. Returns `f`'s result.
    pub fn within<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        self.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Like [`Netns::within`] but returns the thread's handle.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> thread::JoinHandle<R> {
        let path = self.path();
        thread::spawn(move || {
            enter(&path);
            f()
        })
    }

    /// Deletes the namespace now (e.g. to test DEL after the netns is gone).
    pub fn delete(mut self) {
        self.deleted = true;
        remove_netns(&self.name);
    }

    /// Waits briefly until `ifname` appears or disappears.
    pub fn wait_link(&self, ifname: &str, present: bool) -> bool {
        process::wait_until(Duration::from_secs(5), || self.has_link(ifname) == present)
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &std::path::Path) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    // SAFETY: setns on a valid fd; affects only the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        panic!(
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.deleted {
            remove_netns(&self.name);
        }
    }
}

/// Panics (the test fails, it is never skipped) unless running as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "lanbridge integration tests need root (network namespaces, netlink); run them as root"
    );
}

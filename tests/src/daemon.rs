//! `lanbridge daemon` run by a test inside a node namespace with its
//! defaults (socket and state dir scoped to the node's namespace, as an
//! operator runs it), its log in the test's temp dir; killed by PID on drop.
//! It can be killed (SIGKILL) and started again. Also the reference
//! plugins' `dhcp daemon`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::background::{read_log, Background};
use crate::binary::{lanbridge_bin, reference_plugin};
use crate::netns::{scoped_defaults, Netns};
use crate::process::wait_until;

const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LanbridgeDaemon {
    bin: PathBuf,
    node: PathBuf,
    node_name: String,
    socket: PathBuf,
    log: PathBuf,
    proc: Option<Background>,
    /// `RLIMIT_NOFILE` of the next start, if limited.
    nofile: Option<u64>,
    /// More arguments of `lanbridge daemon` from the next start on.
    args: Vec<String>,
    /// Byte offset of the log where the current run started.
    run_start: usize,
    runs: u32,
}

impl LanbridgeDaemon {
    /// Starts the daemon under test in `node` with log `<dir>/daemon.log`
    /// (one log across restarts), and waits until it listens on its socket.
    pub fn start(node: &Netns, dir: &Path) -> LanbridgeDaemon {
        Self::start_from(&lanbridge_bin(), node, dir)
    }

    /// [`LanbridgeDaemon::start`] from the binary `bin` (e.g. the release
    /// build the bench measures).
    pub fn start_from(bin: &Path, node: &Netns, dir: &Path) -> LanbridgeDaemon {
        let [_, _, run] = scoped_defaults(node.inode());
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut d = LanbridgeDaemon {
            bin: bin.to_path_buf(),
            node: node.path(),
            node_name: node.name().to_string(),
            socket: run.join("lanbridge.sock"),
            log: dir.join("daemon.log"),
            proc: None,
            nofile: None,
            args: Vec::new(),
            run_start: 0,
            runs: 0,
        };
        d.restart();
        d
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log (every run).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The log of the current (latest) run only.
    pub fn run_log(&self) -> String {
        let all = self.log();
        all.get(self.run_start..).unwrap_or_default().to_string()
    }

    /// Polls the current run's log for `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.run_log().contains(needle))
    }

    /// Polls the current run's log until `needle` occurs at least `n` times.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.run_log().matches(needle).count() >= n)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Background::pid)
    }

    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Background::running)
    }

    /// SIGKILL (by PID): no chance to clean up, the socket file stays behind.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(5));
        }
    }

    /// `lanbridge monitor <args>` in the daemon's node, its output (stdout
    /// and stderr) in `<daemon dir>/monitor-<n>.log`; killed on drop.
    pub fn monitor(&self, args: &[&str]) -> Background {
        let dir = self.log.parent().expect("the log's directory");
        let n = std::fs::read_dir(dir).map_or(0, |d| d.count());
        let mut cmd = std::process::Command::new("nsenter");
        cmd.arg(format!("--net={}", self.node.display()))
            .arg("--")
            .arg(&self.bin)
            .arg("monitor")
            .args(args);
        Background::spawn(
            &format!("lanbridge monitor in {}", self.node_name),
            cmd,
            &dir.join(format!("monitor-{n}.log")),
        )
    }

    /// Restarts the daemon with more arguments (e.g. `--metrics-address`).
    pub fn restart_with_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self.restart();
    }

    /// `GET <path>` of the daemon's metrics endpoint at `address` (inside
    /// the node): the status code and the body.
    pub fn http_get(&self, address: &str, path: &str) -> (u16, String) {
        let (node, address, path) = (self.node.clone(), address.to_string(), path.to_string());
        let get = std::thread::spawn(move || {
            crate::netns::enter(&node);
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&address)
                .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status");
            (status, body.to_string())
        });
        get.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Restarts the daemon with at most `n` open file descriptors.
    pub fn restart_with_nofile(&mut self, n: u64) {
        self.nofile = Some(n);
        self.restart();
    }

    /// Starts the daemon (again), after killing a running one, and waits until
    /// the new process listens on the socket.
    pub fn restart(&mut self) {
        self.kill();
        self.run_start = self.log().len();
        self.runs += 1;
        let mut cmd = std::process::Command::new("prlimit");
        if let Some(n) = self.nofile {
            cmd.arg(format!("--nofile={n}:{n}"));
        }
        cmd.arg("nsenter")
            .arg(format!("--net={}", self.node.display()))
            .arg("--")
            .arg(&self.bin)
            .arg("daemon")
            .args(&self.args)
            .env("LANBRIDGE_LOG", "info");
        let mut proc = Background::spawn(
            &format!("lanbridge daemon #{} in {}", self.runs, self.node_name),
            cmd,
            &self.log,
        );
        let up = wait_until(START_TIMEOUT, || {
            (self.run_log().contains("listening on") && self.socket.exists()) || !proc.running()
        });
        let alive = proc.running();
        self.proc = Some(proc);
        assert!(
            up && alive,
            "lanbridge daemon did not start in {}:\n{}",
            self.node_name,
            self.run_log()
        );
    }
}

impl Drop for LanbridgeDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The reference `dhcp daemon` (the reference plugins' DHCP IPAM) in a
/// node, socket and log in the caller's directory; killed by PID on drop.
pub struct ReferenceDhcp {
    pub proc: Background,
    pub socket: PathBuf,
}

impl ReferenceDhcp {
    /// Starts it in `node` (socket `<dir>/dhcp.sock`, log `<dir>/dhcp.log`)
    /// and waits until it listens.
    pub fn start(node: &Netns, dir: &Path) -> ReferenceDhcp {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let socket = dir.join("dhcp.sock");
        let mut cmd = node.command(&reference_plugin("dhcp").display().to_string());
        cmd.args(["daemon", "-socketpath"]).arg(&socket);
        let proc = Background::spawn("reference dhcp daemon", cmd, &dir.join("dhcp.log"));
        assert!(
            wait_until(START_TIMEOUT, || socket.exists()),
            "reference dhcp daemon did not start in {}:\n{}",
            node.name(),
            proc.log()
        );
        ReferenceDhcp { proc, socket }
    }
}

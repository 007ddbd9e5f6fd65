//! Running plugins and background programs inside a node namespace.
//!
//! Plugins run as a runtime runs them — `nsenter --net=/run/netns/<node> --
//! <plugin>` (nsenter execs the plugin: same PID), environment, config on
//! stdin — and are timed from just before `fork` to the moment the process
//! exits (`waitid` with `WNOWAIT`, no polling). The peak RSS comes from
//! `wait4`'s rusage: the maximum over the plugin and the processes it waited
//! for (host-local, iptables, ...), nsenter's few hundred KiB before exec
//! included.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::guard;

const PLUGIN_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One finished plugin invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// `ru_maxrss`, KiB.
    pub maxrss_kib: u64,
    pub timed_out: bool,
}

impl Invocation {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }

    /// A one-line description of a failure, for the report.
    pub fn failure(&self) -> String {
        let detail = self
            .json()
            .and_then(|j| j["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.stderr.lines().last().unwrap_or_default().to_string());
        format!(
            "exit {:?}{}: {}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            detail
        )
    }
}

/// The CNI environment of one call.
pub struct CniCall<'a> {
    pub node: &'a Path,
    pub plugin: &'a Path,
    pub cni_path: &'a str,
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: Option<&'a str>,
}

/// Runs one CNI command, under `wrapper` (e.g. `strace -f -o FILE`) when not
/// empty; `timeout` kills it (by PID) when it is exceeded.
pub fn cni_wrapped(
    wrapper: &[&str],
    call: &CniCall,
    stdin: &[u8],
    timeout: Duration,
) -> Invocation {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg("nsenter");
            c
        }
        None => Command::new("nsenter"),
    };
    cmd.arg(format!("--net={}", call.node.display()))
        .arg("--")
        .arg(call.plugin)
        .env_clear()
        .env("PATH", PLUGIN_PATH_ENV)
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", call.cni_path);
    if let Some(a) = call.args {
        cmd.env("CNI_ARGS", a);
    }
    run_measured(&mut cmd, stdin, timeout)
}

/// Runs `cmd` with `stdin`, timing it and reading its rusage.
pub fn run_measured(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Invocation {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Invocation {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot spawn {cmd:?}: {e}"),
                elapsed: start.elapsed(),
                maxrss_kib: 0,
                timed_out: false,
            }
        }
    };
    let pid = child.id() as i32;
    let mut pipe_in = child.stdin.take().expect("stdin pipe");
    let input = stdin.to_vec();
    let writer = thread::spawn(move || {
        // A plugin that exits without reading closes the pipe: not our error.
        pipe_in.write_all(&input).ok();
    });
    let out = reader(child.stdout.take().expect("stdout pipe"));
    let err = reader(child.stderr.take().expect("stderr pipe"));

    // The watchdog kills the child only while it is not yet known to have
    // exited; an exited child stays a zombie (WNOWAIT) until `exited` is
    // set, so its PID cannot be reused under the watchdog.
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let timed_out = Arc::new(Mutex::new(false));
    let watchdog = {
        let state = state.clone();
        let timed_out = timed_out.clone();
        thread::spawn(move || {
            let (lock, cv) = &*state;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (exited, _) = cv
                .wait_timeout_while(guard, timeout, |exited| !*exited)
                .unwrap_or_else(|p| p.into_inner());
            if !*exited {
                *timed_out.lock().unwrap_or_else(|p| p.into_inner()) = true;
                // SAFETY: `pid` is our unreaped child (see above).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        })
    };
    // SAFETY: waitid on our own child; WNOWAIT leaves it to be reaped below.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
    let elapsed = start.elapsed();
    {
        let (lock, cv) = &*state;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
    watchdog.join().ok();
    let mut status = 0;
    // SAFETY: reaps our own child; `usage` is a plain out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    writer.join().ok();
    // The child is reaped by hand; `Child` must not wait for it again.
    drop(child);
    let code = if r == pid && libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    let grace = Duration::from_secs(2);
    let stdout = out.recv_timeout(grace).unwrap_or_default();
    let stderr = err.recv_timeout(grace).unwrap_or_default();
    let timed_out = *timed_out.lock().unwrap_or_else(|p| p.into_inner());
    Invocation {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
        timed_out,
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).ok();
        tx.send(buf).ok();
    });
    rx
}

/// A long-running program (dnsmasq, a DHCP daemon, an iperf3 server) in a
/// namespace; its PID is tracked for the signal path, and it is stopped
/// (SIGTERM, then SIGKILL) on drop.
pub struct Background {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Background {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Background> {
        let file = std::fs::File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("spawning {name} ({cmd:?}): {e}"))?;
        guard::track_pid(child.id() as i32);
        Ok(Background {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Vm*` lines of /proc/<pid>/status, in KiB (e.g. `VmHWM`).
    pub fn status_kib(&self, key: &str) -> Option<u64> {
        proc_status_kib(self.pid(), key)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            guard::stop_pid(child.id() as i32, Duration::from_secs(2));
        }
    }
}

/// A `VmXXX:  1234 kB` line of /proc/<pid>/status.
pub fn proc_status_kib(pid: i32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs `cmd` to completion (no timing); `Err` with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = run_measured(cmd, b"", Duration::from_secs(60));
    if !out.ok() {
        anyhow::bail!("{cmd:?}: {}\n{}", out.failure(), out.stderr.trim());
    }
    Ok(out.stdout)
}

//! Running external commands with a deadline and captured output, timed the
//! way the bench needs it: from just before `fork` to the moment the process
//! exits (`waitid` with `WNOWAIT`, no polling), with the peak RSS from
//! `wait4`'s rusage (the maximum over the process and the children it waited
//! for).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for one external command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code; `None` when killed by a signal (or by our deadline).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// From fork to exit.
    pub elapsed: Duration,
    /// `ru_maxrss`, KiB.
    pub maxrss_kib: u64,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }

    /// A one-line description of a failure: exit code and the CNI error's
    /// `msg`, or the last line of stderr.
    pub fn failure(&self) -> String {
        let msg = serde_json::from_str::<serde_json::Value>(self.stdout.trim())
            .ok()
            .and_then(|j| j["msg"].as_str().map(str::to_string));
        format!(
            "exit {:?}{}: {}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            msg.unwrap_or_else(|| self.stderr.lines().last().unwrap_or_default().to_string())
        )
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Err(e) = r.read_to_end(&mut buf) {
            eprintln!("[harness] reading child output: {e}");
        }
        // The receiver may be gone if we stopped waiting; nothing to do then.
        tx.send(buf).ok();
    });
    rx
}

/// Runs `cmd`, feeding `stdin`, and waits at most `timeout`; a command still
/// running at the deadline is killed (by its own PID) and reported as timed out.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Finished {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let input = input.to_vec();
        thread::spawn(move || {
            // A child that exits without reading its stdin closes the pipe: not our error.
            pipe.write_all(&input).ok();
        });
    }
    let out_rx = reader(child.stdout.take().expect("stdout pipe"));
    let err_rx = reader(child.stderr.take().expect("stderr pipe"));
    // The watchdog kills the child only while it is not known to have
    // exited; an exited child stays a zombie (WNOWAIT) until `exited` is
    // set, so its PID cannot be reused under the watchdog.
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let watchdog = {
        let state = state.clone();
        thread::spawn(move || {
            let (lock, cv) = &*state;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (exited, _) = cv
                .wait_timeout_while(guard, timeout, |exited| !*exited)
                .unwrap_or_else(|p| p.into_inner());
            if *exited {
                return false;
            }
            // SAFETY: `pid` is our unreaped child (see above).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
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
        )
    };
    let elapsed = start.elapsed();
    {
        let (lock, cv) = &*state;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
    let timed_out = watchdog.join().unwrap_or(false);
    let mut status = 0;
    // SAFETY: reaps our own child; `usage` is a plain out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid;
    // The child is reaped by hand; `Child` must not wait for it again.
    drop(child);
    // Output pipes may be held open by grandchildren; don't wait forever for them.
    let grace = Duration::from_secs(2);
    let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
    Finished {
        code: (reaped && libc::WIFEXITED(status)).then(|| libc::WEXITSTATUS(status)),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
        elapsed,
        maxrss_kib: usage.ru_maxrss.max(0) as u64,
    }
}

/// A `VmXXX:  1234 kB` line of /proc/<pid>/status, in KiB (e.g. `VmHWM`).
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs `cmd` and panics (with its output) unless it exits 0; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let f = run(cmd, None, DEFAULT_TIMEOUT);
    if !f.success() {
        panic!(
            "command failed: {cmd:?}\nexit: {:?} timed out: {}\nstdout: {}\nstderr: {}",
            f.code, f.timed_out, f.stdout, f.stderr
        );
    }
    f.stdout
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

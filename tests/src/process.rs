//! Running external commands with a deadline and captured output.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
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
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
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
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                if let Err(e) = child.kill() {
                    eprintln!("[harness] killing {cmd:?}: {e}");
                }
                break child.wait().expect("wait for killed child");
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    // Output pipes may be held open by grandchildren; don't wait forever for them.
    let grace = Duration::from_secs(2);
    let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
    Finished {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
    }
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

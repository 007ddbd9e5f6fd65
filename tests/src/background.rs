//! Long-running processes a test starts (DHCP servers, the lanbridge daemon,
//! other daemons): output captured to a log file, killed by PID on drop,
//! also when the test panics.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::wait_until;

/// A process started by the test; SIGKILLed (by its own PID) and reaped on drop.
#[derive(Debug)]
pub struct Background {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Background {
    /// Spawns `cmd` with stdin from /dev/null and stdout + stderr appended to
    /// `log` (created if missing, so a restarted process keeps one log).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Background {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{name}: opening log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("{name}: cloning log fd: {e}"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot spawn {cmd:?}: {e}"));
        Background {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process ID, while it has not been killed by [`Background::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Whether the process is still running (a process that exited is reaped).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) | None => false,
        }
    }

    /// Polls the log until it contains `needle` (at most `timeout`).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// Sends `signal` to the process (by its PID) without waiting.
    pub fn signal(&self, signal: libc::c_int) {
        let Some(pid) = self.pid() else { return };
        // SAFETY: plain syscall on the PID of a child we spawned and have not reaped.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
            eprintln!(
                "[harness] {}: kill({pid}, {signal}): {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
    }

    /// SIGKILL (by PID) and reap. Idempotent.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            if let Err(e) = child.kill() {
                eprintln!("[harness] {}: kill {}: {e}", self.name, child.id());
            }
        }
        if let Err(e) = child.wait() {
            eprintln!("[harness] {}: wait {}: {e}", self.name, child.id());
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`; reaps it.
    pub fn stop(&mut self, grace: Duration) {
        self.signal(libc::SIGTERM);
        wait_until(grace, || !self.running());
        self.kill();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A log file's text (empty if it does not exist yet).
pub fn read_log(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    }
}

/// Creates an empty file (truncating), e.g. a log before a process starts.
pub fn touch(path: &Path) {
    File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

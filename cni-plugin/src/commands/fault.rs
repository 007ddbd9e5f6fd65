//! Test hooks: `LANBRIDGE_FAIL_AFTER=<step>` makes ADD fail right after that
//! step, so tests can prove that every step's undo leaves nothing behind;
//! `LANBRIDGE_KILL_AFTER=<step>` kills the plugin there with SIGKILL (no
//! undo at all), as a node crash or an OOM kill would; the same for DEL's
//! steps ([`DEL_STEPS`]) and its background deleter ([`deleter`]).
//! Each step's end is also logged at debug level with the time since the
//! process started (`LANBRIDGE_LOG=debug`): where an ADD spends its time.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::cni::{Error, Result};
use crate::node::reaper::Deleter;

/// Set by [`start_clock`] at the top of `main`.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

pub fn start_clock() {
    LazyLock::force(&START);
}

pub const ENV: &str = "LANBRIDGE_FAIL_AFTER";
pub const KILL_ENV: &str = "LANBRIDGE_KILL_AFTER";

/// The steps of ADD, in order: where it logs its time and where a test can
/// make it fail or kill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Bridge,
    Veth,
    Datapath,
    Ipam,
    Firewall,
    Container,
    Host,
    State,
}

/// Logs the end of one of DEL's steps with the time since the process
/// started (`LANBRIDGE_LOG=debug`): where a DEL spends its time. A DEL
/// run with `LANBRIDGE_KILL_AFTER=del:<step>` is killed there (prefixed:
/// ADD's steps share some names, and ADD cleans up leftovers the same way).
pub fn del_step(step: &str) {
    tracing::debug!(
        "DEL step {step} done at {:.1} ms",
        START.elapsed().as_secs_f64() * 1e3
    );
    if std::env::var(KILL_ENV).is_ok_and(|v| v.strip_prefix("del:") == Some(step)) {
        kill();
    }
}

/// DEL's steps, in order, as [`del_step`] names them.
pub const DEL_STEPS: [&str; 7] = [
    "pod link",
    "retire",
    "routes",
    "datapath",
    "host link",
    "firewall",
    "record",
];

/// `LANBRIDGE_KILL_AFTER=deleter`: the deleter DEL leaves the retired pair
/// to is killed before it deletes anything.
pub const DELETER: &str = "deleter";

/// `LANBRIDGE_DELETER_DELAY_MS=<ms>`: the deleter waits that long first.
pub const DELETER_DELAY_ENV: &str = "LANBRIDGE_DELETER_DELAY_MS";

/// How this process's deleter behaves, by the test hooks above.
pub fn deleter() -> Deleter {
    if std::env::var(KILL_ENV).is_ok_and(|v| v == DELETER) {
        return Deleter::Killed;
    }
    match std::env::var(DELETER_DELAY_ENV).map(|v| v.parse()) {
        Ok(Ok(ms)) => Deleter::Delayed(Duration::from_millis(ms)),
        _ => Deleter::Normal,
    }
}

fn kill() {
    // Not even stderr gets flushed: as sudden as it gets.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Bridge,
        Step::Veth,
        Step::Datapath,
        Step::Ipam,
        Step::Firewall,
        Step::Container,
        Step::Host,
        Step::State,
    ];

    /// The step's name in `LANBRIDGE_FAIL_AFTER` and `LANBRIDGE_KILL_AFTER`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Bridge => "bridge",
            Step::Veth => "veth",
            Step::Datapath => "datapath",
            Step::Ipam => "ipam",
            Step::Firewall => "firewall",
            Step::Container => "container",
            Step::Host => "host",
            Step::State => "state",
        }
    }
}

pub fn checkpoint(step: Step) -> Result<()> {
    let step = step.name();
    tracing::debug!(
        "ADD step {step} done at {:.1} ms",
        START.elapsed().as_secs_f64() * 1e3
    );
    if std::env::var(KILL_ENV).is_ok_and(|v| v == step) {
        kill();
    }
    match std::env::var(ENV) {
        Ok(v) if v == step => Err(Error::Injected(step.to_string())),
        _ => Ok(()),
    }
}

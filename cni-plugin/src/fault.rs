//! Test hook: `LANBRIDGE_FAIL_AFTER=<step>` makes ADD fail right after that
//! step, so tests can prove that every step's undo leaves nothing behind.

use crate::cni::{Error, Result};

pub const ENV: &str = "LANBRIDGE_FAIL_AFTER";

/// The steps of ADD, in order.
pub const STEPS: [&str; 8] = [
    "bridge",
    "veth",
    "datapath",
    "ipam",
    "container",
    "host",
    "masquerade",
    "state",
];

pub fn checkpoint(step: &'static str) -> Result<()> {
    debug_assert!(STEPS.contains(&step));
    match std::env::var(ENV) {
        Ok(v) if v == step => Err(Error::Injected(step.to_string())),
        _ => Ok(()),
    }
}

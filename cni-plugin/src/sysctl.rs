//! Per-namespace sysctls (`/proc/sys/net` shows the namespace of the thread
//! that opens it, so writes go through [`NetNs::run`]).

use std::path::PathBuf;

use crate::cni::Result;
use crate::netns::NetNs;

/// Writes `value` to `/proc/sys/<components...>` inside `ns`. Components are
/// kept separate because interface names may contain dots.
pub fn set(ns: &NetNs, components: &[&str], value: &str) -> Result<()> {
    let path: PathBuf = ["/proc/sys"].iter().chain(components).collect();
    ns.run(|| std::fs::write(&path, value))
}

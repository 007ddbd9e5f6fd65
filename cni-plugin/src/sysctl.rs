//! Per-namespace sysctls (`/proc/sys/net` shows the namespace of the thread
//! that opens it, so writes go through [`NetNs::run`]).

use std::io::ErrorKind;
use std::path::PathBuf;

use crate::cni::Result;
use crate::netns::NetNs;

/// Writes `value` to `/proc/sys/<components...>` inside `ns`. Components are
/// kept separate because interface names may contain dots.
pub fn set(ns: &NetNs, components: &[&str], value: &str) -> Result<()> {
    write(ns, components, value, false)
}

/// [`set`] of a key that may be missing: an IPv6 key in a kernel without
/// IPv6 has nothing to set.
pub fn set_if_present(ns: &NetNs, components: &[&str], value: &str) -> Result<()> {
    write(ns, components, value, true)
}

fn write(ns: &NetNs, components: &[&str], value: &str, missing_ok: bool) -> Result<()> {
    let path: PathBuf = ["/proc/sys"].iter().chain(components).collect();
    ns.run(|| match std::fs::write(&path, value) {
        Err(e) if missing_ok && e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    })
}

//! Per-namespace sysctls (`/proc/sys/net` shows the namespace of the thread
//! that opens it, so writes go through [`NetNs::run`]).

use std::io::ErrorKind;
use std::path::PathBuf;

use crate::node::error::Result;
use crate::node::netns::NetNs;

fn path(components: &[&str]) -> PathBuf {
    ["/proc/sys"].iter().chain(components).collect()
}

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
    let path = path(components);
    ns.run(|| match std::fs::write(&path, value) {
        Err(e) if missing_ok && e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    })
}

/// Sets each `(components, value)` inside `ns` (one thread for all) and
/// returns those it changed with the value they had: `("a/b/c", old)`, so
/// `lanbridge cleanup` can put them back.
pub fn change(ns: &NetNs, settings: &[(&[&str], &str)]) -> Result<Vec<(String, String)>> {
    ns.run(|| {
        let mut changed = Vec::new();
        for (components, value) in settings {
            let path = path(components);
            let old = std::fs::read_to_string(&path)?;
            if old.trim() != *value {
                std::fs::write(&path, value)?;
                changed.push((components.join("/"), old.trim().to_string()));
            }
        }
        Ok(changed)
    })
}

/// Writes back values [`change`] reported (keys as it returned them).
pub fn restore(ns: &NetNs, key: &str, value: &str) -> Result<()> {
    let components: Vec<&str> = key.split('/').collect();
    set(ns, &components, value)
}

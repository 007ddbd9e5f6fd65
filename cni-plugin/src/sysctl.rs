//! Per-namespace sysctls (`/proc/sys/net` shows the namespace of the thread
//! that opens it, so writes go through [`NetNs::run`]).

use std::path::PathBuf;

use crate::cni::Result;
use crate::netns::NetNs;

fn path(components: &[&str]) -> PathBuf {
    ["/proc/sys"].iter().chain(components).collect()
}

/// Writes `value` to `/proc/sys/<components...>` inside `ns`. Components are
/// kept separate because interface names may contain dots.
pub fn set(ns: &NetNs, components: &[&str], value: &str) -> Result<()> {
    let path = path(components);
    ns.run(|| std::fs::write(&path, value))
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

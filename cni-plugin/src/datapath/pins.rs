//! Where a network's programs, maps and links live on bpffs:
//! `<root>/<network>/<name>`, so `bpftool ... pinned` can find them and
//! they outlive the short-lived plugin process.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/sys/fs/bpf/lanbridge";

#[derive(Debug, Clone)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    pub fn new(root: &Path, network: &str) -> Pins {
        Pins {
            dir: root.join(network),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A program or map, by its bpftool name.
    pub fn object(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The TCX link attaching a program to `ifname` (`link_<ifname>`).
    pub fn link(&self, ifname: &str) -> PathBuf {
        self.dir.join(format!("link_{ifname}"))
    }

    /// Interface names with a link pinned here.
    pub fn linked_interfaces(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("link_").map(str::to_string))
            .collect()
    }
}

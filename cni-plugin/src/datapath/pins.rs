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

    /// The layout/version marker: a one-entry array map holding the build id
    /// of the programs pinned here (bpffs holds only BPF objects).
    pub fn version(&self) -> PathBuf {
        self.dir.join("lb_version")
    }

    /// The TCX link attaching a program to `ifname`'s ingress
    /// (`link_<ifname>`) or egress (`egress_<ifname>`).
    pub fn link(&self, ifname: &str, egress: bool) -> PathBuf {
        let prefix = if egress { "egress" } else { "link" };
        self.dir.join(format!("{prefix}_{ifname}"))
    }

    /// Interface names with a link pinned here (ingress or egress).
    pub fn linked_interfaces(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_prefix("link_")
                    .or_else(|| n.strip_prefix("egress_"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

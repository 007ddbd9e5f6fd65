//! Where a network's programs, maps and links live on bpffs:
//! `<root>/<network>/<name>`, so `bpftool ... pinned` can find them and
//! they outlive the short-lived plugin process.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::error::DatapathError;
use crate::node::gone::done;
use crate::node::naming::{self, pin_name, tombstone_pin_ifindex, unpin_name};

/// The networks with a directory under `root`, sorted.
pub fn networks(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|name| unpin_name(&name))
        .collect();
    names.sort();
    names
}

#[derive(Debug, Clone)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    /// Serialises loads and upgrades of the network's datapath, and the
    /// writers of its `lb_ip_slots` (a slot is read, then written): an
    /// exclusive `flock` of the pin directory (bpffs holds no regular files,
    /// but its directories take locks).
    pub fn lock(&self) -> Result<File, DatapathError> {
        let dir = &self.dir;
        fs::create_dir_all(dir)
            .map_err(|e| DatapathError::io(format!("creating {}", dir.display()), e))?;
        let handle = File::open(dir)
            .map_err(|e| DatapathError::io(format!("opening {}", dir.display()), e))?;
        handle
            .lock()
            .map_err(|e| DatapathError::io(format!("locking {}", dir.display()), e))?;
        Ok(handle)
    }

    pub fn new(root: &Path, network: &str) -> Pins {
        Pins {
            dir: root.join(pin_name(network)),
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
        self.dir.join(naming::port_link_pin(ifname, egress))
    }

    /// A dead port's link pin, renamed from [`Pins::link`]
    /// ([`naming::tombstone_pin`]).
    pub fn tombstone(&self, ifindex: u32, egress: bool) -> PathBuf {
        self.dir.join(naming::tombstone_pin(ifindex, egress))
    }

    /// Dead ports' link pins here, with the ifindex each names.
    fn tombstones(&self) -> Vec<(u32, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((tombstone_pin_ifindex(e.file_name().to_str()?)?, e.path())))
            .collect()
    }

    /// Unpins dead ports' links, but those of the retired interfaces (by
    /// index) `alive` keeps, still to be destroyed with their devices.
    pub fn remove_tombstones(&self, alive: impl Fn(u32) -> bool) -> Result<(), DatapathError> {
        for (index, pin) in self.tombstones() {
            if !alive(index) {
                unpin(&pin)?;
            }
        }
        Ok(())
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
                    .map(unpin_name)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Removes a pin (a link's: its link detaches unless something else holds
/// it); a missing pin is fine.
pub fn unpin(path: &Path) -> Result<(), DatapathError> {
    done(fs::remove_file(path))
        .map_err(|e| DatapathError::io(format!("unpinning {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_pin_without_dots_and_come_back() {
        let pins = Pins::new(Path::new("/sys/fs/bpf/lanbridge"), "lan.v1");
        assert_eq!(pins.dir(), Path::new("/sys/fs/bpf/lanbridge/lan:v1"));
        let link = pins.link("eth0.100", false);
        assert_eq!(
            link,
            Path::new("/sys/fs/bpf/lanbridge/lan:v1/link_eth0:100")
        );
        assert_eq!(unpin_name("eth0:100"), "eth0.100");
    }
}

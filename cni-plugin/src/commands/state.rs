//! Attachment records under `<stateDir>/<network>/`: what ADD created, so DEL
//! and GC can remove it without `prevResult`. Written atomically.

use std::fs;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::cni::{Error, Result};
use crate::node::gone::{done, found};
use crate::node::naming;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    /// The inode of `netns` at ADD: DEL touches a namespace only while its
    /// path still names that one (0 in older records: any).
    #[serde(default)]
    pub netns_inode: u64,
    pub bridge: String,
    pub host_veth: String,
    /// The port's ifindex: its key in the datapath maps.
    pub host_ifindex: u32,
    pub ips: Vec<IpNet>,
    pub masquerade: bool,
    /// The port has a `macspoofchk` chain.
    #[serde(default = "yes")]
    pub mac_spoof_check: bool,
    /// An older build wrote netfilter rules for this pod (DEL looks for
    /// them); this build writes none.
    #[serde(default = "yes")]
    pub pod_rules: bool,
}

/// Records written before a field existed: assume ADD set the thing up.
fn yes() -> bool {
    true
}

/// What setting up the network changed on the node itself, so `lanbridge
/// cleanup` can undo it: kept in `<stateDir>/<network>/node-changes`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeChanges {
    /// The bridge, when lanbridge created it.
    #[serde(default)]
    pub created_bridge: Option<String>,
    /// Sysctl (`net/ipv4/...`) -> the value it had before lanbridge set it.
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, String>,
}

impl NodeChanges {
    /// Adds what `other` knows; the first old value seen of a sysctl wins.
    pub fn merge(&mut self, other: NodeChanges) {
        if other.created_bridge.is_some() {
            self.created_bridge = other.created_bridge;
        }
        for (key, old) in other.sysctls {
            self.sysctls.entry(key).or_insert(old);
        }
    }
}

pub struct StateDir {
    dir: PathBuf,
}

/// A record file that does not decode (truncated by a crash, a full disk);
/// its error names the file.
#[derive(Debug)]
pub struct BadRecord {
    /// The attachment, when the file name tells it.
    pub attachment: Option<(String, String)>,
    pub error: Error,
}

impl StateDir {
    pub fn new(state_dir: &Path, network: &str) -> StateDir {
        StateDir {
            dir: state_dir.join(network),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        let stem = naming::record_file(container_id, ifname);
        self.dir.join(format!("{stem}.json"))
    }

    pub fn save(&self, record: &Record) -> Result<PathBuf> {
        let path = self.path(&record.container_id, &record.ifname);
        let ctx = |what: &str| format!("{what} {}", path.display());
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(ctx("creating state dir for"), e))?;
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(record).expect("record serializes");
        if let Err(e) = fs::write(&tmp, data).and_then(|()| fs::rename(&tmp, &path)) {
            // A full disk must not leave a partial file behind.
            if let Err(rm) = done(fs::remove_file(&tmp)) {
                tracing::warn!("removing {}: {rm}", tmp.display());
            }
            return Err(Error::io(ctx("writing"), e));
        }
        Ok(path)
    }

    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Record>> {
        let path = self.path(container_id, ifname);
        match found(fs::read(&path)) {
            Ok(Some(data)) => decode(&path, &data).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Removes the record and the temporary file of a save cut short.
    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<()> {
        let path = self.path(container_id, ifname);
        for p in [path.with_extension("tmp"), path] {
            done(fs::remove_file(&p))
                .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Every record; those that do not decode are returned apart, so one bad
    /// file never hides the others.
    pub fn list(&self) -> Result<(Vec<Record>, Vec<BadRecord>)> {
        let entries = match found(fs::read_dir(&self.dir)) {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(Default::default()),
            Err(e) => return Err(Error::io(format!("listing {}", self.dir.display()), e)),
        };
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("listing {}", self.dir.display()), e))?;
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let read = match found(fs::read(&path)) {
                Ok(Some(data)) => decode(&path, &data),
                Ok(None) => continue,
                Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
            };
            match read {
                Ok(record) => good.push(record),
                Err(error) => bad.push(BadRecord {
                    attachment: path
                        .file_stem()
                        .and_then(|s| naming::record_attachment(&s.to_string_lossy())),
                    error,
                }),
            }
        }
        Ok((good, bad))
    }

    fn changes_path(&self) -> PathBuf {
        self.dir.join("node-changes")
    }

    /// What the network changed on the node (nothing recorded: empty).
    pub fn node_changes(&self) -> Result<NodeChanges> {
        let path = self.changes_path();
        match found(fs::read(&path)) {
            Ok(Some(data)) => serde_json::from_slice(&data).map_err(|source| Error::Decode {
                what: "node-changes",
                source,
            }),
            Ok(None) => Ok(NodeChanges::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Records more changes to the node (called only when there are some).
    pub fn note_changes(&self, more: NodeChanges) -> Result<()> {
        let path = self.changes_path();
        let failed = |e| Error::io(format!("writing {}", path.display()), e);
        // Concurrent ADDs of a network read, merge and write the same file:
        // one at a time (a flock on the network's state dir), or one loses
        // the other's change or renames its temporary file away.
        fs::create_dir_all(&self.dir).map_err(failed)?;
        let dir = fs::File::open(&self.dir).map_err(failed)?;
        // SAFETY: flock on an fd owned here; released when `dir` closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&dir), libc::LOCK_EX) } != 0 {
            return Err(failed(std::io::Error::last_os_error()));
        }
        let mut all = self.node_changes().unwrap_or_else(|e| {
            tracing::warn!("{e}: starting it afresh");
            NodeChanges::default()
        });
        let before = all.clone();
        all.merge(more);
        if all == before {
            return Ok(());
        }
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(&all).expect("changes serialize");
        fs::write(&tmp, data)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(failed)
    }

    /// STATUS: can ADD write here?
    pub fn check_writable(&self) -> Result<()> {
        let probe = self.dir.join(".status-probe");
        fs::create_dir_all(&self.dir)
            .and_then(|()| fs::write(&probe, b""))
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| Error::NotAvailable {
                reason: format!("state dir {} is not writable: {e}", self.dir.display()),
            })
    }
}

fn decode(path: &Path, data: &[u8]) -> Result<Record> {
    serde_json::from_slice(data).map_err(|source| Error::CorruptRecord {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path(), "net");
        let r = Record {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            netns_inode: 0,
            bridge: "cni0".into(),
            host_veth: "lb0123".into(),
            host_ifindex: 7,
            ips: vec!["10.0.0.2/24".parse().unwrap()],
            masquerade: true,
            mac_spoof_check: false,
            pod_rules: false,
        };
        s.save(&r).unwrap();
        assert_eq!(s.load("c1", "eth0").unwrap(), Some(r.clone()));
        assert_eq!(s.list().unwrap().0, vec![r]);
        s.remove("c1", "eth0").unwrap();
        s.remove("c1", "eth0").unwrap();
        assert!(s.list().unwrap().0.is_empty());
        assert!(s.load("c1", "eth0").unwrap().is_none());
        s.check_writable().unwrap();
    }

    #[test]
    fn a_truncated_record_is_named_and_the_others_still_list() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path(), "net");
        let long = "c".repeat(300);
        for cid in ["c1", "c2", &long] {
            s.save(&Record {
                container_id: cid.into(),
                ifname: "eth0".into(),
                netns: "/run/netns/x".into(),
                netns_inode: 0,
                bridge: "cni0".into(),
                host_veth: "lb0123".into(),
                host_ifindex: 7,
                ips: vec![],
                masquerade: false,
                mac_spoof_check: false,
                pod_rules: false,
            })
            .unwrap();
        }
        fs::write(s.path("c1", "eth0"), b"{\"contai").unwrap();
        let err = s.load("c1", "eth0").unwrap_err();
        assert!(err.to_string().contains("c1:eth0.json"), "{err}");
        let (good, bad) = s.list().unwrap();
        let mut ids: Vec<_> = good.iter().map(|r| r.container_id.len()).collect();
        ids.sort();
        assert_eq!(ids, vec![2, 300]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].attachment, Some(("c1".into(), "eth0".into())));
        assert_eq!(s.load(&long, "eth0").unwrap().unwrap().container_id, long);
    }
}

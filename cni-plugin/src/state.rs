//! Attachment records under `<stateDir>/<network>/`: what ADD created, so DEL
//! and GC can remove it without `prevResult`. Written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::cni::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub bridge: String,
    pub host_veth: String,
    /// The port's ifindex: its key in the datapath maps.
    pub host_ifindex: u32,
    pub ips: Vec<IpNet>,
    pub masquerade: bool,
    /// The port has a `macspoofchk` chain.
    #[serde(default = "yes")]
    pub mac_spoof_check: bool,
}

/// Records written before a field existed: assume ADD set the thing up.
fn yes() -> bool {
    true
}

pub struct StateDir {
    dir: PathBuf,
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

    /// ':' can appear in neither a container ID nor an interface name.
    fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}:{ifname}.json"))
    }

    pub fn save(&self, record: &Record) -> Result<PathBuf> {
        let path = self.path(&record.container_id, &record.ifname);
        let ctx = |what: &str| format!("{what} {}", path.display());
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(ctx("creating state dir for"), e))?;
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(record).expect("record serializes");
        fs::write(&tmp, data).map_err(|e| Error::io(ctx("writing"), e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(ctx("writing"), e))?;
        Ok(path)
    }

    pub fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Record>> {
        let path = self.path(container_id, ifname);
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|source| Error::Decode {
                    what: "attachment record",
                    source,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<()> {
        let path = self.path(container_id, ifname);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    pub fn list(&self) -> Result<Vec<Record>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}", self.dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("listing {}", self.dir.display()), e))?;
            if entry.path().extension().is_some_and(|x| x == "json") {
                let data = fs::read(entry.path())
                    .map_err(|e| Error::io(format!("reading {}", entry.path().display()), e))?;
                out.push(
                    serde_json::from_slice(&data).map_err(|source| Error::Decode {
                        what: "attachment record",
                        source,
                    })?,
                );
            }
        }
        Ok(out)
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
            bridge: "cni0".into(),
            host_veth: "lb0123".into(),
            host_ifindex: 7,
            ips: vec!["10.0.0.2/24".parse().unwrap()],
            masquerade: true,
            mac_spoof_check: false,
        };
        s.save(&r).unwrap();
        assert_eq!(s.load("c1", "eth0").unwrap(), Some(r.clone()));
        assert_eq!(s.list().unwrap(), vec![r]);
        s.remove("c1", "eth0").unwrap();
        s.remove("c1", "eth0").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(s.load("c1", "eth0").unwrap().is_none());
        s.check_writable().unwrap();
    }
}

//! Delegation to an IPAM plugin binary found in `CNI_PATH` (e.g. the reference
//! `dhcp`): same environment, the whole network config on stdin.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::cni::{env::Command as CniCommand, CniResult};
use crate::config::NetConf;
use crate::ipam::{IpamError, Result};

#[derive(Debug)]
pub struct Delegate {
    name: String,
    path: PathBuf,
}

/// A plugin's error object.
#[derive(Deserialize)]
struct WireError {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

impl Delegate {
    pub fn find(name: &str, cni_path: &[PathBuf]) -> Result<Delegate> {
        cni_path
            .iter()
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
            .map(|path| Delegate {
                name: name.to_string(),
                path,
            })
            .ok_or_else(|| IpamError::Env {
                var: "CNI_PATH",
                reason: format!(
                    "IPAM plugin {name:?} not found in {:?}",
                    std::env::join_paths(cni_path).unwrap_or_default()
                ),
            })
    }

    pub async fn add(&self, conf: &NetConf) -> Result<CniResult> {
        let out = self.exec(CniCommand::Add, conf).await?;
        let value = serde_json::from_slice(&out).map_err(|source| IpamError::Decode {
            what: "IPAM plugin result",
            source,
        })?;
        CniResult::decode(&value).map_err(|source| IpamError::Decode {
            what: "CNI result",
            source,
        })
    }

    pub async fn del(&self, conf: &NetConf) -> Result<()> {
        self.exec(CniCommand::Del, conf).await.map(drop)
    }

    pub async fn check(&self, conf: &NetConf) -> Result<()> {
        self.exec(CniCommand::Check, conf).await.map(drop)
    }

    pub async fn gc(&self, conf: &NetConf) -> Result<()> {
        self.exec(CniCommand::Gc, conf).await.map(drop)
    }

    async fn exec(&self, command: CniCommand, conf: &NetConf) -> Result<Vec<u8>> {
        let io_err = |what: &str| {
            let what = format!("{what} IPAM plugin {}", self.path.display());
            move |e| IpamError::io(what, e)
        };
        let mut child = Command::new(&self.path)
            .env("CNI_COMMAND", command.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(io_err("starting"))?;
        let stdin = serde_json::to_vec(&conf.raw).expect("config serializes");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(&stdin).await.map_err(io_err("writing to"))?;
        drop(pipe);
        let out = child
            .wait_with_output()
            .await
            .map_err(io_err("waiting for"))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let (code, msg, details) = match serde_json::from_slice::<WireError>(&out.stdout) {
            Ok(wire) => (Some(wire.code), wire.msg, wire.details),
            Err(_) => (
                None,
                format!("exited with {}", out.status),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ),
        };
        Err(IpamError::Delegate {
            plugin: self.name.clone(),
            code,
            msg,
            details,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

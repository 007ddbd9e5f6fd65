//! Built-in `dhcp` IPAM: the node daemon (`lanbridge daemon`) leases from the
//! LAN's DHCP server on the pod's interface and keeps the lease renewed; the
//! plugin asks it over its unix socket. DEL works with the daemon down: the
//! lease is queued for release and sent when the daemon is back.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::UnixStream;

use crate::cni::{CniEnv, CniResult, Dns, Error, IpConfig, Result, Route};
use crate::config::NetConf;
use crate::dhcp::protocol::{
    read_message, write_message, AcquireRequest, LeaseKey, LeaseStatus, NodeSide, Request,
    Response, DEFAULT_SOCKET,
};
use crate::dhcp::store::LeaseStore;
use crate::dhcp::Lease;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    /// Same key as the reference `dhcp` plugin.
    daemon_socket_path: Option<PathBuf>,
    /// Seconds an ADD may wait for a lease.
    timeout: Option<f64>,
    #[serde(default)]
    client_id: ClientIdMode,
}

/// How the DHCP client identifier (option 61) is derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIdMode {
    /// From the container ID and interface name: stable per attachment,
    /// even if the runtime gives the pod a new MAC.
    #[default]
    Attachment,
    /// Type 1 (Ethernet) + the pod's MAC, as most clients do.
    Mac,
}

#[derive(Debug)]
pub struct Dhcp {
    socket: PathBuf,
    timeout: Duration,
    client_id: ClientIdMode,
}

impl Dhcp {
    pub fn parse(ipam: &Value) -> Result<Dhcp> {
        let raw: RawConf = serde_path_to_error::deserialize(ipam)
            .map_err(|e| Error::config(format!("ipam.{}", e.path()), e.into_inner().to_string()))?;
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t > 0.0 && t <= 600.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(Error::config(
                    "ipam.timeout",
                    format!("{t} is not within (0, 600] seconds"),
                ))
            }
        };
        Ok(Dhcp {
            socket: raw
                .daemon_socket_path
                .unwrap_or_else(|| crate::node::scope::file(DEFAULT_SOCKET)),
            timeout,
            client_id: raw.client_id,
        })
    }

    pub async fn add(
        &self,
        conf: &NetConf,
        env: &CniEnv,
        mac: [u8; 6],
        node: NodeSide,
    ) -> Result<CniResult> {
        let netns = env.netns.clone().ok_or(Error::InvalidEnv {
            var: "CNI_NETNS",
            reason: "required".into(),
        })?;
        let request = Request::Acquire(AcquireRequest {
            key: key(conf, env),
            netns,
            mac,
            client_id: self.client_id(env, mac),
            hostname: env.arg("K8S_POD_NAME").map(str::to_string),
            timeout_ms: self.timeout.as_millis() as u64,
            node: Some(node),
        });
        // The daemon bounds the exchange; a little more here covers the hand-off.
        let patience = self.timeout + Duration::from_secs(2);
        match self.call(&request, patience).await? {
            Response::Lease { lease } => Ok(result(&lease)),
            other => Err(unexpected(other)),
        }
    }

    /// Releases the lease; with the daemon down, queues the release.
    pub async fn del(&self, conf: &NetConf, env: &CniEnv) -> Result<()> {
        self.release(conf, &env.container_id, &env.ifname).await
    }

    /// [`Dhcp::del`] of any attachment of the network (GC).
    pub async fn release(&self, conf: &NetConf, container_id: &str, ifname: &str) -> Result<()> {
        let key = LeaseKey {
            network: conf.name.clone(),
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
        };
        let request = Request::Release { key: key.clone() };
        match self.call(&request, Duration::from_secs(10)).await {
            Ok(Response::Released { .. }) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(Error::DaemonUnreachable { .. }) => {
                let queued = LeaseStore::new(&conf.state_dir).queue_release(&key)?;
                tracing::warn!(
                    "lanbridge daemon unreachable at {}: release of {}/{} {}",
                    self.socket.display(),
                    key.container_id,
                    key.ifname,
                    if queued {
                        "queued"
                    } else {
                        "not needed (no lease)"
                    }
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Where the daemon says the attachment's lease stands; `None` if it
    /// holds none.
    pub async fn status(&self, conf: &NetConf, env: &CniEnv) -> Result<Option<LeaseStatus>> {
        let request = Request::Status {
            key: key(conf, env),
        };
        match self.call(&request, Duration::from_secs(5)).await? {
            Response::Status { status } => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    /// The client identifier (option 61) the lease of this attachment is
    /// taken with; the datapath lets the pod use no other.
    pub fn client_id(&self, env: &CniEnv, mac: [u8; 6]) -> Vec<u8> {
        client_id(self.client_id, env, mac)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn call(&self, request: &Request, patience: Duration) -> Result<Response> {
        let exchange = async {
            let stream = UnixStream::connect(&self.socket).await.map_err(|source| {
                Error::DaemonUnreachable {
                    socket: self.socket.clone(),
                    source,
                }
            })?;
            let (reader, mut writer) = stream.into_split();
            write_message(&mut writer, request).await?;
            read_message::<_, Response>(reader).await
        };
        let exchange = async {
            exchange.await.map_err(|e| match e {
                Error::Io { source, .. } if went_away(&source) => Error::DaemonGone {
                    socket: self.socket.clone(),
                    source,
                },
                e => e,
            })
        };
        let response = tokio::time::timeout(patience, exchange)
            .await
            .map_err(|_| Error::DaemonTimeout {
                socket: self.socket.clone(),
                after: patience,
            })??;
        match response {
            Response::Error { code, msg } => Err(Error::Daemon { code, msg }),
            other => Ok(other),
        }
    }
}

/// The daemon closed the connection before answering (killed, restarting).
fn went_away(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe)
}

fn key(conf: &NetConf, env: &CniEnv) -> LeaseKey {
    LeaseKey {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
    }
}

/// Option 61. Type 0 (RFC 2132: "other") with a digest of the attachment, or
/// type 1 (Ethernet) with the MAC.
fn client_id(mode: ClientIdMode, env: &CniEnv, mac: [u8; 6]) -> Vec<u8> {
    match mode {
        ClientIdMode::Attachment => {
            let digest = Sha256::digest(format!("{}/{}", env.container_id, env.ifname));
            std::iter::once(0)
                .chain(digest[..16].iter().copied())
                .collect()
        }
        ClientIdMode::Mac => std::iter::once(1).chain(mac).collect(),
    }
}

fn result(lease: &Lease) -> CniResult {
    CniResult {
        ips: vec![IpConfig {
            address: IpNet::V4(lease.network()),
            gateway: lease.router.map(IpAddr::V4),
            interface: None,
        }],
        routes: lease
            .routes()
            .into_iter()
            .map(|r| Route::via(IpNet::V4(r.destination), r.gateway.map(IpAddr::V4)))
            .collect(),
        dns: Dns {
            nameservers: lease.dns_servers.iter().map(|s| s.to_string()).collect(),
            domain: lease.domain.clone().unwrap_or_default(),
            ..Dns::default()
        },
        ..CniResult::default()
    }
}

fn unexpected(response: Response) -> Error {
    Error::Daemon {
        code: crate::cni::error::code::DAEMON,
        msg: format!("unexpected answer {response:?}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn config_defaults_and_bounds() {
        let d = Dhcp::parse(&json!({"type": "dhcp"})).unwrap();
        assert_eq!(d.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
        assert_eq!(d.client_id, ClientIdMode::Attachment);
        let d = Dhcp::parse(&json!({"type": "dhcp", "daemonSocketPath": "/tmp/x.sock", "timeout": 2.5, "clientId": "mac"})).unwrap();
        assert_eq!(d.timeout, Duration::from_millis(2500));
        assert_eq!(d.client_id, ClientIdMode::Mac);
        for bad in [
            json!({"timeout": 0}),
            json!({"timeout": "10s"}),
            json!({"clientId": "uuid"}),
        ] {
            let err = Dhcp::parse(&bad).unwrap_err();
            assert_eq!(err.code(), 7, "{bad}: {err}");
        }
    }

    #[test]
    fn client_ids_are_stable_per_attachment() {
        let env = |cid: &str| CniEnv {
            container_id: cid.into(),
            ifname: "eth0".into(),
            ..CniEnv::default()
        };
        let mac = [2, 0, 0, 0, 0, 1];
        let a = client_id(ClientIdMode::Attachment, &env("c1"), mac);
        assert_eq!(
            a,
            client_id(ClientIdMode::Attachment, &env("c1"), [2, 0, 0, 0, 0, 9])
        );
        assert_ne!(a, client_id(ClientIdMode::Attachment, &env("c2"), mac));
        assert_eq!(a.len(), 17);
        assert_eq!(
            client_id(ClientIdMode::Mac, &env("c1"), mac),
            vec![1, 2, 0, 0, 0, 0, 1]
        );
    }
}

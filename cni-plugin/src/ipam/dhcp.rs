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

use super::{IpamError, Result};
use crate::cni::{CniEnv, CniResult, Dns, IpConfig, Route};
use crate::config::NetConf;
use crate::dhcp::protocol::{
    read_message, write_message, AcquireRequest, LeaseHolder, LeaseKey, LeaseStatus, NodeSide,
    Request, Response, DEFAULT_SOCKET,
};
use crate::dhcp::store::LeaseStore;
use crate::dhcp::{ClientOptions, Lease, RecordError};
use crate::node::mac::Mac;
use crate::node::netns::NetNs;

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
    /// The reference's: options the client sends, a value or a CNI_ARGS key.
    #[serde(default)]
    provide: Vec<Provide>,
    /// The reference's: options to ask for (option 55), `skipDefault`
    /// dropping the client's own list.
    #[serde(default)]
    request: Vec<RequestOption>,
    /// The reference's: the metric of the lease's routes (0: none).
    #[serde(default)]
    priority: u32,
}

/// An option by the reference's name or by number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OptionName {
    Code(u8),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Provide {
    option: OptionName,
    #[serde(default)]
    value: String,
    #[serde(default)]
    from_arg: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestOption {
    option: Option<OptionName>,
    #[serde(default)]
    skip_default: bool,
}

const HOST_NAME: u8 = 12;

/// The option names the reference dhcp IPAM knows.
const OPTION_NAMES: [(&str, u8); 6] = [
    ("dhcp-client-identifier", 61),
    ("subnet-mask", 1),
    ("routers", 3),
    ("host-name", HOST_NAME),
    ("user-class", 77),
    ("vendor-class-identifier", 60),
];

/// The reference's default request list (without `skipDefault`): subnet
/// mask and router. lanbridge's own list asks for more (DNS, routes, timers).
const DEFAULT_REQUEST: [u8; 2] = [1, 3];

/// Options the client itself decides, which a config may not provide.
const CLIENT_OWN: [u8; 9] = [0, 50, 51, 53, 54, 55, 57, 61, 255];

fn option_code(key: &str, name: &OptionName) -> Result<u8> {
    match name {
        OptionName::Code(c) => Ok(*c),
        OptionName::Name(n) => OPTION_NAMES
            .iter()
            .find(|(known, _)| known == n)
            .map(|(_, c)| *c)
            .or_else(|| n.parse().ok())
            .ok_or_else(|| {
                IpamError::config(
                    key,
                    format!("unknown option {n:?}: a number or one of {OPTION_NAMES:?}"),
                )
            }),
    }
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
    /// From `K8S_POD_NAMESPACE`, `K8S_POD_NAME` and the interface name: a
    /// pod restarted under the same name (a new container) asks for its
    /// lease again. Without those arguments, [`ClientIdMode::Attachment`].
    Pod,
}

#[derive(Debug)]
pub struct Dhcp {
    socket: PathBuf,
    timeout: Duration,
    client_id: ClientIdMode,
    provide: Vec<(u8, Provide)>,
    /// Option 55 when `request` changes it.
    parameters: Option<Vec<u8>>,
    /// The metric of the lease's routes (0: the kernel's default).
    priority: u32,
}

impl Dhcp {
    pub fn parse(ipam: &Value) -> Result<Dhcp> {
        let raw: RawConf = serde_path_to_error::deserialize(ipam).map_err(|e| {
            IpamError::config(format!("ipam.{}", e.path()), e.into_inner().to_string())
        })?;
        let timeout = match raw.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t > 0.0 && t <= 600.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(IpamError::config(
                    "ipam.timeout",
                    format!("{t} is not within (0, 600] seconds"),
                ))
            }
        };
        let mut provide = Vec::new();
        for (i, p) in raw.provide.into_iter().enumerate() {
            let key = format!("ipam.provide[{i}].option");
            let code = option_code(&key, &p.option)?;
            if CLIENT_OWN.contains(&code) {
                return Err(IpamError::config(
                    key,
                    format!(
                        "option {code} is the client's own{}",
                        if code == 61 {
                            ": choose it with \"clientId\" (DHCP snooping lets a pod use no other)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            if p.value.len() > 255 {
                return Err(IpamError::config(
                    format!("ipam.provide[{i}].value"),
                    "longer than the 255 bytes of an option",
                ));
            }
            provide.push((code, p));
        }
        let mut parameters = None;
        if !raw.request.is_empty() {
            let skip = raw.request.iter().any(|r| r.skip_default);
            let mut codes: Vec<u8> = Vec::new();
            for (i, r) in raw.request.iter().enumerate() {
                if let Some(name) = &r.option {
                    codes.push(option_code(&format!("ipam.request[{i}].option"), name)?);
                }
            }
            if !skip {
                // The reference's defaults, and lanbridge's own list.
                codes.extend(DEFAULT_REQUEST);
                codes.extend(
                    crate::dhcp::message::PARAMETERS
                        .iter()
                        .map(|c| u8::from(*c)),
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            codes.retain(|c| seen.insert(*c));
            parameters = Some(codes);
        }
        Ok(Dhcp {
            socket: raw
                .daemon_socket_path
                .unwrap_or_else(|| crate::node::scope::file(DEFAULT_SOCKET)),
            timeout,
            client_id: raw.client_id,
            provide,
            parameters,
            priority: raw.priority,
        })
    }

    /// `provide` with the values of this invocation (`fromArg` wins when
    /// CNI_ARGS has the key, as in the reference); host-name becomes the
    /// hostname (option 12), in place of `K8S_POD_NAME`.
    fn provided(&self, env: &CniEnv) -> Result<(Option<String>, ClientOptions)> {
        let mut hostname = env.arg("K8S_POD_NAME").map(str::to_string);
        let mut provided = Vec::new();
        for (i, (code, p)) in self.provide.iter().enumerate() {
            let value = match env.arg(&p.from_arg).filter(|_| !p.from_arg.is_empty()) {
                Some(v) if v.len() > 255 => {
                    return Err(IpamError::config(
                        format!("ipam.provide[{i}].fromArg"),
                        format!(
                            "CNI_ARGS {} is longer than the 255 bytes of an option",
                            p.from_arg
                        ),
                    ))
                }
                Some(v) => v.to_string(),
                None => p.value.clone(),
            };
            if value.is_empty() {
                continue;
            }
            match *code {
                HOST_NAME => hostname = Some(value),
                code => provided.push((code, value.into_bytes())),
            }
        }
        let options = ClientOptions {
            parameters: self.parameters.clone(),
            provided,
        };
        Ok((hostname, options))
    }

    pub async fn add(
        &self,
        conf: &NetConf,
        env: &CniEnv,
        mac: Mac,
        node: NodeSide,
    ) -> Result<CniResult> {
        let netns = env.netns.clone().ok_or(IpamError::Env {
            var: "CNI_NETNS",
            reason: "required".into(),
        })?;
        let (hostname, options) = self.provided(env)?;
        let netns_inode = NetNs::open(&netns)?.inode()?;
        let request = Request::Acquire(Box::new(AcquireRequest {
            holder: LeaseHolder {
                key: key(conf, env),
                netns,
                netns_inode,
                mac,
                client_id: self.client_id(env, mac),
                hostname,
                options,
                node: Some(node),
                sticky: self.client_id == ClientIdMode::Pod && pod_name(env).is_some(),
                route_priority: self.priority,
            },
            timeout_ms: self.timeout.as_millis() as u64,
        }));
        if self.client_id == ClientIdMode::Pod && pod_name(env).is_none() {
            tracing::warn!(
                "\"clientId\": \"pod\" needs K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS; \
                 the runtime passed none: using the attachment's identifier (container {})",
                env.container_id
            );
        }
        // The daemon bounds the exchange; a little more here covers the hand-off.
        let patience = self.timeout + Duration::from_secs(2);
        match self.call(&request, patience).await? {
            Response::Lease { lease } => Ok(result(&lease, self.priority)),
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
            Err(IpamError::DaemonUnreachable { .. }) => {
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
    pub fn client_id(&self, env: &CniEnv, mac: Mac) -> Vec<u8> {
        client_id(self.client_id, env, mac)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn call(&self, request: &Request, patience: Duration) -> Result<Response> {
        let exchange = async {
            let stream = UnixStream::connect(&self.socket).await.map_err(|source| {
                IpamError::DaemonUnreachable {
                    socket: self.socket.clone(),
                    source,
                }
            })?;
            let (reader, mut writer) = stream.into_split();
            let answer = async {
                write_message(&mut writer, request).await?;
                read_message::<_, Response>(reader).await
            };
            answer.await.map_err(|e| match e {
                RecordError::Io { source, .. } if went_away(&source) => IpamError::DaemonGone {
                    socket: self.socket.clone(),
                    source,
                },
                e => e.into(),
            })
        };
        let response = tokio::time::timeout(patience, exchange)
            .await
            .map_err(|_| IpamError::DaemonTimeout {
                socket: self.socket.clone(),
                after: patience,
            })??;
        match response {
            Response::Error { code, msg } => Err(IpamError::Daemon {
                code: Some(code),
                msg,
            }),
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

/// `<namespace>/<name>` of a Kubernetes pod, from `CNI_ARGS`.
fn pod_name(env: &CniEnv) -> Option<String> {
    let namespace = env.arg("K8S_POD_NAMESPACE").filter(|s| !s.is_empty())?;
    let name = env.arg("K8S_POD_NAME").filter(|s| !s.is_empty())?;
    Some(format!("{namespace}/{name}"))
}

/// Option 61. Type 0 (RFC 2132: "other") with the first 16 bytes of a
/// SHA-256 digest of `<container>/<ifname>` (attachment) or
/// `<namespace>/<pod>/<ifname>` (pod), or type 1 (Ethernet) with the MAC.
/// A digest: a fixed 17 bytes fit the datapath's snooping entry whatever the
/// names' lengths.
fn client_id(mode: ClientIdMode, env: &CniEnv, mac: Mac) -> Vec<u8> {
    let digest = |s: String| {
        let d = Sha256::digest(s);
        std::iter::once(0).chain(d[..16].iter().copied()).collect()
    };
    match (mode, pod_name(env)) {
        (ClientIdMode::Pod, Some(pod)) => digest(format!("{pod}/{}", env.ifname)),
        (ClientIdMode::Mac, _) => std::iter::once(1).chain(mac.octets()).collect(),
        _ => digest(format!("{}/{}", env.container_id, env.ifname)),
    }
}

/// The result of `lease`; its routes carry `priority` as their metric, as
/// the reference's do (0: none).
fn result(lease: &Lease, priority: u32) -> CniResult {
    CniResult {
        ips: vec![IpConfig {
            address: IpNet::V4(lease.network()),
            gateway: lease.router.map(IpAddr::V4),
            interface: None,
        }],
        routes: lease
            .routes()
            .into_iter()
            .map(|r| Route {
                priority: (priority != 0).then_some(priority),
                ..Route::via(IpNet::V4(r.destination), r.gateway.map(IpAddr::V4))
            })
            .collect(),
        dns: Dns {
            nameservers: lease.dns_servers.iter().map(|s| s.to_string()).collect(),
            domain: lease.domain.clone().unwrap_or_default(),
            ..Dns::default()
        },
        ..CniResult::default()
    }
}

fn unexpected(response: Response) -> IpamError {
    IpamError::Daemon {
        code: None,
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
        for (bad, key) in [
            (json!({"timeout": 0}), "ipam.timeout"),
            (json!({"timeout": "10s"}), "ipam.timeout"),
            (json!({"clientId": "uuid"}), "ipam.clientId"),
            (json!({"priority": -1}), "ipam.priority"),
            (json!({"priority": "high"}), "ipam.priority"),
        ] {
            let err = Dhcp::parse(&bad).unwrap_err();
            assert!(matches!(err, IpamError::Config { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(key), "{bad}: {err}");
        }
        // Keys the reference does not know either are ignored, as it does.
        assert!(Dhcp::parse(&json!({"type": "dhcp", "suppress": ["gateway"]})).is_ok());
    }

    #[test]
    fn priority_is_the_metric_of_the_lease_routes() {
        let d = Dhcp::parse(&json!({"type": "dhcp", "priority": 300})).unwrap();
        assert_eq!(d.priority, 300);
        assert_eq!(Dhcp::parse(&json!({})).unwrap().priority, 0);
        let lease = Lease {
            address: "192.168.1.50".parse().unwrap(),
            prefix_len: 24,
            router: Some("192.168.1.1".parse().unwrap()),
            dns_servers: vec![],
            domain: None,
            classless_routes: vec![],
            server_id: "192.168.1.1".parse().unwrap(),
            lease_time: 3600,
            t1: 1800,
            t2: 3150,
            acquired_at: 0,
        };
        let routes = |p| result(&lease, p).routes;
        assert_eq!(routes(300)[0].priority, Some(300));
        assert_eq!(routes(300)[0].dst.prefix_len(), 0);
        assert_eq!(
            routes(0)[0].priority,
            None,
            "no metric: the kernel's default"
        );
    }

    #[test]
    fn reference_provide_and_request_keys() {
        let d = Dhcp::parse(&json!({"type": "dhcp",
            "provide": [
                {"option": "host-name", "value": "fixed", "fromArg": "K8S_POD_NAME"},
                {"option": "vendor-class-identifier", "value": "lanbridge"},
                {"option": 77, "fromArg": "TEAM"}],
            "request": [{"skipDefault": true}, {"option": "subnet-mask"}, {"option": "42"}]}))
        .unwrap();
        let env = CniEnv {
            args: [("K8S_POD_NAME".to_string(), "web-0".to_string())].into(),
            ..CniEnv::default()
        };
        let (hostname, options) = d.provided(&env).unwrap();
        assert_eq!(
            hostname.as_deref(),
            Some("web-0"),
            "fromArg wins when passed"
        );
        assert_eq!(options.provided, vec![(60, b"lanbridge".to_vec())]);
        assert_eq!(options.parameters, Some(vec![1, 42]));
        let (hostname, _) = d.provided(&CniEnv::default()).unwrap();
        assert_eq!(hostname.as_deref(), Some("fixed"));

        let d = Dhcp::parse(&json!({"request": [{"option": "routers"}]})).unwrap();
        let asked = d.parameters.unwrap();
        assert_eq!(asked[0], 3);
        assert!(asked.contains(&1) && asked.contains(&121), "{asked:?}");
        assert_eq!(Dhcp::parse(&json!({})).unwrap().parameters, None);

        for (bad, key) in [
            (
                json!({"provide": [{"option": "dhcp-client-identifier", "value": "x"}]}),
                "ipam.provide[0].option",
            ),
            (
                json!({"provide": [{"option": "no-such-option"}]}),
                "ipam.provide[0].option",
            ),
            (
                json!({"provide": [{"option": 53, "value": "1"}]}),
                "ipam.provide[0].option",
            ),
            (
                json!({"provide": [{"option": 12, "value": "x".repeat(256)}]}),
                "ipam.provide[0].value",
            ),
            (
                json!({"request": [{"option": "bogus"}]}),
                "ipam.request[0].option",
            ),
            (
                json!({"request": [{"option": 300}]}),
                "ipam.request[0].option",
            ),
        ] {
            let err = Dhcp::parse(&bad).unwrap_err();
            assert!(matches!(err, IpamError::Config { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn client_ids_are_stable_per_attachment() {
        let env = |cid: &str| CniEnv {
            container_id: cid.into(),
            ifname: "eth0".into(),
            ..CniEnv::default()
        };
        let mac = Mac::new([2, 0, 0, 0, 0, 1]);
        let a = client_id(ClientIdMode::Attachment, &env("c1"), mac);
        assert_eq!(
            a,
            client_id(
                ClientIdMode::Attachment,
                &env("c1"),
                Mac::new([2, 0, 0, 0, 0, 9])
            )
        );
        assert_ne!(a, client_id(ClientIdMode::Attachment, &env("c2"), mac));
        assert_eq!(a.len(), 17);
        assert_eq!(
            client_id(ClientIdMode::Mac, &env("c1"), mac),
            vec![1, 2, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn pod_client_ids_survive_a_new_container() {
        let env = |cid: &str, args: &str| CniEnv {
            container_id: cid.into(),
            ifname: "net1".into(),
            args: args
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..CniEnv::default()
        };
        let mac = Mac::new([2, 0, 0, 0, 0, 1]);
        let named = "K8S_POD_NAMESPACE=games;K8S_POD_NAME=server-0";
        let a = client_id(ClientIdMode::Pod, &env("c1", named), mac);
        assert_eq!(a, client_id(ClientIdMode::Pod, &env("c2", named), mac));
        let digest = Sha256::digest("games/server-0/net1");
        assert_eq!(a[0], 0);
        assert_eq!(&a[1..], &digest[..16]);
        let other = "K8S_POD_NAMESPACE=games;K8S_POD_NAME=server-1";
        assert_ne!(a, client_id(ClientIdMode::Pod, &env("c1", other), mac));
        // Without the pod's name: the attachment's identifier.
        assert_eq!(
            client_id(ClientIdMode::Pod, &env("c1", "K8S_POD_NAME=server-0"), mac),
            client_id(ClientIdMode::Attachment, &env("c1", ""), mac)
        );
        let d = Dhcp::parse(&json!({"type": "dhcp", "clientId": "pod"})).unwrap();
        assert_eq!(d.client_id, ClientIdMode::Pod);
    }
}

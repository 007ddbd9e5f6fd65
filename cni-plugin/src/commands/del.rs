//! DEL: best effort and idempotent. It succeeds when called twice, when the
//! netns or the link is gone, and when nothing was allocated; it still tries
//! every step when one fails, and reports the first failure. A config ADD
//! refuses is no reason to fail: see [`conf_for_del`].

use serde_json::Value;

use super::fault;
use super::state::Record;
use super::{Attachment, Cleanup};
use crate::cni::{CniEnv, Error, Result};
use crate::config::NetConf;
use crate::ipam::Ipam;
use crate::node::gone::first_error;
use crate::node::{self, netns::NetNs};

pub async fn run(conf: &NetConf, env: &CniEnv) -> Result<()> {
    let att = Attachment::new(conf, env)?;
    let mut errors = Vec::new();

    // IPAM first, while the interface still exists (a DHCP release needs it).
    if let Some(ipam) = &att.ipam {
        if let Err(e) = ipam.del(conf, env).await {
            errors.push(e.into());
        }
    }
    fault::del_step("ipam");
    // A record that cannot be read must not make DEL fail on every retry:
    // the deterministic names find the rest.
    let record = att
        .state
        .load(&env.container_id, &env.ifname)
        .unwrap_or_else(|e| {
            tracing::warn!("{e}; removing the attachment by its names");
            None
        });
    let pod = match &env.netns {
        Some(path) => match NetNs::open(path) {
            Ok(ns) => the_pods(ns, record.as_ref()),
            Err(node::error::Error::NetnsNotFound { .. }) => None,
            Err(e) => {
                errors.push(e.into());
                None
            }
        },
        None => None,
    };
    match Cleanup::new(&att) {
        Ok(mut cleanup) => {
            cleanup.defer = true;
            errors.extend(
                cleanup
                    .attachment(
                        &env.container_id,
                        &env.ifname,
                        record.as_ref(),
                        pod.as_ref(),
                    )
                    .await,
            )
        }
        Err(e) => errors.push(e),
    }
    first_error(errors)
}

/// The config DEL works with. One that ADD refuses (an invalid value, code
/// 7; a key lanbridge does not support, code 2) still names a network, and a
/// runtime retries DEL until it succeeds (kubelet does, forever) while the
/// reference's DEL succeeds for most such configs: each refused top-level
/// key is dropped, its default taken, and DEL removes what the record and
/// the deterministic names find. A config that names no valid network, a
/// bad `cniVersion` and JSON that does not parse stay refused.
pub fn conf_for_del(mut raw: Value, env: &CniEnv) -> Result<NetConf> {
    loop {
        let refused = match NetConf::parse(raw.clone()) {
            // Built-in IPAM validates its own keys.
            Ok(conf) => match Ipam::from_conf(&conf, env) {
                Ok(_) => return Ok(conf),
                Err(e) => e.into(),
            },
            Err(e) => e,
        };
        let key = match &refused {
            Error::InvalidConfig { key, .. } => key.as_str(),
            Error::UnsupportedField { field, .. } => field,
            _ => return Err(refused),
        };
        let top = key.split(['.', '[']).next().unwrap_or_default();
        if matches!(top, "name" | "cniVersion") {
            return Err(refused);
        }
        match raw.as_object_mut().and_then(|o| o.remove(top)) {
            Some(_) => tracing::warn!("DEL: ignoring {refused}"),
            None => return Err(refused),
        }
    }
}

/// `ns` if it is still the pod's namespace. A DEL's path can outlive the
/// pod: `/proc/<pid>/ns/net` (`ctr run --cni`, nerdctl) of a reused PID
/// names another namespace, perhaps the node's own, whose interfaces are
/// never DEL's to remove. The pod is then gone, as with a missing path.
fn the_pods(ns: NetNs, record: Option<&Record>) -> Option<NetNs> {
    let inode = ns.inode().ok()?;
    let node = NetNs::current().and_then(|n| n.inode()).ok();
    let recorded = record.map_or(0, |r| r.netns_inode);
    let other = if node == Some(inode) {
        "the node's own namespace"
    } else if recorded != 0 && recorded != inode {
        "another namespace than at ADD"
    } else {
        return Some(ns);
    };
    tracing::warn!(
        "netns {} names {other} (inode {inode}): the pod is gone, its interfaces are left alone",
        ns.path().display()
    );
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn del_drops_what_add_refuses_but_keeps_the_network() {
        let env = CniEnv::default();
        let conf = conf_for_del(
            json!({"cniVersion": "1.0.0", "name": "net", "bridge": "lb0", "mtu": -1,
                   "vlanTrunk": [{"id": 5}], "runtimeConfig": {"mac": "bad"},
                   "ipam": {"type": "dhcp", "timeout": 0}}),
            &env,
        )
        .unwrap();
        assert_eq!((conf.name.as_str(), conf.bridge.as_str()), ("net", "lb0"));
        assert_eq!((conf.mtu, conf.mac), (None, None));
        assert!(conf.ipam.is_none(), "the refused ipam is dropped");
        // Valid keys stay.
        let conf = conf_for_del(
            json!({"cniVersion": "1.0.0", "name": "net", "vlan": 5000,
                   "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}),
            &env,
        )
        .unwrap();
        assert_eq!(conf.ipam.unwrap().kind, "host-local");
    }

    #[test]
    fn del_still_refuses_a_config_naming_no_network() {
        let env = CniEnv::default();
        for (bad, code) in [
            (json!({"cniVersion": "1.0.0", "mtu": -1}), 7),
            (json!({"cniVersion": "1.0.0", "name": "a/b"}), 7),
            (json!({"cniVersion": 1, "name": "net"}), 7),
            (json!({"cniVersion": "9.9.9", "name": "net"}), 1),
            (json!(["not", "an", "object"]), 7),
        ] {
            let err = conf_for_del(bad.clone(), &env).unwrap_err();
            assert_eq!(err.code(), code, "{bad}: {err}");
        }
    }
}

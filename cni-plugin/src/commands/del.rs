//! DEL: best effort and idempotent. It succeeds when called twice, when the
//! netns or the link is gone, and when nothing was allocated; it still tries
//! every step when one fails, and reports the first failure.

use super::fault;
use super::state::Record;
use super::{Attachment, Cleanup};
use crate::cni::{CniEnv, Result};
use crate::config::NetConf;
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
        Ok(mut cleanup) => errors.extend(
            cleanup
                .attachment(
                    &env.container_id,
                    &env.ifname,
                    record.as_ref(),
                    pod.as_ref(),
                )
                .await,
        ),
        Err(e) => errors.push(e),
    }
    first_error(errors)
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

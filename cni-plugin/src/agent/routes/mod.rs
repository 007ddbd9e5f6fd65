//! Routes to the other nodes' pod subnets (subnet mode across nodes).
//!
//! For node N, every other node M of the peers file gets
//! `ip route <podCidr of M> via <address of M> proto 76` in N's main table.
//! Every route lanbridge installs carries its own route protocol number
//! ([`RTPROT_LANBRIDGE`]); a route with any other protocol is never changed or
//! removed, and a destination already routed by someone else is reported and
//! left alone. Syncing is plan, then apply: the plan compares the wanted
//! routes with the table, so running it twice changes nothing.

mod sync;

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::agent::peers::{Peers, PeersError};

pub use sync::{follow, sync_file, Follow, Outcome};

pub use crate::node::naming::RTPROT_LANBRIDGE;
pub use crate::node::netlink::Installed;

/// A route the peers file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub dst: IpNet,
    pub via: IpAddr,
    /// The node whose pod subnet `dst` is.
    pub node: String,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new route.
    Add(Wanted),
    /// Our route to `want.dst` goes through another gateway now.
    Replace { want: Wanted, was: Installed },
    /// Our route whose destination no node has any more (or a duplicate).
    Delete(Installed),
    /// `want.dst` is already routed by a route lanbridge did not create: left alone.
    Conflict { want: Wanted, theirs: Installed },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Add(w) => write!(f, "add {} via {} ({})", w.dst, w.via, w.node),
            Action::Replace { want, was } => write!(
                f,
                "replace {} via {} ({}; was via {})",
                want.dst,
                want.via,
                want.node,
                was.via
                    .map_or_else(|| "nothing".to_string(), |v| v.to_string())
            ),
            Action::Delete(r) => write!(
                f,
                "delete {} (no node has this pod subnet any more)",
                Installed {
                    // `proto lanbridge` goes without saying here.
                    protocol: RTPROT_LANBRIDGE,
                    ..r.clone()
                }
            ),
            Action::Conflict { want, theirs } => write!(
                f,
                "skip {} via {} ({}): a route lanbridge did not create is in the way: {}",
                want.dst, want.via, want.node, theirs
            ),
        }
    }
}

/// What a sync does: the changes, and the wanted routes already in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub unchanged: Vec<Wanted>,
}

impl Plan {
    /// Whether applying the plan would change the table.
    pub fn changes(&self) -> bool {
        self.actions
            .iter()
            .any(|a| !matches!(a, Action::Conflict { .. }))
    }

    pub fn conflicts(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Conflict { .. }))
            .count()
    }

    /// `N to add, N to replace, N to delete, N unchanged[, N skipped]`.
    pub fn summary(&self) -> String {
        let count = |f: fn(&Action) -> bool| self.actions.iter().filter(|a| f(a)).count();
        let mut s = format!(
            "{} to add, {} to replace, {} to delete, {} unchanged",
            count(|a| matches!(a, Action::Add(_))),
            count(|a| matches!(a, Action::Replace { .. })),
            count(|a| matches!(a, Action::Delete(_))),
            self.unchanged.len()
        );
        if self.conflicts() > 0 {
            s.push_str(&format!(", {} skipped", self.conflicts()));
        }
        s
    }
}

/// The routes node `node` needs: one to each other node's pod subnet.
pub fn wanted(peers: &Peers, node: &str) -> Result<Vec<Wanted>, PeersError> {
    let mut v: Vec<Wanted> = peers
        .others(node)?
        .into_iter()
        .map(|n| Wanted {
            dst: n.pod_cidr,
            via: n.address,
            node: n.name.clone(),
        })
        .collect();
    v.sort_by_key(|w| w.dst);
    Ok(v)
}

/// Compares the wanted routes with the main table (`live`: every route of
/// it, ours and others'). Deletes come first, so a subnet that moved from
/// one node to another never has two routes at once.
pub fn plan(wanted: &[Wanted], live: &[Installed]) -> Plan {
    let mut deletes = Vec::new();
    let mut rest = Vec::new();
    let mut unchanged = Vec::new();
    for w in wanted {
        let ours: Vec<&Installed> = live.iter().filter(|r| r.ours() && r.dst == w.dst).collect();
        let keep = ours
            .iter()
            .position(|r| r.via == Some(w.via))
            .or(if ours.is_empty() { None } else { Some(0) });
        match keep {
            Some(i) if ours[i].via == Some(w.via) => unchanged.push(w.clone()),
            Some(i) => rest.push(Action::Replace {
                want: w.clone(),
                was: ours[i].clone(),
            }),
            None => match live.iter().find(|r| !r.ours() && r.dst == w.dst) {
                Some(theirs) => rest.push(Action::Conflict {
                    want: w.clone(),
                    theirs: theirs.clone(),
                }),
                None => rest.push(Action::Add(w.clone())),
            },
        }
        // Duplicates of ours (e.g. another metric) go.
        for (j, r) in ours.iter().enumerate() {
            if Some(j) != keep {
                deletes.push(Action::Delete((*r).clone()));
            }
        }
    }
    for r in live.iter().filter(|r| r.ours()) {
        if !wanted.iter().any(|w| w.dst == r.dst) {
            deletes.push(Action::Delete(r.clone()));
        }
    }
    deletes.extend(rest);
    Plan {
        actions: deletes,
        unchanged,
    }
}

#[cfg(test)]
mod tests;

//! An attachment's iptables rules, FORWARD accepts ([`forward`]) and
//! masquerade ([`masquerade`]), written and removed together: under the
//! namespace's [`NetnsLock`], one read per chain involved and one
//! `iptables-restore` per family.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use crate::cni::Result;
use crate::commands::state::Record;
use crate::iptables::{comment, deletion, rules, Batch, Family, NetnsLock};
use crate::node::gone::first_error;
use crate::{forward, masquerade};

/// What ADD puts in iptables for one attachment.
pub struct Rules<'a> {
    pub network: &'a str,
    pub container_id: &'a str,
    /// Routed pods: accepts on this bridge for these addresses.
    pub forward: Option<(&'a str, &'a [Ipv4Addr])>,
    /// `ipMasq`: the attachment's addresses and the `clusterCidrs`.
    pub masquerade: Option<(&'a [IpNet], &'a [IpNet])>,
}

impl Rules<'_> {
    pub fn is_empty(&self) -> bool {
        self.forward.is_none() && self.masquerade.is_none()
    }

    /// Writes the rules; an earlier ADD's rules of the attachment are replaced.
    pub fn apply(&self) -> Result<()> {
        let _lock = NetnsLock::acquire()?;
        for family in Family::ALL {
            let mut batch = Batch::default();
            if let (Family::V4, Some((bridge, ips))) = (family, self.forward) {
                forward::plan(self.network, self.container_id, bridge, ips, &mut batch)?;
            }
            if let Some((ips, cluster)) = self.masquerade {
                let mine = family.select(ips);
                if !mine.is_empty() {
                    let nets = masquerade::Nets {
                        own: &mine,
                        cluster,
                    };
                    masquerade::plan(self.network, self.container_id, family, &nets, &mut batch);
                }
            }
            batch.apply(family)?;
        }
        Ok(())
    }
}

/// What `lanbridge cleanup` removes of a network in one family: every rule
/// tagged with the network, the nat chains they jump to, and, once no other
/// network's rule is left in it, the `LANBRIDGE-FWD` chain and its jump.
pub fn network_removal(network: &str, family: Family) -> Batch {
    let tag = comment(network, "");
    let ours = |rule: &str| {
        rule.split_whitespace()
            .any(|w| w.trim_matches('"').starts_with(&tag))
    };
    let mut batch = Batch::default();
    for rule in rules(family, "nat", "POSTROUTING")
        .iter()
        .filter(|r| ours(r))
    {
        batch.line("nat", deletion(rule));
        if let Some(chain) = rule.rsplit_once("-j ").map(|(_, c)| c.trim()) {
            if chain.starts_with("LB-") && !batch.mentions(&format!("-X {chain}")) {
                batch.line("nat", format!("-F {chain}"));
                batch.line("nat", format!("-X {chain}"));
            }
        }
    }
    if family == Family::V4 {
        forward::network_removal(&ours, &mut batch);
    }
    batch
}

/// Removes an attachment's rules, limited to what its record says ADD set
/// up; missing rules are fine. With a record, the rules ADD wrote are
/// deleted without reading anything first; should that fail (something
/// already removed one), and without a record, the chains are read and
/// whatever carries the attachment's tag goes.
pub fn remove(
    network: &str,
    container_id: &str,
    routed: bool,
    record: Option<&Record>,
) -> Result<()> {
    let _lock = NetnsLock::acquire()?;
    let mut errors = Vec::new();
    for family in Family::ALL {
        let own = record.map(|r| family.select(&r.ips)).unwrap_or_default();
        if let Some(record) = record {
            if own.is_empty() {
                continue;
            }
            let mut exact = Batch::default();
            if routed && family == Family::V4 {
                let v4: Vec<Ipv4Addr> = own
                    .iter()
                    .filter_map(|n| match n {
                        IpNet::V4(n) => Some(n.addr()),
                        IpNet::V6(_) => None,
                    })
                    .collect();
                forward::teardown_exact(network, container_id, &record.bridge, &v4, &mut exact);
            }
            if record.masquerade {
                masquerade::teardown_exact(network, container_id, &own, &mut exact);
            }
            if exact.apply(family).is_ok() {
                continue;
            }
        }
        let mut batch = Batch::default();
        if routed && family == Family::V4 {
            forward::teardown(network, container_id, &mut batch);
        }
        if record.is_none_or(|r| r.masquerade) {
            masquerade::teardown(network, container_id, family, &mut batch);
        }
        if let Err(e) = batch.apply(family) {
            errors.push(e);
        }
    }
    first_error(errors)
}

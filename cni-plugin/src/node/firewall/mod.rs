//! Everything lanbridge keeps in netfilter, behind one front door, driven
//! over netlink (nf_tables): no process starts, and no read of a table that
//! grows with the pods.
//!
//! - Per network, installed by the first ADD and afterwards only read back
//!   (one dump of lanbridge's own small chains): the FORWARD accepts for
//!   the bridge ([`forward`], in iptables' `filter` table, where Docker's
//!   and kube-proxy's DROP live) and `ipMasq` for the network's subnets
//!   ([`masquerade`], in lanbridge's own tables).
//! - Per port: `macspoofchk` ([`macspoof`]), one verdict map element and
//!   chain, written and deleted without reading the other ports'.
//! - An older build's per-pod iptables rules ([`legacy`]) go with their pod.

mod forward;
mod legacy;
mod macspoof;
mod masquerade;
mod nft;

use std::fs::File;
use std::os::fd::AsRawFd;

use ipnet::IpNet;

use crate::node::error::{Error, Result};
use crate::node::mac::Mac;
use nft::{Batch, Nft};

/// What a network needs in netfilter.
pub struct Network<'a> {
    pub name: &'a str,
    /// Routed pods: accepts for this bridge in FORWARD.
    pub forward: Option<&'a str>,
    pub masquerade: Masquerade<'a>,
}

/// What the network's config says of `ipMasq`.
pub enum Masquerade<'a> {
    /// On: the attachment's addresses (with prefixes: their subnets are
    /// masqueraded) and the `clusterCidrs`.
    On(&'a [IpNet], &'a [IpNet]),
    /// Off: a masquerade an earlier config of the network set goes, as the
    /// config now given is the network's (a pod added after `ipMasq` was
    /// turned off is not masqueraded, as with the reference's per-pod rules).
    Off,
    /// On, but the attachment has no address to masquerade: leave it be.
    Keep,
}

impl Network<'_> {
    /// Installs what is missing and removes what the config no longer asks
    /// for, in one atomic commit; when everything is as asked (every ADD
    /// after a network's first) it only reads lanbridge's own small chains.
    pub fn ensure(&self) -> Result<()> {
        if self.forward.is_none() && matches!(self.masquerade, Masquerade::Keep) {
            return Ok(());
        }
        let _lock = NetnsLock::acquire()?;
        let mut nft = Nft::open()?;
        let mut batch = Batch::default();
        if let Some(bridge) = self.forward {
            forward::plan(&mut nft, self.name, bridge, &mut batch)?;
        }
        match self.masquerade {
            Masquerade::On(own, cluster) => {
                masquerade::plan(&mut nft, self.name, own, cluster, &mut batch)?
            }
            Masquerade::Off => masquerade::network_removal(&mut nft, self.name, &mut batch)?,
            Masquerade::Keep => {}
        }
        commit(&mut nft, &batch)
    }
}

fn commit(nft: &mut Nft, batch: &Batch) -> Result<()> {
    nft.commit(batch)
        .map_err(|(e, what)| Error::Firewall { what, source: e })
}

/// DEL and GC of one attachment: nothing of this build is per pod, so only
/// an older build's rules of the pod can be left to remove (`routed`: it
/// had FORWARD accepts; `masquerade`: a nat chain). Missing ones are fine.
pub fn remove_attachment(
    network: &str,
    container_id: &str,
    routed: bool,
    masquerade: bool,
) -> Result<()> {
    if !routed && !masquerade {
        return Ok(());
    }
    let _lock = NetnsLock::acquire()?;
    let mut nft = Nft::open()?;
    let mut batch = Batch::default();
    legacy::attachment_removal(&mut nft, network, container_id, routed, &mut batch)?;
    commit(&mut nft, &batch)
}

/// `macspoofchk` for a pod's port.
pub fn mac_spoof_setup(host_veth: &str, mac: Mac) -> Result<()> {
    let mut nft = Nft::open()?;
    let batch = macspoof::setup(&mut nft, host_veth, mac)?;
    commit(&mut nft, &batch)
}

/// Removes the port's `macspoofchk`; a port without one is fine.
pub fn mac_spoof_teardown(host_veth: &str) -> Result<()> {
    let mut nft = Nft::open()?;
    for batch in macspoof::teardown(host_veth) {
        match nft.commit(&batch) {
            Err((e, _)) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => other.map_err(|(e, what)| Error::Firewall { what, source: e })?,
        }
    }
    Ok(())
}

/// What `lanbridge cleanup` removes of a network: its rules and chains,
/// an older build's per-pod ones, and the tables and chains no other
/// network uses any more. Planned and applied under the namespace's lock.
pub struct Removal {
    _lock: NetnsLock,
    nft: Nft,
    batches: Vec<Batch>,
}

impl Removal {
    pub fn plan(network: &str) -> Result<Removal> {
        let lock = NetnsLock::acquire()?;
        let mut nft = Nft::open()?;
        let mut rules = Batch::default();
        legacy::network_removal(&mut nft, network, &mut rules)?;
        forward::network_removal(&mut nft, network, &mut rules)?;
        masquerade::network_removal(&mut nft, network, &mut rules)?;
        let bridge = macspoof::table_removal(&mut nft)?;
        Ok(Removal {
            _lock: lock,
            nft,
            batches: vec![rules, bridge],
        })
    }

    /// One line per change (empty: nothing to remove).
    pub fn describe(&self) -> String {
        let lines: Vec<&str> = self
            .batches
            .iter()
            .flat_map(|b| b.summary.iter().map(String::as_str))
            .collect();
        lines.join("\n")
    }

    pub fn apply(mut self) -> Result<()> {
        for batch in &self.batches {
            commit(&mut self.nft, batch)?;
        }
        Ok(())
    }
}

/// Serializes lanbridge's read-modify-write of netfilter within one network
/// namespace (a flock on the namespace itself: nothing to create or clean
/// up, and plugins in other namespaces don't wait).
pub struct NetnsLock {
    /// Held for the lock's lifetime: closing it releases the flock.
    _file: File,
}

impl NetnsLock {
    pub fn acquire() -> Result<NetnsLock> {
        let path = "/proc/thread-self/ns/net";
        let file = File::open(path).map_err(|e| Error::io(format!("opening {path}"), e))?;
        // SAFETY: flock on an fd this struct owns; released when it closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io(
                format!("locking {path}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(NetnsLock { _file: file })
    }
}

//! host-local's allocation policy, as pure logic over a [`Store`]: round-robin
//! from the last reserved address, skipping gateways, one address per range set.

use std::net::IpAddr;

use super::owner::Owner;
use super::range::{next_ip, Range, RangeSet};
use super::store::Store;
use crate::cni::IpConfig;
use crate::ipam::IpamError;

/// Allocates one address from range set `set_idx` for `owner`.
///
/// An owner that already holds an address in the set gets it back, so a
/// retried ADD is idempotent.
pub fn allocate(
    store: &mut dyn Store,
    set_idx: usize,
    set: &RangeSet,
    owner: &Owner,
    requested: Option<IpAddr>,
) -> Result<IpConfig, IpamError> {
    if let Some((ip, range)) = store
        .owned_by(owner)?
        .into_iter()
        .find_map(|ip| range_of(set, ip).map(|r| (ip, r)))
    {
        return Ok(config(ip, range));
    }
    if let Some(ip) = requested {
        let range = range_of(set, ip).ok_or(IpamError::OutOfRange { ip })?;
        if !store.reserve(ip, owner, set_idx)? {
            let holder = store.owner_of(ip)?.map(|o| o.container_id);
            return Err(IpamError::InUse {
                ip,
                owner: holder.unwrap_or_default(),
            });
        }
        return Ok(config(ip, range));
    }
    let last = store.last_reserved(set_idx)?;
    for (ip, range) in candidates(set, last) {
        if range.gateway == Some(ip) {
            continue;
        }
        if store.reserve(ip, owner, set_idx)? {
            return Ok(config(ip, range));
        }
    }
    Err(IpamError::Exhausted {
        range_set: set_idx,
        ranges: set
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// Releases every address of `owner`; returns what was released.
pub fn release(store: &mut dyn Store, owner: &Owner) -> Result<Vec<IpAddr>, IpamError> {
    let mine = store.owned_by(owner)?;
    for ip in &mine {
        store.release(*ip)?;
    }
    Ok(mine)
}

fn range_of(set: &RangeSet, ip: IpAddr) -> Option<&Range> {
    set.iter().find(|r| r.contains(ip))
}

fn config(ip: IpAddr, range: &Range) -> IpConfig {
    IpConfig {
        address: ipnet::IpNet::new(ip, range.subnet.prefix_len()).expect("prefix from subnet"),
        gateway: range.gateway,
        interface: None,
    }
}

/// Every address of the set once, starting after `last` (if it lies in the
/// set) and wrapping around through the ranges in order.
fn candidates(set: &RangeSet, last: Option<IpAddr>) -> impl Iterator<Item = (IpAddr, &Range)> {
    let n = set.len();
    let (first, from) =
        match last.and_then(|l| set.iter().position(|r| r.contains(l)).map(|i| (i, l))) {
            Some((i, l)) if l >= set[i].end => ((i + 1) % n, set[(i + 1) % n].start),
            Some((i, l)) => (i, next_ip(l)),
            None => (0, set[0].start),
        };
    let head = span(&set[first], from, set[first].end);
    let middle = (1..n).flat_map(move |k| {
        let r = &set[(first + k) % n];
        span(r, r.start, r.end)
    });
    // The part of the first range before `from`, visited last.
    let tail = span(&set[first], set[first].start, from).filter(move |(ip, _)| *ip < from);
    head.chain(middle).chain(tail)
}

/// `from..=to` within one range.
fn span(range: &Range, from: IpAddr, to: IpAddr) -> impl Iterator<Item = (IpAddr, &Range)> {
    std::iter::successors(Some(from), move |ip| (*ip < to).then(|| next_ip(*ip)))
        .take_while(move |ip| *ip <= to)
        .map(move |ip| (ip, range))
}

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::*;

/// An in-memory store: the allocator is tested without touching disk.
#[derive(Default)]
struct MemStore {
    ips: BTreeMap<IpAddr, Owner>,
    last: BTreeMap<usize, IpAddr>,
}

impl Store for MemStore {
    fn reserve(&mut self, ip: IpAddr, owner: &Owner, set: usize) -> Result<bool, IpamError> {
        if self.ips.contains_key(&ip) {
            return Ok(false);
        }
        self.ips.insert(ip, owner.clone());
        self.last.insert(set, ip);
        Ok(true)
    }
    fn last_reserved(&self, set: usize) -> Result<Option<IpAddr>, IpamError> {
        Ok(self.last.get(&set).copied())
    }
    fn owner_of(&self, ip: IpAddr) -> Result<Option<Owner>, IpamError> {
        Ok(self.ips.get(&ip).cloned())
    }
    fn all(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        Ok(self.ips.iter().map(|(i, o)| (*i, o.clone())).collect())
    }
    fn release(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        self.ips.remove(&ip);
        Ok(())
    }
}

fn owner(id: &str) -> Owner {
    Owner {
        container_id: id.into(),
        ifname: "eth0".into(),
    }
}

fn set(subnet: &str, start: Option<&str>, end: Option<&str>) -> RangeSet {
    vec![Range::new(
        subnet.parse().unwrap(),
        start.map(|s| s.parse().unwrap()),
        end.map(|s| s.parse().unwrap()),
        None,
    )
    .unwrap()]
}

fn alloc(store: &mut MemStore, set: &RangeSet, id: &str) -> Result<String, IpamError> {
    allocate(store, 0, set, &owner(id), None).map(|c| c.address.to_string())
}

#[test]
fn skips_gateway_and_goes_round_robin() {
    let s = set("10.0.0.0/24", None, None);
    let mut store = MemStore::default();
    assert_eq!(alloc(&mut store, &s, "a").unwrap(), "10.0.0.2/24");
    assert_eq!(alloc(&mut store, &s, "b").unwrap(), "10.0.0.3/24");
    release(&mut store, &owner("a")).unwrap();
    // Round robin: the freed .2 is not reused before the range wraps.
    assert_eq!(alloc(&mut store, &s, "c").unwrap(), "10.0.0.4/24");
}

#[test]
fn same_owner_gets_same_address() {
    let s = set("10.0.0.0/24", None, None);
    let mut store = MemStore::default();
    let first = alloc(&mut store, &s, "a").unwrap();
    assert_eq!(alloc(&mut store, &s, "a").unwrap(), first);
    assert_eq!(store.ips.len(), 1);
}

#[test]
fn wraps_and_exhausts() {
    let s = set("10.0.0.0/24", Some("10.0.0.10"), Some("10.0.0.12"));
    let mut store = MemStore::default();
    let got: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|id| alloc(&mut store, &s, id).unwrap())
        .collect();
    assert_eq!(got, ["10.0.0.10/24", "10.0.0.11/24", "10.0.0.12/24"]);
    let err = alloc(&mut store, &s, "d").unwrap_err();
    assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    release(&mut store, &owner("b")).unwrap();
    assert_eq!(alloc(&mut store, &s, "d").unwrap(), "10.0.0.11/24");
}

#[test]
fn walks_several_ranges_of_a_set() {
    let mut s = set("10.0.0.0/24", Some("10.0.0.10"), Some("10.0.0.10"));
    s.extend(set("10.0.1.0/24", Some("10.0.1.20"), Some("10.0.1.20")));
    let mut store = MemStore::default();
    assert_eq!(alloc(&mut store, &s, "a").unwrap(), "10.0.0.10/24");
    assert_eq!(alloc(&mut store, &s, "b").unwrap(), "10.0.1.20/24");
    assert!(alloc(&mut store, &s, "c").is_err());
}

#[test]
fn requested_address() {
    let s = set("10.0.0.0/24", None, None);
    let mut store = MemStore::default();
    let ip: IpAddr = "10.0.0.77".parse().unwrap();
    let c = allocate(&mut store, 0, &s, &owner("a"), Some(ip)).unwrap();
    assert_eq!(c.address.to_string(), "10.0.0.77/24");
    assert_eq!(c.gateway, Some("10.0.0.1".parse().unwrap()));
    let err = allocate(&mut store, 0, &s, &owner("b"), Some(ip)).unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
    let out = "10.9.9.9".parse().unwrap();
    assert!(matches!(
        allocate(&mut store, 0, &s, &owner("b"), Some(out)),
        Err(IpamError::OutOfRange { .. })
    ));
}

#[test]
fn ipv6_range() {
    let s = set("fd00::/64", None, None);
    let mut store = MemStore::default();
    assert_eq!(alloc(&mut store, &s, "a").unwrap(), "fd00::2/64");
}

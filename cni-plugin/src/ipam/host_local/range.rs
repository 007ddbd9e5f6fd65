//! Address ranges of host-local IPAM, canonicalised as the reference does.

use std::net::IpAddr;

use ipnet::IpNet;

/// One `{subnet, rangeStart, rangeEnd, gateway}` entry, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
}

/// Ranges whose addresses are interchangeable: one address per set is allocated.
pub type RangeSet = Vec<Range>;

impl Range {
    /// Fills defaults (start = network+1, end = last usable, gateway = network+1)
    /// and checks the range lies inside the subnet.
    pub fn new(
        subnet: IpNet,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, String> {
        let subnet = subnet.trunc();
        let bits = if subnet.addr().is_ipv4() { 32 } else { 128 };
        if subnet.prefix_len() > bits - 2 {
            return Err(format!("subnet {subnet} is too small to allocate from"));
        }
        let first = next_ip(subnet.network());
        let last = match subnet {
            IpNet::V4(n) => prev_ip(IpAddr::V4(n.broadcast())),
            IpNet::V6(n) => IpAddr::V6(n.broadcast()),
        };
        let start = start.unwrap_or(first);
        let end = end.unwrap_or(last);
        for (what, ip) in [("rangeStart", start), ("rangeEnd", end)] {
            if !subnet.contains(&ip) {
                return Err(format!("{what} {ip} is not in subnet {subnet}"));
            }
        }
        if start > end {
            return Err(format!("rangeStart {start} is after rangeEnd {end}"));
        }
        let gateway = Some(gateway.unwrap_or(first));
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4() && ip >= self.start && ip <= self.end
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        self.start.is_ipv4() == other.start.is_ipv4()
            && self.start <= other.end
            && other.start <= self.end
    }
}

pub fn next_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(1).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(1).into()),
    }
}

fn prev_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_sub(1).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_sub(1).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_skip_network_and_broadcast() {
        let r = Range::new("10.0.0.0/24".parse().unwrap(), None, None, None).unwrap();
        assert_eq!(r.start, ip("10.0.0.1"));
        assert_eq!(r.end, ip("10.0.0.254"));
        assert_eq!(r.gateway, Some(ip("10.0.0.1")));
        let r6 = Range::new("fd00::/120".parse().unwrap(), None, None, None).unwrap();
        assert_eq!(r6.end, ip("fd00::ff"));
    }

    #[test]
    fn subnet_is_truncated_and_bounds_checked() {
        let r = Range::new("10.0.0.77/24".parse().unwrap(), None, None, None).unwrap();
        assert_eq!(r.subnet.to_string(), "10.0.0.0/24");
        let sub = "10.0.0.0/24".parse().unwrap();
        assert!(Range::new(sub, Some(ip("10.0.1.1")), None, None).is_err());
        assert!(Range::new(sub, Some(ip("10.0.0.9")), Some(ip("10.0.0.8")), None).is_err());
        assert!(Range::new("10.0.0.0/31".parse().unwrap(), None, None, None).is_err());
    }

    #[test]
    fn overlap() {
        let a = Range::new("10.0.0.0/24".parse().unwrap(), None, None, None).unwrap();
        let b = Range::new("10.0.0.0/25".parse().unwrap(), None, None, None).unwrap();
        let c = Range::new("10.0.1.0/24".parse().unwrap(), None, None, None).unwrap();
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&c));
    }
}

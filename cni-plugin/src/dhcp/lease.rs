//! A granted lease: what the pod is configured with and when to renew it.
//! Serializable because the daemon persists it across restarts.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::error::ReplyError;
use super::message::Reply;
use super::options::{self, decode_classless_routes, mask_prefix_len, ClasslessRoute};

/// Lease time meaning "forever" (RFC 2132 §9.2).
pub const INFINITE: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The first router of option 3, reported even when option 121 is present
    /// (and therefore decides the routes, see [`Lease::routes`]).
    pub router: Option<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Option 121; empty when absent or malformed.
    pub classless_routes: Vec<ClasslessRoute>,
    /// The server that granted the lease: renewals and RELEASE go there.
    pub server_id: Ipv4Addr,
    /// Seconds, [`INFINITE`] for a lease that never expires.
    pub lease_time: u32,
    /// Seconds after `acquired_at` to renew (T1) and to rebind (T2).
    pub t1: u32,
    pub t2: u32,
    /// Unix seconds when the REQUEST that got this lease was first sent: RFC
    /// 2131 §4.4.1 counts the lease times from then, not from the ACK.
    pub acquired_at: u64,
}

impl Lease {
    /// Builds the lease an ACK grants. `server_id` is used when the ACK lacks
    /// option 54 (the server of the OFFER, or of the lease being renewed).
    pub(super) fn from_ack(
        ack: &Reply,
        server_id: Option<Ipv4Addr>,
        acquired_at: u64,
    ) -> Result<Lease, ReplyError> {
        let o = &ack.options;
        let address = ack.yiaddr;
        if address.is_unspecified() {
            return Err(ReplyError::AddressZero);
        }
        let server_id = o
            .ipv4(options::SERVER_ID)
            .or(server_id)
            .ok_or(ReplyError::ServerIdMissing)?;
        let lease_time = o
            .u32(options::LEASE_TIME)
            .ok_or(ReplyError::LeaseTimeMissing)?;
        let prefix_len = match o
            .ipv4(options::SUBNET_MASK)
            .map(|m| (m, mask_prefix_len(m)))
        {
            Some((_, Some(len))) => len,
            mask => {
                let len = classful_prefix_len(address);
                tracing::warn!(
                    "DHCP server {server_id} gave {address} with {}: assuming /{len}",
                    match mask {
                        Some((m, _)) => format!("a non-contiguous subnet mask {m}"),
                        None => "no subnet mask".to_string(),
                    }
                );
                len
            }
        };
        let classless_routes = match o.get(options::CLASSLESS_ROUTES) {
            None => Vec::new(),
            Some(v) => decode_classless_routes(v).unwrap_or_else(|e| {
                tracing::warn!("ignoring option 121 from DHCP server {server_id}: {e}");
                Vec::new()
            }),
        };
        let (t1, t2) = renewal_times(
            lease_time,
            o.u32(options::RENEWAL_TIME),
            o.u32(options::REBINDING_TIME),
        );
        Ok(Lease {
            address,
            prefix_len,
            router: o.ipv4_list(options::ROUTER).first().copied(),
            dns_servers: o.ipv4_list(options::DNS_SERVERS),
            domain: o.text(options::DOMAIN_NAME),
            classless_routes,
            server_id,
            lease_time,
            t1,
            t2,
            acquired_at,
        })
    }

    /// The address with its prefix, as configured on the pod's interface.
    pub fn network(&self) -> Ipv4Net {
        Ipv4Net::new(self.address, self.prefix_len).expect("prefix length is at most 32")
    }

    /// The routes to install: option 121 when present — RFC 3442 §1 says a
    /// client that gets it MUST ignore the Router option — else a default
    /// route via the router.
    pub fn routes(&self) -> Vec<ClasslessRoute> {
        if !self.classless_routes.is_empty() {
            return self.classless_routes.clone();
        }
        self.router
            .map(|gw| ClasslessRoute {
                destination: Ipv4Net::default(),
                gateway: Some(gw),
            })
            .into_iter()
            .collect()
    }

    /// Unix seconds to start renewing; `None` for an infinite lease.
    pub fn renew_at(&self) -> Option<u64> {
        self.at(self.t1)
    }

    /// Unix seconds to start rebinding; `None` for an infinite lease.
    pub fn rebind_at(&self) -> Option<u64> {
        self.at(self.t2)
    }

    /// Unix seconds when the address must be given up; `None` for an infinite lease.
    pub fn expires_at(&self) -> Option<u64> {
        self.at(self.lease_time)
    }

    fn at(&self, secs: u32) -> Option<u64> {
        (self.lease_time != INFINITE).then(|| self.acquired_at + u64::from(secs))
    }
}

/// T1 and T2: the server's when they are consistent (T1 ≤ T2 ≤ lease),
/// otherwise RFC 2131 §4.4.5's defaults of 0.5 and 0.875 × the lease time.
fn renewal_times(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    if lease == INFINITE {
        return (INFINITE, INFINITE);
    }
    let default_t1 = lease / 2;
    let default_t2 = (u64::from(lease) * 7 / 8) as u32;
    let t1v = t1.unwrap_or(default_t1);
    let t2v = t2.unwrap_or(default_t2);
    if t1v <= t2v && t2v <= lease {
        (t1v, t2v)
    } else {
        (default_t1, default_t2)
    }
}

/// The pre-CIDR class of an address, for servers that send no usable mask
/// (what dhclient and systemd-networkd fall back to as well).
fn classful_prefix_len(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_times_default_and_sanity() {
        assert_eq!(renewal_times(3600, None, None), (1800, 3150));
        assert_eq!(renewal_times(3600, Some(1000), Some(2000)), (1000, 2000));
        assert_eq!(renewal_times(3600, Some(1000), None), (1000, 3150));
        // T1 after T2, or T2 after expiry: the server's values are unusable.
        assert_eq!(renewal_times(3600, Some(3200), None), (1800, 3150));
        assert_eq!(renewal_times(3600, None, Some(4000)), (1800, 3150));
        assert_eq!(
            renewal_times(INFINITE, Some(10), Some(20)),
            (INFINITE, INFINITE)
        );
        assert_eq!(renewal_times(INFINITE - 1, None, None).1, 3758096382);
    }

    #[test]
    fn classful_fallback() {
        assert_eq!(classful_prefix_len(Ipv4Addr::new(10, 1, 2, 3)), 8);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(192, 168, 1, 1)), 24);
    }
}

//! Reading the options of a received DHCP message.
//!
//! Replies are walked here rather than through `dhcproto`'s option decoder:
//! that decoder stops at the first option it cannot decode (so one malformed
//! option would hide every option after it) and accepts a partial classless
//! route list, where RFC 3442 says to ignore the whole option. Here each option
//! is read on its own and a bad one costs only itself.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub const SUBNET_MASK: u8 = 1;
pub const ROUTER: u8 = 3;
pub const DNS_SERVERS: u8 = 6;
pub const DOMAIN_NAME: u8 = 15;
pub const LEASE_TIME: u8 = 51;
pub const OVERLOAD: u8 = 52;
pub const MESSAGE_TYPE: u8 = 53;
pub const SERVER_ID: u8 = 54;
pub const MESSAGE: u8 = 56;
pub const RENEWAL_TIME: u8 = 58;
pub const REBINDING_TIME: u8 = 59;
pub const CLIENT_ID: u8 = 61;
pub const CLASSLESS_ROUTES: u8 = 121;

const PAD: u8 = 0;
const END: u8 = 255;

/// Offsets in the fixed BOOTP header (RFC 2131 figure 1).
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
const MAGIC: std::ops::Range<usize> = 236..240;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The options of one message: code → value, values of repeated codes
/// concatenated (RFC 3396, "long options").
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawOptions(BTreeMap<u8, Vec<u8>>);

impl RawOptions {
    /// Reads the options of the BOOTP message `packet` (header included), also
    /// from the `file` and `sname` fields when option 52 says they were
    /// overloaded. `None` when there is no magic cookie (plain BOOTP).
    pub fn parse(packet: &[u8]) -> Option<RawOptions> {
        if packet.get(MAGIC)? != MAGIC_COOKIE {
            return None;
        }
        let mut opts = RawOptions::default();
        opts.walk(&packet[MAGIC.end..]);
        // RFC 3396 §5: options, then file, then sname, in that order.
        let overload = opts.u8(OVERLOAD).unwrap_or(0);
        if overload & 1 != 0 {
            opts.walk(&packet[FILE]);
        }
        if overload & 2 != 0 {
            opts.walk(&packet[SNAME]);
        }
        Some(opts)
    }

    /// Adds the TLVs of `area`; a truncated last option is dropped.
    fn walk(&mut self, mut area: &[u8]) {
        while let Some((&code, rest)) = area.split_first() {
            match code {
                PAD => area = rest,
                END => return,
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        return;
                    };
                    let Some(value) = rest.get(..usize::from(len)) else {
                        return;
                    };
                    self.0.entry(code).or_default().extend_from_slice(value);
                    area = &rest[usize::from(len)..];
                }
            }
        }
    }

    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.0.get(&code).map(Vec::as_slice)
    }

    pub fn u8(&self, code: u8) -> Option<u8> {
        match self.get(code)? {
            [b] => Some(*b),
            _ => None,
        }
    }

    pub fn u32(&self, code: u8) -> Option<u32> {
        Some(u32::from_be_bytes(self.get(code)?.try_into().ok()?))
    }

    pub fn ipv4(&self, code: u8) -> Option<Ipv4Addr> {
        let b: [u8; 4] = self.get(code)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    }

    /// A list of addresses; a length that is not a multiple of 4 makes the
    /// option invalid (empty).
    pub fn ipv4_list(&self, code: u8) -> Vec<Ipv4Addr> {
        match self.get(code) {
            Some(b) if b.len() % 4 == 0 => b
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A text option; servers sometimes NUL-terminate it, which is dropped.
    pub fn text(&self, code: u8) -> Option<String> {
        let b = self.get(code)?;
        let b = b.split(|&c| c == 0).next().unwrap_or_default();
        (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
    }
}

/// One route from option 121.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClasslessRoute {
    pub destination: Ipv4Net,
    /// `None` when the server gave 0.0.0.0: the destination is on-link.
    pub gateway: Option<Ipv4Addr>,
}

/// Why an option 121 value was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClasslessRouteError {
    #[error("empty")]
    Empty,
    #[error("prefix length {0} is over 32")]
    PrefixTooLong(u8),
    #[error("truncated after {parsed} route(s)")]
    Truncated { parsed: usize },
}

/// Decodes option 121 (RFC 3442 §3): a sequence of (width, significant
/// octets of the destination, router). Any malformed entry invalidates the
/// whole option, as the RFC asks.
pub fn decode_classless_routes(
    mut value: &[u8],
) -> Result<Vec<ClasslessRoute>, ClasslessRouteError> {
    if value.is_empty() {
        return Err(ClasslessRouteError::Empty);
    }
    let mut routes = Vec::new();
    while let Some((&width, rest)) = value.split_first() {
        if width > 32 {
            return Err(ClasslessRouteError::PrefixTooLong(width));
        }
        let significant = usize::from(width).div_ceil(8);
        if rest.len() < significant + 4 {
            return Err(ClasslessRouteError::Truncated {
                parsed: routes.len(),
            });
        }
        let mut dest = [0u8; 4];
        dest[..significant].copy_from_slice(&rest[..significant]);
        let gw: [u8; 4] = rest[significant..significant + 4]
            .try_into()
            .expect("length checked above");
        let gw = Ipv4Addr::from(gw);
        routes.push(ClasslessRoute {
            // Bits past the width may be set by a sloppy server: mask them.
            destination: Ipv4Net::new(Ipv4Addr::from(dest), width)
                .expect("width checked above")
                .trunc(),
            gateway: (!gw.is_unspecified()).then_some(gw),
        });
        value = &rest[significant + 4..];
    }
    Ok(routes)
}

/// The prefix length of a subnet mask, `None` unless its ones are contiguous.
pub fn mask_prefix_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_with(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(options);
        p
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn walks_pads_and_stops_at_end() {
        let p = packet_with(&[
            0, 0, 53, 1, 2, 0, 1, 4, 255, 255, 255, 0, 255, 3, 4, 1, 1, 1, 1,
        ]);
        let o = RawOptions::parse(&p).unwrap();
        assert_eq!(o.u8(MESSAGE_TYPE), Some(2));
        assert_eq!(o.ipv4(SUBNET_MASK), Some(ip("255.255.255.0")));
        assert_eq!(o.get(ROUTER), None, "options after END are not read");
    }

    #[test]
    fn concatenates_repeated_options() {
        let p = packet_with(&[6, 4, 10, 0, 0, 1, 53, 1, 5, 6, 4, 10, 0, 0, 2, 255]);
        let o = RawOptions::parse(&p).unwrap();
        assert_eq!(
            o.ipv4_list(DNS_SERVERS),
            vec![ip("10.0.0.1"), ip("10.0.0.2")]
        );
    }

    #[test]
    fn truncated_last_option_is_dropped_but_earlier_ones_kept() {
        let p = packet_with(&[53, 1, 5, 3, 8, 10, 0, 0]);
        let o = RawOptions::parse(&p).unwrap();
        assert_eq!(o.u8(MESSAGE_TYPE), Some(5));
        assert_eq!(o.get(ROUTER), None);
    }

    #[test]
    fn reads_overloaded_file_and_sname() {
        let mut p = packet_with(&[52, 1, 3, 53, 1, 2, 255]);
        p[FILE.start..FILE.start + 7].copy_from_slice(&[54, 4, 10, 0, 0, 9, 255]);
        p[SNAME.start..SNAME.start + 7].copy_from_slice(&[15, 4, b'l', b'a', b'n', 0, 255]);
        let o = RawOptions::parse(&p).unwrap();
        assert_eq!(o.ipv4(SERVER_ID), Some(ip("10.0.0.9")));
        assert_eq!(o.text(DOMAIN_NAME).as_deref(), Some("lan"));
    }

    #[test]
    fn without_magic_cookie_there_are_no_options() {
        assert_eq!(RawOptions::parse(&[0u8; 300]), None);
        assert_eq!(RawOptions::parse(&[0u8; 100]), None);
    }

    #[test]
    fn wrong_lengths_make_typed_reads_fail() {
        let p = packet_with(&[1, 3, 255, 255, 255, 51, 2, 0, 1, 6, 5, 1, 2, 3, 4, 5, 255]);
        let o = RawOptions::parse(&p).unwrap();
        assert_eq!(o.ipv4(SUBNET_MASK), None);
        assert_eq!(o.u32(LEASE_TIME), None);
        assert!(o.ipv4_list(DNS_SERVERS).is_empty());
    }

    #[test]
    fn classless_routes_of_every_width_class() {
        let v = [
            0, 10, 0, 0, 1, // default via 10.0.0.1
            32, 192, 0, 2, 7, 0, 0, 0, 0, // host route, on-link
            20, 172, 16, 32, 10, 0, 0, 254, // /20 takes 3 octets
            9, 10, 128, 10, 0, 0, 253, // /9 takes 2 octets
        ];
        assert_eq!(
            decode_classless_routes(&v).unwrap(),
            vec![
                ClasslessRoute {
                    destination: net("0.0.0.0/0"),
                    gateway: Some(ip("10.0.0.1"))
                },
                ClasslessRoute {
                    destination: net("192.0.2.7/32"),
                    gateway: None
                },
                ClasslessRoute {
                    destination: net("172.16.32.0/20"),
                    gateway: Some(ip("10.0.0.254"))
                },
                ClasslessRoute {
                    destination: net("10.128.0.0/9"),
                    gateway: Some(ip("10.0.0.253"))
                },
            ]
        );
    }

    #[test]
    fn classless_route_host_bits_past_the_width_are_masked() {
        let v = [20, 172, 16, 47, 10, 0, 0, 1];
        assert_eq!(
            decode_classless_routes(&v).unwrap()[0].destination,
            net("172.16.32.0/20")
        );
    }

    #[test]
    fn malformed_classless_routes_invalidate_the_whole_option() {
        use ClasslessRouteError::*;
        assert_eq!(decode_classless_routes(&[]), Err(Empty));
        assert_eq!(
            decode_classless_routes(&[0, 10, 0, 0, 1, 33, 1, 2, 3, 4, 5, 10, 0, 0, 1]),
            Err(PrefixTooLong(33))
        );
        assert_eq!(
            decode_classless_routes(&[0, 10, 0, 0, 1, 24, 10, 1, 2, 10, 0, 0]),
            Err(Truncated { parsed: 1 })
        );
        assert_eq!(decode_classless_routes(&[8]), Err(Truncated { parsed: 0 }));
    }

    #[test]
    fn mask_prefix_lengths() {
        assert_eq!(mask_prefix_len(ip("255.255.255.0")), Some(24));
        assert_eq!(mask_prefix_len(ip("255.255.240.0")), Some(20));
        assert_eq!(mask_prefix_len(ip("255.255.255.255")), Some(32));
        assert_eq!(mask_prefix_len(ip("0.0.0.0")), Some(0));
        assert_eq!(mask_prefix_len(ip("255.0.255.0")), None);
        assert_eq!(mask_prefix_len(ip("0.0.0.255")), None);
    }
}

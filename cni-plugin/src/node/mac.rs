//! MAC addresses: one type in the code ([`Mac`]), one text form on the
//! wire, in files and in messages (`0a:58:0a:f4:01:02`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Ethernet address. Serializes as its text form; lease records and the
/// daemon's requests keep the array of octets they always had
/// ([`octets`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub const fn new(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// A link address of 6 octets (netlink's `IFLA_ADDRESS` of an Ethernet
    /// link); none for other lengths.
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        bytes.try_into().ok().map(Mac)
    }

    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A pod's `mac` (config, `CNI_ARGS`): any case, and not a group address.
    pub fn unicast(s: &str) -> Result<Mac, String> {
        let mac: Mac = s.parse()?;
        if mac.is_multicast() {
            return Err(format!("{s:?} is a multicast address"));
        }
        Ok(mac)
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }
}

impl AsRef<[u8]> for Mac {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Mac {
    type Err = String;

    /// Six `:`-separated pairs of hex digits, any case.
    fn from_str(s: &str) -> Result<Mac, String> {
        let bad = || format!("{s:?} is not a MAC address");
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let part = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(Mac(mac)),
        }
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&colon_hex(&self.0))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "octets")]`: the JSON array of six numbers that lease
/// files and the daemon's wire format have always held.
pub mod octets {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Mac;

    pub fn serialize<S: Serializer>(mac: &Mac, s: S) -> Result<S::Ok, S::Error> {
        mac.0.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        <[u8; 6]>::deserialize(d).map(Mac)
    }
}

/// The one colon-hex formatter: lower-case hex bytes joined by `:` (a MAC,
/// or a DHCP client identifier of any length).
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::{colon_hex, Mac};

    #[test]
    fn mac_text_round_trips() {
        let mac = Mac::unicast("0a:58:0A:f4:01:02").unwrap();
        assert_eq!(mac.to_string(), "0a:58:0a:f4:01:02");
        assert_eq!(mac.octets(), [0x0a, 0x58, 0x0a, 0xf4, 1, 2]);
        for bad in [
            "0a:58:0a:f4:01",
            "0a:58:0a:f4:01:02:03",
            "0a:58:0a:f4:1:002",
            "zz:00:00:00:00:00",
            "",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert!(Mac::unicast("01:00:5e:00:00:01")
            .unwrap_err()
            .contains("multicast"));
        assert_eq!("FF:ff:ff:ff:ff:ff".parse(), Ok(Mac::BROADCAST));
        assert_eq!(colon_hex(&[1, 0xab]), "01:ab");
        assert_eq!(Mac::from_slice(&[1, 2, 3]), None);
    }

    #[test]
    fn serializes_as_text_or_as_the_old_octets() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Both {
            text: Mac,
            #[serde(with = "super::octets")]
            old: Mac,
        }
        let json = r#"{"text":"02:00:00:00:00:01","old":[2,0,0,0,0,1]}"#;
        let both: Both = serde_json::from_str(json).unwrap();
        assert_eq!(both.text, both.old);
        assert_eq!(serde_json::to_string(&both).unwrap(), json);
    }
}

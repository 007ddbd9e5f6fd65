//! CNI spec versions and what each one allows.

use std::fmt;

use super::error::{Error, Result};

/// Every version a runtime may send, oldest first.
pub const SUPPORTED: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The version lanbridge speaks natively (VERSION's `cniVersion`).
pub const CURRENT: &str = "1.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u8, u8, u8);

impl Version {
    pub const V0_4_0: Version = Version(0, 4, 0);
    pub const V1_0_0: Version = Version(1, 0, 0);
    pub const V1_1_0: Version = Version(1, 1, 0);

    /// Parses a version the plugin supports; anything else is error code 1.
    pub fn parse(s: &str) -> Result<Version> {
        let unsupported = || Error::IncompatibleVersion {
            version: s.to_string(),
            supported: SUPPORTED.join(", "),
        };
        if !SUPPORTED.contains(&s) {
            return Err(unsupported());
        }
        let mut parts = s.split('.').map(|p| p.parse::<u8>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok(Version(a, b, c)),
            _ => Err(unsupported()),
        }
    }

    /// Results before 0.3.0 use the `ip4`/`ip6` layout.
    pub fn is_legacy(self) -> bool {
        self < Version(0, 3, 0)
    }

    /// 0.3.x and 0.4.0 tag each IP with `"version"`.
    pub fn tags_ip_version(self) -> bool {
        !self.is_legacy() && self < Self::V1_0_0
    }

    /// Fails unless `self` is at least `needs` (CHECK, GC, STATUS came later).
    pub fn require(self, command: &'static str, needs: Version) -> Result<()> {
        if self >= needs {
            return Ok(());
        }
        Err(Error::CommandNotInVersion {
            command,
            version: self.to_string(),
            needs: match needs {
                Self::V0_4_0 => "0.4.0",
                Self::V1_0_0 => "1.0.0",
                _ => "1.1.0",
            },
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_version() {
        for v in SUPPORTED {
            assert_eq!(Version::parse(v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn rejects_unknown_versions_with_code_1() {
        let err = Version::parse("9.9.9").unwrap_err();
        assert_eq!(err.code(), 1);
        assert!(err.to_string().contains("9.9.9"));
    }

    #[test]
    fn ordering_and_layouts() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("0.2.0").is_legacy());
        assert!(!v("0.3.0").is_legacy());
        assert!(v("0.4.0").tags_ip_version());
        assert!(!v("1.0.0").tags_ip_version());
        assert!(v("0.3.1").require("CHECK", Version::V0_4_0).is_err());
        assert!(v("1.1.0").require("GC", Version::V1_1_0).is_ok());
    }
}

//! Reads a resolv.conf into the result's `dns` (host-local's `resolvConf`).

use std::path::Path;

use super::{IpamError, Result};
use crate::cni::Dns;

pub fn read(path: &Path) -> Result<Dns> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| IpamError::io(format!("reading resolvConf {}", path.display()), e))?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.map(str::to_string)),
            Some("domain") => dns.domain = words.next().unwrap_or_default().to_string(),
            Some("search") => dns.search = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_four_keys() {
        let dns = super::parse(
            "# comment\nnameserver 10.0.0.10\nnameserver 1.1.1.1\ndomain cluster.local\nsearch a.b c.d\noptions ndots:5\n",
        );
        assert_eq!(dns.nameservers, ["10.0.0.10", "1.1.1.1"]);
        assert_eq!(dns.domain, "cluster.local");
        assert_eq!(dns.search, ["a.b", "c.d"]);
        assert_eq!(dns.options, ["ndots:5"]);
    }
}

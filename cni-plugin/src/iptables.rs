//! Running iptables / ip6tables (Debian's are the nft-backed ones) with the
//! xtables lock, and removing exactly the rules lanbridge tagged.

use std::process::Command;

use ipnet::IpNet;

use crate::cni::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// The comment lanbridge puts on an attachment's rules: no spaces, so
/// `-S` prints it unquoted and a rule reads back as plain words.
pub fn comment(network: &str, container_id: &str) -> String {
    format!("lanbridge:{network}:{container_id}")
}

pub fn run(family: Family, table: &str, args: &[&str]) -> Result<String> {
    let tool = family.tool();
    let out = Command::new(tool)
        .arg("-w")
        .args(["-t", table])
        .args(args)
        .output()
        .map_err(|e| Error::io(format!("running {tool}"), e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(Error::Firewall {
        tool,
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Creates `chain` unless it exists (racing plugin runs both see it missing:
/// the loser's "already exists" is fine).
pub fn ensure_chain(family: Family, table: &str, chain: &str) -> Result<()> {
    if run(family, table, &["-S", chain]).is_ok() {
        return Ok(());
    }
    match run(family, table, &["-N", chain]) {
        Err(Error::Firewall { stderr, .. }) if stderr.contains("exists") => Ok(()),
        other => other.map(drop),
    }
}

/// Appends `rule` to `chain` unless an identical rule is there.
pub fn ensure_rule(family: Family, table: &str, chain: &str, rule: &[&str]) -> Result<()> {
    if run(family, table, &[&["-C", chain], rule].concat()).is_ok() {
        return Ok(());
    }
    run(family, table, &[&["-A", chain], rule].concat()).map(drop)
}

/// Deletes every rule of `chain` containing the word `word` (a chain name or
/// a comment); a missing chain or table has none.
pub fn delete_rules_with(family: Family, table: &str, chain: &str, word: &str) -> Result<()> {
    let Ok(listing) = run(family, table, &["-S", chain]) else {
        return Ok(());
    };
    for line in listing.lines().filter(|l| {
        l.starts_with("-A ") && l.split_whitespace().any(|w| w.trim_matches('"') == word)
    }) {
        let mut args: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"'))
            .collect();
        args[0] = "-D";
        run(family, table, &args)?;
    }
    Ok(())
}

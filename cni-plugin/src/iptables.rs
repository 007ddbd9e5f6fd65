//! Running iptables / ip6tables (Debian's are the nft-backed ones) and
//! removing exactly the rules lanbridge tagged.
//!
//! Changes go through one `iptables-restore --noflush` per family and
//! command: every iptables run is a process start, and with nftables every
//! commit that deletes waits for an RCU grace period (tens of ms on a VM),
//! so an attachment's rules are read once and written in one batch.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::cni::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn restore_tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// The networks of `nets` in this family.
    pub fn select(self, nets: &[IpNet]) -> Vec<IpNet> {
        nets.iter()
            .filter(|n| Family::of(n) == self)
            .copied()
            .collect()
    }
}

pub use crate::node::naming::rule_comment as comment;

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

/// The `-A` lines of `chain` (`-S`); a missing chain or table has none.
pub fn rules(family: Family, table: &str, chain: &str) -> Vec<String> {
    run(family, table, &["-S", chain])
        .map(|listing| {
            listing
                .lines()
                .filter(|l| l.starts_with("-A "))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `-S` line contains `word` (a chain name or a comment).
pub fn mentions(rule: &str, word: &str) -> bool {
    rule.split_whitespace().any(|w| w.trim_matches('"') == word)
}

/// The `-D` line that deletes an `-A` line of `-S`.
pub fn deletion(rule: &str) -> String {
    format!("-D{}", rule.strip_prefix("-A").unwrap_or(rule))
}

/// Serializes lanbridge's read-modify-write of the firewall within one
/// network namespace (a flock on the namespace itself: nothing to create or
/// clean up, and plugins in other namespaces don't wait).
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

/// One family's changes, applied as a single `iptables-restore --noflush`.
#[derive(Default)]
pub struct Batch {
    /// (table, lines) in the order tables were first used.
    tables: Vec<(&'static str, Vec<String>)>,
}

impl Batch {
    /// Adds one restore line (`-A chain …`, `-D …`, `:chain - [0:0]`, `-X chain`).
    pub fn line(&mut self, table: &'static str, line: String) {
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, lines)) => lines.push(line),
            None => self.tables.push((table, vec![line])),
        }
    }

    /// Adds `-A chain rule…`.
    pub fn append(&mut self, table: &'static str, chain: &str, rule: &[&str]) {
        self.line(table, format!("-A {chain} {}", rule.join(" ")));
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Whether a line of the batch is exactly `line`.
    pub fn mentions(&self, line: &str) -> bool {
        self.tables
            .iter()
            .any(|(_, lines)| lines.iter().any(|l| l == line))
    }

    /// The `iptables-restore` input (what `--dry-run` shows).
    pub fn script(&self) -> String {
        let mut s = String::new();
        for (table, lines) in &self.tables {
            s += &format!("*{table}\n");
            for line in lines {
                s += line;
                s.push('\n');
            }
            s += "COMMIT\n";
        }
        s
    }

    /// Applies the batch (nothing to do when empty).
    pub fn apply(&self, family: Family) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let tool = family.restore_tool();
        let script = self.script();
        let mut child = Command::new(tool)
            .args(["-w", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("running {tool}"), e))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(script.as_bytes())
            .map_err(|e| Error::io(format!("writing to {tool}"), e))?;
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("waiting for {tool}"), e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Firewall {
            tool,
            args: script.replace('\n', "; "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_restore_script_with_a_commit_per_table() {
        let mut b = Batch::default();
        b.append("filter", "LANBRIDGE-FWD", &["-i", "lb0", "-j", "ACCEPT"]);
        b.line("nat", ":LB-X - [0:0]".into());
        b.line("filter", deletion("-A LANBRIDGE-FWD -o lb0 -j ACCEPT"));
        assert_eq!(
            b.script(),
            "*filter\n-A LANBRIDGE-FWD -i lb0 -j ACCEPT\n-D LANBRIDGE-FWD -o lb0 -j ACCEPT\nCOMMIT\n\
             *nat\n:LB-X - [0:0]\nCOMMIT\n"
        );
    }

    #[test]
    fn rules_are_matched_by_whole_words() {
        let rule = "-A POSTROUTING -s 10.0.0.2/32 -m comment --comment lanbridge:n:c1 -j LB-AB";
        assert!(mentions(rule, "lanbridge:n:c1"));
        assert!(mentions(rule, "LB-AB"));
        assert!(!mentions(rule, "lanbridge:n:c"));
        assert!(!mentions(rule, "LB-A"));
    }
}

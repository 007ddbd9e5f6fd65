//! `ipMasq`: one nat chain per attachment, jumped to from POSTROUTING for the
//! attachment's addresses. Rules carry a space-free comment naming the
//! network and container, so DEL and GC remove exactly what ADD created.

use std::process::Command;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::cni::{Error, Result};

/// The chain of one attachment (`LB-` + 20 hex: well under iptables' 28).
pub fn chain_name(network: &str, container_id: &str) -> String {
    let digest = Sha256::digest(format!("{network}/{container_id}"));
    format!("LB-{}", &hex::encode(digest)[..20].to_uppercase())
}

fn comment(network: &str, container_id: &str) -> String {
    format!("lanbridge:{network}:{container_id}")
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn multicast(self) -> &'static str {
        match self {
            Family::V4 => "224.0.0.0/4",
            Family::V6 => "ff00::/8",
        }
    }

    fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

fn run(family: Family, args: &[&str]) -> Result<String> {
    let tool = family.tool();
    let out = Command::new(tool)
        .arg("-w")
        .args(["-t", "nat"])
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

/// Masquerades traffic from `ips` leaving their own subnets. Idempotent.
pub fn setup(network: &str, container_id: &str, ips: &[IpNet]) -> Result<()> {
    let chain = chain_name(network, container_id);
    let comment = comment(network, container_id);
    for family in [Family::V4, Family::V6] {
        let mine: Vec<&IpNet> = ips
            .iter()
            .filter(|n| {
                matches!(
                    (Family::of(n), family),
                    (Family::V4, Family::V4) | (Family::V6, Family::V6)
                )
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        if run(family, &["-S", &chain]).is_err() {
            run(family, &["-N", &chain])?;
        }
        run(family, &["-F", &chain])?;
        for net in &mine {
            let subnet = net.trunc().to_string();
            run(
                family,
                &[
                    "-A",
                    &chain,
                    "-d",
                    &subnet,
                    "-j",
                    "ACCEPT",
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                ],
            )?;
        }
        run(
            family,
            &[
                "-A",
                &chain,
                "!",
                "-d",
                family.multicast(),
                "-j",
                "MASQUERADE",
                "-m",
                "comment",
                "--comment",
                &comment,
            ],
        )?;
        for net in &mine {
            let src = net.addr().to_string();
            let rule = [
                "-s",
                &src,
                "-j",
                &chain,
                "-m",
                "comment",
                "--comment",
                &comment,
            ];
            if run(family, &[&["-C", "POSTROUTING"], &rule[..]].concat()).is_err() {
                run(family, &[&["-A", "POSTROUTING"], &rule[..]].concat())?;
            }
        }
    }
    Ok(())
}

/// Removes the attachment's POSTROUTING jumps and its chain; missing ones are fine.
pub fn teardown(network: &str, container_id: &str) -> Result<()> {
    let chain = chain_name(network, container_id);
    for family in [Family::V4, Family::V6] {
        let listing = match run(family, &["-S", "POSTROUTING"]) {
            Ok(l) => l,
            // No nat table for this family (e.g. no ip6tables): nothing of ours there.
            Err(_) => continue,
        };
        for line in listing
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == chain))
        {
            let mut args: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            args[0] = "-D";
            run(family, &args)?;
        }
        if run(family, &["-S", &chain]).is_ok() {
            run(family, &["-F", &chain])?;
            run(family, &["-X", &chain])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_names_are_stable_and_short() {
        let a = super::chain_name("net", "c1");
        assert_eq!(a, super::chain_name("net", "c1"));
        assert_ne!(a, super::chain_name("net", "c2"));
        assert!(a.len() <= 28 && a.starts_with("LB-"));
    }
}

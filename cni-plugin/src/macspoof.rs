//! `macspoofchk`: frames entering the bridge from a pod's port must carry the
//! pod's MAC. As in the reference plugin this is an nftables bridge-family
//! rule per port; lanbridge keeps them in its own table, one chain per port,
//! so DEL removes exactly that chain and the jump to it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::cni::{Error, Result};
use crate::node::mac::format_mac;

const TABLE: &str = "lanbridge";

fn chain(host_veth: &str) -> String {
    format!("mac-spoof-{host_veth}")
}

fn nft(script: &str) -> Result<String> {
    let mut child = Command::new("nft")
        .args(["-a", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("running nft (package nftables)", e))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .map_err(|e| Error::io("writing to nft", e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for nft", e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(Error::Firewall {
        tool: "nft",
        args: script.lines().next().unwrap_or_default().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Drops frames from `host_veth` whose source MAC is not `mac`.
pub fn setup(host_veth: &str, mac: &[u8]) -> Result<()> {
    let chain = chain(host_veth);
    let mac = format_mac(mac);
    nft(&format!(
        "table bridge {TABLE} {{\n\
           chain prerouting {{ type filter hook prerouting priority -300; policy accept; }}\n\
         }}\n\
         add chain bridge {TABLE} {chain}\n\
         flush chain bridge {TABLE} {chain}\n\
         add rule bridge {TABLE} {chain} ether saddr != {mac} drop\n\
         add rule bridge {TABLE} prerouting iifname \"{host_veth}\" jump {chain}\n"
    ))
    .map(drop)
}

/// The nft script removing lanbridge's table when no port's jump is left in
/// it (`None`: nothing to remove).
pub fn table_removal() -> Option<String> {
    let listing = nft(&format!("list chain bridge {TABLE} prerouting\n")).ok()?;
    if listing.contains(" jump ") {
        return None;
    }
    Some(format!("delete table bridge {TABLE}\n"))
}

/// Runs a script [`table_removal`] made.
pub fn apply(script: &str) -> Result<()> {
    nft(script).map(drop)
}

/// Removes the port's chain and jump; a port without them is fine.
pub fn teardown(host_veth: &str) -> Result<()> {
    let chain = chain(host_veth);
    let listing = match nft(&format!("list chain bridge {TABLE} prerouting\n")) {
        Ok(l) => l,
        // No table: nothing of ours. Missing nft: nothing could have been set up.
        Err(_) => return Ok(()),
    };
    let jump = format!("jump {chain} ");
    let mut script = String::new();
    for line in listing.lines().filter(|l| l.contains(&jump)) {
        if let Some(handle) = line
            .rsplit("# handle ")
            .next()
            .filter(|h| h.trim().parse::<u64>().is_ok())
        {
            script += &format!(
                "delete rule bridge {TABLE} prerouting handle {}\n",
                handle.trim()
            );
        }
    }
    if nft(&format!("list chain bridge {TABLE} {chain}\n")).is_ok() {
        script += &format!("delete chain bridge {TABLE} {chain}\n");
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&script).map(drop)
}

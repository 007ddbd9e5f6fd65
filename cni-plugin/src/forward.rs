//! The host stack forwards a routed pod's traffic (subnet mode with a
//! gateway; in lan mode what the fast path leaves to it: service and hostPort
//! NAT, or everything with `fastPath` off) even under `iptables -P FORWARD
//! DROP` (Docker's default). Per pod, two ACCEPT rules in lanbridge's own
//! chain, matching the pod's /32 on the bridge: nothing else on the host is
//! opened.

use std::net::Ipv4Addr;

use crate::cni::Result;
use crate::iptables::{comment, delete_rules_with, ensure_chain, ensure_rule, run, Family};

pub const CHAIN: &str = "LANBRIDGE-FWD";
const TABLE: &str = "filter";

pub fn setup(network: &str, container_id: &str, bridge: &str, ips: &[Ipv4Addr]) -> Result<()> {
    ensure_chain(Family::V4, TABLE, CHAIN)?;
    // First in FORWARD, so a DROP policy or an earlier REJECT cannot hide it.
    if run(Family::V4, TABLE, &["-C", "FORWARD", "-j", CHAIN]).is_err() {
        run(Family::V4, TABLE, &["-I", "FORWARD", "1", "-j", CHAIN])?;
    }
    let comment = comment(network, container_id);
    for ip in ips {
        let host = format!("{ip}/32");
        for (dir, addr) in [("-i", "-s"), ("-o", "-d")] {
            let rule = [
                dir,
                bridge,
                addr,
                &host,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "ACCEPT",
            ];
            ensure_rule(Family::V4, TABLE, CHAIN, &rule)?;
        }
    }
    Ok(())
}

/// Removes the attachment's rules; the chain stays for the other pods.
pub fn teardown(network: &str, container_id: &str) -> Result<()> {
    delete_rules_with(Family::V4, TABLE, CHAIN, &comment(network, container_id))
}

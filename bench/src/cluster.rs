//! Pod → pod on another node (issue 5), on the testbed's two-node pairs
//! ([`lanbridge_tests::testbed::TwoNodes`]): before measuring, each remote
//! pair must reach each other both ways, and each receiving pod must see the
//! sender's pod address (no NAT).

use lanbridge_tests::netns::Netns;
use lanbridge_tests::probe::{udp_ask, PeerServer};
use serde::{Deserialize, Serialize};

use crate::traffic::Setup;
/// UDP port of the source-address check.
const SOURCE_PORT: u16 = 7009;

/// What a remote pod saw as the source of a datagram from a pod on another
/// node: the sender's own address when nothing NATs it on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceSeen {
    pub setup: String,
    /// The sending pod's address.
    pub sender: String,
    /// The receiving pod's address.
    pub receiver: String,
    /// The source address `recv_from` returned; `None` when nothing arrived.
    pub seen: Option<String>,
}

impl SourceSeen {
    pub fn ok(&self) -> bool {
        self.seen.as_deref() == Some(self.sender.as_str())
    }
}

/// Checks a setup's remote pair before it is measured: pings both ways and
/// the source address each side receives. Returns the errors (empty when
/// everything holds) and the source addresses seen.
pub fn check_remote(s: &Setup) -> (Vec<String>, Vec<SourceSeen>) {
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    let Some((far, far_ip)) = &s.remote else {
        return (errors, seen);
    };
    for (from, from_ip, to, to_ip) in [(s.a, &s.a_ip, *far, far_ip), (*far, far_ip, s.a, &s.a_ip)] {
        if !from.ping(to_ip) {
            errors.push(format!(
                "{}: {from_ip} cannot reach {to_ip} on the other node",
                s.key
            ));
            continue;
        }
        let check = SourceSeen {
            setup: s.key.to_string(),
            sender: from_ip.clone(),
            receiver: to_ip.clone(),
            seen: source_seen(from, to, to_ip),
        };
        if !check.ok() {
            errors.push(format!(
                "{}: {to_ip} received {from_ip}'s datagram from {} (NAT on the way?)",
                s.key,
                check.seen.as_deref().unwrap_or("nowhere: nothing arrived")
            ));
        }
        seen.push(check);
    }
    (errors, seen)
}

/// The source address `to_ip` (a socket in `to`) sees on a UDP datagram from `from`.
fn source_seen(from: &Netns, to: &Netns, to_ip: &str) -> Option<String> {
    let server = PeerServer::udp(to, SOURCE_PORT);
    udp_ask(from, &format!("{to_ip}:{SOURCE_PORT}"));
    server.seen().first().map(|a| a.ip().to_string())
}

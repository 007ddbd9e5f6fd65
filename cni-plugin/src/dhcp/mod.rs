//! DHCPv4 client protocol engine used by the daemon to lease pod addresses
//! from the LAN's server: messages (RFC 2131/2132/3442/3396), sockets inside
//! the pod's namespace, and the acquire / renew / rebind / release / decline
//! exchanges. The daemon owns the timers and persistence.

// Temporary, until the daemon uses all of it (today: `decline` and the
// `Phase` / `ClasslessRoute` re-exports are not): the lead removes it.
#![allow(dead_code, unused_imports)]

mod backoff;
mod client;
mod error;
mod frame;
mod lease;
pub mod message;
mod options;
mod socket;
#[cfg(test)]
mod testnet;

pub use client::{acquire, decline, rebind, release, renew, Params};
pub use error::{DhcpError, Phase};
pub use lease::Lease;
pub use options::ClasslessRoute;
pub use socket::DhcpSocket;

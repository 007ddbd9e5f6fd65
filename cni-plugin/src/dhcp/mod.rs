//! DHCPv4 client protocol engine used by the daemon to lease pod addresses
//! from the LAN's server: messages (RFC 2131/2132/3442/3396), sockets inside
//! the pod's namespace, the acquire / renew / rebind / release exchanges,
//! and ARP probing (RFC 5227) with DHCPDECLINE of addresses found in use.
//! The daemon owns the timers and persistence.

mod arp;
mod backoff;
mod client;
mod error;
mod frame;
mod lease;
pub mod message;
mod options;
pub mod protocol;
mod socket;
pub mod store;

pub use arp::PROBE_TIME;
pub use client::{acquire, rebind, release, renew};
pub use error::{DhcpError, Phase, RecordError};
pub use lease::Lease;
pub use message::{ClientOptions, Params};
pub use socket::{DhcpSocket, UnicastSocket};

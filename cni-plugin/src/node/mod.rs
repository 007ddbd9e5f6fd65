//! Host plumbing that knows nothing of CNI: namespaces, sysctls, netlink, netfilter,
//! the names lanbridge gives node objects, and the teardown rule.

pub mod error;
pub mod firewall;
pub mod gone;
pub mod mac;
pub mod naming;
pub mod netlink;
pub mod netns;
pub mod reaper;
pub mod scope;
pub mod sysctl;

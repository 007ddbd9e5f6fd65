//! Host plumbing that knows nothing of CNI: namespaces, sysctls, netlink,
//! the names lanbridge gives node objects, and the teardown rule.

pub mod gone;
pub mod naming;
pub mod netlink;
pub mod netns;
pub mod scope;
pub mod sysctl;

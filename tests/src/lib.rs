//! Test harness for lanbridge: network-namespace topologies (a LAN, nodes,
//! pods), a CNI plugin runner, a miniature conflist runtime, connectivity
//! probes and the bench's testbed. Nothing here touches the machine's own namespace.

pub mod background;
pub mod binary;
pub mod bpftool;
pub mod cleanup;
pub mod cluster;
pub mod cni;
pub mod containerd;
pub mod daemon;
pub mod dhcp_server;
pub mod fixture;
pub mod flows;
pub mod frames6;
pub mod lan;
pub mod netns;
pub mod podman;
pub mod probe;
pub mod process;
pub mod result;
pub mod runtime;
pub mod testbed;
pub mod topology;

pub use fixture::{Flavor, World};
pub use netns::{require_root, Netns};

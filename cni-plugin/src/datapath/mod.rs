//! The eBPF datapath: the programs' object, and (later) loading, pinning and
//! maps.

pub mod object;

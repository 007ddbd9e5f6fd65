//! Names and layouts shared by the eBPF programs (`lanbridge-ebpf`) and the
//! loader in the `lanbridge` binary. `bpftool` shows these names, so each is
//! at most 15 bytes (the kernel's BPF_OBJ_NAME_LEN - 1).
#![no_std]

/// TC ingress on a pod's host-side veth: packets leaving the pod.
pub const PROG_FROM_POD: &str = "lb_from_pod";
/// TC ingress on the uplink.
pub const PROG_FROM_UPLINK: &str = "lb_from_uplink";
/// TC egress on a pod's host-side veth.
pub const PROG_TO_POD: &str = "lb_to_pod";

/// Port ifindex -> pod endpoint (MAC, IPs, flags).
pub const MAP_ENDPOINTS: &str = "lb_endpoints";
/// Pod MAC -> port.
pub const MAP_BY_MAC: &str = "lb_by_mac";
/// Pod IP -> port.
pub const MAP_BY_IP: &str = "lb_by_ip";
/// Per-network settings.
pub const MAP_CONFIG: &str = "lb_config";
/// Per-CPU packet counters, indexed by [`StatReason`].
pub const MAP_STATS: &str = "lb_stats";

/// Index of a counter in the `lb_stats` per-CPU array (each slot a `u64`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatReason {
    /// Packets seen by `lb_from_pod`.
    FromPodSeen = 0,
}

impl StatReason {
    /// Number of slots in `lb_stats`.
    pub const COUNT: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_bpf_obj_name_len() {
        for name in [
            PROG_FROM_POD,
            PROG_FROM_UPLINK,
            PROG_TO_POD,
            MAP_ENDPOINTS,
            MAP_BY_MAC,
            MAP_BY_IP,
            MAP_CONFIG,
            MAP_STATS,
        ] {
            assert!(name.len() <= 15, "{name} is longer than 15 bytes");
        }
    }
}

//! `lb_ports`: a direct-mapped table of the ports in front of the hash maps
//! the loader keeps complete (`lb_endpoints`, `lb_stats`). Slot
//! [`port_slot`] of an ifindex holds the port that claimed it first: its
//! endpoint, and in `lb_port_stats` (per CPU) its counters of the reasons
//! below [`PORT_REASONS`]. A program finds them with array lookups, a few
//! instructions, where a hash lookup hashes the key and walks a bucket; a
//! port whose slot another live port holds (an ifindex [`PORT_SLOTS`]
//! apart) is found in the hash maps as before.

use crate::Endpoint;

/// Array of [`PORT_SLOTS`] [`Port`]s.
pub const MAP_PORTS: &str = "lb_ports";
/// Per-CPU array of [`PORT_SLOTS`] [`PortCounters`], slot by slot with
/// `lb_ports`.
pub const MAP_PORT_STATS: &str = "lb_port_stats";
/// Per-CPU array of one [`PortCounters`]: the counters of the network's
/// uplink (`lb_from_uplink` runs on it only), in place of `lb_stats`'s
/// hash lookup on every packet the node receives.
pub const MAP_UPLINK_STATS: &str = "lb_uplink_stats";
pub const PORT_SLOTS: u32 = 4096;
/// Reasons (by value) counted in a port's slot; the others in `lb_stats`.
pub const PORT_REASONS: usize = 16;

/// A port in its slot; `ifindex` 0 (no device has it): a free slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Port {
    pub ifindex: u32,
    pub ep: Endpoint,
}

/// Packets per reason (the value of a [`crate::Reason`] below
/// [`PORT_REASONS`]).
pub type PortCounters = [u64; PORT_REASONS];

#[inline(always)]
pub fn port_slot(ifindex: u32) -> u32 {
    ifindex & (PORT_SLOTS - 1)
}

/// The loader's side: the slots follow `lb_endpoints`.
#[cfg(feature = "user")]
pub mod table {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use aya::maps::{Array, MapData, MapError, PerCpuArray, PerCpuValues};
    use aya::sys::SyscallError;

    use super::{port_slot, Port, PortCounters, PORT_REASONS};
    use crate::Endpoint;

    pub type Ports = Array<MapData, Port>;
    pub type Counters = PerCpuArray<MapData, PortCounters>;

    /// Writes `port`'s endpoint into its slot when the slot is free or
    /// already the port's (a claim starts its counters at zero). Write the
    /// hash map first: a port is always in one of the two.
    pub fn put(
        ports: &mut Ports,
        counters: &mut Counters,
        port: u32,
        ep: Endpoint,
    ) -> Result<(), MapError> {
        let slot = port_slot(port);
        let held = ports.get(&slot, 0)?.ifindex;
        if held != port {
            if held != 0 {
                return Ok(());
            }
            zero(counters, slot)?;
        }
        ports.set(slot, Port { ifindex: port, ep }, 0)
    }

    /// Frees `port`'s slot, if it holds one, and returns what it counted.
    pub fn release(
        ports: &mut Ports,
        counters: &mut Counters,
        port: u32,
    ) -> Result<Option<PortCounters>, MapError> {
        let slot = port_slot(port);
        if ports.get(&slot, 0)?.ifindex != port {
            return Ok(None);
        }
        ports.set(slot, Port::default(), 0)?;
        let counted = sum(counters, slot)?;
        zero(counters, slot)?;
        Ok(Some(counted))
    }

    /// Each of `candidates` that holds its slot, with its counters summed
    /// over the CPUs. The candidates are the endpoints' ports (a port holds
    /// a slot only while it has an endpoint): a lookup per pod, not one per
    /// slot of the whole table.
    pub fn counted(
        ports: &Ports,
        counters: &Counters,
        candidates: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<(u32, PortCounters)>, MapError> {
        let mut all = Vec::new();
        for port in candidates {
            let slot = port_slot(port);
            if port != 0 && ports.get(&slot, 0)?.ifindex == port {
                all.push((port, sum(counters, slot)?));
            }
        }
        Ok(all)
    }

    /// The counters of `slot`, summed over the CPUs.
    pub fn sum(counters: &Counters, slot: u32) -> Result<PortCounters, MapError> {
        let mut total = [0u64; PORT_REASONS];
        for cpu in counters.get(&slot, 0)?.iter() {
            for (t, n) in total.iter_mut().zip(cpu) {
                *t += n;
            }
        }
        Ok(total)
    }

    fn zero(counters: &mut Counters, slot: u32) -> Result<(), MapError> {
        let failed = |call, io_error| MapError::SyscallError(SyscallError { call, io_error });
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| failed("nr_cpus", e))?;
        let zeros = PerCpuValues::try_from(vec![[0u64; PORT_REASONS]; cpus])
            .map_err(|e| failed("per-CPU values", e))?;
        counters.set(slot, zeros, 0)
    }
}

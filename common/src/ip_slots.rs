//! `lb_ip_slots`: a direct-mapped table in front of `lb_by_ip`, for the
//! fast path's question "is this destination a pod of the node?", whose
//! answer is mostly no (the LAN's hosts). Slot [`ip_slot`] of an address
//! holds the first pod address that claimed it; a later address of a held
//! slot lives in `lb_by_ip` only and marks the slot [`SLOT_SHARED`]. A
//! program reads one slot: the address there, or none and not shared
//! (absent: no hash lookup), or shared (ask `lb_by_ip`).
//!
//! The table speaks for absent addresses only once the loader filled it
//! from `lb_by_ip` and set [`SLOTS_COMPLETE`] in the header (the entry
//! after the slots): a table of another build, or one this build did not
//! fill, sends the programs to `lb_by_ip` as before.

/// Array of [`IP_SLOTS`] + 1 [`IpSlot`]s: the slots, then the header.
pub const MAP_IP_SLOTS: &str = "lb_ip_slots";
const IP_SLOT_BITS: u32 = 12;
pub const IP_SLOTS: u32 = 1 << IP_SLOT_BITS;
/// The header's index.
pub const IP_SLOTS_HEADER: u32 = IP_SLOTS;
/// The header's `flags`: the slots speak for every address of `lb_by_ip`.
pub const SLOTS_COMPLETE: u32 = 1;
/// A slot's `flags`: an address of this slot is in `lb_by_ip` only.
pub const SLOT_SHARED: u32 = 1;

/// A slot: `addr` (network byte order; 0: none) is the pod behind `port`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpSlot {
    pub addr: u32,
    pub port: u32,
    pub flags: u32,
}

/// The slot of `addr`: the top bits of a multiplicative hash (the low
/// bits of addresses in network byte order are their first octet, the
/// same for a whole LAN).
#[inline(always)]
pub fn ip_slot(addr: u32) -> u32 {
    addr.wrapping_mul(0x9e37_79b1) >> (32 - IP_SLOT_BITS)
}

impl IpSlot {
    /// What the slot of `addr` in a complete table says of it: `Some(Some
    /// (port))` the pod's port, `Some(None)` not a pod address, `None` ask
    /// `lb_by_ip`.
    #[inline(always)]
    pub fn find(&self, addr: u32) -> Option<Option<u32>> {
        if self.addr == addr && addr != 0 {
            return Some(Some(self.port));
        }
        if self.flags & SLOT_SHARED != 0 {
            return None;
        }
        Some(None)
    }
}

/// The loader's side: the slots follow `lb_by_ip`. Writers must be
/// serialised (a slot is read, then written).
#[cfg(feature = "user")]
pub mod table {
    use aya::maps::{Array, MapData, MapError};

    use super::{ip_slot, IpSlot, IP_SLOTS, IP_SLOTS_HEADER, SLOTS_COMPLETE, SLOT_SHARED};

    pub type Slots = Array<MapData, IpSlot>;

    /// Puts `addr -> port` in its slot, or marks the slot shared when
    /// another address holds it. Write `lb_by_ip` first.
    pub fn put(slots: &mut Slots, addr: u32, port: u32) -> Result<(), MapError> {
        let at = ip_slot(addr);
        let mut slot = slots.get(&at, 0)?;
        if slot.addr == 0 || slot.addr == addr {
            slot.addr = addr;
            slot.port = port;
        } else if slot.flags & SLOT_SHARED == 0 {
            slot.flags |= SLOT_SHARED;
        } else {
            return Ok(());
        }
        slots.set(at, slot, 0)
    }

    /// Frees the slot of `addr` if it holds `addr -> port` (it stays shared:
    /// other addresses of it may be in `lb_by_ip`). Before `lb_by_ip`.
    pub fn remove(slots: &mut Slots, addr: u32, port: u32) -> Result<(), MapError> {
        let at = ip_slot(addr);
        let slot = slots.get(&at, 0)?;
        if slot.addr != addr || slot.port != port {
            return Ok(());
        }
        let freed = IpSlot {
            flags: slot.flags,
            ..IpSlot::default()
        };
        slots.set(at, freed, 0)
    }

    /// Rebuilds the slots from `lb_by_ip`'s entries and marks them
    /// complete. `clear`: the slots may hold anything (another build's
    /// table, stale), and the header is cleared first, so the programs ask
    /// `lb_by_ip` meanwhile; else they are all free (a new map).
    pub fn rebuild(
        slots: &mut Slots,
        by_ip: impl IntoIterator<Item = (u32, u32)>,
        clear: bool,
    ) -> Result<(), MapError> {
        if clear {
            slots.set(IP_SLOTS_HEADER, IpSlot::default(), 0)?;
            for at in 0..IP_SLOTS {
                if slots.get(&at, 0)? != IpSlot::default() {
                    slots.set(at, IpSlot::default(), 0)?;
                }
            }
        }
        for (addr, port) in by_ip {
            put(slots, addr, port)?;
        }
        let header = IpSlot {
            flags: SLOTS_COMPLETE,
            ..IpSlot::default()
        };
        slots.set(IP_SLOTS_HEADER, header, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_answer_for_their_address_and_absent_ones() {
        let addr = u32::from_ne_bytes([10, 9, 0, 7]);
        let held = IpSlot {
            addr,
            port: 12,
            flags: 0,
        };
        assert_eq!(held.find(addr), Some(Some(12)));
        assert_eq!(held.find(addr + 1), Some(None));
        assert_eq!(IpSlot::default().find(addr), Some(None));
        // 0.0.0.0 is nobody's, even in a free slot.
        assert_eq!(IpSlot::default().find(0), Some(None));
        let shared = IpSlot {
            flags: SLOT_SHARED,
            ..held
        };
        assert_eq!(shared.find(addr), Some(Some(12)));
        assert_eq!(shared.find(addr + 1), None);
    }

    #[test]
    fn a_lans_addresses_spread_over_the_slots() {
        let mut slots: [u32; 254] = [0; 254];
        for (i, slot) in slots.iter_mut().enumerate() {
            *slot = ip_slot(u32::from_ne_bytes([192, 168, 1, i as u8 + 1]));
        }
        assert!(slots.iter().all(|s| *s < IP_SLOTS));
        slots.sort_unstable();
        assert!(slots.windows(2).filter(|w| w[0] == w[1]).count() <= 8);
    }
}

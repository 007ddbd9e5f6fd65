//! The eBPF object (`target/bpf/lanbridge.bpf.o`, from `cargo xtask
//! build-ebpf`), embedded in the binary when it was built before lanbridge,
//! and the names of the maps and programs it defines.

use lanbridge_common::{
    ip_slots::MAP_IP_SLOTS,
    port::{MAP_PORTS, MAP_PORT_STATS, MAP_UPLINK_STATS},
    prefix::MAP_PREFIXES,
    MAP_BY_IP, MAP_BY_IP6, MAP_BY_MAC, MAP_CLUSTER, MAP_CONFIG, MAP_DHCP_PORTS, MAP_ENDPOINTS,
    MAP_EVENTS, MAP_EVENT_RATE, MAP_FLOWS, MAP_FLOW_SEEN, MAP_SLOW_CIDRS, MAP_STATS, PROG_FROM_POD,
    PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK,
};

/// The maps and programs the object defines, pinned per network.
pub const MAPS: [&str; 18] = [
    MAP_ENDPOINTS,
    MAP_PORTS,
    MAP_PORT_STATS,
    MAP_UPLINK_STATS,
    MAP_BY_MAC,
    MAP_BY_IP,
    MAP_IP_SLOTS,
    MAP_BY_IP6,
    MAP_CONFIG,
    MAP_STATS,
    MAP_PREFIXES,
    MAP_SLOW_CIDRS,
    MAP_CLUSTER,
    MAP_FLOWS,
    MAP_FLOW_SEEN,
    MAP_DHCP_PORTS,
    MAP_EVENTS,
    MAP_EVENT_RATE,
];
pub const PROGRAMS: [&str; 4] = [PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK];

/// Bytes aligned to 8, as ELF parsers (aya's included) expect of an object.
#[cfg(lanbridge_ebpf_embedded)]
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

#[cfg(lanbridge_ebpf_embedded)]
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("LANBRIDGE_EBPF_OBJECT")));

/// The object's build identity: the first 8 bytes of its SHA-256, computed
/// by the build script (hashing 600 KiB took milliseconds of every ADD and
/// DEL). Pinned as the version marker that `upgrade` compares.
#[cfg(lanbridge_ebpf_embedded)]
const BUILD_ID: u64 = match u64::from_str_radix(env!("LANBRIDGE_EBPF_BUILD_ID"), 10) {
    Ok(id) => id,
    Err(_) => panic!("LANBRIDGE_EBPF_BUILD_ID is a u64"),
};

/// The embedded eBPF object, or `None` if lanbridge was built without one.
pub fn embedded_object() -> Option<&'static [u8]> {
    #[cfg(lanbridge_ebpf_embedded)]
    return Some(&OBJECT.0);
    #[cfg(not(lanbridge_ebpf_embedded))]
    None
}

/// The embedded object with its build identity.
pub fn embedded() -> Option<(&'static [u8], u64)> {
    #[cfg(lanbridge_ebpf_embedded)]
    return Some((&OBJECT.0, BUILD_ID));
    #[cfg(not(lanbridge_ebpf_embedded))]
    None
}

#[cfg(all(test, lanbridge_ebpf_embedded))]
mod tests {
    use sha2::{Digest, Sha256};

    use super::{embedded, embedded_object};

    #[test]
    fn build_id_is_the_objects_hash() {
        let (object, id) = embedded().expect("built with an object");
        let digest = Sha256::digest(object);
        assert_eq!(id, u64::from_le_bytes(digest[..8].try_into().unwrap()));
    }

    #[test]
    fn embedded_object_is_bpf_elf_with_lb_from_pod() {
        let object = embedded_object().expect("built with an object");
        assert_eq!(object.as_ptr() as usize % 8, 0, "8-byte aligned");
        assert_eq!(&object[..4], b"\x7fELF");
        // e_machine, little endian at offset 18: EM_BPF.
        assert_eq!(u16::from_le_bytes([object[18], object[19]]), 247);
        let name = b"lb_from_pod";
        assert!(object.windows(name.len()).any(|w| w == name));
    }
}

use aya_ebpf::{
    bindings::TC_ACT_OK,
    btf_maps::PerCpuArray,
    macros::{btf_map, classifier},
    programs::TcContext,
};
use lanbridge_common::{StatReason, MAP_STATS, PROG_FROM_POD};

// The aya macros take names as literals (or from the item's identifier);
// these checks keep them equal to the shared constants.
const _: () = assert!(str_eq(PROG_FROM_POD, "lb_from_pod"));
const _: () = assert!(str_eq(MAP_STATS, "lb_stats"));

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// A BTF map (`.maps` section): loadable by aya and by libbpf/bpftool alike.
#[btf_map(name = "lb_stats")]
static STATS: PerCpuArray<u64, { StatReason::COUNT as usize }> = PerCpuArray::new();

#[classifier]
pub fn lb_from_pod(ctx: TcContext) -> i32 {
    match try_lb_from_pod(ctx) {
        Ok(action) | Err(action) => action,
    }
}

fn try_lb_from_pod(_ctx: TcContext) -> Result<i32, i32> {
    count(StatReason::FromPodSeen);
    Ok(TC_ACT_OK)
}

fn count(reason: StatReason) {
    if let Some(slot) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, valid for the program's run; no other writer.
        unsafe { *slot += 1 };
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Kernel-visible license; GPL-compatible so GPL-only helpers may be used.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

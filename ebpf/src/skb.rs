//! Access to the packet and its skb: the two ways of reading it as a
//! [`Packet`], the `parse!` that tries both, and the skb fields and
//! redirect the pipelines use.

use core::arch::asm;
use core::mem::MaybeUninit;

use aya_ebpf::{helpers::bpf_redirect, programs::TcContext};
use lanbridge_common::packet::{Packet, Short};

/// `bpf_redirect` flags: 0 = the egress of the target device.
const EGRESS: u64 = 0;

#[inline(always)]
pub(crate) fn redirect(ifindex: u32) -> i32 {
    // SAFETY: a plain helper call; TC_ACT_REDIRECT, or TC_ACT_SHOT for bad
    // flags (these are constant and valid).
    unsafe { bpf_redirect(ifindex, EGRESS) as i32 }
}

#[inline(always)]
pub(crate) fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: the context the kernel passed in; `ifindex` is readable by TC
    // programs (the device the hook runs on).
    unsafe { (*ctx.skb.skb).ifindex }
}

/// A VLAN tag with a non-zero id held in the skb's metadata. On receive the
/// kernel moves the outer tag out of the frame into `vlan_tci` before TC
/// ingress runs, so a single-tagged frame shows no tag in the packet data;
/// an in-frame tag (the inner one of QinQ, or a BPF_PROG_TEST_RUN input) is
/// handled by the parser. VID 0 (priority tag) counts as untagged.
#[inline(always)]
pub(crate) fn vlan_tagged(ctx: &TcContext) -> bool {
    // SAFETY: as in `ifindex`; both fields are readable by TC programs.
    let (present, tci) = unsafe { ((*ctx.skb.skb).vlan_present, (*ctx.skb.skb).vlan_tci) };
    present != 0 && tci & 0x0fff != 0
}

/// The linear part of the skb as a [`Packet`], read in place: the fast path.
pub(crate) struct Direct<'a>(pub(crate) &'a TcContext);

impl Packet for Direct<'_> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short> {
        // Volatile: each read gets its own `data` and its own check.
        // Otherwise LLVM reuses one `data` for several reads and drops checks
        // that a later, larger one implies, which the verifier cannot follow
        // (it tracks ranges per checked pointer).
        // SAFETY: context fields readable by TC programs.
        let (start, end) = unsafe {
            let skb = self.0.skb.skb;
            (
                core::ptr::read_volatile(&raw const (*skb).data) as usize,
                core::ptr::read_volatile(&raw const (*skb).data_end) as usize,
            )
        };
        if start + off + N > end {
            return Err(Short);
        }
        // SAFETY: within [data, data_end), checked just above.
        Ok(unsafe { load(start + off) })
    }
}

/// `N` bytes at `at` in as few loads as fit: 8, 4, 2 and 1 bytes wide.
/// LLVM reads memory not known to be aligned a byte at a time (a load, a
/// shift and an or per byte, often a spill), and packet data promises no
/// alignment; a BPF load from the packet needs none (the verifier asks for
/// it only on CPUs without efficient unaligned access), so the loads are
/// written in BPF assembly, where Rust would require aligned pointers.
/// The words land in an aligned buffer: the parsers' fields are then
/// aligned loads or shifts of a register.
///
/// # Safety
/// `[at, at + N)` must be readable packet data.
#[inline(always)]
unsafe fn load<const N: usize>(at: usize) -> [u8; N] {
    #[repr(C, align(8))]
    struct Words<const N: usize>([u8; N]);
    let mut out = MaybeUninit::<Words<N>>::uninit();
    let dst = out.as_mut_ptr().cast::<u8>();
    let mut i = 0;
    // SAFETY: each load within [at, at + N) (the caller's), each store
    // within `out` at an offset aligned for its width (8-byte chunks
    // first, from an 8-aligned buffer); every byte written once.
    unsafe {
        while i + 8 <= N {
            dst.add(i).cast::<u64>().write(load_as::<8>(at + i));
            i += 8;
        }
        if i + 4 <= N {
            dst.add(i).cast::<u32>().write(load_as::<4>(at + i) as u32);
            i += 4;
        }
        if i + 2 <= N {
            dst.add(i).cast::<u16>().write(load_as::<2>(at + i) as u16);
            i += 2;
        }
        if i < N {
            dst.add(i).write(load_as::<1>(at + i) as u8);
        }
        out.assume_init().0
    }
}

/// One load of `W` bytes at `at`, whatever its alignment, zero-extended.
///
/// # Safety
/// `[at, at + W)` must be readable packet data.
#[inline(always)]
unsafe fn load_as<const W: usize>(at: usize) -> u64 {
    let v: u64;
    // SAFETY: the caller's; a load, nothing else.
    unsafe {
        match W {
            8 => asm!("{v} = *(u64 *)({at} + 0)", v = out(reg) v, at = in(reg) at,
                options(pure, readonly, nostack, preserves_flags)),
            4 => asm!("{v} = *(u32 *)({at} + 0)", v = out(reg) v, at = in(reg) at,
                options(pure, readonly, nostack, preserves_flags)),
            2 => asm!("{v} = *(u16 *)({at} + 0)", v = out(reg) v, at = in(reg) at,
                options(pure, readonly, nostack, preserves_flags)),
            _ => asm!("{v} = *(u8 *)({at} + 0)", v = out(reg) v, at = in(reg) at,
                options(pure, readonly, nostack, preserves_flags)),
        }
    }
    v
}

/// The whole skb as a [`Packet`], copied out by `bpf_skb_load_bytes`, which
/// also reaches paged data.
pub(crate) struct Loaded<'a>(pub(crate) &'a TcContext);

impl Packet for Loaded<'_> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Result<[u8; N], Short> {
        self.0.load::<[u8; N]>(off).map_err(|_| Short)
    }
}

/// Runs a parser on the linear data, and again through
/// `bpf_skb_load_bytes` when that was too short: headers in paged data (a
/// NIC that splits headers, or a pod crafting such skbs to slip past the
/// guard) are parsed, not passed blindly. `None` when the frame is really
/// too short (it then passes: nothing to act on). A macro, not a function
/// taking the parser: each instance must be inlined, and LLVM does not
/// inline through a function item passed as a value.
macro_rules! parse {
    ($ctx:expr, $parser:ident) => {
        match $parser(&$crate::skb::Direct($ctx)) {
            Ok(v) => Some(v),
            Err(lanbridge_common::packet::Short) => $parser(&$crate::skb::Loaded($ctx)).ok(),
        }
    };
}
pub(crate) use parse;

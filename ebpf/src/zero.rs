//! Zeroed stack values without the BPF `memset`. LLVM lowers `zeroed()`
//! and all-zero literals of more than a few bytes to a call of
//! compiler_builtins' `memset`, a byte loop of ~6 instructions per byte,
//! which on the fast path cost more than the rest of its work.

use core::mem::{align_of, size_of, MaybeUninit};

/// `slot` zeroed one `u32` at a time (volatile stores: LLVM does not merge
/// them back into a `memset`) and returned as a `T`.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
#[inline(always)]
pub(crate) unsafe fn zeroed<T>(slot: &mut MaybeUninit<T>) -> &mut T {
    const { assert!(align_of::<T>() >= 4 && size_of::<T>().is_multiple_of(4)) };
    let words = slot.as_mut_ptr().cast::<u32>();
    for i in 0..size_of::<T>() / 4 {
        // SAFETY: within `slot`, aligned for a `u32` (checked above).
        unsafe { words.add(i).write_volatile(0) };
    }
    // SAFETY: every byte written; all-zero is a valid `T` (the caller's).
    unsafe { slot.assume_init_mut() }
}

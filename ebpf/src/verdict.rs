//! A verdict: the TC action and the reason it is counted under, and its
//! one-register form for results of BPF subprograms.

use aya_ebpf::bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC};
use lanbridge_common::Reason;

pub(crate) type Verdict = (i32, Reason);

/// "No opinion": with TCX the next program on the hook runs (TC_ACT_OK would
/// end the chain and hide packets from, say, another network's program on
/// the same uplink); after the last one the packet goes to the stack.
pub(crate) const PASS: Verdict = (TC_ACT_UNSPEC, Reason::Passed);
/// A helper failed after the packet may have been changed.
pub(crate) const ERROR: Verdict = (TC_ACT_SHOT, Reason::DropError);

/// A verdict in one register: the TC action's bits high, the reason low.
#[inline(always)]
pub(crate) fn pack((action, reason): Verdict) -> u64 {
    (u64::from(action as u32) << 32) | reason as u64
}

#[inline(always)]
pub(crate) fn unpack(packed: u64) -> Verdict {
    // SAFETY: only [`pack`] makes these values, from a valid `Reason`.
    let reason = unsafe { core::mem::transmute::<u32, Reason>(packed as u32) };
    ((packed >> 32) as u32 as i32, reason)
}

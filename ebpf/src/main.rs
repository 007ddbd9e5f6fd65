//! lanbridge's TC programs. Built for `bpfel-unknown-none` by
//! `cargo xtask build-ebpf`; on the host this is an empty binary so that
//! `cargo build/clippy --workspace` on stable keep working.
//!
//! Layers, each importing only those below it: `programs` (the entry
//! points) → `pod`, `uplink`, `egress` (one pipeline per hook) → `dhcp`,
//! `fast` (the stages) → `flows`, `stats`, `events`, `maps`, `verdict`,
//! `skb`, `zero`.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
// Inline BPF assembly: the packet loads of `skb` (as aya-ebpf does).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod dhcp;
#[cfg(target_arch = "bpf")]
mod egress;
#[cfg(target_arch = "bpf")]
mod events;
#[cfg(target_arch = "bpf")]
mod fast;
#[cfg(target_arch = "bpf")]
mod flows;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod pod;
#[cfg(target_arch = "bpf")]
mod programs;
#[cfg(target_arch = "bpf")]
mod skb;
#[cfg(target_arch = "bpf")]
mod stats;
#[cfg(target_arch = "bpf")]
mod uplink;
#[cfg(target_arch = "bpf")]
mod verdict;
#[cfg(target_arch = "bpf")]
mod zero;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

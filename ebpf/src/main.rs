//! lanbridge's TC programs. Built for `bpfel-unknown-none` by
//! `cargo xtask build-ebpf`; on the host this is an empty binary so that
//! `cargo build/clippy --workspace` on stable keep working.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod egress;
#[cfg(target_arch = "bpf")]
mod fast;
#[cfg(target_arch = "bpf")]
mod programs;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

//! Embeds the eBPF object built by `cargo xtask build-ebpf`, when there is
//! one: sets `cfg(lanbridge_ebpf_embedded)`, `LANBRIDGE_EBPF_OBJECT` (its
//! absolute path) and `LANBRIDGE_EBPF_BUILD_ID` (its identity, hashed here
//! once rather than on every ADD and DEL) for `datapath::object`.

use std::path::Path;

use sha2::{Digest, Sha256};

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cni-plugin lives in the workspace");
    let dir = workspace.join("target/bpf");
    let object = dir.join("lanbridge.bpf.o");

    println!("cargo::rustc-check-cfg=cfg(lanbridge_ebpf_embedded)");
    // Watch the directory, not the file: cargo reruns build scripts on every
    // build while a watched path is missing, which would rebuild lanbridge
    // each time before the first `cargo xtask build-ebpf`.
    let watched = if std::fs::create_dir_all(&dir).is_ok() {
        &dir
    } else {
        &object
    };
    println!("cargo::rerun-if-changed={}", watched.display());

    if let Ok(bytes) = std::fs::read(&object) {
        println!("cargo::rustc-cfg=lanbridge_ebpf_embedded");
        println!(
            "cargo::rustc-env=LANBRIDGE_EBPF_OBJECT={}",
            object.display()
        );
        // The first 8 bytes of the SHA-256, as a little-endian u64.
        let digest = Sha256::digest(&bytes);
        let id = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        println!("cargo::rustc-env=LANBRIDGE_EBPF_BUILD_ID={id}");
    }
}

//! Embeds the eBPF object built by `cargo xtask build-ebpf`, when there is
//! one: sets `cfg(lanbridge_ebpf_embedded)` and `LANBRIDGE_EBPF_OBJECT` (its
//! absolute path) for `datapath::object`.

use std::path::Path;

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

    if object.is_file() {
        println!("cargo::rustc-cfg=lanbridge_ebpf_embedded");
        println!(
            "cargo::rustc-env=LANBRIDGE_EBPF_OBJECT={}",
            object.display()
        );
    }
}

//! Building the eBPF programs: nightly, `bpfel-unknown-none`, core rebuilt
//! from source, linked by bpf-linker (installed by scripts/setup.sh).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::status;

/// Where the object ends up; cni-plugin/build.rs embeds it from here.
pub const OBJECT: &str = "target/bpf/lanbridge.bpf.o";
const TARGET: &str = "bpfel-unknown-none";
/// A target dir of its own: the nightly build neither waits for nor
/// invalidates the stable builds in target/.
const TARGET_DIR: &str = "target/ebpf";
const RUSTFLAGS: [&str; 3] = ["-Cdebuginfo=2", "-Ccodegen-units=1", "-Clink-arg=--btf"];

/// Builds the programs (always release: a debug build fails the verifier)
/// and copies the object to [`OBJECT`] if it changed.
pub fn build(root: &Path) -> Result<()> {
    let mut cmd = nightly_cargo(root, "build");
    status(cmd.arg("--release"))?;
    let built = root
        .join(TARGET_DIR)
        .join(TARGET)
        .join("release/lanbridge-ebpf");
    let bytes = fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let object = root.join(OBJECT);
    // Rewriting an unchanged object would make cargo rebuild lanbridge.
    if fs::read(&object).ok().as_deref() != Some(&bytes[..]) {
        fs::create_dir_all(object.parent().expect("OBJECT has a parent"))?;
        fs::write(&object, &bytes).with_context(|| format!("writing {}", object.display()))?;
    }
    println!("xtask: eBPF object at {OBJECT}");
    Ok(())
}

/// Lints the programs as they are built, for the BPF target.
pub fn clippy(root: &Path) -> Result<()> {
    let mut cmd = nightly_cargo(root, "clippy");
    status(cmd.args(["--release", "--", "-D", "warnings"]))
}

/// `cargo <subcommand>` of the nightly toolchain for the eBPF crate, with an
/// environment that the caller's flags and wrappers cannot break.
fn nightly_cargo(root: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo", subcommand])
        .args(["-p", "lanbridge-ebpf", "--target", TARGET])
        .args(["-Z", "build-std=core", "--target-dir", TARGET_DIR])
        .current_dir(root)
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        // Replaces RUSTFLAGS and any configured rustflags: debug info that
        // bpf-linker turns into BTF (`--btf`), one codegen unit per crate.
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"));
    cmd
}

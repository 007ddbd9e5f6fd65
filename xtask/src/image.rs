//! The container image: a static (musl) release binary with the eBPF object
//! embedded, in an image built from `scratch` by podman, offline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::ebpf;
use crate::run::{cargo, status};

/// The target of the static binary: it runs on any host's libc, or none.
pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// The image's name; the tag is the workspace version. deploy/*.yaml name
/// it so (tests/tests/deploy.rs checks).
pub const NAME: &str = "lanbridge";
const CONTAINERFILE: &str = "deploy/Containerfile";
/// The build context: the binary alone, so nothing else of the checkout is
/// sent to the builder.
const CONTEXT: &str = "target/image";

pub fn default_tag() -> String {
    format!("{NAME}:{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the static binary, checks it, and builds the image `tag`; with
/// `archive`, also writes it there as an OCI archive (for `ctr images
/// import`, `kind load image-archive`, air-gapped nodes).
pub fn build(root: &Path, tag: &str, archive: Option<&Path>) -> Result<()> {
    let binary = static_binary(root)?;
    let context = root.join(CONTEXT);
    fs::create_dir_all(&context)?;
    let staged = context.join("lanbridge");
    fs::copy(&binary, &staged)
        .with_context(|| format!("copying {} to {}", binary.display(), staged.display()))?;
    status(
        Command::new("podman")
            .args(["build", "--pull=never", "--network=none"])
            .arg("--file")
            .arg(root.join(CONTAINERFILE))
            .args(["--label", &version_label()])
            .args(["--tag", tag])
            .arg(&context),
    )?;
    if let Some(archive) = archive {
        // podman save refuses to overwrite.
        let _ = fs::remove_file(archive);
        status(
            Command::new("podman")
                .args(["save", "--format", "oci-archive", "--output"])
                .arg(archive)
                .arg(tag),
        )?;
    }
    println!("xtask: image {tag} (podman images {tag})");
    Ok(())
}

fn version_label() -> String {
    format!(
        "org.opencontainers.image.version={}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `cargo build --release --target x86_64-unknown-linux-musl -p lanbridge`
/// after the eBPF object; fails unless the result is static and embeds it.
pub fn static_binary(root: &Path) -> Result<PathBuf> {
    ebpf::build(root)?;
    cargo(
        root,
        &["build", "--release", "--target", TARGET, "-p", "lanbridge"],
    )?;
    let binary = root.join("target").join(TARGET).join("release/lanbridge");
    let elf = fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    ensure!(
        !has_interpreter(&elf)?,
        "{} asks for a dynamic loader: not static",
        binary.display()
    );
    let out = Command::new(&binary)
        .arg("version")
        .output()
        .with_context(|| format!("running {} version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("eBPF object: embedded") {
        bail!("{} version:\n{text}", binary.display());
    }
    print!("{text}");
    Ok(binary)
}

/// Whether a 64-bit little-endian ELF has a `PT_INTERP` program header (a
/// dynamic loader the kernel must start first). A static(-pie) binary has none.
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    ensure!(
        elf.len() >= 64 && elf[..4] == *b"\x7fELF" && elf[4] == 2 && elf[5] == 1,
        "not a 64-bit little-endian ELF"
    );
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .try_fold(false, |found, at| {
            let bytes = elf.get(at..at + 4).context("truncated program headers")?;
            Ok(found || u32::from_le_bytes(bytes.try_into()?) == PT_INTERP)
        })
}

#[cfg(test)]
mod tests {
    use super::has_interpreter;

    #[test]
    fn the_running_test_binary_is_dynamic() {
        // Built for the host's glibc: it names ld-linux.
        let me = std::fs::read("/proc/self/exe").unwrap();
        assert!(has_interpreter(&me).unwrap());
    }

    #[test]
    fn a_non_elf_is_an_error() {
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
    }
}

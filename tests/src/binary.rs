//! Where the plugin binaries are.

use std::path::{Path, PathBuf};

/// Directory of the reference plugins (Debian `containernetworking-plugins`).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// The workspace root (parent of this crate), fixed at compile time.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives inside the workspace")
        .to_path_buf()
}

/// The lanbridge binary under test: `$LANBRIDGE_BIN`, else
/// `<workspace>/target/debug/lanbridge`. Panics with a hint when missing.
pub fn lanbridge_bin() -> PathBuf {
    let path = match std::env::var_os("LANBRIDGE_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_dir().join("target/debug/lanbridge"),
    };
    assert!(
        path.is_file(),
        "lanbridge binary not found at {} — build it first (`cargo build -p lanbridge`) \
         or point LANBRIDGE_BIN at it",
        path.display()
    );
    path
}

/// The static (musl) release binary that `cargo xtask image` puts in the
/// image (`cargo xtask test` builds it too). Panics with a hint when missing.
pub fn static_lanbridge_bin() -> PathBuf {
    let path = workspace_dir().join("target/x86_64-unknown-linux-musl/release/lanbridge");
    assert!(
        path.is_file(),
        "static lanbridge binary not found at {} — build it with `cargo xtask image`",
        path.display()
    );
    path
}

/// A reference plugin by name, e.g. `bridge`, `host-local`, `portmap`.
pub fn reference_plugin(name: &str) -> PathBuf {
    let p = Path::new(REFERENCE_DIR).join(name);
    assert!(
        p.is_file(),
        "reference plugin {} missing: install the Debian package containernetworking-plugins",
        p.display()
    );
    p
}

/// Makes `<dir>/bin` holding a `lanbridge` symlink to the binary under test and
/// returns that directory (for `CNI_PATH` / podman's `cni_plugin_dirs`).
pub fn lanbridge_plugin_dir(dir: &Path) -> PathBuf {
    plugin_dir(dir, &lanbridge_bin())
}

/// Makes `<dir>/bin` holding a `lanbridge` symlink to `lanbridge` (e.g. the
/// release build the bench measures) and returns that directory.
pub fn plugin_dir(dir: &Path, lanbridge: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("mkdir {}: {e}", bin.display()));
    let link = bin.join("lanbridge");
    if !link.exists() {
        std::os::unix::fs::symlink(lanbridge, &link)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }
    bin
}

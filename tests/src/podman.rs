//! Running podman 4.3 (CNI backend) inside a node namespace with all of its
//! state in a temp dir. podman runs via `nsenter --net=<node>` plus a private
//! mount namespace whose /var/lib and /dev/shm are tmpfs, so libcni's result
//! cache (/var/lib/cni/results) and libpod's SHM lock never land on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::{self, Finished};

pub const PODMAN_TIMEOUT: Duration = Duration::from_secs(120);

/// A podman configuration rooted in `dir`; removes its containers on drop.
pub struct Podman {
    dir: PathBuf,
    node: PathBuf,
}

impl Podman {
    /// Writes containers.conf, storage.conf, a busybox rootfs and `net.d/`
    /// under `dir`; plugins are searched in `plugin_dirs`.
    pub fn new(dir: &Path, node: &Netns, plugin_dirs: &[&Path]) -> Podman {
        let dirs = plugin_dirs
            .iter()
            .map(|d| format!("{:?}", d.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        write(
            &dir.join("containers.conf"),
            &format!(
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"]\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [{dirs}]\nnetwork_config_dir = {:?}\n",
                dir.join("net.d").display().to_string()
            ),
        );
        write(
            &dir.join("storage.conf"),
            &format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = {:?}\nrunroot = {:?}\n",
                dir.join("root").display().to_string(),
                dir.join("runroot").display().to_string()
            ),
        );
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "var", "run"] {
            mkdir(&rootfs.join(d));
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .unwrap_or_else(|e| panic!("copy /bin/busybox (package busybox-static): {e}"));
        mkdir(&dir.join("net.d"));
        Podman {
            dir: dir.to_path_buf(),
            node: node.path(),
        }
    }

    /// The busybox root filesystem for `--rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Installs a network config (conflist JSON) as `net.d/<name>.conflist`.
    pub fn add_network(&self, conflist: &Value) {
        let name = conflist["name"].as_str().expect("conflist name");
        write(
            &self.dir.join("net.d").join(format!("{name}.conflist")),
            &serde_json::to_string_pretty(conflist).expect("json"),
        );
    }

    /// Runs `podman <args>` in the node namespace.
    pub fn run(&self, args: &[&str]) -> Finished {
        let d = |s: &str| self.dir.join(s).display().to_string();
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.node.display()))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", "mount -t tmpfs lbt-varlib /var/lib && mount -t tmpfs lbt-shm /dev/shm && exec \"$@\"", "sh"])
            .arg("podman")
            .args(["--root", &d("root"), "--runroot", &d("runroot"), "--tmpdir", &d("tmp")])
            .args(args)
            .env("CONTAINERS_CONF", d("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d("storage.conf"));
        process::run(&mut c, None, PODMAN_TIMEOUT)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let f = self.run(&["rm", "--all", "--force", "--time", "0"]);
        if !f.success() {
            eprintln!("[podman] rm -af failed: {}", f.stderr.trim());
        }
    }
}

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

//! A private containerd 1.6 (Debian's) inside a node namespace, driven with
//! `ctr run --cni`, and an OCI image of busybox-static built here (a layer,
//! a config, a manifest, an index: no registry).
//!
//! `ctr` runs the CNI plugins itself (go-cni: configs from /etc/cni/net.d,
//! plugins from /opt/cni/bin, results cached under /var/lib/cni), and the
//! shim and runc keep their sockets and state under /run/containerd. So
//! containerd runs in a private mount namespace where those paths are temp
//! dirs or tmpfs, and every `ctr` enters that namespace and the node's:
//! nothing lands on the machine. Only the node's own lanbridge directories
//! (its scoped state, and the daemon's socket dir) are bound back in, so
//! the plugin reaches the daemon and the test sees what the plugin wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::background::Background;
use crate::netns::{scoped_defaults, Netns};
use crate::process::{self, wait_until, Finished};

const CTR_TIMEOUT: Duration = Duration::from_secs(60);
/// The snapshotter that works on any filesystem the temp dir is on.
const SNAPSHOTTER: &str = "native";

pub struct Containerd {
    dir: PathBuf,
    proc: Background,
    /// `ctr run` processes in the foreground (they run CNI DEL when the task exits).
    runs: Vec<Background>,
}

impl Containerd {
    /// Starts containerd in `node` with root, state and socket under `dir`;
    /// `plugin_dir` becomes /opt/cni/bin and `net_d` /etc/cni/net.d.
    pub fn start(dir: &Path, node: &Netns, plugin_dir: &Path, net_d: &Path) -> Containerd {
        for d in ["root", "state", "host-run", "host-state"] {
            mkdir(&dir.join(d));
        }
        // Made by the plugin and the daemon anyway, and removed with the node.
        let [_, state, run] = scoped_defaults(node.inode());
        mkdir(&state);
        mkdir(&run);
        let p = |s: &str| dir.join(s).display().to_string();
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
             [grpc]\n  address = {sock:?}\n[ttrpc]\n  address = {ttrpc:?}\n",
            root = p("root"),
            state = p("state"),
            sock = p("containerd.sock"),
            ttrpc = p("containerd.sock.ttrpc"),
        );
        write(&dir.join("config.toml"), &config);
        let script = format!(
            "set -e\n\
             mount --bind {net_d:?} /etc/cni/net.d\n\
             mount -t tmpfs lbt-opt /opt && mkdir -p /opt/cni/bin\n\
             mount --bind {plugins:?} /opt/cni/bin\n\
             mount --bind {state:?} {host_state:?}\n\
             mount -t tmpfs lbt-varlibcni /var/lib/cni && mkdir -p {state:?}\n\
             mount --bind {host_state:?} {state:?}\n\
             mount --bind {run:?} {host_run:?}\n\
             mount -t tmpfs lbt-run /run && mkdir -p {run:?}\n\
             mount --bind {host_run:?} {run:?}\n\
             exec containerd --config {config:?}\n",
            net_d = net_d.display().to_string(),
            plugins = plugin_dir.display().to_string(),
            state = state.display().to_string(),
            host_state = p("host-state"),
            run = run.display().to_string(),
            host_run = p("host-run"),
            config = p("config.toml"),
        );
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", node.path().display()))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", &script]);
        let mut proc = Background::spawn(
            &format!("containerd in {}", node.name()),
            cmd,
            &dir.join("containerd.log"),
        );
        let sock = dir.join("containerd.sock");
        let up = wait_until(Duration::from_secs(20), || {
            (sock.exists() && proc.log().contains("containerd successfully booted"))
                || !proc.running()
        });
        assert!(
            up && proc.running(),
            "containerd did not start:\n{}",
            proc.log()
        );
        Containerd {
            dir: dir.to_path_buf(),
            proc,
            runs: vec![],
        }
    }

    /// `ctr <args>` in containerd's mount namespace and the node's network one.
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let pid = self.proc.pid().expect("containerd runs").to_string();
        let mut c = Command::new("nsenter");
        c.args(["--target", &pid, "--mount", "--net", "--", "ctr"])
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args);
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Finished {
        process::run(&mut self.ctr_command(args), None, CTR_TIMEOUT)
    }

    /// `ctr <args>`, which must succeed; its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(out.success(), "ctr {args:?}: {out:?}");
        out.stdout
    }

    /// Imports an OCI archive and unpacks it for `ctr run`.
    pub fn import(&self, archive: &Path) {
        let archive = archive.display().to_string();
        self.ctr_ok(&["images", "import", "--snapshotter", SNAPSHOTTER, &archive]);
    }

    /// `ctr run --cni <image> <id> <command>` in the foreground (in the
    /// background of the test), as an operator runs it; returns once the task
    /// runs, which is after CNI ADD. Its log is `<dir>/run-<id>.log`.
    pub fn run_cni(&mut self, image: &str, id: &str, command: &[&str]) -> u32 {
        let mut args = vec!["run", "--cni", "--snapshotter", SNAPSHOTTER, image, id];
        args.extend(command);
        let log = self.dir.join(format!("run-{id}.log"));
        let mut run = Background::spawn(&format!("ctr run {id}"), self.ctr_command(&args), &log);
        let mut pid = None;
        wait_until(CTR_TIMEOUT, || {
            pid = self.task_pid(id, "RUNNING");
            pid.is_some() || !run.running()
        });
        let log_text = run.log();
        self.runs.push(run);
        pid.unwrap_or_else(|| panic!("ctr run {id} did not start its task:\n{log_text}"))
    }

    /// The host PID of task `id` while it is in `status`.
    pub fn task_pid(&self, id: &str, status: &str) -> Option<u32> {
        let out = self.ctr(&["tasks", "ls"]);
        out.stdout.lines().skip(1).find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() == 3 && cols[0] == id && cols[2] == status)
                .then(|| cols[1].parse().ok())
                .flatten()
        })
    }

    /// `ctr tasks kill -s SIGKILL <id>`, then waits for its `ctr run` to
    /// finish (CNI DEL, task delete) and removes the container.
    pub fn kill_and_remove(&mut self, id: &str) -> String {
        self.ctr_ok(&["tasks", "kill", "--signal", "SIGKILL", id]);
        let log = self.dir.join(format!("run-{id}.log"));
        let i = self
            .runs
            .iter()
            .position(|r| r.log_path() == log)
            .unwrap_or_else(|| panic!("no ctr run {id}"));
        let mut run = self.runs.remove(i);
        let done = wait_until(CTR_TIMEOUT, || !run.running());
        let text = run.log();
        assert!(done, "ctr run {id} did not end after the kill:\n{text}");
        self.ctr_ok(&["containers", "rm", id]);
        text
    }

    /// `ctr tasks exec` of `command` in task `id`.
    pub fn exec(&self, id: &str, command: &[&str]) -> Finished {
        let exec_id = format!("x{}", std::process::id());
        let mut args = vec!["tasks", "exec", "--exec-id", &exec_id, id];
        args.extend(command);
        self.ctr(&args)
    }
}

impl Drop for Containerd {
    /// Kills the tasks, lets their `ctr run` run DEL, removes the containers,
    /// then containerd (its mounts go with its namespace).
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .ctr(&["containers", "ls", "--quiet"])
            .stdout
            .lines()
            .map(str::to_string)
            .collect();
        for id in &ids {
            self.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
        }
        for run in &mut self.runs {
            wait_until(CTR_TIMEOUT, || !run.running());
            run.kill();
        }
        for id in &ids {
            self.ctr(&["tasks", "delete", "--force", id]);
            self.ctr(&["containers", "rm", id]);
        }
        self.proc.kill();
    }
}

/// Builds an OCI image archive (`oci-layout`, `index.json`, `blobs/`) of
/// busybox-static alone, named `name`, in `dir`; returns the archive's path.
pub fn busybox_image(dir: &Path, name: &str) -> PathBuf {
    let rootfs = dir.join("rootfs");
    mkdir(&rootfs.join("bin"));
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy /bin/busybox (package busybox-static): {e}"));
    let layout = dir.join("layout");
    mkdir(&layout.join("blobs/sha256"));
    let layer_tar = dir.join("layer.tar");
    tar(&rootfs, &layer_tar, &["bin"]);
    let layer = blob(&layout, &std::fs::read(&layer_tar).expect("layer"));
    let config = blob(
        &layout,
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.0]},
        })
        .to_string()
        .as_bytes(),
    );
    let manifest = blob(
        &layout,
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
        })
        .to_string()
        .as_bytes(),
    );
    let mut m = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    m["platform"] = json!({"architecture": "amd64", "os": "linux"});
    m["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(':').next(),
    });
    write(
        &layout.join("index.json"),
        &json!({"schemaVersion": 2, "manifests": [m]}).to_string(),
    );
    write(
        &layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let archive = dir.join("busybox-oci.tar");
    tar(&layout, &archive, &["oci-layout", "index.json", "blobs"]);
    archive
}

/// Writes `bytes` as a blob of `layout`: its digest (`sha256:…`) and size.
fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let out = process::run(
        &mut Command::new("sha256sum"),
        Some(bytes),
        process::DEFAULT_TIMEOUT,
    );
    assert!(out.success(), "sha256sum: {}", out.stderr);
    let hex = out
        .stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).expect("write blob");
    (format!("sha256:{hex}"), bytes.len())
}

fn descriptor(media_type: &str, (digest, size): &(String, usize)) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

fn tar(dir: &Path, archive: &Path, entries: &[&str]) {
    let mut c = Command::new("tar");
    c.arg("-C")
        .arg(dir)
        .args(["--owner=0", "--group=0", "-cf"])
        .arg(archive)
        .args(entries);
    process::run_ok(&mut c);
}

fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

//! What the numbers were measured on, and how busy the machine was.

use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub date_utc: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub load_start: String,
    pub load_end: String,
    /// Network namespaces present at start that are not ours: other test
    /// runs on the machine, whose load makes our numbers noisier.
    pub foreign_netns_start: usize,
    pub foreign_netns_max: usize,
    pub iperf3: String,
    pub dnsmasq: String,
    pub reference_plugins: String,
    pub lanbridge: String,
    /// The commit the binary was built from, and whether the plugin's
    /// sources (cni-plugin, common, ebpf) had uncommitted changes.
    #[serde(default)]
    pub lanbridge_git: String,
    pub rustc: String,
}

/// `abc1234`, or `abc1234 + uncommitted changes in cni-plugin/common/ebpf`.
fn git_state() -> String {
    let rev = out("git", &["rev-parse", "--short", "HEAD"]);
    if rev.is_empty() || rev.contains("fatal") {
        return String::new();
    }
    let status = [
        "status",
        "--porcelain",
        "--",
        "cni-plugin",
        "common",
        "ebpf",
    ];
    let dirty = !out("git", &status).is_empty();
    if dirty {
        format!("{rev} + uncommitted changes in cni-plugin/common/ebpf")
    } else {
        rev
    }
}

fn out(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            if s.trim().is_empty() {
                String::from_utf8_lossy(&o.stderr).into_owned()
            } else {
                s
            }
        })
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Namespaces in /run/netns not named with `our_prefix`.
pub fn foreign_netns(our_prefix: &str) -> usize {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with(our_prefix))
                .count()
        })
        .unwrap_or(0)
}

pub fn describe(lanbridge: &std::path::Path, our_prefix: &str) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let foreign = foreign_netns(our_prefix);
    Machine {
        date_utc: out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_default(),
        mem_total_mib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|k| k / 1024)
            .unwrap_or(0),
        kernel: out("uname", &["-sr"]),
        load_start: loadavg(),
        load_end: String::new(),
        foreign_netns_start: foreign,
        foreign_netns_max: foreign,
        iperf3: out("iperf3", &["-v"]),
        dnsmasq: out("dnsmasq", &["-v"]),
        reference_plugins: out(
            "dpkg-query",
            &[
                "-W",
                "-f",
                "${Package} ${Version}",
                "containernetworking-plugins",
            ],
        ),
        lanbridge: out(&lanbridge.display().to_string(), &["version"]),
        lanbridge_git: git_state(),
        rustc: out("rustc", &["--version"]),
    }
}

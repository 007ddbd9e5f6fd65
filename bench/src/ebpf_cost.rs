//! Section 4: what each eBPF program costs per run, from the kernel's own
//! accounting (`kernel.bpf_stats_enabled`: run_time_ns / run_cnt), under a
//! TCP stream and under small-packet load, beside an empty program (the
//! "twin", `return TCX_NEXT`) attached in front of each of lanbridge's
//! programs at the same hooks for the same load (issue 15): what the hook
//! and the kernel's accounting cost on this machine.
//!
//! `bpf_stats_enabled` is host-global: it is set only for the duration of
//! this section and put back as it was (also on panic, and on SIGINT by the
//! guard).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use lanbridge_common::{PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK};
use lanbridge_tests::lan::{counters_by_reason, inspect_with};
use lanbridge_tests::netns::Netns;
use lanbridge_tests::testbed::Net;
use serde::{Deserialize, Serialize};

use crate::bpf;
use crate::guard;
use crate::traffic;
use lanbridge_tests::process;

/// The programs a network may have pinned.
pub const PROGRAMS: [&str; 4] = [PROG_FROM_POD, PROG_FROM_UPLINK, PROG_TO_POD, PROG_TO_UPLINK];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    pub program: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

/// The name the empty twin of `program` is reported under.
pub fn twin_name(program: &str) -> String {
    format!("{TWIN_PREFIX}{program}")
}

pub const TWIN_PREFIX: &str = "empty@";

impl Cost {
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.run_time_ns as f64 / self.runs as f64)
    }
}

/// One load and what the programs did under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub load: String,
    pub mode: String,
    pub seconds: f64,
    pub programs: Vec<Cost>,
    /// Packets counted by the programs under this load, by verdict
    /// (`lb_stats` via `lanbridge inspect`): says which path they took.
    pub verdicts: BTreeMap<String, u64>,
}

impl LoadResult {
    /// Whether most packets took the eBPF fast path (a `fast_*` verdict).
    pub fn fast_path(&self) -> bool {
        let fast: u64 = self
            .verdicts
            .iter()
            .filter(|(k, _)| k.starts_with("fast"))
            .map(|(_, v)| v)
            .sum();
        let all: u64 = self.verdicts.values().sum();
        all > 0 && fast * 2 > all
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EbpfCost {
    pub loads: Vec<LoadResult>,
    pub errors: Vec<String>,
    /// kernel.bpf_stats_enabled before the section.
    pub stats_was: String,
}

/// `bpftool prog show` of the program pinned at `path`.
fn show(path: &Path) -> Option<serde_json::Value> {
    let mut c = std::process::Command::new("bpftool");
    c.args(["-j", "prog", "show", "pinned"]).arg(path);
    let out = process::run(&mut c, None, Duration::from_secs(10));
    out.success()
        .then(|| serde_json::from_str(&out.stdout).ok())?
}

/// (run_time_ns, run_cnt) of the program pinned at `path`.
fn stats(path: &Path) -> Option<(u64, u64)> {
    let j = show(path)?;
    Some((
        j["run_time_ns"].as_u64().unwrap_or(0),
        j["run_cnt"].as_u64().unwrap_or(0),
    ))
}

/// lanbridge's programs pinned under `pins` and the twins under `twins`.
fn snapshot(pins: &Path, twins: &Path) -> Vec<(String, PathBuf, (u64, u64))> {
    PROGRAMS
        .iter()
        .flat_map(|p| [(p.to_string(), pins.join(p)), (twin_name(p), twins.join(p))])
        .filter_map(|(name, path)| {
            path.exists()
                .then(|| stats(&path).map(|s| (name, path, s)))
                .flatten()
        })
        .collect()
}

/// Attaches the twin of each of lanbridge's programs pinned under `pins` in
/// front of it, at every hook of `node` where it runs; detached when the
/// returned links drop. The twins are pinned under `twins` (one per program).
fn attach_twins(node: &Path, pins: &Path, twins: &Path) -> Result<Vec<OwnedFd>> {
    let mut progs = Vec::new();
    for p in PROGRAMS {
        let id = show(&pins.join(p)).and_then(|j| j["id"].as_u64());
        if let Some(id) = id {
            progs.push((id as u32, twins.join(p)));
        }
    }
    let node = node.to_path_buf();
    std::thread::spawn(move || -> Result<Vec<OwnedFd>> {
        lanbridge_tests::netns::enter(&node);
        let mut links = Vec::new();
        for ifindex in interfaces() {
            for hook in [bpf::TCX_INGRESS, bpf::TCX_EGRESS] {
                let Ok(ids) = bpf::attached(ifindex, hook) else {
                    continue;
                };
                for (id, twin) in progs.iter().filter(|(id, _)| ids.contains(id)) {
                    let prog = bpf::empty_program(twin, hook)
                        .map_err(|e| anyhow::anyhow!("twin of program {id}: {e}"))?;
                    links.push(bpf::link_create(&prog, ifindex, hook, bpf::BPF_F_BEFORE)?);
                }
            }
        }
        Ok(links)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("attaching the empty twins panicked"))?
}

/// The ifindexes of the calling thread's namespace.
fn interfaces() -> Vec<u32> {
    let mut v = Vec::new();
    // SAFETY: if_nameindex returns an array ended by a zero entry, or null;
    // freed once read.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return v;
        }
        let mut i = list;
        while (*i).if_index != 0 {
            v.push((*i).if_index);
            i = i.add(1);
        }
        libc::if_freenameindex(list);
    }
    v
}

/// What a load sends: a TCP stream to an address (`true`: from it), or
/// 64-byte UDP datagrams to a sink at an address in a namespace.
pub enum Send<'a> {
    Tcp(&'a str, bool),
    Udp(&'a Netns, &'a str),
}

/// A load from pod `from` on lanbridge's lan-mode or subnet network `net`
/// in `node` (its pins, counters, and hooks for the twins).
pub struct Load<'a> {
    pub name: &'static str,
    pub mode: &'static str,
    pub net: &'a Net,
    pub node: &'a Netns,
    pub from: &'a Netns,
    pub send: Send<'a>,
}

impl Load<'_> {
    fn run(&self, secs: f64) -> Result<()> {
        match self.send {
            Send::Tcp(to, reverse) => traffic::iperf(self.from, to, secs, 0, reverse).map(drop),
            Send::Udp(ns, to) => traffic::blast(self.from, ns, to, secs).map(drop),
        }
    }

    /// The network's counters by verdict (summed over ports).
    fn counters(&self, lanbridge: &Path) -> BTreeMap<String, u64> {
        counters_by_reason(&inspect_with(lanbridge, self.node, self.net.name()))
    }
}

/// Restores `bpf_stats_enabled` when dropped.
struct StatsOn;

impl Drop for StatsOn {
    fn drop(&mut self) {
        guard::bpf_stats_restore();
    }
}

/// Measures each load for `seconds`; the twins are pinned under `twins`
/// (a bpffs dir), lanbridge's counters read with `lanbridge` (the binary).
pub fn run(lanbridge: &Path, loads: &[Load], seconds: f64, twins: &Path) -> EbpfCost {
    let mut r = EbpfCost {
        stats_was: std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
            .unwrap_or_default()
            .trim()
            .to_string(),
        ..EbpfCost::default()
    };
    if let Err(e) = guard::bpf_stats_enable() {
        r.errors
            .push(format!("cannot set kernel.bpf_stats_enabled=1: {e}"));
        return r;
    }
    let _restore = StatsOn;
    for load in loads {
        if guard::interrupted() {
            break;
        }
        crate::progress(&format!("ebpf: {} ({})", load.name, load.mode));
        let pins = load.net.pins();
        let _links = match attach_twins(&load.node.path(), &pins, twins) {
            Ok(links) => links,
            Err(e) => {
                r.errors.push(format!("{}: empty twins: {e:#}", load.name));
                Vec::new()
            }
        };
        let before = snapshot(&pins, twins);
        if before.is_empty() {
            let (name, pins) = (load.name, pins.display());
            r.errors
                .push(format!("{name}: no programs pinned under {pins}"));
            continue;
        }
        let counters_before = load.counters(lanbridge);
        if let Err(e) = load.run(seconds) {
            r.errors.push(format!("{}: {e}", load.name));
            continue;
        }
        let mut verdicts = load.counters(lanbridge);
        for (k, v) in verdicts.iter_mut() {
            *v = v.saturating_sub(counters_before.get(k).copied().unwrap_or(0));
        }
        verdicts.retain(|_, v| *v > 0);
        let mut programs = Vec::new();
        for (name, path, (t0, c0)) in before {
            if let Some((t1, c1)) = stats(&path) {
                programs.push(Cost {
                    program: name,
                    runs: c1.saturating_sub(c0),
                    run_time_ns: t1.saturating_sub(t0),
                });
            }
        }
        r.loads.push(LoadResult {
            load: load.name.to_string(),
            mode: load.mode.to_string(),
            seconds,
            programs,
            verdicts,
        });
    }
    r
}

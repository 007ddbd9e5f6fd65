//! The numbers the report's prose quotes ("Targets not met, and why", the
//! details tables), computed from the results; the sentences themselves are
//! in `bench/templates/REPORT.md.j2`.

use lanbridge_common::PROG_FROM_POD;
use serde::Serialize;

use super::rows::{med, ratio, Met, Row};
use super::{Results, FAST_PATH_NS_TARGET, STACK_NS_TARGET};
use crate::ebpf_cost::TWIN_PREFIX;
use crate::stats::{quantile_sorted, Series};
use crate::traffic::{Path as TPath, Traffic};

/// The eBPF load of pod → remote pod, if it ran.
pub const REMOTE_LOAD: &str = "TCP stream pod → remote pod";

/// Which kinds of target were missed, with what the prose says about each.
#[derive(Serialize, Default)]
pub struct Why {
    pub all_met: bool,
    pub latency: Option<LatencyWhy>,
    pub growth: bool,
    pub dhcp: bool,
    pub throughput: Option<TputWhy>,
    pub rtt: Option<RttWhy>,
    pub remote: Option<RemoteWhy>,
    pub ebpf: Option<EbpfWhy>,
}

#[derive(Serialize)]
pub struct LatencyWhy {
    pub floor: f64,
    pub lb_add: f64,
    pub ref_add: f64,
    pub lb_del: f64,
    pub ref_del: f64,
    /// What the traces single out: (count, ms) of the calls named.
    pub setlink: Option<(usize, f64)>,
    pub link_create: Option<(usize, f64)>,
    /// lanbridge's and the reference's iptables runs in ADD, when lanbridge runs more.
    pub iptables: Option<(usize, usize)>,
    /// Firewall programs only lanbridge's DEL runs ("ip6tables ×1").
    pub del_extra: Vec<String>,
}

#[derive(Serialize)]
pub struct TputWhy {
    pub fast_path_seen: bool,
    /// The reference paths' range of ratios to the raw chain.
    pub ref_vs_raw: Option<(f64, f64)>,
}

#[derive(Serialize)]
pub struct RttWhy {
    /// `lb_from_pod` ns per run under the subnet UDP load.
    pub from_pod_ns: Option<f64>,
    /// Largest spread of per-repetition medians of one path and setup (µs).
    pub spread: f64,
}

#[derive(Serialize)]
pub struct RemoteWhy {
    pub load: Option<RemoteLoad>,
    pub tput: bool,
    pub rtt: bool,
}

#[derive(Serialize)]
pub struct RemoteLoad {
    pub fast: bool,
    pub fast_packets: u64,
    pub packets: u64,
    pub verdicts: String,
}

#[derive(Serialize)]
pub struct EbpfWhy {
    pub fast_over: Vec<String>,
    pub stack_over: Vec<String>,
}

/// A row of the throughput details table.
#[derive(Serialize)]
pub struct TputDetail {
    pub path: &'static str,
    pub label: String,
    pub median: Option<f64>,
    pub reps: Vec<f64>,
}

/// A row of the round-trip details table.
#[derive(Serialize)]
pub struct RttDetail {
    pub path: &'static str,
    pub label: String,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
}

pub fn why(res: &Results, rows: &[Row]) -> Why {
    let missed: Vec<&Row> = rows.iter().filter(|r| r.met == Met::No).collect();
    let remote = |r: &Row| {
        r.metric.contains(TPath::PodToRemotePod.label())
            || r.metric.contains(TPath::PodToRemotePod.rtt_label())
    };
    // Pod → pod on another node has a paragraph of its own.
    let has = |w: &str| missed.iter().any(|r| !remote(r) && r.metric.contains(w));
    let has_remote = |w: &str| missed.iter().any(|r| remote(r) && r.metric.contains(w));
    let t = res.traffic.as_ref();
    let (rtput, rrtt) = (has_remote("TCP throughput"), has_remote("round trip"));
    Why {
        all_met: missed.is_empty(),
        latency: (has("ADD,") || has("DEL,")).then(|| latency(res)).flatten(),
        growth: has("growth"),
        dhcp: has("ADD with DHCP"),
        throughput: has("TCP throughput")
            .then(|| t.map(|t| tput(res, t)))
            .flatten(),
        rtt: has("round trip").then(|| t.map(|t| rtt(res, t))).flatten(),
        remote: (rtput || rrtt)
            .then(|| t.map(|_| remote_why(res, rtput, rrtt)))
            .flatten(),
        ebpf: has("eBPF").then(|| ebpf(res)).flatten(),
    }
}

fn latency(res: &Results) -> Option<LatencyWhy> {
    let l = res.latency.as_ref()?;
    let m = |s: &Series| med(s).unwrap_or(f64::NAN);
    let trace = |flavor: &str, cmd: &str| {
        res.anatomy
            .iter()
            .find(|a| a.flavor == flavor && a.command == cmd)
    };
    let call = |kind: &str| {
        trace("lanbridge", "ADD")
            .and_then(|a| a.calls.iter().find(|c| c.0.starts_with(kind)))
            .map(|c| (c.1, c.2))
    };
    let runs = |flavor: &str, cmd: &str, prog: &str| {
        trace(flavor, cmd)
            .and_then(|a| a.programs.iter().find(|p| p.0 == prog))
            .map_or(0, |p| p.1)
    };
    let (li, ri) = (
        runs("lanbridge", "ADD", "iptables"),
        runs("reference", "ADD", "iptables"),
    );
    let ref_add = m(&l.warm_add.reference);
    let floor = m(&l.exec_floor);
    Some(LatencyWhy {
        floor,
        lb_add: m(&l.warm_add.lanbridge),
        ref_add,
        lb_del: m(&l.warm_del.lanbridge),
        ref_del: m(&l.warm_del.reference),
        setlink: call("netlink RTM_SETLINK (move"),
        link_create: call("bpf BPF_LINK_CREATE"),
        iptables: (li > ri).then_some((li, ri)),
        del_extra: ["ip6tables", "nft"]
            .iter()
            .filter_map(|p| {
                let n = runs("lanbridge", "DEL", p);
                (n > 0 && runs("reference", "DEL", p) == 0).then(|| format!("{p} ×{n}"))
            })
            .collect(),
    })
}

fn tput_med(t: &Traffic, path: TPath, setup: &str) -> Option<f64> {
    t.tput(path, setup).and_then(med)
}

fn tput(res: &Results, t: &Traffic) -> TputWhy {
    let ratios: Vec<f64> = TPath::ALL
        .into_iter()
        .flat_map(|p| {
            ["ref_bridged", "ref_subnet"].map(|k| ratio(tput_med(t, p, k), tput_med(t, p, "raw")))
        })
        .flatten()
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    TputWhy {
        fast_path_seen: res
            .ebpf
            .as_ref()
            .is_some_and(|e| e.loads.iter().any(|l| l.mode == "lan" && l.fast_path())),
        ref_vs_raw: (!ratios.is_empty()).then_some((lo, hi)),
    }
}

fn rtt(res: &Results, t: &Traffic) -> RttWhy {
    RttWhy {
        from_pod_ns: res.ebpf.as_ref().and_then(|e| {
            e.loads
                .iter()
                .filter(|l| l.mode == "subnet" && l.load.contains("UDP"))
                .flat_map(|l| l.programs.iter())
                .find(|c| c.program == PROG_FROM_POD)
                .and_then(|c| c.ns_per_run())
        }),
        spread: t
            .rtt
            .iter()
            .filter_map(|m| m.series.summary())
            .map(|x| x.rep_max - x.rep_min)
            .fold(0.0, f64::max),
    }
}

fn remote_why(res: &Results, tput: bool, rtt: bool) -> RemoteWhy {
    let load = res
        .ebpf
        .as_ref()
        .and_then(|e| e.loads.iter().find(|l| l.load == REMOTE_LOAD))
        .map(|l| RemoteLoad {
            fast: l.fast_path(),
            fast_packets: l.verdicts.get("fast_to_lan").copied().unwrap_or(0),
            packets: l.verdicts.values().sum(),
            verdicts: verdicts(&l.verdicts),
        });
    RemoteWhy { load, tput, rtt }
}

/// "fast_to_lan 12, pass 3".
pub fn verdicts(v: &std::collections::BTreeMap<String, u64>) -> String {
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ebpf(res: &Results) -> Option<EbpfWhy> {
    let e = res.ebpf.as_ref()?;
    let over = |fast: bool| {
        let target = [STACK_NS_TARGET, FAST_PATH_NS_TARGET][fast as usize];
        e.loads
            .iter()
            .filter(|l| l.fast_path() == fast)
            .flat_map(|l| l.programs.iter().map(move |c| (l, c)))
            // lb_from_pod is judged against its empty twin (issue 15).
            .filter(|(_, c)| c.program != PROG_FROM_POD && !c.program.starts_with(TWIN_PREFIX))
            .filter_map(|(l, c)| {
                let ns = c.ns_per_run().filter(|ns| *ns > target)?;
                Some(format!(
                    "`{}` {ns:.0} ns under {} ({})",
                    c.program, l.load, l.mode
                ))
            })
            .collect()
    };
    Some(EbpfWhy {
        fast_over: over(true),
        stack_over: over(false),
    })
}

pub fn tput_details(t: &Traffic) -> Vec<TputDetail> {
    t.throughput
        .iter()
        .map(|m| TputDetail {
            path: m.path.label(),
            label: m.label.clone(),
            median: med(&m.series),
            reps: m
                .series
                .reps
                .iter()
                .filter(|r| !r.is_empty())
                .map(|r| crate::stats::median(r))
                .collect(),
        })
        .collect()
}

pub fn rtt_details(t: &Traffic) -> Vec<RttDetail> {
    t.rtt
        .iter()
        .filter_map(|m| {
            let s = m.series.summary()?;
            let mut all = m.series.all();
            all.sort_by(f64::total_cmp);
            Some(RttDetail {
                path: m.path.label(),
                label: m.label.clone(),
                median: s.median,
                p90: s.p90,
                p99: quantile_sorted(&all, 0.99),
            })
        })
        .collect()
}

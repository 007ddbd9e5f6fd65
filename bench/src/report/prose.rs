//! The numbers the report's prose quotes, computed from the results (the
//! sentences themselves are in `bench/templates/REPORT.md.j2`): the results
//! with every series replaced by its median (`med.latency.warm_add.lanbridge`,
//! `null` without samples; traffic by path and setup, `med.tput.PodToLan.lb_lan`),
//! the few figures a median does not give, and what "Targets not met, and
//! why" says about each kind of target missed.

use std::collections::{BTreeMap, BTreeSet};

use lanbridge_common::PROG_FROM_POD;
use minijinja::value::Serde;
use minijinja::{context, Value as J};
use serde_json::{json, Value};

use super::rows::{med, ratio, Met, Row, TABLE};
use super::Results;
use crate::ebpf_cost::{twin_name, TWIN_PREFIX};
use crate::latency::growth_ratio;
use crate::stats::Series;
use crate::traffic::{Path, SETUPS};

/// The eBPF load of pod → remote pod, if it ran.
pub const REMOTE_LOAD: &str = "TCP stream pod → remote pod";

/// The results' [`super::rows::view`] with every series replaced by its
/// median, and `null` for every traffic path and setup not measured.
pub fn medians(view: &Value) -> Value {
    let mut v = view.clone();
    squash(&mut v);
    for key in ["tput", "pps", "rtt"] {
        for (path, setup) in Path::ALL.iter().flat_map(|p| SETUPS.map(|s| (p, s))) {
            // Indexing inserts a missing slot as `null`.
            let slot = &mut v[key][format!("{path:?}")][setup];
            *slot = slot.take();
        }
    }
    v
}

/// Replaces every serialized [`Series`] under `v` by its median.
fn squash(v: &mut Value) {
    if v.get("reps").is_some() && v.get("failures").is_some() {
        let s: Option<Series> = serde_json::from_value(v.clone()).ok();
        *v = json!(s.and_then(|s| med(&s)));
        return;
    }
    match v {
        Value::Object(o) => o.values_mut().for_each(squash),
        Value::Array(a) => a.iter_mut().for_each(squash),
        _ => {}
    }
}

/// What the Issue 15 lines need beyond medians: ADD growth (first tenth,
/// last tenth, ratio) of both plugins, and `lb_from_pod` beside its empty
/// twin under the fast-path loads and the others ("load (mode)", ns per
/// run of the program and of the twin).
pub fn figures(res: &Results) -> J {
    let g = res.latency.as_ref().map(|l| &l.growth_add);
    let mut twins = [Vec::new(), Vec::new()];
    for load in res.ebpf.iter().flat_map(|e| &e.loads) {
        let ns = |name: &str| {
            load.programs
                .iter()
                .find(|c| c.program == name)?
                .ns_per_run()
        };
        if let (Some(p), Some(e)) = (ns(PROG_FROM_POD), ns(&twin_name(PROG_FROM_POD))) {
            let name = format!("{} ({})", load.load, load.mode);
            twins[usize::from(!load.fast_path())].push((name, p, e));
        }
    }
    let growth = [
        g.and_then(|g| growth_ratio(&g.lanbridge)),
        g.and_then(|g| growth_ratio(&g.reference)),
    ];
    context! { growth => Serde(growth), twins => Serde(twins) }
}

/// Which kinds of target were missed (the `why` of the rows that missed
/// theirs), with the figures the prose quotes about each.
pub fn why(res: &Results, rows: &[Row]) -> J {
    let missed: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.met == Met::No)
        .filter_map(|r| r.why.as_deref())
        .collect();
    let has = |k: &str| missed.contains(k);
    let t = res.traffic.as_ref();
    let (rtput, rrtt) = (has("remote_tput"), has("remote_rtt"));
    context! {
        all_met => rows.iter().all(|r| r.met != Met::No),
        latency => has("latency").then(|| latency(res)).flatten(),
        growth => has("growth"),
        dhcp => has("dhcp"),
        throughput => t.filter(|_| has("throughput")).map(|t| tput(res, t)),
        rtt => t.filter(|_| has("rtt")).map(|t| rtt(res, t)),
        remote => t.filter(|_| rtput || rrtt).map(|_| remote(res, rtput, rrtt)),
        ebpf => has("ebpf").then(|| ebpf(res)).flatten(),
    }
}

fn latency(res: &Results) -> Option<J> {
    let l = res.latency.as_ref()?;
    let m = |s: &Series| med(s).unwrap_or(f64::NAN);
    let trace = |flavor: &str, cmd: &str| {
        let a = res.anatomy.iter();
        a.clone().find(|a| a.flavor == flavor && a.command == cmd)
    };
    let call = |kind: &str| {
        let a = trace("lanbridge", "ADD")?;
        a.calls
            .iter()
            .find(|c| c.0.starts_with(kind))
            .map(|c| (c.1, c.2))
    };
    let runs = |flavor: &str, cmd: &str, prog: &str| {
        let a = trace(flavor, cmd);
        a.and_then(|a| a.programs.iter().find(|p| p.0 == prog))
            .map_or(0, |p| p.1)
    };
    let (li, ri) = (
        runs("lanbridge", "ADD", "iptables"),
        runs("reference", "ADD", "iptables"),
    );
    let del_extra: Vec<String> = ["ip6tables", "nft"]
        .iter()
        .filter_map(|p| {
            let n = runs("lanbridge", "DEL", p);
            (n > 0 && runs("reference", "DEL", p) == 0).then(|| format!("{p} ×{n}"))
        })
        .collect();
    Some(context! {
        floor => m(&l.exec_floor),
        lb_add => m(&l.warm_add.lanbridge),
        ref_add => m(&l.warm_add.reference),
        lb_del => m(&l.warm_del.lanbridge),
        ref_del => m(&l.warm_del.reference),
        // What the traces single out: (count, ms) of the calls named.
        setlink => Serde(call("netlink RTM_SETLINK (move")),
        link_create => Serde(call("bpf BPF_LINK_CREATE")),
        // lanbridge's and the reference's iptables runs in ADD, when lanbridge runs more.
        iptables => Serde((li > ri).then_some((li, ri))),
        // Firewall programs only lanbridge's DEL runs ("ip6tables ×1").
        del_extra => del_extra,
    })
}

fn tput(res: &Results, t: &crate::traffic::Traffic) -> J {
    let m = |p, k: &str| t.tput(p, k).and_then(med);
    let ratios: Vec<f64> = Path::ALL
        .into_iter()
        .flat_map(|p| ["ref_bridged", "ref_subnet"].map(|k| ratio(m(p, k), m(p, "raw"))))
        .flatten()
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let loads = res.ebpf.iter().flat_map(|e| &e.loads);
    context! {
        fast_path_seen => loads.clone().any(|l| l.mode == "lan" && l.fast_path()),
        // The reference paths' range of ratios to the raw chain.
        ref_vs_raw => Serde((!ratios.is_empty()).then_some((lo, hi))),
    }
}

fn rtt(res: &Results, t: &crate::traffic::Traffic) -> J {
    let udp = res.ebpf.iter().flat_map(|e| &e.loads);
    let udp = udp.filter(|l| l.mode == "subnet" && l.load.contains("UDP"));
    let from_pod = udp
        .flat_map(|l| l.programs.iter())
        .find(|c| c.program == PROG_FROM_POD);
    let summaries = t.rtt.iter().filter_map(|m| m.series.summary());
    context! {
        // `lb_from_pod` ns per run under the subnet UDP load.
        from_pod_ns => from_pod.and_then(|c| c.ns_per_run()),
        // Largest spread of per-repetition medians of one path and setup (µs).
        spread => summaries.map(|x| x.rep_max - x.rep_min).fold(0.0, f64::max),
    }
}

fn remote(res: &Results, tput: bool, rtt: bool) -> J {
    let load = res
        .ebpf
        .iter()
        .flat_map(|e| &e.loads)
        .find(|l| l.load == REMOTE_LOAD);
    let load = load.map(|l| {
        context! {
            fast => l.fast_path(),
            fast_packets => l.verdicts.get("fast_to_lan").copied().unwrap_or(0),
            packets => l.verdicts.values().sum::<u64>(),
            verdicts => verdicts(&l.verdicts),
        }
    });
    context! { load => load, tput => tput, rtt => rtt }
}

/// "fast_to_lan 12, pass 3".
pub fn verdicts(v: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.join(", ")
}

fn ebpf(res: &Results) -> Option<J> {
    let e = res.ebpf.as_ref()?;
    let over = |fast: bool| {
        let target = TABLE.targets[["stack_ns", "fast_ns"][usize::from(fast)]];
        let runs = e.loads.iter().filter(|l| l.fast_path() == fast);
        let runs = runs.flat_map(|l| l.programs.iter().map(move |c| (l, c)));
        // lb_from_pod is judged against its empty twin (issue 15).
        let runs =
            runs.filter(|(_, c)| c.program != PROG_FROM_POD && !c.program.starts_with(TWIN_PREFIX));
        let over = runs.filter_map(|(l, c)| {
            let ns = c.ns_per_run().filter(|ns| *ns > target)?;
            Some(format!(
                "`{}` {ns:.0} ns under {} ({})",
                c.program, l.load, l.mode
            ))
        });
        over.collect::<Vec<_>>()
    };
    Some(context! { fast_over => over(true), stack_over => over(false) })
}

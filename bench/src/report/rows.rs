//! The rows of the results table: each metric's cells as the report prints
//! them, its target and verdict, and the numbers behind the cells (what the
//! repository keeps as the run's summary).

use std::collections::BTreeMap;

use lanbridge_common::{PROG_FROM_POD, PROG_FROM_UPLINK};
use serde::Serialize;

use super::Results;
use crate::ebpf_cost::{twin_name, TWIN_PREFIX};
use crate::latency::{growth_ratio, Pair};
use crate::stats::{Series, Summary};
use crate::traffic::{Path as TPath, Traffic};

/// Targets of issue 6, tightened or added by issue 15.
pub const LATENCY_RATIO_TARGET: f64 = 0.25;
pub const DEL_RATIO_TARGET: f64 = 0.35;
pub const FLOOR_TARGET: f64 = 1.5;
pub const GROWTH_TARGET: f64 = 1.1;
pub const PODS_PER_S_TARGET: f64 = 3.0;
pub const LAN_DEL_TARGET: f64 = 1.0;
pub const DHCP_RATIO_TARGET: f64 = 0.10;
pub const TPUT_VS_RAW_TARGET: f64 = 1.0;
pub const TPUT_VS_REF_TARGET: f64 = 1.10;
pub const PPS_VS_RAW_TARGET: f64 = 1.0;
pub const PPS_VS_REF_TARGET: f64 = 1.2;
pub const FAST_PATH_NS_TARGET: f64 = 300.0;
pub const STACK_NS_TARGET: f64 = 100.0;
/// `lb_from_pod` over the empty program at the same hooks.
pub const EMPTY_FAST_TARGET: f64 = 3.0;
pub const EMPTY_STACK_TARGET: f64 = 1.5;

/// The targets by the names the template uses.
pub fn targets() -> BTreeMap<&'static str, f64> {
    BTreeMap::from([
        ("add", LATENCY_RATIO_TARGET),
        ("del", DEL_RATIO_TARGET),
        ("floor", FLOOR_TARGET),
        ("growth", GROWTH_TARGET),
        ("pods_per_s", PODS_PER_S_TARGET),
        ("lan_del", LAN_DEL_TARGET),
        ("tput_vs_raw", TPUT_VS_RAW_TARGET),
        ("tput_vs_ref", TPUT_VS_REF_TARGET),
        ("pps_vs_raw", PPS_VS_RAW_TARGET),
        ("pps_vs_ref", PPS_VS_REF_TARGET),
        ("empty_fast", EMPTY_FAST_TARGET),
        ("empty_stack", EMPTY_STACK_TARGET),
    ])
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Met {
    Yes,
    No,
    Na,
}

impl Met {
    pub fn of(ok: bool) -> Met {
        if ok {
            Met::Yes
        } else {
            Met::No
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Met::Yes => "✅ yes",
            Met::No => "❌ no",
            Met::Na => "—",
        }
    }
}

/// The numbers behind one cell: the repository's summary of the samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Quartiles over every sample.
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
    pub failures: usize,
}

impl Stat {
    fn of(s: &Series) -> Option<Stat> {
        let m = s.summary()?;
        let mut all = s.all();
        all.sort_by(f64::total_cmp);
        Some(Stat {
            median: m.median,
            min: m.min,
            max: m.max,
            q1: crate::stats::quantile_sorted(&all, 0.25),
            q3: crate::stats::quantile_sorted(&all, 0.75),
            n: m.n,
            failures: s.failures,
        })
    }
}

#[derive(Serialize)]
pub struct Row {
    pub metric: String,
    pub lanbridge: String,
    pub reference: String,
    pub raw: String,
    pub ratio: String,
    pub target: String,
    #[serde(serialize_with = "met_text")]
    pub met: Met,
    /// Whether the row goes into the README summary.
    pub headline: bool,
    /// The samples behind the lanbridge / reference / raw cells.
    pub stats: BTreeMap<&'static str, Stat>,
}

fn met_text<S: serde::Serializer>(m: &Met, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.text())
}

impl Row {
    fn new(metric: impl Into<String>) -> Row {
        Row {
            metric: metric.into(),
            lanbridge: "—".into(),
            reference: "—".into(),
            raw: "—".into(),
            ratio: "—".into(),
            target: "—".into(),
            met: Met::Na,
            headline: false,
            stats: BTreeMap::new(),
        }
    }

    /// Keeps the numbers of `series` under `column`.
    fn stat(&mut self, column: &'static str, series: Option<&Series>) {
        if let Some(st) = series.and_then(Stat::of) {
            self.stats.insert(column, st);
        }
    }

    fn pair(&mut self, p: &Pair) {
        self.stat("lanbridge", Some(&p.lanbridge));
        self.stat("reference", Some(&p.reference));
    }
}

fn sum(s: &Series) -> Option<Summary> {
    s.summary()
}

/// `12.3 ms [11.9–12.8]`: median over all samples, and the range of the
/// per-repetition medians (or p10–p90, marked, with a single repetition).
fn fmt_sum(s: &Series, unit: &str, digits: usize) -> String {
    let fail = if s.failures > 0 {
        format!(" ({} failed)", s.failures)
    } else {
        String::new()
    };
    match sum(s) {
        None if s.failures > 0 => format!("failed ({}×)", s.failures),
        None => "—".into(),
        Some(m) if m.n == 1 => format!("{:.d$} {unit}{fail}", m.median, d = digits),
        Some(m) if m.reps >= 2 => format!(
            "{:.d$} {unit} [{:.d$}–{:.d$}]{fail}",
            m.median,
            m.rep_min,
            m.rep_max,
            d = digits
        ),
        Some(m) => format!(
            "{:.d$} {unit} [p10–p90 {:.d$}–{:.d$}]{fail}",
            m.median,
            m.p10,
            m.p90,
            d = digits
        ),
    }
}

pub fn med(s: &Series) -> Option<f64> {
    sum(s).map(|m| m.median)
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

fn latency_row(metric: &str, pair: &Pair, target: f64, headline: bool) -> Row {
    let r = ratio(med(&pair.lanbridge), med(&pair.reference));
    let mut row = Row::new(metric);
    row.pair(pair);
    row.lanbridge = fmt_sum(&pair.lanbridge, "ms", 1);
    row.reference = fmt_sum(&pair.reference, "ms", 1);
    row.ratio = fmt_ratio(r);
    row.target = format!("≤ {target}× reference");
    row.met = r.map_or(Met::Na, |r| {
        Met::of(r <= target && pair.lanbridge.failures == 0)
    });
    row.headline = headline;
    row
}

/// An ADD or DEL of both plugins beside the floor, interleaved with it.
fn floor_row(metric: &str, pair: &Pair, floor: &Series, target: Option<f64>) -> Row {
    let mut row = Row::new(metric);
    row.pair(pair);
    row.stat("raw", Some(floor));
    row.lanbridge = fmt_sum(&pair.lanbridge, "ms", 1);
    row.reference = fmt_sum(&pair.reference, "ms", 1);
    row.raw = format!("{} (floor)", fmt_sum(floor, "ms", 1));
    let (l, r, f) = (med(&pair.lanbridge), med(&pair.reference), med(floor));
    row.ratio = format!(
        "{} floor, {} ref; ref {} floor",
        fmt_ratio(ratio(l, f)),
        fmt_ratio(ratio(l, r)),
        fmt_ratio(ratio(r, f))
    );
    if let Some(t) = target {
        row.target = format!("≤ {t}× floor");
        row.met = ratio(l, f).map_or(Met::Na, |x| Met::of(x <= t));
    }
    row.headline = target.is_some();
    row
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn tput_row(
    t: &Traffic,
    path: TPath,
    lb: &str,
    reference: &str,
    what: &str,
    headline: bool,
) -> Row {
    let lbs = t.tput(path, lb);
    let refs = t.tput(path, reference);
    let raws = t.tput(path, "raw");
    let mut row = Row::new(format!("TCP throughput, {}, {what}", path.label()));
    let (l, r, w) = (lbs.and_then(med), refs.and_then(med), raws.and_then(med));
    row.stat("lanbridge", lbs);
    row.stat("reference", refs);
    row.stat("raw", raws);
    row.lanbridge = lbs.map_or("—".into(), |s| fmt_sum(s, "Gbit/s", 2));
    row.reference = refs.map_or("—".into(), |s| fmt_sum(s, "Gbit/s", 2));
    row.raw = raws.map_or("—".into(), |s| fmt_sum(s, "Gbit/s", 2));
    let (vs_raw, vs_ref) = (ratio(l, w), ratio(l, r));
    row.ratio = format!("{} raw, {} ref", fmt_ratio(vs_raw), fmt_ratio(vs_ref));
    row.target = format!("≥ {TPUT_VS_RAW_TARGET}× raw, ≥ {TPUT_VS_REF_TARGET}× ref");
    row.met = match (vs_raw, vs_ref) {
        (Some(a), Some(b)) => Met::of(a >= TPUT_VS_RAW_TARGET && b >= TPUT_VS_REF_TARGET),
        _ => Met::Na,
    };
    row.headline = headline;
    row
}

fn pps_row(t: &Traffic, lb: &str, reference: &str, what: &str) -> Option<Row> {
    let path = TPath::PodToLan;
    let lbs = t.pps(path, lb)?;
    let (refs, raws) = (t.pps(path, reference), t.pps(path, "raw"));
    let kpps = |s: &Series| fmt_sum(s, "kpps", 0);
    let mut row = Row::new(format!("64-byte UDP packets/s, {}, {what}", path.label()));
    row.stat("lanbridge", Some(lbs));
    row.stat("reference", refs);
    row.stat("raw", raws);
    row.lanbridge = kpps(lbs);
    row.reference = refs.map_or("—".into(), kpps);
    row.raw = raws.map_or("—".into(), kpps);
    let l = med(lbs);
    let (vs_raw, vs_ref) = (ratio(l, raws.and_then(med)), ratio(l, refs.and_then(med)));
    row.ratio = format!("{} raw, {} ref", fmt_ratio(vs_raw), fmt_ratio(vs_ref));
    row.target = format!("≥ {PPS_VS_RAW_TARGET}× raw, ≥ {PPS_VS_REF_TARGET}× ref");
    row.met = match (vs_raw, vs_ref) {
        (Some(a), Some(b)) => Met::of(a >= PPS_VS_RAW_TARGET && b >= PPS_VS_REF_TARGET),
        _ => Met::Na,
    };
    row.headline = lb == "lb_lan";
    Some(row)
}

fn rtt_row(t: &Traffic, path: TPath, lb: &str, reference: &str, what: &str, headline: bool) -> Row {
    let lbs = t.rtt(path, lb);
    let refs = t.rtt(path, reference);
    let raws = t.rtt(path, "raw");
    let (l, r, w) = (lbs.and_then(med), refs.and_then(med), raws.and_then(med));
    let mut row = Row::new(format!(
        "UDP round trip (64 B), {}, {what}",
        path.rtt_label()
    ));
    row.stat("lanbridge", lbs);
    row.stat("reference", refs);
    row.stat("raw", raws);
    row.lanbridge = lbs.map_or("—".into(), |s| fmt_sum(s, "µs", 1));
    row.reference = refs.map_or("—".into(), |s| fmt_sum(s, "µs", 1));
    row.raw = raws.map_or("—".into(), |s| fmt_sum(s, "µs", 1));
    row.ratio = format!(
        "{} raw, {} ref",
        fmt_ratio(ratio(l, w)),
        fmt_ratio(ratio(l, r))
    );
    row.target = "lower than ref and raw".into();
    row.met = match (l, r, w) {
        (Some(l), Some(r), Some(w)) => Met::of(l < r && l < w),
        _ => Met::Na,
    };
    row.headline = headline;
    row
}

pub fn rows(res: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(l) = &res.latency {
        let (add, del) = (LATENCY_RATIO_TARGET, DEL_RATIO_TARGET);
        rows.push(latency_row("ADD, 1 pod (warm)", &l.warm_add, add, true));
        rows.push(latency_row("DEL, 1 pod (warm)", &l.warm_del, del, true));
        rows.push(latency_row(
            &format!("ADD, {} pods sequential", l.seq_pods),
            &l.seq_add,
            add,
            false,
        ));
        rows.push(latency_row(
            &format!("DEL, {} pods sequential", l.seq_pods),
            &l.seq_del,
            del,
            false,
        ));
        rows.push(latency_row(
            &format!(
                "ADD, {} pods {} at a time (per ADD)",
                l.par_pods, l.par_workers
            ),
            &l.par_add,
            add,
            false,
        ));
        rows.push(latency_row(
            &format!(
                "DEL, {} pods {} at a time (per DEL)",
                l.par_pods, l.par_workers
            ),
            &l.par_del,
            del,
            false,
        ));
        for (what, p) in [("ADD", &l.par_add_wall), ("DEL", &l.par_del_wall)] {
            let mut row = Row::new(format!(
                "{} pods {what}ed {} at a time: pods/s (wall time)",
                l.par_pods, l.par_workers
            ));
            row.pair(p);
            let rate = |s: &Series| {
                med(s).map_or("—".into(), |w| {
                    format!(
                        "{:.1} pods/s ({})",
                        l.par_pods as f64 / w,
                        fmt_sum(s, "s", 2)
                    )
                })
            };
            row.lanbridge = rate(&p.lanbridge);
            row.reference = rate(&p.reference);
            // pods/s ratio: the reference's wall time over lanbridge's.
            let r = ratio(med(&p.reference), med(&p.lanbridge));
            row.ratio = fmt_ratio(r);
            if what == "ADD" {
                row.target = format!("≥ {PODS_PER_S_TARGET}× reference pods/s");
                row.met = r.map_or(Met::Na, |r| Met::of(r >= PODS_PER_S_TARGET));
                row.headline = true;
            }
            rows.push(row);
        }
        for (what, g) in [("ADD", &l.growth_add), ("DEL", &l.growth_del)] {
            let mut row = Row::new(format!(
                "{what} growth, pod 1 → {} on one bridge (last/first tenth)",
                l.growth_pods
            ));
            let lb = growth_ratio(&g.lanbridge);
            let rf = growth_ratio(&g.reference);
            let f = |x: Option<(f64, f64, f64)>| {
                x.map_or("—".into(), |(a, b, r)| {
                    format!("{r:.2}× ({a:.1} → {b:.1} ms)")
                })
            };
            row.lanbridge = f(lb);
            row.reference = f(rf);
            row.target = format!("flat: ≤ {GROWTH_TARGET}×");
            row.met = lb.map_or(Met::Na, |(_, _, r)| Met::of(r <= GROWTH_TARGET));
            row.headline = what == "ADD";
            rows.push(row);
        }
        let mut row = Row::new(
            "first ADD on a node (creates the bridge; lanbridge loads and pins its programs)",
        );
        row.pair(&l.cold_add);
        row.lanbridge = fmt_sum(&l.cold_add.lanbridge, "ms", 1);
        row.reference = fmt_sum(&l.cold_add.reference, "ms", 1);
        rows.push(row);
        let mut row = Row::new("exec floor: `nsenter --net=<node> /bin/true`");
        row.stat("raw", Some(&l.exec_floor));
        row.raw = fmt_sum(&l.exec_floor, "ms", 2);
        rows.push(row);
    }
    if let Some(f) = &res.floor {
        rows.push(floor_row(
            "ADD (warm) beside the floor program",
            &f.plugins_add,
            &f.add,
            Some(FLOOR_TARGET),
        ));
        rows.push(floor_row(
            "DEL (warm) beside the floor program",
            &f.plugins_del,
            &f.del,
            None,
        ));
    }
    if let Some(d) = &res.dhcp {
        let r = ratio(med(&d.add.lanbridge), med(&d.add.reference));
        let mut row = Row::new(
            "ADD with DHCP (time to a lease): lan mode vs reference bridge+dhcp, uplink enslaved",
        );
        row.pair(&d.add);
        row.lanbridge = fmt_sum(&d.add.lanbridge, "ms", 0);
        row.reference = fmt_sum(&d.add.reference, "ms", 0);
        row.ratio = fmt_ratio(r);
        row.target = format!("≤ {DHCP_RATIO_TARGET}× reference");
        row.met = r.map_or(Met::Na, |r| {
            Met::of(r <= DHCP_RATIO_TARGET && d.add.lanbridge.failures == 0)
        });
        row.headline = true;
        rows.push(row);
        if d.add_ping.lanbridge.summary().is_some() {
            let mut row =
                Row::new("ADD with DHCP, dnsmasq's ping check on (as shipped): time to a lease");
            row.pair(&d.add_ping);
            row.lanbridge = fmt_sum(&d.add_ping.lanbridge, "ms", 0);
            row.reference = fmt_sum(&d.add_ping.reference, "ms", 0);
            row.ratio = fmt_ratio(ratio(
                med(&d.add_ping.lanbridge),
                med(&d.add_ping.reference),
            ));
            row.headline = true;
            rows.push(row);
        }
        let r = ratio(med(&d.del.lanbridge), med(&d.del.reference));
        let mut row = Row::new("DEL with DHCP (release), lan mode");
        row.pair(&d.del);
        row.lanbridge = fmt_sum(&d.del.lanbridge, "ms", 0);
        row.reference = fmt_sum(&d.del.reference, "ms", 0);
        row.ratio = fmt_ratio(r);
        row.target = format!("≤ {LAN_DEL_TARGET}× reference");
        row.met = r.map_or(Met::Na, |r| {
            Met::of(r <= LAN_DEL_TARGET && d.del.lanbridge.failures == 0)
        });
        row.headline = true;
        rows.push(row);
        let mut row = Row::new(format!(
            "ADD with DHCP, {} pods {} at a time (per ADD)",
            d.leases, d.workers
        ));
        row.pair(&d.scale_add);
        row.lanbridge = fmt_sum(&d.scale_add.lanbridge, "ms", 0);
        row.reference = fmt_sum(&d.scale_add.reference, "ms", 0);
        row.ratio = fmt_ratio(ratio(
            med(&d.scale_add.lanbridge),
            med(&d.scale_add.reference),
        ));
        rows.push(row);
    }
    if let Some(t) = &res.traffic {
        // lan mode has no second node; runs before pod → remote pod existed
        // have no such rows at all.
        let paths = || TPath::ALL.into_iter().filter(|p| t.has(*p));
        let remote = TPath::PodToRemotePod;
        for path in paths() {
            if path != remote {
                rows.push(tput_row(
                    t,
                    path,
                    "lb_lan",
                    "ref_bridged",
                    "lan mode vs bridged reference",
                    path == TPath::PodToLan,
                ));
            }
            rows.push(tput_row(
                t,
                path,
                "lb_subnet",
                "ref_subnet",
                "subnet mode",
                path == TPath::PodToPod || path == remote,
            ));
        }
        for (lb, reference, what) in [
            ("lb_lan", "ref_bridged", "lan mode vs bridged reference"),
            ("lb_subnet", "ref_subnet", "subnet mode"),
        ] {
            if let Some(row) = pps_row(t, lb, reference, what) {
                rows.push(row);
            }
        }
        for path in paths().filter(|p| TPath::RTT.contains(p)) {
            if path != remote {
                rows.push(rtt_row(
                    t,
                    path,
                    "lb_lan",
                    "ref_bridged",
                    "lan mode vs bridged reference",
                    path == TPath::PodToLan,
                ));
            }
            rows.push(rtt_row(
                t,
                path,
                "lb_subnet",
                "ref_subnet",
                "subnet mode",
                path == remote,
            ));
        }
    }
    if let Some(e) = &res.ebpf {
        let mut first = true;
        for l in &e.loads {
            for c in l
                .programs
                .iter()
                .filter(|c| !c.program.starts_with(TWIN_PREFIX))
            {
                let Some(ns) = c.ns_per_run() else { continue };
                let fast =
                    l.fast_path() && (c.program == PROG_FROM_POD || c.program == PROG_FROM_UPLINK);
                let mut row = Row::new(format!(
                    "eBPF `{}` per run, {} ({})",
                    c.program, l.load, l.mode
                ));
                row.lanbridge = format!("{ns:.0} ns ({} runs)", c.runs);
                // The empty twin in front of it at the same hooks, same load.
                let twin = l
                    .programs
                    .iter()
                    .find(|t| t.program == twin_name(&c.program))
                    .and_then(|t| t.ns_per_run());
                if let Some(tw) = twin {
                    row.raw = format!("{tw:.0} ns (empty program)");
                    row.ratio = fmt_ratio(Some(ns / tw));
                }
                if c.program == PROG_FROM_POD {
                    // Issue 15 judges it against the empty program.
                    let t = if fast {
                        EMPTY_FAST_TARGET
                    } else {
                        EMPTY_STACK_TARGET
                    };
                    row.target = format!(
                        "≤ {t}× empty ({})",
                        if fast {
                            "fast path"
                        } else {
                            "passed to the stack"
                        }
                    );
                    row.met = twin.map_or(Met::Na, |tw| Met::of(ns / tw <= t));
                    row.headline = first;
                    first = false;
                    rows.push(row);
                    continue;
                }
                let t = if fast {
                    FAST_PATH_NS_TARGET
                } else {
                    STACK_NS_TARGET
                };
                row.target = format!(
                    "≤ {t:.0} ns ({})",
                    if fast {
                        "fast path"
                    } else {
                        "passed to the stack"
                    }
                );
                row.met = Met::of(ns <= t);
                row.headline = first;
                first = false;
                rows.push(row);
            }
        }
    }
    let mem = |rows: &mut Vec<Row>, metric: &str, p: &Pair, headline: bool| {
        let mut row = Row::new(metric);
        row.pair(p);
        let (l, r) = (med(&p.lanbridge), med(&p.reference));
        row.lanbridge = l.map_or("—".into(), mib);
        row.reference = r.map_or("—".into(), mib);
        row.ratio = fmt_ratio(ratio(l, r));
        row.headline = headline;
        rows.push(row);
    };
    if let Some(l) = &res.latency {
        mem(
            &mut rows,
            "peak RSS of one ADD (subnet, host-local; max over the plugin and its children)",
            &l.rss_add,
            true,
        );
        mem(&mut rows, "peak RSS of one DEL (subnet)", &l.rss_del, false);
    }
    if let Some(d) = &res.dhcp {
        mem(
            &mut rows,
            "peak RSS of one ADD with DHCP",
            &d.rss_add,
            false,
        );
        let mut row = Row::new(format!(
            "DHCP daemon peak RSS (VmHWM) holding {} / {} leases",
            d.held[0], d.held[1]
        ));
        let f = |v: Option<u64>| v.map_or("—".into(), |k| mib(k as f64));
        row.lanbridge = f(d.daemon_hwm_full[0]);
        row.reference = f(d.daemon_hwm_full[1]);
        row.ratio = fmt_ratio(ratio(
            d.daemon_hwm_full[0].map(|v| v as f64),
            d.daemon_hwm_full[1].map(|v| v as f64),
        ));
        row.headline = true;
        rows.push(row);
    }
    rows
}

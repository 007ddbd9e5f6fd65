//! The rows of the results table: each metric's cells as the report prints
//! them, its target and verdict, and the numbers behind the cells (what the
//! repository keeps as the run's summary).

use std::collections::BTreeMap;

use lanbridge_common::{PROG_FROM_POD, PROG_FROM_UPLINK};
use serde::Serialize;

use super::Results;
use crate::ebpf_cost::{twin_name, TWIN_PREFIX};
use crate::latency::{growth_ratio, Pair};
use crate::stats::Series;
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

    /// A row of lanbridge's, the reference's and the raw limit's `series`
    /// (each kept in `stats`), printed in `unit` with `digits` decimals.
    fn of(
        metric: impl Into<String>,
        series: [Option<&Series>; 3],
        unit: &str,
        digits: usize,
    ) -> Row {
        let mut row = Row::new(metric);
        let cells = [&mut row.lanbridge, &mut row.reference, &mut row.raw];
        for ((cell, s), column) in cells.into_iter().zip(series).zip(COLUMNS) {
            if let Some(s) = s {
                *cell = fmt_sum(s, unit, digits);
                if let Some(st) = Stat::of(s) {
                    row.stats.insert(column, st);
                }
            }
        }
        row
    }

    /// [`Row::of`] a pair, with the lanbridge / reference ratio.
    fn pair(metric: impl Into<String>, p: &Pair, unit: &str, digits: usize) -> Row {
        let mut row = Row::of(
            metric,
            [Some(&p.lanbridge), Some(&p.reference), None],
            unit,
            digits,
        );
        row.ratio = fmt_ratio(ratio(med(&p.lanbridge), med(&p.reference)));
        row
    }

    /// Judged: lanbridge / reference ≤ `target`, without a failed sample.
    fn at_most(mut self, p: &Pair, target: f64, headline: bool) -> Row {
        let r = ratio(med(&p.lanbridge), med(&p.reference));
        self.target = format!("≤ {target}× reference");
        self.met = r.map_or(Met::Na, |r| {
            Met::of(r <= target && p.lanbridge.failures == 0)
        });
        self.headline = headline;
        self
    }
}

const COLUMNS: [&str; 3] = ["lanbridge", "reference", "raw"];

/// `12.3 ms [11.9–12.8]`: median over all samples, and the range of the
/// per-repetition medians (or p10–p90, marked, with a single repetition).
fn fmt_sum(s: &Series, unit: &str, digits: usize) -> String {
    let fail = if s.failures > 0 {
        format!(" ({} failed)", s.failures)
    } else {
        String::new()
    };
    let d = digits;
    match s.summary() {
        None if s.failures > 0 => format!("failed ({}×)", s.failures),
        None => "—".into(),
        Some(m) if m.n == 1 => format!("{:.d$} {unit}{fail}", m.median),
        Some(m) if m.reps >= 2 => format!(
            "{:.d$} {unit} [{:.d$}–{:.d$}]{fail}",
            m.median, m.rep_min, m.rep_max
        ),
        Some(m) => format!(
            "{:.d$} {unit} [p10–p90 {:.d$}–{:.d$}]{fail}",
            m.median, m.p10, m.p90
        ),
    }
}

pub fn med(s: &Series) -> Option<f64> {
    s.summary().map(|m| m.median)
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

/// An ADD or DEL of both plugins beside the floor, interleaved with it.
fn floor_row(metric: &str, pair: &Pair, floor: &Series, target: Option<f64>) -> Row {
    let mut row = Row::of(
        metric,
        [Some(&pair.lanbridge), Some(&pair.reference), Some(floor)],
        "ms",
        1,
    );
    row.raw += " (floor)";
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

type Getter = for<'a> fn(&'a Traffic, TPath, &str) -> Option<&'a Series>;

/// What a traffic row measures.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tput,
    Pps,
    Rtt,
}

/// A traffic row of `path`: lanbridge's setup `lb` against `reference` and
/// the raw chain.
fn traffic_row(t: &Traffic, kind: Kind, path: TPath, lb: &str, reference: &str, what: &str) -> Row {
    let (get, metric, unit, digits): (Getter, _, _, _) = match kind {
        Kind::Tput => (
            Traffic::tput,
            format!("TCP throughput, {}", path.label()),
            "Gbit/s",
            2,
        ),
        Kind::Pps => (
            Traffic::pps,
            format!("64-byte UDP packets/s, {}", path.label()),
            "kpps",
            0,
        ),
        Kind::Rtt => (
            Traffic::rtt,
            format!("UDP round trip (64 B), {}", path.rtt_label()),
            "µs",
            1,
        ),
    };
    let series = [lb, reference, "raw"].map(|k| get(t, path, k));
    let mut row = Row::of(format!("{metric}, {what}"), series, unit, digits);
    let [l, r, w] = series.map(|s| s.and_then(med));
    let (vs_raw, vs_ref) = (ratio(l, w), ratio(l, r));
    row.ratio = format!("{} raw, {} ref", fmt_ratio(vs_raw), fmt_ratio(vs_ref));
    let (raw_t, ref_t) = match kind {
        Kind::Tput => (TPUT_VS_RAW_TARGET, TPUT_VS_REF_TARGET),
        _ => (PPS_VS_RAW_TARGET, PPS_VS_REF_TARGET),
    };
    if kind == Kind::Rtt {
        row.target = "lower than ref and raw".into();
        row.met = match (l, r, w) {
            (Some(l), Some(r), Some(w)) => Met::of(l < r && l < w),
            _ => Met::Na,
        };
    } else {
        row.target = format!("≥ {raw_t}× raw, ≥ {ref_t}× ref");
        row.met = match (vs_raw, vs_ref) {
            (Some(a), Some(b)) => Met::of(a >= raw_t && b >= ref_t),
            _ => Met::Na,
        };
    }
    row
}

pub fn rows(res: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(l) = &res.latency {
        let (add, del) = (LATENCY_RATIO_TARGET, DEL_RATIO_TARGET);
        let (seq, par) = (
            l.seq_pods,
            format!("{} pods {} at a time", l.par_pods, l.par_workers),
        );
        // (what, ADD and DEL, headline, whether it names the command again)
        let phases = [
            (
                "1 pod (warm)".to_string(),
                [&l.warm_add, &l.warm_del],
                true,
                false,
            ),
            (
                format!("{seq} pods sequential"),
                [&l.seq_add, &l.seq_del],
                false,
                false,
            ),
            (par, [&l.par_add, &l.par_del], false, true),
        ];
        for (what, pairs, headline, per) in phases {
            for ((cmd, p), target) in ["ADD", "DEL"].into_iter().zip(pairs).zip([add, del]) {
                let per = if per {
                    format!(" (per {cmd})")
                } else {
                    String::new()
                };
                let metric = format!("{cmd}, {what}{per}");
                rows.push(Row::pair(metric, p, "ms", 1).at_most(p, target, headline));
            }
        }
        for (what, p) in [("ADD", &l.par_add_wall), ("DEL", &l.par_del_wall)] {
            let metric = format!(
                "{} pods {what}ed {} at a time: pods/s (wall time)",
                l.par_pods, l.par_workers
            );
            let mut row = Row::pair(metric, p, "s", 2);
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
            let f = |x: Option<(f64, f64, f64)>| {
                x.map_or("—".into(), |(a, b, r)| {
                    format!("{r:.2}× ({a:.1} → {b:.1} ms)")
                })
            };
            row.lanbridge = f(lb);
            row.reference = f(growth_ratio(&g.reference));
            row.target = format!("flat: ≤ {GROWTH_TARGET}×");
            row.met = lb.map_or(Met::Na, |(_, _, r)| Met::of(r <= GROWTH_TARGET));
            row.headline = what == "ADD";
            rows.push(row);
        }
        let metric =
            "first ADD on a node (creates the bridge; lanbridge loads and pins its programs)";
        let mut row = Row::pair(metric, &l.cold_add, "ms", 1);
        row.ratio = "—".into();
        rows.push(row);
        let metric = "exec floor: `nsenter --net=<node> /bin/true`";
        rows.push(Row::of(metric, [None, None, Some(&l.exec_floor)], "ms", 2));
    }
    if let Some(f) = &res.floor {
        let (add, del) = (&f.plugins_add, &f.plugins_del);
        rows.push(floor_row(
            "ADD (warm) beside the floor program",
            add,
            &f.add,
            Some(FLOOR_TARGET),
        ));
        rows.push(floor_row(
            "DEL (warm) beside the floor program",
            del,
            &f.del,
            None,
        ));
    }
    if let Some(d) = &res.dhcp {
        let metric =
            "ADD with DHCP (time to a lease): lan mode vs reference bridge+dhcp, uplink enslaved";
        rows.push(Row::pair(metric, &d.add, "ms", 0).at_most(&d.add, DHCP_RATIO_TARGET, true));
        if d.add_ping.lanbridge.summary().is_some() {
            let metric = "ADD with DHCP, dnsmasq's ping check on (as shipped): time to a lease";
            let mut row = Row::pair(metric, &d.add_ping, "ms", 0);
            row.headline = true;
            rows.push(row);
        }
        let metric = "DEL with DHCP (release), lan mode";
        rows.push(Row::pair(metric, &d.del, "ms", 0).at_most(&d.del, LAN_DEL_TARGET, true));
        let metric = format!(
            "ADD with DHCP, {} pods {} at a time (per ADD)",
            d.leases, d.workers
        );
        rows.push(Row::pair(metric, &d.scale_add, "ms", 0));
    }
    if let Some(t) = &res.traffic {
        // lan mode has no second node; runs before pod → remote pod existed
        // have no such rows at all.
        let paths = || TPath::ALL.into_iter().filter(|p| t.has(*p));
        let remote = TPath::PodToRemotePod;
        let lan = ("lb_lan", "ref_bridged", "lan mode vs bridged reference");
        let sub = ("lb_subnet", "ref_subnet", "subnet mode");
        let mut push = |kind, path, (lb, reference, what), headline| {
            let mut row = traffic_row(t, kind, path, lb, reference, what);
            row.headline = headline;
            rows.push(row);
        };
        for path in paths() {
            if path != remote {
                push(Kind::Tput, path, lan, path == TPath::PodToLan);
            }
            push(
                Kind::Tput,
                path,
                sub,
                path == TPath::PodToPod || path == remote,
            );
        }
        for setups in [lan, sub] {
            if t.pps(TPath::PodToLan, setups.0).is_some() {
                push(Kind::Pps, TPath::PodToLan, setups, setups == lan);
            }
        }
        for path in paths().filter(|p| TPath::RTT.contains(p)) {
            if path != remote {
                push(Kind::Rtt, path, lan, path == TPath::PodToLan);
            }
            push(Kind::Rtt, path, sub, path == remote);
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
                let (path, empty_t, ns_t) = if fast {
                    ("fast path", EMPTY_FAST_TARGET, FAST_PATH_NS_TARGET)
                } else {
                    ("passed to the stack", EMPTY_STACK_TARGET, STACK_NS_TARGET)
                };
                if c.program == PROG_FROM_POD {
                    // Issue 15 judges it against the empty program.
                    row.target = format!("≤ {empty_t}× empty ({path})");
                    row.met = twin.map_or(Met::Na, |tw| Met::of(ns / tw <= empty_t));
                } else {
                    row.target = format!("≤ {ns_t:.0} ns ({path})");
                    row.met = Met::of(ns <= ns_t);
                }
                row.headline = std::mem::take(&mut first);
                rows.push(row);
            }
        }
    }
    let mut mem = |metric: &str, p: &Pair, headline: bool| {
        let mut row = Row::pair(metric, p, "", 0);
        let (l, r) = (med(&p.lanbridge), med(&p.reference));
        row.lanbridge = l.map_or("—".into(), mib);
        row.reference = r.map_or("—".into(), mib);
        row.headline = headline;
        rows.push(row);
    };
    if let Some(l) = &res.latency {
        let metric =
            "peak RSS of one ADD (subnet, host-local; max over the plugin and its children)";
        mem(metric, &l.rss_add, true);
        mem("peak RSS of one DEL (subnet)", &l.rss_del, false);
    }
    if let Some(d) = &res.dhcp {
        mem("peak RSS of one ADD with DHCP", &d.rss_add, false);
        let mut row = Row::new(format!(
            "DHCP daemon peak RSS (VmHWM) holding {} / {} leases",
            d.held[0], d.held[1]
        ));
        let kib = d.daemon_hwm_full.map(|v| v.map(|k| k as f64));
        row.lanbridge = kib[0].map_or("—".into(), mib);
        row.reference = kib[1].map_or("—".into(), mib);
        row.ratio = fmt_ratio(ratio(kib[0], kib[1]));
        row.headline = true;
        rows.push(row);
    }
    rows
}

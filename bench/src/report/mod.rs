//! The report: `REPORT.md` rendered from `bench/templates/REPORT.md.j2` over
//! the results, the SVG plots, `results.json` (the rows' summary: what the
//! repository keeps) and the README's "Benchmarks" section. The raw samples
//! are written apart (`target/bench/results.json`) and can be rendered again
//! with `--from-results`.

mod plots;
mod prose;
mod rows;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use lanbridge_common::{Reason, PROG_FROM_POD, PROG_FROM_UPLINK};
use minijinja::value::Serde;
use minijinja::{context, Environment, Value as J};
use serde::{Deserialize, Serialize};

pub use rows::Row;

use crate::anatomy::Anatomy;
use crate::cluster::SourceSeen;
use crate::criterion::Micro;
use crate::dhcp::Dhcp;
use crate::ebpf_cost::EbpfCost;
use crate::floor::Floor;
use crate::latency::Latency;
use crate::machine::Machine;
use crate::stats::{quantile_sorted, Series};
use crate::traffic::{Path as TPath, Traffic};
use crate::Params;
use lanbridge_tests::cluster::CLUSTER_CIDR;
use lanbridge_tests::testbed::TwoNodes;
use lanbridge_tests::Flavor;

const REPORT: &str = include_str!("../../templates/REPORT.md.j2");
const README: &str = include_str!("../../templates/README-section.md.j2");
const README_START: &str = "<!-- lanbridge-bench:start -->";
const README_END: &str = "<!-- lanbridge-bench:end -->";

/// Every sample of a run (`target/bench/results.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub quick: bool,
    pub machine: Machine,
    pub params: Params,
    pub latency: Option<Latency>,
    pub dhcp: Option<Dhcp>,
    pub traffic: Option<Traffic>,
    pub ebpf: Option<EbpfCost>,
    /// The floor of ADD and DEL beside both plugins (absent in older runs).
    #[serde(default)]
    pub floor: Option<Floor>,
    pub micro: Vec<Micro>,
    /// One traced ADD and DEL per plugin (where the time goes).
    pub anatomy: Vec<Anatomy>,
    /// Pod → pod on another node: the source address each receiving pod saw
    /// (checked before measuring; none in results of older runs).
    #[serde(default)]
    pub source_seen: Vec<SourceSeen>,
    pub errors: Vec<String>,
    pub duration_s: f64,
}

/// What the repository keeps of a run: the rows and the numbers behind them.
#[derive(Serialize)]
struct Summary<'a> {
    quick: bool,
    machine: &'a Machine,
    params: &'a Params,
    duration_s: f64,
    errors: &'a [String],
    rows: &'a [Row],
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // `{{ x|f(2) }}`: fixed decimals; `signed` with a sign; `ns` in a readable unit.
    env.add_filter("f", |v: f64, d: usize| format!("{v:.d$}"));
    // `n`: a number as Rust prints it (4, not 4.0).
    env.add_filter("n", |v: f64| v.to_string());
    env.add_filter("signed", |v: f64, d: usize| format!("{v:+.d$}"));
    env.add_filter("ns", |ns: f64| match ns {
        ns if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{ns:.1} ns"),
    });
    // `samples`: every sample of a series; `quantile(q)` of samples.
    env.add_filter("samples", |s: Serde<Series>| s.all());
    env.add_filter("quantile", |mut v: Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        quantile_sorted(&v, q)
    });
    // `diff(a, b)`: a - b, none when either is missing.
    env.add_function("diff", |a: Option<f64>, b: Option<f64>| Some(a? - b?));
    // `all([a, b])`: both, each evaluated (so a missing figure fails both).
    env.add_function("all", |v: Vec<bool>| v.iter().all(|b| *b));
    // `r(a, b)`: a / b as "1.23×", "—" when either is missing.
    env.add_function("r", |a: Option<f64>, b: Option<f64>| {
        rows::ratio(a, b).map_or("—".into(), |r| format!("{r:.2}×"))
    });
    // `growth(ms)`: (first tenth, last tenth, ratio) of per-pod latencies.
    env.add_function("growth", |v: Vec<Option<f64>>| {
        let v: Vec<f64> = v.into_iter().flatten().collect();
        J::from(Serde(crate::latency::growth_ratio(&v)))
    });
    env.add_template("REPORT.md", REPORT)?;
    env.add_template("README", README)?;
    Ok(env)
}

/// Writes REPORT.md, the SVGs and the summary `results.json` into `out`.
pub fn write(res: &Results, out: &Path) -> Result<Vec<Row>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let env = environment()?;
    let view = rows::view(res);
    let med = J::from(Serde(prose::medians(&view)));
    let rows = rows::rows(&view, &env, &med);
    let plots = plots::write(res, out)?;
    let traffic = res.traffic.as_ref();
    let m = &res.machine;
    let path_labels: BTreeMap<_, _> = TPath::ALL.map(|p| (format!("{p:?}"), p.label())).into();
    let ctx = context! {
        res => Serde(res),
        rows => Serde(&rows),
        why => prose::why(res, &rows),
        med => med,
        fig => prose::figures(res),
        tg => Serde(&rows::TABLE.targets),
        plots => Serde(&plots),
        noise => m.foreign_netns_max > 0 || load_high(&m.load_start) || load_high(&m.load_end),
        path_labels => Serde(path_labels),
        remote => traffic.is_some_and(|t| t.has(TPath::PodToRemotePod)),
        source_seen => Serde(res.source_seen.iter().map(|s| (s, rows::Met::of(s.ok()).text())).collect::<Vec<_>>()),
        loads => Serde(res.ebpf.as_ref().map(|e| e.loads.iter().map(|l| (l, prose::verdicts(&l.verdicts))).collect::<Vec<_>>())),
        any_fast => res.ebpf.as_ref().is_some_and(|e| e.loads.iter().any(|l| l.fast_path())),
        lb_nodes => TwoNodes::describe(Flavor::Lanbridge),
        ref_nodes => TwoNodes::describe(Flavor::Reference),
        cluster_cidr => CLUSTER_CIDR,
        from_pod => PROG_FROM_POD,
        from_uplink => PROG_FROM_UPLINK,
        fast_to_lan => Reason::FastToLan.name(),
        fast_to_pod => Reason::FastToPod.name(),
        remote_load => prose::REMOTE_LOAD,
    };
    let md = env.get_template("REPORT.md")?.render(ctx)?;
    std::fs::write(out.join("REPORT.md"), md)?;
    let summary = Summary {
        quick: res.quick,
        machine: m,
        params: &res.params,
        duration_s: res.duration_s,
        errors: &res.errors,
        rows: &rows,
    };
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    Ok(rows)
}

/// Writes every sample of the run to `path` (for `--from-results`).
pub fn write_raw(res: &Results, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string(res)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn load_high(load: &str) -> bool {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    load.split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > n * 0.75)
}

/// Replaces (or appends) the README's "Benchmarks" section.
pub fn update_readme(readme: &Path, res: &Results, rows: &[Row], report_rel: &str) -> Result<()> {
    let text = std::fs::read_to_string(readme)?;
    let sec = environment()?.get_template("README")?.render(context! {
        start => README_START,
        end => README_END,
        minutes => (res.duration_s / 60.0).ceil() as u64,
        m => Serde(&res.machine),
        report => report_rel,
        rows => Serde(rows),
    })?;
    let new = match (text.find(README_START), text.find(README_END)) {
        (Some(a), Some(b)) if b > a => {
            let end = b + README_END.len();
            let rest = text[end..].strip_prefix('\n').unwrap_or(&text[end..]);
            format!("{}{sec}{rest}", &text[..a])
        }
        _ => format!("{}\n\n{sec}", text.trim_end_matches('\n')),
    };
    std::fs::write(readme, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Series;
    use crate::traffic::Measured;

    fn measured(path: TPath, setup: &str, v: f64) -> Measured {
        let mut series = Series::new();
        series.push(v);
        Measured {
            path,
            setup: setup.into(),
            label: setup.into(),
            series,
        }
    }

    /// The rows and REPORT.md of `res`.
    fn render(res: &Results) -> (Vec<Row>, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = write(res, dir.path()).expect("report renders");
        let md = std::fs::read_to_string(dir.path().join("REPORT.md")).expect("REPORT.md");
        (rows, md)
    }

    #[test]
    fn results_without_remote_pods_still_load_and_render() {
        let mut j = serde_json::to_value(Results::default()).expect("JSON");
        j.as_object_mut().expect("object").remove("source_seen");
        let mut res: Results = serde_json::from_value(j).expect("old results load");
        res.traffic = Some(Traffic {
            throughput: vec![measured(TPath::PodToPod, "lb_subnet", 10.0)],
            ..Traffic::default()
        });
        let (rows, md) = render(&res);
        let remote = TPath::PodToRemotePod.label();
        assert!(rows.iter().all(|r| !r.metric.contains(remote)));
        assert!(md.contains("not measured in this run"), "{md}");
        assert!(!md.contains("- **Pod → pod on another node**:"), "{md}");
    }

    #[test]
    fn remote_rows_are_headlines_judged_and_explained() {
        let path = TPath::PodToRemotePod;
        let tput = [("lb_subnet", 10.0), ("ref_subnet", 9.5), ("raw", 10.0)];
        let rtt = [("lb_subnet", 30.0), ("ref_subnet", 31.0), ("raw", 21.0)];
        let res = Results {
            traffic: Some(Traffic {
                throughput: tput.iter().map(|(k, v)| measured(path, k, *v)).collect(),
                rtt: rtt.iter().map(|(k, v)| measured(path, k, *v)).collect(),
                ..Traffic::default()
            }),
            ..Results::default()
        };
        let (rows, md) = render(&res);
        let find = |m: &str| rows.iter().find(|r| r.metric == m).expect(m);
        let t = find("TCP throughput, pod → pod on another node, subnet mode");
        assert!(t.headline && t.met == rows::Met::No, "{}", t.ratio);
        let r = find("UDP round trip (64 B), pod ↔ pod on another node, subnet mode");
        assert!(r.headline && r.met == rows::Met::No);
        assert!(
            md.contains("- **Pod → pod on another node.** The eBPF section did not run"),
            "{md}"
        );
        assert!(md.contains("Throughput: lanbridge 10.00 Gbit/s, the reference 9.50, the raw chain (the same hops, plain routing, no bridges) 10.00: lanbridge at 1.00× raw and 1.05× the reference."), "{md}");
        assert!(md.contains("Round trip: lanbridge is -1.00 µs off the reference and +9.00 µs off the raw chain"), "{md}");
    }

    #[test]
    fn the_summary_keeps_each_rows_numbers_not_samples() {
        let res = Results {
            traffic: Some(Traffic {
                throughput: vec![measured(TPath::PodToLan, "lb_lan", 12.5)],
                ..Traffic::default()
            }),
            ..Results::default()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        write(&res, dir.path()).expect("report");
        let j: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("results.json")).expect("results.json"),
        )
        .expect("JSON");
        let row = &j["rows"][0];
        assert_eq!(
            row["metric"],
            "TCP throughput, pod → LAN host, lan mode vs bridged reference"
        );
        assert_eq!(row["stats"]["lanbridge"]["median"], 12.5);
        assert_eq!(row["stats"]["lanbridge"]["n"], 1);
        assert!(j.get("traffic").is_none(), "no samples in the summary");
    }
}

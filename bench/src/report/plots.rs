//! Which plots the report shows and what goes into each.

use std::path::Path;

use anyhow::Result;
use plotters::style::RGBColor;
use serde::Serialize;

use super::chart::{
    self, Bar, BarChart, Line, LineChart, Style, LANBRIDGE, LANBRIDGE_LIGHT, REFERENCE,
    REFERENCE_LIGHT,
};
use super::rows::TABLE;
use super::Results;
use crate::stats::Series;
use crate::traffic::{Path as TPath, Traffic};
use lanbridge_tests::Flavor;
use Style::{DashedStep, Step};

/// A plot written next to the report.
#[derive(Serialize)]
pub struct Plot {
    pub file: &'static str,
    pub caption: &'static str,
}

/// Draws every plot the results allow into `out`.
pub fn write(res: &Results, out: &Path) -> Result<Vec<Plot>> {
    let mut plots = Vec::new();
    let mut save = |file: &'static str, caption: &'static str, svg: String| -> Result<()> {
        std::fs::write(out.join(file), svg)?;
        plots.push(Plot { file, caption });
        Ok(())
    };
    if let Some(l) = &res.latency {
        let reps = match l.seq_add.lanbridge.reps.len() {
            0 => res.params.seq_reps,
            n => n,
        };
        let title = format!(
            "ADD / DEL latency, subnet mode, {} pods × {reps} repetitions",
            l.seq_pods
        );
        let c = cdf_chart(
            title,
            "fraction of invocations ≤ x",
            [
                (
                    "lanbridge ADD".into(),
                    &l.seq_add.lanbridge,
                    LANBRIDGE,
                    Step,
                ),
                (
                    "reference ADD".into(),
                    &l.seq_add.reference,
                    REFERENCE,
                    Step,
                ),
                (
                    "lanbridge DEL".into(),
                    &l.seq_del.lanbridge,
                    LANBRIDGE,
                    DashedStep,
                ),
                (
                    "reference DEL".into(),
                    &l.seq_del.reference,
                    REFERENCE,
                    DashedStep,
                ),
            ],
        );
        save(
            "latency_cdf.svg",
            "ADD and DEL latency distribution (sequential pods)",
            c.render()?,
        )?;
        let mut lines = Vec::new();
        for (f, color, light) in [
            (Flavor::Lanbridge, LANBRIDGE, LANBRIDGE_LIGHT),
            (Flavor::Reference, REFERENCE, REFERENCE_LIGHT),
        ] {
            let (add, del) = (l.growth_add.get(f), l.growth_del.get(f));
            let each = add.iter().enumerate();
            let rolling = |what| format!("{} {what} (rolling median of 15)", f.label());
            for (name, color, style, points) in [
                (
                    format!("{} ADD (each pod)", f.label()),
                    light,
                    Style::Dots,
                    each.map(|(i, y)| ((i + 1) as f64, *y)).collect(),
                ),
                (
                    rolling("ADD"),
                    color,
                    Style::Line,
                    chart::rolling_median(add, 15),
                ),
                (
                    rolling("DEL"),
                    color,
                    Style::Dashed,
                    chart::rolling_median(del, 15),
                ),
            ] {
                lines.push(Line {
                    name,
                    color,
                    style,
                    points,
                });
            }
        }
        let c = LineChart {
            title: format!("Latency vs pod count on one bridge (1 → {})", l.growth_pods),
            x_label: "n-th pod on the bridge (DEL: n-th pod deleted, in ADD order)".into(),
            y_label: "latency, ms".into(),
            log_x: false,
            lines,
        };
        save(
            "latency_vs_pods.svg",
            "ADD / DEL latency vs number of pods on the bridge",
            c.render()?,
        )?;
    }
    if let Some(d) = &res.dhcp {
        let n = d.workers;
        let lb = |what: &str| format!("lanbridge lan mode, {what}");
        let c = cdf_chart(
            format!("ADD with DHCP (time to a lease), one at a time and {n} at a time"),
            "fraction of ADDs ≤ x",
            [
                (lb("one at a time"), &d.add.lanbridge, LANBRIDGE, Step),
                (
                    lb(&format!("{n} at a time")),
                    &d.scale_add.lanbridge,
                    LANBRIDGE,
                    DashedStep,
                ),
                (
                    "reference bridge+dhcp (uplink enslaved), one at a time".into(),
                    &d.add.reference,
                    REFERENCE,
                    Step,
                ),
                (
                    format!("reference, {n} at a time"),
                    &d.scale_add.reference,
                    REFERENCE,
                    DashedStep,
                ),
            ],
        );
        save(
            "dhcp_cdf.svg",
            "ADD with DHCP: time to a lease",
            c.render()?,
        )?;
    }
    if let Some(t) = &res.traffic {
        let measured: Vec<TPath> = TPath::ALL.into_iter().filter(|p| t.has(*p)).collect();
        let c = traffic_chart(
            t,
            "Single-stream TCP throughput (iperf3), median and min–max of repetitions",
            "Gbit/s",
            &measured,
            TPath::label,
            Traffic::tput,
        );
        save(
            "throughput.svg",
            "Throughput by path and setup",
            c.render()?,
        )?;
        let rtt: Vec<TPath> = measured
            .into_iter()
            .filter(|p| TPath::RTT.contains(p))
            .collect();
        let c = traffic_chart(
            t,
            "UDP request/response round trip (64 B), median and min–max of repetitions",
            "µs",
            &rtt,
            TPath::rtt_label,
            Traffic::rtt,
        );
        save("rtt.svg", "Round-trip time by path and setup", c.render()?)?;
    }
    if let Some(e) = &res.ebpf {
        let mut progs: Vec<&str> = e
            .loads
            .iter()
            .flat_map(|l| {
                l.programs
                    .iter()
                    .filter(|c| c.runs > 0)
                    .map(|c| c.program.as_str())
            })
            .collect();
        progs.sort();
        progs.dedup();
        let colors = [LANBRIDGE, chart::EXTRA, REFERENCE, chart::RAW];
        let (stack_ns, fast_ns) = (TABLE.targets["stack_ns"], TABLE.targets["fast_ns"]);
        let c = BarChart {
            title: "eBPF program cost per run (bpf_stats)".into(),
            y_label: "ns per run".into(),
            groups: e
                .loads
                .iter()
                .map(|l| {
                    let short = short_load(&l.load);
                    let (kind, path) = short.split_once(' ').unwrap_or(("", &short));
                    format!("{kind} ({})\n{path}", l.mode)
                })
                .collect(),
            series: progs
                .iter()
                .zip(colors.iter().cycle())
                .map(|(p, c)| (p.to_string(), *c))
                .collect(),
            values: e
                .loads
                .iter()
                .map(|l| {
                    progs
                        .iter()
                        .map(|p| {
                            let c = l.programs.iter().find(|c| c.program == *p)?;
                            c.ns_per_run().map(|v| Bar {
                                value: v,
                                lo: v,
                                hi: v,
                            })
                        })
                        .collect()
                })
                .collect(),
            targets: vec![
                (stack_ns, format!("{stack_ns} ns: passed to the stack")),
                (fast_ns, format!("{fast_ns} ns: fast path")),
            ],
        };
        save("ebpf_cost.svg", "eBPF cost per program run", c.render()?)?;
    }
    Ok(plots)
}

/// Latency distributions (empirical CDFs) on a log axis.
fn cdf_chart(
    title: String,
    y_label: &str,
    lines: [(String, &Series, RGBColor, Style); 4],
) -> LineChart {
    LineChart {
        title,
        x_label: "latency, ms (log scale)".into(),
        y_label: y_label.into(),
        log_x: true,
        lines: lines
            .into_iter()
            .map(|(name, s, color, style)| Line {
                name,
                color,
                style,
                points: chart::ecdf(&s.all()),
            })
            .collect(),
    }
}

/// One group of bars per path, one bar per setup.
fn traffic_chart<'t>(
    t: &'t Traffic,
    title: &str,
    y_label: &str,
    paths: &[TPath],
    label: fn(TPath) -> &'static str,
    get: fn(&'t Traffic, TPath, &str) -> Option<&'t Series>,
) -> BarChart {
    let setups = [
        ("lb_lan", "lanbridge lan mode", LANBRIDGE),
        ("lb_subnet", "lanbridge subnet", LANBRIDGE_LIGHT),
        ("ref_bridged", "reference, uplink enslaved", REFERENCE),
        ("ref_subnet", "reference subnet", REFERENCE_LIGHT),
        ("raw", "raw routed chain (limit)", chart::RAW),
    ];
    let bar = |s: Option<&Series>| {
        s.and_then(Series::summary).map(|m| Bar {
            value: m.median,
            lo: m.rep_min.min(m.median),
            hi: m.rep_max.max(m.median),
        })
    };
    BarChart {
        title: title.into(),
        y_label: y_label.into(),
        // A path's label on two lines under its bars.
        groups: paths
            .iter()
            .map(|p| {
                label(*p)
                    .replacen(" (", "\n(", 1)
                    .replacen(" on ", "\non ", 1)
            })
            .collect(),
        series: setups.iter().map(|(_, n, c)| (n.to_string(), *c)).collect(),
        values: paths
            .iter()
            .map(|p| setups.iter().map(|(k, _, _)| bar(get(t, *p, k))).collect())
            .collect(),
        targets: vec![],
    }
}

fn short_load(l: &str) -> String {
    l.replace("TCP stream ", "TCP ")
        .replace("64-byte UDP ", "UDP ")
        .replace("LAN host", "LAN")
        .replace(" → ", "→")
}

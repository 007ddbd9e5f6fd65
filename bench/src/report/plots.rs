//! The plots next to the report, SVG through `plotters`: lines (latency
//! distributions, latency against pod count) and grouped bars with min–max
//! whiskers (throughput, round trips, eBPF cost). Text is measured by
//! plotters' built-in estimate, so no system font is needed.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::rows::TABLE;
use super::Results;
use crate::stats::{median, Series};
use crate::traffic::{Path as TPath, Traffic};
use lanbridge_tests::Flavor;
use Style::{DashedStep, Step};

const LANBRIDGE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const LANBRIDGE_LIGHT: RGBColor = RGBColor(0x9e, 0xca, 0xe1);
const REFERENCE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const REFERENCE_LIGHT: RGBColor = RGBColor(0xfd, 0xd0, 0xa2);
const RAW: RGBColor = RGBColor(0x55, 0x55, 0x55);
const EXTRA: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const SIZE: (u32, u32) = (760, 460);
const FONT: &str = "sans-serif";

/// A plot written next to the report.
#[derive(Serialize)]
pub struct Plot {
    pub file: &'static str,
    pub caption: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Line,
    /// An empirical CDF: horizontal then vertical segments.
    Step,
    /// A dashed step line (a second CDF of the same colour).
    DashedStep,
    Dashed,
    Dots,
}

/// A line: its name in the legend, colour, style and points.
type Line = (String, RGBColor, Style, Vec<(f64, f64)>);
/// A bar: median and the min–max whisker.
type Bar = (f64, f64, f64);

/// Draws every plot the results allow into `out`.
pub fn write(res: &Results, out: &Path) -> Result<Vec<Plot>> {
    let mut plots = Vec::new();
    let mut save = |file: &'static str, caption: &'static str, svg: Result<String>| {
        std::fs::write(out.join(file), svg?)?;
        plots.push(Plot { file, caption });
        anyhow::Ok(())
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
        let (add, del) = (&l.seq_add, &l.seq_del);
        let lines = [
            cdf("lanbridge ADD", &add.lanbridge, LANBRIDGE, Step),
            cdf("reference ADD", &add.reference, REFERENCE, Step),
            cdf("lanbridge DEL", &del.lanbridge, LANBRIDGE, DashedStep),
            cdf("reference DEL", &del.reference, REFERENCE, DashedStep),
        ];
        let svg = cdf_chart(&title, "fraction of invocations ≤ x", &lines);
        save(
            "latency_cdf.svg",
            "ADD and DEL latency distribution (sequential pods)",
            svg,
        )?;
        let mut lines = Vec::new();
        for (f, color, light) in [
            (Flavor::Lanbridge, LANBRIDGE, LANBRIDGE_LIGHT),
            (Flavor::Reference, REFERENCE, REFERENCE_LIGHT),
        ] {
            let (add, del) = (l.growth_add.get(f), l.growth_del.get(f));
            let each = add.iter().enumerate().map(|(i, y)| ((i + 1) as f64, *y));
            let rolling = |what| format!("{} {what} (rolling median of 15)", f.label());
            lines.push((
                format!("{} ADD (each pod)", f.label()),
                light,
                Style::Dots,
                each.collect(),
            ));
            lines.push((rolling("ADD"), color, Style::Line, rolling_median(add, 15)));
            lines.push((
                rolling("DEL"),
                color,
                Style::Dashed,
                rolling_median(del, 15),
            ));
        }
        let title = format!("Latency vs pod count on one bridge (1 → {})", l.growth_pods);
        let x = "n-th pod on the bridge (DEL: n-th pod deleted, in ADD order)";
        let svg = line_chart(&title, x, "latency, ms", false, &lines);
        save(
            "latency_vs_pods.svg",
            "ADD / DEL latency vs number of pods on the bridge",
            svg,
        )?;
    }
    if let Some(d) = &res.dhcp {
        let n = d.workers;
        let lb = |what: &str| format!("lanbridge lan mode, {what}");
        let lines = [
            cdf(&lb("one at a time"), &d.add.lanbridge, LANBRIDGE, Step),
            cdf(
                &lb(&format!("{n} at a time")),
                &d.scale_add.lanbridge,
                LANBRIDGE,
                DashedStep,
            ),
            cdf(
                "reference bridge+dhcp (uplink enslaved), one at a time",
                &d.add.reference,
                REFERENCE,
                Step,
            ),
            cdf(
                &format!("reference, {n} at a time"),
                &d.scale_add.reference,
                REFERENCE,
                DashedStep,
            ),
        ];
        let title = format!("ADD with DHCP (time to a lease), one at a time and {n} at a time");
        let svg = cdf_chart(&title, "fraction of ADDs ≤ x", &lines);
        save("dhcp_cdf.svg", "ADD with DHCP: time to a lease", svg)?;
    }
    if let Some(t) = &res.traffic {
        let measured: Vec<TPath> = TPath::ALL.into_iter().filter(|p| t.has(*p)).collect();
        let title = "Single-stream TCP throughput (iperf3), median and min–max of repetitions";
        let svg = traffic_chart(t, title, "Gbit/s", &measured, TPath::label, Traffic::tput);
        save("throughput.svg", "Throughput by path and setup", svg)?;
        let rtt: Vec<TPath> = measured
            .into_iter()
            .filter(|p| TPath::RTT.contains(p))
            .collect();
        let title = "UDP request/response round trip (64 B), median and min–max of repetitions";
        let svg = traffic_chart(t, title, "µs", &rtt, TPath::rtt_label, Traffic::rtt);
        save("rtt.svg", "Round-trip time by path and setup", svg)?;
    }
    if let Some(e) = &res.ebpf {
        let ran = e
            .loads
            .iter()
            .flat_map(|l| l.programs.iter().filter(|c| c.runs > 0));
        let mut progs: Vec<&str> = ran.map(|c| c.program.as_str()).collect();
        progs.sort();
        progs.dedup();
        let colors = [LANBRIDGE, EXTRA, REFERENCE, RAW];
        let series: Vec<_> = progs
            .iter()
            .zip(colors.iter().cycle())
            .map(|(p, c)| (p.to_string(), *c))
            .collect();
        let groups: Vec<String> = e
            .loads
            .iter()
            .map(|l| {
                let short = l
                    .load
                    .replace("TCP stream ", "TCP ")
                    .replace("64-byte UDP ", "UDP ");
                let short = short.replace("LAN host", "LAN").replace(" → ", "→");
                let (kind, path) = short.split_once(' ').unwrap_or(("", &short));
                format!("{kind} ({})\n{path}", l.mode)
            })
            .collect();
        let values: Vec<Vec<Option<Bar>>> = e
            .loads
            .iter()
            .map(|l| {
                let ns = |p: &&str| l.programs.iter().find(|c| c.program == *p)?.ns_per_run();
                progs.iter().map(|p| ns(p).map(|v| (v, v, v))).collect()
            })
            .collect();
        let (stack_ns, fast_ns) = (TABLE.targets["stack_ns"], TABLE.targets["fast_ns"]);
        let targets = [
            (stack_ns, format!("{stack_ns} ns: passed to the stack")),
            (fast_ns, format!("{fast_ns} ns: fast path")),
        ];
        let svg = bar_chart(
            "eBPF program cost per run (bpf_stats)",
            "ns per run",
            &groups,
            &series,
            &values,
            &targets,
        );
        save("ebpf_cost.svg", "eBPF cost per program run", svg)?;
    }
    Ok(plots)
}

/// The empirical CDF of `s` (x sorted, y = fraction ≤ x) as a line.
fn cdf(name: &str, s: &Series, color: RGBColor, style: Style) -> Line {
    let mut v: Vec<f64> = s.all().into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let points = v.iter().enumerate().map(|(i, x)| (*x, (i + 1) as f64 / n));
    (name.to_string(), color, style, points.collect())
}

/// Latency distributions on a log axis.
fn cdf_chart(title: &str, y_label: &str, lines: &[Line]) -> Result<String> {
    line_chart(title, "latency, ms (log scale)", y_label, true, lines)
}

/// Rolling median of `v` over a centered window of `w`, as (index+1, median).
fn rolling_median(v: &[f64], w: usize) -> Vec<(f64, f64)> {
    let n = v.len();
    let window = |i: usize| v[i.saturating_sub(w / 2)..(i + w / 2 + 1).min(n)].iter();
    let points = (0..n).filter_map(|i| {
        let win: Vec<f64> = window(i).copied().filter(|x| x.is_finite()).collect();
        (!win.is_empty()).then(|| ((i + 1) as f64, median(&win)))
    });
    points.collect()
}

/// One group of bars per path, one bar per setup.
fn traffic_chart<'t>(
    t: &'t Traffic,
    title: &str,
    y_label: &str,
    paths: &[TPath],
    label: fn(TPath) -> &'static str,
    get: fn(&'t Traffic, TPath, &str) -> Option<&'t Series>,
) -> Result<String> {
    let setups = [
        ("lb_lan", "lanbridge lan mode", LANBRIDGE),
        ("lb_subnet", "lanbridge subnet", LANBRIDGE_LIGHT),
        ("ref_bridged", "reference, uplink enslaved", REFERENCE),
        ("ref_subnet", "reference subnet", REFERENCE_LIGHT),
        ("raw", "raw routed chain (limit)", RAW),
    ];
    let bar = |s: Option<&Series>| {
        let m = s.and_then(Series::summary)?;
        Some((m.median, m.rep_min.min(m.median), m.rep_max.max(m.median)))
    };
    // A path's label on two lines under its bars.
    let two_lines = |p: &TPath| {
        label(*p)
            .replacen(" (", "\n(", 1)
            .replacen(" on ", "\non ", 1)
    };
    let groups: Vec<String> = paths.iter().map(two_lines).collect();
    let series: Vec<_> = setups.iter().map(|(_, n, c)| (n.to_string(), *c)).collect();
    let values: Vec<Vec<Option<Bar>>> = paths
        .iter()
        .map(|p| setups.iter().map(|(k, _, _)| bar(get(t, *p, k))).collect())
        .collect();
    bar_chart(title, y_label, &groups, &series, &values, &[])
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The series' names and marks in a box at `pos`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> Result<()> {
    let mut labels = chart.configure_series_labels();
    labels.position(pos).background_style(WHITE.mix(0.85));
    labels.border_style(BLACK.mix(0.3)).label_font((FONT, 12));
    labels.draw().map_err(err)
}

/// An axis label: few digits, no trailing zeros.
fn tick(v: f64) -> String {
    let d = match v.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    lines: &[Line],
) -> Result<String> {
    // A log axis is drawn as a linear axis over log10(x), labelled back.
    let tx = |x: f64| if log_x { x.max(1e-9).log10() } else { x };
    let pts = |l: &Line| -> Vec<(f64, f64)> {
        let p = l.3.iter().map(|&(x, y)| (tx(x), y));
        if !matches!(l.2, Style::Step | Style::DashedStep) {
            return p.collect();
        }
        // Horizontal, then vertical.
        let mut prev_y = 0.0;
        let steps = p.flat_map(|(x, y)| [(x, std::mem::replace(&mut prev_y, y)), (x, y)]);
        steps.collect()
    };
    let all: Vec<(f64, f64)> = lines.iter().flat_map(pts).collect();
    let (x0, x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let y1 = all.iter().map(|p| p.1).fold(0.0, f64::max) * 1.05;
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
    let pad = (x1 - x0) * 0.02;
    let x_fmt = |v: &f64| tick(if log_x { 10f64.powf(*v) } else { *v });
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(62)
            .build_cartesian_2d(x0 - pad..x1 + pad, 0.0..y1.max(1e-9))
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_label).y_desc(y_label);
        mesh.x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| tick(*v));
        mesh.draw().map_err(err)?;
        for l in lines {
            let color = l.1;
            let style = color.stroke_width(2);
            let p = pts(l);
            let drawn = match l.2 {
                Style::Line | Style::Step => chart.draw_series(LineSeries::new(p, style)),
                Style::Dashed | Style::DashedStep => {
                    chart.draw_series(DashedLineSeries::new(p, 6, 4, style))
                }
                Style::Dots => chart.draw_series(
                    p.into_iter()
                        .map(|xy| Circle::new(xy, 2, color.filled()).into_dyn()),
                ),
            };
            let drawn = drawn.map_err(err)?.label(l.0.as_str());
            drawn.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// `values[group][series]`; group labels under the axis (`\n` breaks a
/// line); horizontal target lines.
fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, RGBColor)],
    values: &[Vec<Option<Bar>>],
    targets: &[(f64, String)],
) -> Result<String> {
    let n = groups.len().max(1);
    let bars = values.iter().flatten().flatten().map(|b| b.2.max(b.0));
    let top = bars.chain(targets.iter().map(|t| t.0)).fold(0.0, f64::max) * 1.5;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..n as f64, 0.0..top.max(1e-9))
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh().x_labels(0).y_desc(y_label);
        mesh.y_label_formatter(&|v| tick(*v)).draw().map_err(err)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (s, (name, color)) in series.iter().enumerate() {
            let color = *color;
            let at = |(g, v): (usize, &Vec<Option<Bar>>)| {
                Some((g as f64 + 0.1 + s as f64 * width, (*v.get(s)?)?))
            };
            let bars: Vec<(f64, Bar)> = values.iter().enumerate().filter_map(at).collect();
            let rect = |(x, b): &(f64, Bar)| {
                Rectangle::new([(*x, 0.0), (x + width * 0.9, b.0)], color.filled())
            };
            let drawn = chart
                .draw_series(bars.iter().map(rect))
                .map_err(err)?
                .label(name.as_str());
            drawn.legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
            });
            let whisker = |(x, b): &(f64, Bar)| {
                let mid = x + width * 0.45;
                PathElement::new(vec![(mid, b.1), (mid, b.2)], BLACK.stroke_width(1))
            };
            chart
                .draw_series(bars.iter().filter(|(_, b)| b.2 > b.1).map(whisker))
                .map_err(err)?;
        }
        for (i, (value, name)) in targets.iter().enumerate() {
            let style = RAW.mix(0.8).stroke_width(1);
            let line = DashedLineSeries::new(
                [(0.0, *value), (n as f64, *value)],
                4 + 4 * i as u32,
                4,
                style,
            );
            let drawn = chart.draw_series(line).map_err(err)?.label(name.as_str());
            drawn.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        // Group labels centred under their bars, one text per line.
        let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        for (g, label) in groups.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
            for (k, line) in label.lines().enumerate() {
                let text = Text::new(line.to_string(), (x, y + 6 + 15 * k as i32), &style);
                root.draw(&text).map_err(err)?;
            }
        }
        Ok(())
    })
}

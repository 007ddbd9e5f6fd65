//! The two kinds of chart the report draws, as SVG through `plotters`: lines
//! (latency distributions, latency against pod count) and grouped bars with
//! min–max whiskers (throughput, round trips, eBPF cost). Text is measured by
//! plotters' built-in estimate, so no system font is needed.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const LANBRIDGE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const LANBRIDGE_LIGHT: RGBColor = RGBColor(0x9e, 0xca, 0xe1);
pub const REFERENCE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub const REFERENCE_LIGHT: RGBColor = RGBColor(0xfd, 0xd0, 0xa2);
pub const RAW: RGBColor = RGBColor(0x55, 0x55, 0x55);
pub const EXTRA: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

const SIZE: (u32, u32) = (760, 460);
const FONT: &str = "sans-serif";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    /// An empirical CDF: horizontal then vertical segments.
    Step,
    /// A dashed step line (a second CDF of the same colour).
    DashedStep,
    Dashed,
    Dots,
}

pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub lines: Vec<Line>,
}

/// One bar: median and the min–max whisker.
#[derive(Clone, Copy)]
pub struct Bar {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// Group labels under the axis (`\n` breaks a line).
    pub groups: Vec<String>,
    pub series: Vec<(String, RGBColor)>,
    /// `values[group][series]`.
    pub values: Vec<Vec<Option<Bar>>>,
    /// Horizontal target lines.
    pub targets: Vec<(f64, String)>,
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

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series' names and marks in a box at `pos`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, pos: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(err)
}

/// The same points as horizontal-then-vertical steps.
fn steps(p: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut prev_y = 0.0;
    p.iter()
        .flat_map(|&(x, y)| {
            let v = [(x, prev_y), (x, y)];
            prev_y = y;
            v
        })
        .collect()
}

impl LineChart {
    pub fn render(&self) -> Result<String> {
        // A log axis is drawn as a linear axis over log10(x), labelled back.
        let tx = |x: f64| if self.log_x { x.max(1e-9).log10() } else { x };
        let pts = |l: &Line| -> Vec<(f64, f64)> {
            let p: Vec<(f64, f64)> = l.points.iter().map(|&(x, y)| (tx(x), y)).collect();
            match l.style {
                Style::Step | Style::DashedStep => steps(&p),
                _ => p,
            }
        };
        let all: Vec<(f64, f64)> = self.lines.iter().flat_map(pts).collect();
        let (x0, x1) = all
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let y1 = all.iter().map(|p| p.1).fold(0.0, f64::max) * 1.05;
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
        let pad = (x1 - x0) * 0.02;
        let log_x = self.log_x;
        let x_fmt = move |v: &f64| {
            let v = if log_x { 10f64.powf(*v) } else { *v };
            tick(v)
        };
        svg(|root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, (FONT, 18))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(62)
                .build_cartesian_2d(x0 - pad..x1 + pad, 0.0..y1.max(1e-9))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(err)?;
            for l in &self.lines {
                let color = l.color;
                let style = color.stroke_width(2);
                let p = pts(l);
                let drawn = match l.style {
                    Style::Line | Style::Step => chart.draw_series(LineSeries::new(p, style)),
                    Style::Dashed | Style::DashedStep => {
                        chart.draw_series(DashedLineSeries::new(p, 6, 4, style))
                    }
                    Style::Dots => chart.draw_series(
                        p.into_iter()
                            .map(|xy| Circle::new(xy, 2, color.filled()).into_dyn()),
                    ),
                };
                drawn
                    .map_err(err)?
                    .label(l.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight)
        })
    }
}

impl BarChart {
    pub fn render(&self) -> Result<String> {
        let n = self.groups.len().max(1);
        let top = self
            .values
            .iter()
            .flatten()
            .flatten()
            .map(|b| b.hi.max(b.value))
            .chain(self.targets.iter().map(|t| t.0))
            .fold(0.0, f64::max)
            * 1.5;
        svg(|root| {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, (FONT, 16))
                .margin(12)
                .x_label_area_size(52)
                .y_label_area_size(62)
                .build_cartesian_2d(0.0..n as f64, 0.0..top.max(1e-9))
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(self.y_label.as_str())
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(err)?;
            let width = 0.8 / self.series.len().max(1) as f64;
            for (s, (name, color)) in self.series.iter().enumerate() {
                let color = *color;
                let bars: Vec<(f64, Bar)> = self
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(g, v)| Some((g as f64 + 0.1 + s as f64 * width, (*v.get(s)?)?)))
                    .collect();
                chart
                    .draw_series(bars.iter().map(|(x, b)| {
                        Rectangle::new([(*x, 0.0), (x + width * 0.9, b.value)], color.filled())
                    }))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
                chart
                    .draw_series(bars.iter().filter(|(_, b)| b.hi > b.lo).map(|(x, b)| {
                        let mid = x + width * 0.45;
                        PathElement::new(vec![(mid, b.lo), (mid, b.hi)], BLACK.stroke_width(1))
                    }))
                    .map_err(err)?;
            }
            for (i, (value, name)) in self.targets.iter().enumerate() {
                let style = RAW.mix(0.8).stroke_width(1);
                chart
                    .draw_series(DashedLineSeries::new(
                        [(0.0, *value), (n as f64, *value)],
                        4 + 4 * i as u32,
                        4,
                        style,
                    ))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
            // Group labels centred under their bars, one text per line.
            let style =
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            for (g, label) in self.groups.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
                for (k, line) in label.lines().enumerate() {
                    root.draw(&Text::new(
                        line.to_string(),
                        (x, y + 6 + 15 * k as i32),
                        &style,
                    ))
                    .map_err(err)?;
                }
            }
            Ok(())
        })
    }
}

/// An axis label: few digits, no trailing zeros.
fn tick(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The empirical CDF of `v` (x sorted, y = fraction ≤ x).
pub fn ecdf(v: &[f64]) -> Vec<(f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, x)| (*x, (i + 1) as f64 / n))
        .collect()
}

/// Rolling median of `v` over a centered window of `w`, as (index+1, median).
pub fn rolling_median(v: &[f64], w: usize) -> Vec<(f64, f64)> {
    let n = v.len();
    (0..n)
        .filter_map(|i| {
            let win: Vec<f64> = v[i.saturating_sub(w / 2)..(i + w / 2 + 1).min(n)]
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            (!win.is_empty()).then(|| ((i + 1) as f64, crate::stats::median(&win)))
        })
        .collect()
}

//! Hand-written SVG charts (no dependencies, no downloads): line/scatter
//! charts with linear or log axes and grouped bar charts with min–max
//! whiskers.

use std::fmt::Write;

pub const LANBRIDGE: &str = "#1f77b4";
pub const LANBRIDGE_LIGHT: &str = "#9ecae1";
pub const REFERENCE: &str = "#ff7f0e";
pub const REFERENCE_LIGHT: &str = "#fdd0a2";
pub const RAW: &str = "#555555";
pub const EXTRA: &str = "#2ca02c";

const W: f64 = 760.0;
/// Height of the plot area; the picture grows below it for the legend.
const PH: f64 = 330.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
/// From the plot's bottom edge to the first legend row.
const UNDER: f64 = 62.0;
const ROW: f64 = 17.0;
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a line series is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    /// Step line (for cumulative distributions).
    Step,
    Dots,
    Dashed,
}

pub struct LineSeries {
    pub name: String,
    pub color: &'static str,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub y_from_zero: bool,
    pub series: Vec<LineSeries>,
}

#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(1e-12).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut t = Vec::new();
            let mut decade = 10f64.powf(self.lo.log10().floor());
            while decade <= self.hi * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let v = decade * m;
                    if v >= self.lo * 0.9999 && v <= self.hi * 1.0001 {
                        t.push(v);
                    }
                }
                decade *= 10.0;
            }
            t
        } else {
            let step = nice_step((self.hi - self.lo) / 6.0);
            let mut v = (self.lo / step).ceil() * step;
            let mut t = Vec::new();
            while v <= self.hi + step * 1e-6 {
                t.push(v);
                v += step;
            }
            t
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

pub fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_string()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The whole picture: header (its height depends on the legend), body, legend.
fn finish(title: &str, body: &str, items: &[(&str, &str, Swatch)]) -> String {
    let (legend, rows) = legend_below(items);
    let h = TOP + PH + UNDER + rows as f64 * ROW;
    let mut out = String::new();
    header(&mut out, title, h);
    out.push_str(body);
    out.push_str(&legend);
    out.push_str("</svg>\n");
    out
}

fn header(out: &mut String, title: &str, h: f64) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" {FONT} font-size=\"12\">"
    );
    let _ = writeln!(out, "<rect width=\"{W}\" height=\"{h}\" fill=\"white\"/>");
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        W / 2.0,
        esc(title)
    );
}

fn frame(out: &mut String, x: Axis, y: Axis, x_label: &str, y_label: &str, x_ticks: bool) {
    let (pw, ph) = (W - LEFT - RIGHT, PH);
    for t in y.ticks() {
        let py = TOP + ph * (1.0 - y.frac(t));
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e5e5e5\"/>",
            LEFT + pw
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            py + 4.0,
            fmt_tick(t)
        );
    }
    if x_ticks {
        for t in x.ticks() {
            let px = LEFT + pw * x.frac(t);
            let _ = writeln!(
                out,
                "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#efefef\"/>",
                TOP + ph
            );
            let _ = writeln!(
                out,
                "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + ph + 16.0,
                fmt_tick(t)
            );
        }
    }
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#333\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + pw / 2.0,
        TOP + ph + 36.0,
        esc(x_label)
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(16,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + ph / 2.0,
        esc(y_label)
    );
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    Line,
    Dashed,
    Dot,
    Box,
}

/// Legend entries under the plot, wrapped into rows; the SVG and the
/// number of rows.
fn legend_below(items: &[(&str, &str, Swatch)]) -> (String, usize) {
    let width = |n: &str| n.chars().count() as f64 * 6.2 + 40.0;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0.0;
    for (i, (name, _, _)) in items.iter().enumerate() {
        let w = width(name);
        if used + w > W - 20.0 && !rows.last().expect("a row").is_empty() {
            rows.push(Vec::new());
            used = 0.0;
        }
        rows.last_mut().expect("a row").push(i);
        used += w;
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        let total: f64 = row.iter().map(|&i| width(items[i].0)).sum();
        let mut x = ((W - total) / 2.0).max(4.0);
        let y = TOP + PH + UNDER - 6.0 + r as f64 * ROW;
        for &i in row {
            let (name, color, swatch) = items[i];
            let _ = match swatch {
                Swatch::Box => writeln!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"16\" height=\"10\" fill=\"{color}\"/>",
                    y - 9.0
                ),
                Swatch::Dot => writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                    x + 8.0,
                    y - 4.0
                ),
                Swatch::Line | Swatch::Dashed => writeln!(
                    out,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"3\"{}/>",
                    y - 4.0,
                    x + 20.0,
                    y - 4.0,
                    if swatch == Swatch::Dashed { " stroke-dasharray=\"5,3\"" } else { "" }
                ),
            };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"11\">{}</text>",
                x + 25.0,
                esc(name)
            );
            x += width(name);
        }
    }
    (out, rows.len())
}

impl LineChart {
    pub fn render(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || *x > 0.0))
            .collect();
        let mut out = String::new();
        if pts.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>",
                W / 2.0,
                TOP + PH / 2.0
            );
            return finish(&self.title, &out, &[]);
        }
        let (mut xlo, mut xhi) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (mut ylo, mut yhi) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        if self.log_x {
            xlo = 10f64.powf(xlo.log10().floor());
            xhi = 10f64.powf(xhi.log10().ceil());
        } else if xhi <= xlo {
            xhi = xlo + 1.0;
        }
        if self.y_from_zero {
            ylo = 0.0;
        }
        if yhi <= ylo {
            yhi = ylo + 1.0;
        }
        // Headroom so that no line runs along the frame (fractions end at 1).
        if yhi > 1.0 {
            yhi += (yhi - ylo) * 0.04;
        }
        let ystep = nice_step((yhi - ylo) / 6.0);
        yhi = (yhi / ystep).ceil() * ystep;
        let x = Axis {
            lo: xlo,
            hi: xhi,
            log: self.log_x,
        };
        let y = Axis {
            lo: ylo,
            hi: yhi,
            log: false,
        };
        frame(&mut out, x, y, &self.x_label, &self.y_label, true);
        let (pw, ph) = (W - LEFT - RIGHT, PH);
        let px = |v: f64| LEFT + pw * x.frac(v);
        let py = |v: f64| TOP + ph * (1.0 - y.frac(v));
        for s in &self.series {
            let p: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(a, b)| a.is_finite() && b.is_finite() && (!self.log_x || *a > 0.0))
                .collect();
            if p.is_empty() {
                continue;
            }
            match s.style {
                Style::Dots => {
                    for (a, b) in &p {
                        let _ = writeln!(
                            out,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.8\" fill=\"{}\" fill-opacity=\"0.55\"/>",
                            px(*a),
                            py(*b),
                            s.color
                        );
                    }
                }
                Style::Line | Style::Dashed | Style::Step => {
                    let mut d = String::new();
                    for (i, (a, b)) in p.iter().enumerate() {
                        if i == 0 {
                            let _ = write!(d, "M{:.1},{:.1}", px(*a), py(*b));
                        } else if s.style == Style::Step {
                            let _ = write!(d, " H{:.1} V{:.1}", px(*a), py(*b));
                        } else {
                            let _ = write!(d, " L{:.1},{:.1}", px(*a), py(*b));
                        }
                    }
                    let dash = if s.style == Style::Dashed {
                        " stroke-dasharray=\"6,4\""
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        out,
                        "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}/>",
                        s.color
                    );
                }
            }
        }
        let items: Vec<(&str, &str, Swatch)> = self
            .series
            .iter()
            .map(|s| {
                let swatch = match s.style {
                    Style::Dashed => Swatch::Dashed,
                    Style::Dots => Swatch::Dot,
                    Style::Line | Style::Step => Swatch::Line,
                };
                (s.name.as_str(), s.color, swatch)
            })
            .collect();
        finish(&self.title, &out, &items)
    }
}

/// The empirical CDF of `v` as step points (x sorted, y = fraction ≤ x).
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
            let lo = i.saturating_sub(w / 2);
            let hi = (i + w / 2 + 1).min(n);
            let win: Vec<f64> = v[lo..hi]
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            (!win.is_empty()).then(|| ((i + 1) as f64, crate::stats::median(&win)))
        })
        .collect()
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
    pub groups: Vec<String>,
    /// (name, color); `values[group][series]`.
    pub series: Vec<(String, &'static str)>,
    pub values: Vec<Vec<Option<Bar>>>,
    /// Horizontal lines: (value, label).
    pub targets: Vec<(f64, String)>,
}

impl BarChart {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut yhi = self
            .values
            .iter()
            .flatten()
            .flatten()
            .map(|b| b.hi.max(b.value))
            .fold(0.0, f64::max);
        for (t, _) in &self.targets {
            yhi = yhi.max(*t);
        }
        if yhi <= 0.0 {
            yhi = 1.0;
        }
        let step = nice_step(yhi * 1.15 / 6.0);
        yhi = (yhi * 1.15 / step).ceil() * step;
        let y = Axis {
            lo: 0.0,
            hi: yhi,
            log: false,
        };
        let x = Axis {
            lo: 0.0,
            hi: 1.0,
            log: false,
        };
        frame(&mut out, x, y, "", &self.y_label, false);
        let (pw, ph) = (W - LEFT - RIGHT, PH);
        let py = |v: f64| TOP + ph * (1.0 - y.frac(v));
        let ng = self.groups.len().max(1) as f64;
        let ns = self.series.len().max(1) as f64;
        let gw = pw / ng;
        let bw = gw * 0.8 / ns;
        for (g, name) in self.groups.iter().enumerate() {
            let gx = LEFT + gw * g as f64;
            // A label may have several lines ("\n").
            for (k, line) in name.lines().enumerate() {
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" font-size=\"11\">{}</text>",
                    gx + gw / 2.0,
                    TOP + ph + 18.0 + k as f64 * 14.0,
                    esc(line)
                );
            }
            // The group's bars side by side, centred: a series without a
            // value here (a setup without this path) leaves no gap.
            let present: Vec<(usize, Bar)> = (0..self.series.len())
                .filter_map(|s| {
                    let b = self
                        .values
                        .get(g)
                        .and_then(|v| v.get(s))
                        .copied()
                        .flatten()?;
                    Some((s, b))
                })
                .collect();
            let shift = (ns - present.len() as f64) / 2.0;
            for (slot, (s, b)) in present.into_iter().enumerate() {
                let color = self.series[s].1;
                let bx = gx + gw * 0.1 + bw * (slot as f64 + shift);
                let top = py(b.value);
                let _ = writeln!(
                    out,
                    "<rect x=\"{bx:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                    bw * 0.92,
                    (TOP + ph - top).max(0.0)
                );
                let cx = bx + bw * 0.46;
                let _ = writeln!(
                    out,
                    "<line x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>",
                    py(b.lo),
                    py(b.hi)
                );
                for v in [b.lo, b.hi] {
                    let _ = writeln!(
                        out,
                        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#222\"/>",
                        cx - 4.0,
                        py(v),
                        cx + 4.0,
                        py(v)
                    );
                }
                let _ = writeln!(
                    out,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                    py(b.hi) - 4.0,
                    bar_label(b.value)
                );
            }
        }
        for (t, label) in &self.targets {
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-dasharray=\"6,4\" stroke-width=\"1.5\"/>",
                py(*t),
                LEFT + pw,
                py(*t)
            );
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#d62728\">{}</text>",
                LEFT + pw - 4.0,
                py(*t) - 4.0,
                esc(label)
            );
        }
        let items: Vec<(&str, &str, Swatch)> = self
            .series
            .iter()
            .map(|(n, c)| (n.as_str(), *c, Swatch::Box))
            .collect();
        finish(&self.title, &out, &items)
    }
}

/// A bar's label: three significant digits at most.
fn bar_label(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_well_formed_svg() {
        let c = LineChart {
            title: "t <&>".into(),
            x_label: "ms".into(),
            y_label: "fraction".into(),
            log_x: true,
            y_from_zero: true,
            series: vec![LineSeries {
                name: "a".into(),
                color: LANBRIDGE,
                style: Style::Step,
                points: ecdf(&[1.0, 2.0, 30.0]),
            }],
        }
        .render();
        assert!(c.starts_with("<svg") && c.trim_end().ends_with("</svg>"));
        assert!(c.contains("t &lt;&amp;&gt;"));
        let b = BarChart {
            title: "b".into(),
            y_label: "Gbit/s".into(),
            groups: vec!["g".into()],
            series: vec![("s".into(), RAW)],
            values: vec![vec![Some(Bar {
                value: 1.0,
                lo: 0.5,
                hi: 1.5,
            })]],
            targets: vec![(1.2, "target".into())],
        }
        .render();
        assert!(b.contains("<rect") && b.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn log_ticks_cover_the_range() {
        let a = Axis {
            lo: 1.0,
            hi: 1000.0,
            log: true,
        };
        let t = a.ticks();
        assert_eq!(t.first(), Some(&1.0));
        assert_eq!(t.last(), Some(&1000.0));
    }
}

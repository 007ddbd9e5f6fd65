//! The rows of the results table, one per metric of
//! `bench/templates/metrics.yaml` (where its figures are, how they print, its
//! target and how "met" is judged), with the numbers behind the cells (what
//! the repository keeps as the run's summary).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use lanbridge_common::{PROG_FROM_POD, PROG_FROM_UPLINK};
use minijinja::value::Serde;
use minijinja::{context, Environment, Value as J};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::Results;
use crate::ebpf_cost::{twin_name, TWIN_PREFIX};
use crate::stats::{Series, Summary};
use crate::traffic::Measured;

/// The metrics and their targets.
#[derive(Deserialize)]
pub struct Table {
    pub targets: BTreeMap<String, f64>,
    kinds: Map<String, Value>,
    metrics: Vec<Value>,
}

pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    serde_norway::from_str(include_str!("../../templates/metrics.yaml")).expect("metrics.yaml")
});

/// One entry of the table, its kind's defaults filled in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metric {
    name: String,
    each: Option<String>,
    pair: Option<String>,
    cols: Option<[Option<String>; 3]>,
    unit: Option<String>,
    digits: Option<usize>,
    cells: Option<[Option<String>; 3]>,
    ratio: Option<String>,
    target: Option<String>,
    met: Option<String>,
    when: Option<String>,
    #[serde(default)]
    headline: bool,
    why: Option<String>,
}

impl Metric {
    /// `m` with the keys it lacks taken from its kind (and the kind's kind).
    fn of(m: &Value) -> Metric {
        let mut m = m.as_object().cloned().unwrap_or_default();
        while let Some(Value::String(kind)) = m.remove("kind") {
            for (k, v) in TABLE.kinds[&kind].as_object().into_iter().flatten() {
                m.entry(k).or_insert(v.clone());
            }
        }
        serde_json::from_value(Value::Object(m)).expect("a metric of metrics.yaml")
    }

    fn cols(&self) -> [Option<String>; 3] {
        match (&self.pair, &self.cols) {
            (Some(p), _) => [
                Some(format!("{p}.lanbridge")),
                Some(format!("{p}.reference")),
                None,
            ],
            (None, Some(c)) => c.clone(),
            _ => Default::default(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Met {
    Yes,
    No,
    Na,
}

impl Met {
    pub fn of(ok: bool) -> Met {
        [Met::No, Met::Yes][usize::from(ok)]
    }

    pub fn text(self) -> &'static str {
        match self {
            Met::Yes => "✅ yes",
            Met::No => "❌ no",
            Met::Na => "—",
        }
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
    pub stats: BTreeMap<&'static str, Summary>,
    /// The paragraph of "Targets not met, and why" a miss calls for.
    #[serde(skip)]
    pub why: Option<String>,
}

fn met_text<S: serde::Serializer>(m: &Met, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.text())
}

const COLUMNS: [&str; 3] = ["lanbridge", "reference", "raw"];

/// `12.3 ms [11.9–12.8]`: median over all samples, and the range of the
/// per-repetition medians (or p10–p90, marked, with a single repetition).
fn fmt_sum(s: &Series, unit: &str, d: usize) -> String {
    let fail = match s.failures {
        0 => String::new(),
        n => format!(" ({n} failed)"),
    };
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

/// The results as the table's paths see them: traffic by path and setup
/// (`tput.PodToLan.lb_lan`), and `ebpf_runs`, one per program and load
/// that ran (the empty twins beside their program).
pub fn view(res: &Results) -> Value {
    let mut v = serde_json::to_value(res).unwrap_or_default();
    let by_path = |list: &[Measured]| {
        let mut m = Map::new();
        for x in list {
            let path = m.entry(format!("{:?}", x.path)).or_insert(json!({}));
            path[&x.setup] = json!(x.series);
        }
        Value::Object(m)
    };
    if let Some(t) = &res.traffic {
        v["tput"] = by_path(&t.throughput);
        v["pps"] = by_path(&t.pps);
        v["rtt"] = by_path(&t.rtt);
    }
    let mut runs = Vec::new();
    for l in res.ebpf.iter().flat_map(|e| &e.loads) {
        let twin = |name: &str| l.programs.iter().find(|c| c.program == name)?.ns_per_run();
        for c in l.programs.iter() {
            let Some(ns) = c
                .ns_per_run()
                .filter(|_| !c.program.starts_with(TWIN_PREFIX))
            else {
                continue;
            };
            let fast = [PROG_FROM_POD, PROG_FROM_UPLINK].contains(&c.program.as_str());
            runs.push(json!({
                "program": c.program, "load": l.load, "mode": l.mode, "runs": c.runs,
                "ns": ns, "twin_ns": twin(&twin_name(&c.program)), "fast": l.fast_path() && fast,
            }));
        }
    }
    v["ebpf_runs"] = Value::Array(runs);
    v
}

/// The value at `path` (`a.b.0`) under `root`, or under the item `x`.
fn at<'a>(root: &'a Value, x: &'a Value, path: &str) -> Option<&'a Value> {
    let mut keys = path.split('.');
    let first = keys.next()?;
    let start = if first == "x" { x } else { root.get(first)? };
    keys.try_fold(start, |v, k| match v {
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        v => v.get(k),
    })
}

/// Every row of the results' [`view`], in the table's order; `med` is the
/// view with each series replaced by its median (what names are rendered over).
pub fn rows(view: &Value, env: &Environment, med: &J) -> Vec<Row> {
    let mut rows = Vec::new();
    for m in TABLE.metrics.iter().map(Metric::of) {
        let items = match &m.each {
            Some(list) => view[list].as_array().cloned().unwrap_or_default(),
            None => vec![Value::Null],
        };
        for (i, x) in items.iter().enumerate() {
            if let Some(row) = row(&m, view, x, env, med) {
                rows.push(Row {
                    headline: m.headline && i == 0,
                    ..row
                });
            }
        }
    }
    rows
}

fn row(m: &Metric, view: &Value, x: &Value, env: &Environment, medians: &J) -> Option<Row> {
    let cols = m.cols().map(|p| p.and_then(|p| at(view, x, &p)));
    if cols.iter().all(Option::is_none) {
        return None;
    }
    // A column of samples is its median; any other value is itself.
    let series = cols.map(|c| {
        c.filter(|c| c.get("reps").is_some())
            .and_then(|c| serde_json::from_value::<Series>(c.clone()).ok())
    });
    let figs = [0, 1, 2].map(|k| match (&series[k], cols[k]) {
        (Some(s), _) => J::from(med(s)),
        (None, Some(v)) => J::from(Serde(v)),
        (None, None) => J::from(()),
    });
    let failures = series[0].as_ref().map_or(0, |s| s.failures);
    let base = context! {
        lb => figs[0].clone(), raw => figs[2].clone(), x => J::from(Serde(x)),
        lb_failures => failures, tg => J::from(Serde(&TABLE.targets)),
        from_pod => PROG_FROM_POD, ..medians.clone()
    };
    let ctx = context! { ..J::from(BTreeMap::from([("ref", figs[1].clone())])), ..base };
    // A figure the template needs is missing: "—".
    let render = |t: Option<&String>| {
        let text = t.and_then(|t| env.render_str(t, ctx.clone()).ok());
        text.unwrap_or_else(|| "—".into())
    };
    if let Some(when) = &m.when {
        let expr = env.compile_expression(when).ok()?;
        expr.eval(ctx.clone()).ok().filter(|v| v.is_true())?;
    }
    let (unit, digits) = (m.unit.as_deref().unwrap_or(""), m.digits.unwrap_or(0));
    let mut row = Row {
        metric: render(Some(&m.name)),
        lanbridge: String::new(),
        reference: String::new(),
        raw: String::new(),
        ratio: render(m.ratio.as_ref()),
        target: render(m.target.as_ref()),
        met: m.met.as_ref().map_or(Met::Na, |e| {
            let v = env.compile_expression(e).and_then(|e| e.eval(ctx.clone()));
            v.ok()
                .filter(|v| !v.is_none())
                .map_or(Met::Na, |v| Met::of(v.is_true()))
        }),
        headline: false,
        stats: BTreeMap::new(),
        why: m.why.clone(),
    };
    let cells = [&mut row.lanbridge, &mut row.reference, &mut row.raw];
    for (k, cell) in cells.into_iter().enumerate() {
        let sum = series[k].as_ref().map(|s| fmt_sum(s, unit, digits));
        let tpl = m.cells.as_ref().and_then(|c| c[k].as_ref());
        *cell = match (tpl, &sum) {
            (Some(t), _) if cols[k].is_some() => {
                let c = context! { v => figs[k].clone(), sum => sum.clone(), ..ctx.clone() };
                env.render_str(t, c).unwrap_or_else(|_| "—".into())
            }
            (None, Some(sum)) => sum.clone(),
            _ => "—".into(),
        };
        if let Some(st) = series[k].as_ref().and_then(Series::summary) {
            row.stats.insert(COLUMNS[k], st);
        }
    }
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_parses_and_its_templates_compile() {
        let env = super::super::environment().expect("environment");
        for m in TABLE.metrics.iter().map(Metric::of) {
            let templates = [Some(&m.name), m.ratio.as_ref(), m.target.as_ref()];
            let cells = m.cells.iter().flatten().flatten();
            for t in templates.into_iter().flatten().chain(cells) {
                env.template_from_str(t)
                    .unwrap_or_else(|e| panic!("{}: {t}: {e}", m.name));
            }
            for e in m.met.iter().chain(&m.when) {
                env.compile_expression(e)
                    .unwrap_or_else(|err| panic!("{}: {e}: {err}", m.name));
            }
            assert!(
                m.pair.is_some() != m.cols.is_some(),
                "{}: pair or cols",
                m.name
            );
        }
    }
}

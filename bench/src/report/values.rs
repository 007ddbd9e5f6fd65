//! The numbers the report's prose quotes, for the template: the results
//! with every series replaced by its median (`med.latency.warm_add.lanbridge`,
//! `null` without samples), traffic by path and setup
//! (`med.tput.PodToLan.lb_lan`), and the few figures a median does not give.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::Results;
use crate::ebpf_cost::twin_name;
use crate::latency::growth_ratio;
use crate::stats::Series;
use crate::traffic::{Measured, Path, SETUPS};
use lanbridge_common::PROG_FROM_POD;

pub fn medians(res: &Results) -> Value {
    let mut v = serde_json::to_value(res).unwrap_or_default();
    squash(&mut v);
    let t = res.traffic.as_ref();
    for (key, list) in [
        ("tput", t.map(|t| &t.throughput)),
        ("pps", t.map(|t| &t.pps)),
        ("rtt", t.map(|t| &t.rtt)),
    ] {
        v[key] = by_path(list.map_or(&[][..], Vec::as_slice));
    }
    v
}

/// Replaces every serialized [`Series`] under `v` by its median.
fn squash(v: &mut Value) {
    if v.get("reps").is_some() && v.get("failures").is_some() {
        let s: Option<Series> = serde_json::from_value(v.clone()).ok();
        *v = json!(s.and_then(|s| s.summary()).map(|m| m.median));
        return;
    }
    match v {
        Value::Object(o) => o.values_mut().for_each(squash),
        Value::Array(a) => a.iter_mut().for_each(squash),
        _ => {}
    }
}

/// `{path: {setup: median}}`, `null` for every path and setup not measured.
fn by_path(list: &[Measured]) -> Value {
    let mut m = Map::new();
    for path in Path::ALL {
        let setups = SETUPS.map(|k| (k.to_string(), Value::Null));
        m.insert(
            format!("{path:?}"),
            Value::Object(setups.into_iter().collect()),
        );
    }
    for x in list {
        m[&format!("{:?}", x.path)][&x.setup] = json!(x.series.summary().map(|s| s.median));
    }
    Value::Object(m)
}

/// What the Issue 15 lines need beyond medians.
#[derive(Serialize)]
pub struct Figures {
    /// ADD growth (first tenth, last tenth, ratio) of lanbridge and the reference.
    pub growth: [Option<(f64, f64, f64)>; 2],
    /// `lb_from_pod` beside its empty twin under the fast-path loads and
    /// the others: "load (mode)", ns per run of the program and of the twin.
    pub twins: [Vec<(String, f64, f64)>; 2],
}

pub fn figures(res: &Results) -> Figures {
    let g = res.latency.as_ref().map(|l| &l.growth_add);
    let mut twins = [Vec::new(), Vec::new()];
    for load in res.ebpf.iter().flat_map(|e| &e.loads) {
        let ns = |name: &str| {
            let c = load.programs.iter().find(|c| c.program == name);
            c.and_then(|c| c.ns_per_run())
        };
        if let (Some(p), Some(e)) = (ns(PROG_FROM_POD), ns(&twin_name(PROG_FROM_POD))) {
            let name = format!("{} ({})", load.load, load.mode);
            twins[usize::from(!load.fast_path())].push((name, p, e));
        }
    }
    Figures {
        growth: [
            g.and_then(|g| growth_ratio(&g.lanbridge)),
            g.and_then(|g| growth_ratio(&g.reference)),
        ],
        twins,
    }
}

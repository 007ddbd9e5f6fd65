//! The Criterion micro-benchmarks' latest estimates
//! (`<target>/criterion/**/new/{benchmark,estimates}.json`), for the report.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Micro {
    pub id: String,
    /// ns per iteration: median and its 95 % confidence interval.
    pub median_ns: f64,
    pub lo_ns: f64,
    pub hi_ns: f64,
    /// Bytes per iteration when the benchmark declared a throughput.
    pub bytes: Option<u64>,
}

pub fn read(dir: &Path) -> Vec<Micro> {
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

fn walk(dir: &Path, out: &mut Vec<Micro>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") {
            if let Some(m) = one(&p) {
                out.push(m);
            }
        } else if p.file_name().is_none_or(|n| n != "report" && n != "base") {
            walk(&p, out);
        }
    }
}

fn one(new: &Path) -> Option<Micro> {
    let bench: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new.join("benchmark.json")).ok()?).ok()?;
    let est: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new.join("estimates.json")).ok()?).ok()?;
    let m = &est["median"];
    Some(Micro {
        id: bench["full_id"].as_str()?.to_string(),
        median_ns: m["point_estimate"].as_f64()?,
        lo_ns: m["confidence_interval"]["lower_bound"]
            .as_f64()
            .unwrap_or(f64::NAN),
        hi_ns: m["confidence_interval"]["upper_bound"]
            .as_f64()
            .unwrap_or(f64::NAN),
        bytes: bench["throughput"]["Bytes"].as_u64(),
    })
}

//! Summaries of repeated measurements: the median over every sample, and the
//! spread of the per-repetition medians (min–max), which is what says how
//! much a noisy machine moved the number between repetitions.

use serde::{Deserialize, Serialize};

/// Samples of one metric, grouped by repetition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    pub reps: Vec<Vec<f64>>,
    /// Failed attempts (not in the samples).
    pub failures: usize,
    /// The first failure message, if any.
    pub first_failure: Option<String>,
}

impl Series {
    pub fn new() -> Series {
        Series::default()
    }

    /// Starts a new repetition.
    pub fn next_rep(&mut self) {
        self.reps.push(Vec::new());
    }

    pub fn push(&mut self, v: f64) {
        if self.reps.is_empty() {
            self.reps.push(Vec::new());
        }
        self.reps.last_mut().expect("a repetition").push(v);
    }

    pub fn fail(&mut self, why: String) {
        self.failures += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(why);
        }
    }

    pub fn all(&self) -> Vec<f64> {
        self.reps.iter().flatten().copied().collect()
    }

    /// `None` without samples.
    pub fn summary(&self) -> Option<Summary> {
        let mut all = self.all();
        all.sort_by(f64::total_cmp);
        let q = |q| quantile_sorted(&all, q);
        let reps = self.reps.iter().filter(|r| !r.is_empty());
        let rep_medians: Vec<f64> = reps.map(|r| median(r)).collect();
        Some(Summary {
            median: q(0.5),
            min: *all.first()?,
            max: *all.last()?,
            q1: q(0.25),
            q3: q(0.75),
            n: all.len(),
            failures: self.failures,
            p10: q(0.1),
            p90: q(0.9),
            rep_min: rep_medians.iter().copied().fold(f64::INFINITY, f64::min),
            rep_max: rep_medians
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
            reps: rep_medians.len(),
        })
    }
}

/// What the samples of a series say. Serialized (what the repository keeps
/// of each cell of the results table): median, min, max, quartiles, the
/// number of samples and of failures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
    pub failures: usize,
    #[serde(skip)]
    pub p10: f64,
    #[serde(skip)]
    pub p90: f64,
    /// Smallest and largest per-repetition median, and how many repetitions.
    #[serde(skip)]
    pub rep_min: f64,
    #[serde(skip)]
    pub rep_max: f64,
    #[serde(skip)]
    pub reps: usize,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    quantile_sorted(&s, 0.5)
}

/// Linear-interpolated quantile of sorted data.
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_rep_spread() {
        let mut s = Series::new();
        s.next_rep();
        for v in [1.0, 2.0, 3.0] {
            s.push(v);
        }
        s.next_rep();
        for v in [10.0, 20.0] {
            s.push(v);
        }
        let m = s.summary().expect("samples");
        assert_eq!(m.n, 5);
        assert_eq!(m.median, 3.0);
        assert_eq!(m.rep_min, 2.0);
        assert_eq!(m.rep_max, 15.0);
        assert_eq!(m.reps, 2);
    }
}

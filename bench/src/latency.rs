//! Section 1: ADD and DEL latency in subnet mode with host-local, lanbridge
//! and the reference `bridge` side by side on two identical nodes, A/B
//! interleaved (who goes first alternates), plus the peak RSS of each
//! invocation (section 5).

use std::time::Duration;

use lanbridge_tests::netns::Netns;
use lanbridge_tests::process;
use lanbridge_tests::testbed::Net;
use serde::{Deserialize, Serialize};

use crate::ab::{self, rotation, Pair};
use crate::stats::{median, Series};
use crate::{guard, progress, Params, Pool};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// `nsenter --net=<node> /bin/true`, ms: the floor of any invocation.
    pub exec_floor: Series,
    /// The first ADD on a node (creates the bridge, loads/pins the eBPF programs).
    pub cold_add: Pair,
    pub warm_add: Pair,
    pub warm_del: Pair,
    pub seq_add: Pair,
    pub seq_del: Pair,
    pub par_add: Pair,
    pub par_del: Pair,
    /// Wall time of a whole concurrent batch, s.
    pub par_add_wall: Pair,
    pub par_del_wall: Pair,
    /// ADD / DEL latency of the n-th pod on one bridge (NaN: failed).
    pub growth_add: Pair<Vec<f64>>,
    pub growth_del: Pair<Vec<f64>>,
    /// Peak RSS of single ADD / DEL invocations, KiB.
    pub rss_add: Pair,
    pub rss_del: Pair,
    pub seq_pods: usize,
    pub par_pods: usize,
    pub par_workers: usize,
    pub growth_pods: usize,
}

/// Section 1. `nets[0]` is lanbridge, `nets[1]` the reference, each on its
/// own node; `pools[k]` are `nets[k]`'s pods.
pub fn run(p: &Params, nets: &[Net; 2], pools: &[Pool; 2], nodes: &[Netns; 2]) -> Latency {
    let mut l = Latency {
        seq_pods: p.seq_pods,
        par_pods: p.par_pods,
        par_workers: p.par_workers,
        growth_pods: p.growth_pods,
        ..Latency::default()
    };
    progress("latency: exec floor (nsenter /bin/true)");
    for i in 0..20 {
        let mut cmd = nodes[i % 2].command("/bin/true");
        let out = process::run(cmd.env_clear(), Some(b""), Duration::from_secs(10));
        if out.success() {
            l.exec_floor.push(out.ms());
        }
    }

    progress("latency: cold ADD (bridge, programs) and warm-up");
    for k in rotation(2, 0) {
        for w in 0..3 {
            let (cid, mut throwaway) = (format!("warmup{w}"), Series::new());
            let lat = if w == 0 {
                l.cold_add.at(k)
            } else {
                &mut throwaway
            };
            let prev = ab::add(&nets[k], &cid, &pools[k][0], lat, None);
            ab::del(
                &nets[k],
                &cid,
                &pools[k][0],
                prev.as_ref(),
                &mut Series::new(),
                None,
            );
        }
    }

    progress(&format!(
        "latency: 1 pod warm, {} ADD/DEL each",
        p.warm_iters
    ));
    // Three repetitions of a third each, for the spread.
    let rec = [
        &mut l.warm_add,
        &mut l.warm_del,
        &mut l.rss_add,
        &mut l.rss_del,
    ];
    ab::rounds(
        nets,
        pools,
        p.warm_iters,
        (p.warm_iters / 3).max(1),
        "warm",
        rec,
    );

    for rep in 0..p.seq_reps {
        let (n, reps) = (p.seq_pods, p.seq_reps);
        progress(&format!(
            "latency: {n} pods sequential, repetition {}/{reps}",
            rep + 1
        ));
        l.seq_add.at(0).next_rep();
        l.seq_add.at(1).next_rep();
        l.seq_del.at(0).next_rep();
        l.seq_del.at(1).next_rep();
        add_then_del(
            nets,
            pools,
            n,
            rep,
            &format!("seq{rep}-"),
            &mut l.seq_add,
            &mut l.seq_del,
        );
    }

    for rep in 0..p.par_reps {
        let (n, w, reps) = (p.par_pods, p.par_workers, p.par_reps);
        progress(&format!(
            "latency: {n} pods {w} at a time, repetition {}/{reps}",
            rep + 1
        ));
        for k in rotation(2, rep) {
            let mut rec = [
                &mut l.par_add,
                &mut l.par_add_wall,
                &mut l.par_del,
                &mut l.par_del_wall,
            ]
            .map(|s| s.at(k));
            for s in rec.iter_mut() {
                s.next_rep();
            }
            ab::batch(
                &nets[k],
                &pools[k],
                (n, w),
                &format!("par{rep}-"),
                rec,
                |_| {},
            );
        }
    }

    progress(&format!(
        "latency: growth, {} pods on one bridge",
        p.growth_pods
    ));
    let (mut add, mut del) = (Pair::default(), Pair::default());
    [l.growth_add, l.growth_del] =
        add_then_del(nets, pools, p.growth_pods, 0, "grow", &mut add, &mut del);
    l
}

/// ADDs pods `0..n` of both plugins, then DELs them, interleaved (who goes
/// first alternates, starting at `turn`), container ids `<tag><pod>`; every
/// invocation is recorded in `add` / `del`. Returns each pod's ADD and DEL
/// ms (NaN: failed or not run).
fn add_then_del(
    nets: &[Net; 2],
    pools: &[Pool; 2],
    n: usize,
    turn: usize,
    tag: &str,
    add: &mut Pair,
    del: &mut Pair,
) -> [Pair<Vec<f64>>; 2] {
    let mut ms: [Pair<Vec<f64>>; 2] = Default::default();
    let mut prevs = [vec![None; n], vec![None; n]];
    for (phase, series) in [add, del].into_iter().enumerate() {
        for i in 0..n {
            if guard::interrupted() {
                break;
            }
            for k in rotation(2, i + turn) {
                let (net, pod, cid) = (&nets[k], &pools[k][i], format!("{tag}{i}"));
                let mut s = Series::new();
                if phase == 0 {
                    prevs[k][i] = ab::add(net, &cid, pod, &mut s, None);
                } else if let Some(prev) = &prevs[k][i] {
                    ab::del(net, &cid, pod, Some(prev), &mut s, None);
                }
                // This invocation's ms, also added to its plugin's series.
                let v = s.all().first().copied();
                match (v, s.first_failure) {
                    (Some(v), _) => series.at(k).push(v),
                    (None, Some(why)) => series.at(k).fail(why),
                    (None, None) => {}
                }
                ms[phase].at(k).push(v.unwrap_or(f64::NAN));
            }
        }
    }
    ms
}

/// Growth: median of the last tenth over the median of the first tenth.
pub fn growth_ratio(v: &[f64]) -> Option<(f64, f64, f64)> {
    let ok: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if ok.len() < 10 {
        return None;
    }
    let k = (ok.len() / 10).max(5);
    let (first, last) = (median(&ok[..k]), median(&ok[ok.len() - k..]));
    Some((first, last, last / first))
}

//! Section 1: ADD and DEL latency in subnet mode with host-local, lanbridge
//! and the reference `bridge` side by side on two identical nodes, A/B
//! interleaved (who goes first alternates), plus the peak RSS of each
//! invocation (section 5).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lanbridge_tests::netns::Netns;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guard;
use crate::stats::Series;
use lanbridge_tests::testbed::Net;
use lanbridge_tests::topology::NODE_UPLINK;
use lanbridge_tests::Flavor;

use crate::Params;
use crate::Pool;
use lanbridge_tests::cni::CniOutput;
use lanbridge_tests::process;

/// A metric measured for both plugins.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pair<T = Series> {
    pub lanbridge: T,
    pub reference: T,
}

impl<T> Pair<T> {
    pub fn get(&self, f: Flavor) -> &T {
        [&self.lanbridge, &self.reference][idx(f)]
    }

    pub fn get_mut(&mut self, f: Flavor) -> &mut T {
        match f {
            Flavor::Lanbridge => &mut self.lanbridge,
            Flavor::Reference => &mut self.reference,
        }
    }
}

impl Pair {
    pub fn next_rep(&mut self) {
        self.lanbridge.next_rep();
        self.reference.next_rep();
    }
}

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

/// Both flavors, the first one first on even turns.
pub fn order(turn: usize) -> [Flavor; 2] {
    if turn.is_multiple_of(2) {
        [Flavor::Lanbridge, Flavor::Reference]
    } else {
        [Flavor::Reference, Flavor::Lanbridge]
    }
}

/// `f`'s place in per-flavor arrays.
pub fn idx(f: Flavor) -> usize {
    match f {
        Flavor::Lanbridge => 0,
        Flavor::Reference => 1,
    }
}

/// A DEL that failed may leave the pod's interface behind; remove it so the
/// namespace can be reused.
pub fn scrub(pod: &Netns) {
    let _ = pod.try_ip(&["link", "del", NODE_UPLINK]);
}

/// ADD, recording latency (and RSS); the result on success.
pub fn timed_add(
    net: &Net,
    cid: &str,
    pod: &Netns,
    lat: &mut Series,
    rss: Option<&mut Series>,
) -> Option<Value> {
    let out = net.add(cid, pod);
    record(&out, lat, rss);
    if out.success() {
        Some(out.json().unwrap_or(Value::Null))
    } else {
        // Undo whatever half-happened, unmeasured.
        let _ = net.del(cid, pod, None);
        scrub(pod);
        None
    }
}

pub fn timed_del(
    net: &Net,
    cid: &str,
    pod: &Netns,
    prev: Option<&Value>,
    lat: &mut Series,
    rss: Option<&mut Series>,
) {
    let out = net.del(cid, pod, prev);
    record(&out, lat, rss);
    if !out.success() {
        scrub(pod);
    }
}

fn record(out: &CniOutput, lat: &mut Series, rss: Option<&mut Series>) {
    if out.success() {
        lat.push(out.ms());
        if let Some(r) = rss {
            r.push(out.maxrss_kib as f64);
        }
    } else {
        lat.fail(out.failure());
    }
}

/// Runs `op` over pods `0..n` with `workers` threads; returns each op's
/// outcome (by pod index) and the batch's wall time.
pub fn concurrently<T: Send>(
    n: usize,
    workers: usize,
    op: impl Fn(usize) -> T + Sync,
) -> (Vec<Option<T>>, Duration) {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n || guard::interrupted() {
                    break;
                }
                let r = op(i);
                out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let wall = start.elapsed();
    (out.into_inner().unwrap_or_else(|p| p.into_inner()), wall)
}

/// Section 1. `nets[0]` is lanbridge, `nets[1]` the reference, each on its
/// own node; `pools[i]` are `nets[i]`'s pods.
// Pod `i` indexes two pools and two result lists at once.
#[allow(clippy::needless_range_loop)]
pub fn run(p: &Params, nets: &[Net; 2], pools: &[Pool; 2], nodes: &[&Netns; 2]) -> Latency {
    let mut l = Latency {
        seq_pods: p.seq_pods,
        par_pods: p.par_pods,
        par_workers: p.par_workers,
        growth_pods: p.growth_pods,
        ..Latency::default()
    };
    crate::progress("latency: exec floor (nsenter /bin/true)");
    for i in 0..20 {
        let node = nodes[i % 2];
        let out = process::run(
            node.command("/bin/true").env_clear(),
            Some(b""),
            Duration::from_secs(10),
        );
        if out.success() {
            l.exec_floor.push(out.ms());
        }
    }

    crate::progress("latency: cold ADD (bridge, programs) and warm-up");
    for f in order(0) {
        let net = &nets[idx(f)];
        let pod = &pools[idx(f)][0];
        for k in 0..3 {
            let cid = format!("warmup{k}");
            let mut throwaway = Series::new();
            let lat = if k == 0 {
                l.cold_add.get_mut(f)
            } else {
                &mut throwaway
            };
            let prev = timed_add(net, &cid, pod, lat, None);
            timed_del(net, &cid, pod, prev.as_ref(), &mut Series::new(), None);
        }
    }

    crate::progress(&format!(
        "latency: 1 pod warm, {} ADD/DEL each",
        p.warm_iters
    ));
    // Three repetitions of a third each, for the spread.
    let chunk = (p.warm_iters / 3).max(1);
    for i in 0..p.warm_iters {
        if guard::interrupted() {
            break;
        }
        if i.is_multiple_of(chunk) {
            for s in [
                &mut l.warm_add,
                &mut l.warm_del,
                &mut l.rss_add,
                &mut l.rss_del,
            ] {
                s.next_rep();
            }
        }
        for f in order(i) {
            let net = &nets[idx(f)];
            let pod = &pools[idx(f)][0];
            let cid = format!("warm{i}");
            let prev = timed_add(
                net,
                &cid,
                pod,
                l.warm_add.get_mut(f),
                Some(l.rss_add.get_mut(f)),
            );
            if prev.is_some() {
                timed_del(
                    net,
                    &cid,
                    pod,
                    prev.as_ref(),
                    l.warm_del.get_mut(f),
                    Some(l.rss_del.get_mut(f)),
                );
            }
        }
    }

    for rep in 0..p.seq_reps {
        crate::progress(&format!(
            "latency: {} pods sequential, repetition {}/{}",
            p.seq_pods,
            rep + 1,
            p.seq_reps
        ));
        l.seq_add.next_rep();
        l.seq_del.next_rep();
        let tag = format!("seq{rep}-");
        let (add, del) = (&mut l.seq_add, &mut l.seq_del);
        add_then_del(nets, pools, p.seq_pods, rep, &tag, add, del);
    }

    for rep in 0..p.par_reps {
        crate::progress(&format!(
            "latency: {} pods {} at a time, repetition {}/{}",
            p.par_pods,
            p.par_workers,
            rep + 1,
            p.par_reps
        ));
        for f in order(rep) {
            let net = &nets[idx(f)];
            let pool = &pools[idx(f)];
            let (adds, wall) = concurrently(p.par_pods, p.par_workers, |i| {
                let out = net.add(&format!("par{rep}-{i}"), &pool[i]);
                if !out.success() {
                    let _ = net.del(&format!("par{rep}-{i}"), &pool[i], None);
                    scrub(&pool[i]);
                }
                out
            });
            let s = l.par_add.get_mut(f);
            s.next_rep();
            let mut prevs = vec![None; p.par_pods];
            for (i, out) in adds.iter().enumerate() {
                if let Some(out) = out {
                    record(out, s, None);
                    if out.success() {
                        prevs[i] = Some(out.json().unwrap_or(Value::Null));
                    }
                }
            }
            l.par_add_wall.get_mut(f).next_rep();
            l.par_add_wall.get_mut(f).push(wall.as_secs_f64());
            let (dels, wall) = concurrently(p.par_pods, p.par_workers, |i| {
                prevs[i].as_ref().map(|prev| {
                    let out = net.del(&format!("par{rep}-{i}"), &pool[i], Some(prev));
                    if !out.success() {
                        scrub(&pool[i]);
                    }
                    out
                })
            });
            let s = l.par_del.get_mut(f);
            s.next_rep();
            for out in dels.into_iter().flatten().flatten() {
                record(&out, s, None);
            }
            l.par_del_wall.get_mut(f).next_rep();
            l.par_del_wall.get_mut(f).push(wall.as_secs_f64());
        }
    }

    crate::progress(&format!(
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
    let mut prevs: [Vec<Option<Value>>; 2] = [vec![None; n], vec![None; n]];
    for (k, series) in [add, del].into_iter().enumerate() {
        for i in 0..n {
            if guard::interrupted() {
                break;
            }
            for f in order(i + turn) {
                let (net, pod, cid) = (&nets[idx(f)], &pools[idx(f)][i], format!("{tag}{i}"));
                let mut s = Series::new();
                if k == 0 {
                    prevs[idx(f)][i] = timed_add(net, &cid, pod, &mut s, None);
                } else if let Some(prev) = &prevs[idx(f)][i] {
                    timed_del(net, &cid, pod, Some(prev), &mut s, None);
                }
                // This invocation's ms, also added to its plugin's series.
                let v = s.all().first().copied();
                match (v, s.first_failure) {
                    (Some(v), _) => series.get_mut(f).push(v),
                    (None, Some(why)) => series.get_mut(f).fail(why),
                    (None, None) => {}
                }
                ms[k].get_mut(f).push(v.unwrap_or(f64::NAN));
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
    let first = crate::stats::median(&ok[..k]);
    let last = crate::stats::median(&ok[ok.len() - k..]);
    Some((first, last, last / first))
}

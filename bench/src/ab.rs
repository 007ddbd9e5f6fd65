//! Interleaved A/B measurement of CNI invocations: lanbridge (index 0) and
//! the reference (1), each on its own network (`nets[k]`) with its own pod
//! pool (`pools[k]`), taking turns in a rotating order so that neither
//! always goes first; every invocation timed from fork to exit, its peak
//! RSS kept, failures counted (and cleaned up, unmeasured).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lanbridge_tests::cni::CniOutput;
use lanbridge_tests::netns::Netns;
use lanbridge_tests::testbed::Net;
use lanbridge_tests::topology::NODE_UPLINK;
use lanbridge_tests::Flavor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guard;
use crate::stats::Series;
use crate::Pool;

/// A metric measured for both plugins.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pair<T = Series> {
    pub lanbridge: T,
    pub reference: T,
}

impl<T> Pair<T> {
    pub fn get(&self, f: Flavor) -> &T {
        match f {
            Flavor::Lanbridge => &self.lanbridge,
            Flavor::Reference => &self.reference,
        }
    }

    /// Plugin `k`'s (0: lanbridge, 1: the reference).
    pub fn at(&mut self, k: usize) -> &mut T {
        [&mut self.lanbridge, &mut self.reference]
            .into_iter()
            .nth(k)
            .expect("0 or 1")
    }
}

/// Indices `0..n`, starting at `turn % n`: the order of this turn.
pub fn rotation(n: usize, turn: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + turn) % n)
}

/// A DEL that failed may leave the pod's interface behind; remove it so the
/// namespace can be reused.
pub fn scrub(pod: &Netns) {
    let _ = pod.try_ip(&["link", "del", NODE_UPLINK]);
}

/// Records an invocation: its ms (and peak RSS, KiB) or its failure.
pub fn record(out: &CniOutput, lat: &mut Series, rss: Option<&mut Series>) {
    if !out.success() {
        return lat.fail(out.failure());
    }
    lat.push(out.ms());
    if let Some(r) = rss {
        r.push(out.maxrss_kib as f64);
    }
}

/// ADD; whatever half-happened undone when it fails.
fn try_add(net: &Net, cid: &str, pod: &Netns) -> CniOutput {
    let out = net.add(cid, pod);
    if !out.success() {
        let _ = net.del(cid, pod, None);
        scrub(pod);
    }
    out
}

/// DEL with the ADD's result as `prevResult`; the pod scrubbed when it fails.
fn try_del(net: &Net, cid: &str, pod: &Netns, prev: Option<&Value>) -> CniOutput {
    let out = net.del(cid, pod, prev);
    if !out.success() {
        scrub(pod);
    }
    out
}

/// ADD, recorded; its result on success.
pub fn add(
    net: &Net,
    cid: &str,
    pod: &Netns,
    lat: &mut Series,
    rss: Option<&mut Series>,
) -> Option<Value> {
    let out = try_add(net, cid, pod);
    record(&out, lat, rss);
    out.success().then(|| out.json().unwrap_or(Value::Null))
}

/// DEL, recorded.
pub fn del(
    net: &Net,
    cid: &str,
    pod: &Netns,
    prev: Option<&Value>,
    lat: &mut Series,
    rss: Option<&mut Series>,
) {
    record(&try_del(net, cid, pod, prev), lat, rss);
}

/// `iters` rounds of an ADD and its DEL on pod 0 of both plugins,
/// container ids `<tag><round>`, into `rec` (ADD, DEL, ADD's and DEL's peak
/// RSS), each of which starts a new repetition every `chunk` rounds.
pub fn rounds(
    nets: &[Net; 2],
    pools: &[Pool; 2],
    iters: usize,
    chunk: usize,
    tag: &str,
    rec: [&mut Pair; 4],
) {
    let [add_ms, del_ms, add_rss, del_rss] = rec;
    for i in 0..iters {
        if guard::interrupted() {
            break;
        }
        if i.is_multiple_of(chunk) {
            for s in [&mut *add_ms, &mut *del_ms, &mut *add_rss, &mut *del_rss] {
                s.lanbridge.next_rep();
                s.reference.next_rep();
            }
        }
        for k in rotation(2, i) {
            let (net, pod, cid) = (&nets[k], &pools[k][0], format!("{tag}{i}"));
            let prev = add(net, &cid, pod, add_ms.at(k), Some(add_rss.at(k)));
            if prev.is_some() {
                del(
                    net,
                    &cid,
                    pod,
                    prev.as_ref(),
                    del_ms.at(k),
                    Some(del_rss.at(k)),
                );
            }
        }
    }
}

/// ADDs pods `0..n` of `pool` on `net`, `workers` at a time, then DELs
/// them the same way (container ids `<tag><pod>`); records each invocation
/// and each batch's wall time (s) into `rec` (ADD, ADD wall, DEL, DEL
/// wall). `between` runs between the two batches with the number of pods added.
pub fn batch(
    net: &Net,
    pool: &Pool,
    (n, workers): (usize, usize),
    tag: &str,
    rec: [&mut Series; 4],
    between: impl FnOnce(usize),
) {
    let [adds, add_wall, dels, del_wall] = rec;
    let cid = |i: usize| format!("{tag}{i}");
    let (outs, wall) = concurrently(n, workers, |i| try_add(net, &cid(i), &pool[i]));
    add_wall.push(wall.as_secs_f64());
    let mut prevs = vec![None; n];
    for (i, out) in outs.iter().enumerate() {
        let Some(out) = out else { continue };
        record(out, adds, None);
        prevs[i] = out.success().then(|| out.json().unwrap_or(Value::Null));
    }
    between(prevs.iter().flatten().count());
    let (outs, wall) = concurrently(n, workers, |i| {
        let prev = prevs[i].as_ref()?;
        Some(try_del(net, &cid(i), &pool[i], Some(prev)))
    });
    del_wall.push(wall.as_secs_f64());
    for out in outs.into_iter().flatten().flatten() {
        record(&out, dels, None);
    }
}

/// Runs `op` over `0..n` with `workers` threads; returns each op's outcome
/// (by index) and the batch's wall time.
fn concurrently<T: Send>(
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

//! One verdict line per target of issue 15 (pod start at the kernel's
//! floor): met or not, with this run's numbers and, when not met, what the
//! numbers say about why.

use lanbridge_common::PROG_FROM_POD;
use serde::Serialize;

use super::rows::{
    med, ratio, Met, DEL_RATIO_TARGET, EMPTY_FAST_TARGET, EMPTY_STACK_TARGET, FLOOR_TARGET,
    GROWTH_TARGET, LAN_DEL_TARGET, LATENCY_RATIO_TARGET, PODS_PER_S_TARGET, PPS_VS_RAW_TARGET,
    PPS_VS_REF_TARGET, TPUT_VS_RAW_TARGET,
};
use super::Results;
use crate::ebpf_cost::twin_name;
use crate::latency::{growth_ratio, Pair};
use crate::stats::Series;
use crate::traffic::Path as TPath;

#[derive(Serialize)]
pub struct Verdict {
    pub target: String,
    #[serde(serialize_with = "met_text")]
    pub met: Met,
    pub detail: String,
}

fn met_text<S: serde::Serializer>(m: &Met, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.text())
}

fn verdict(target: String, met: Option<bool>, detail: String) -> Verdict {
    Verdict {
        target,
        met: met.map_or(Met::Na, Met::of),
        detail,
    }
}

fn not_measured(target: String, what: &str) -> Verdict {
    verdict(target, None, format!("not measured in this run ({what})"))
}

fn m(s: &Series) -> Option<f64> {
    med(s)
}

/// lanbridge over the reference of `p`; when not met, the floor over the
/// reference as the floor section measured them side by side.
fn vs_reference(what: &str, p: &Pair, target: f64, floor: Option<(f64, f64)>) -> Verdict {
    let t = format!("{what} ≤ {target}× the reference");
    let (Some(l), Some(r)) = (m(&p.lanbridge), m(&p.reference)) else {
        return not_measured(t, "latency section");
    };
    let x = l / r;
    let mut d = format!("lanbridge {l:.1} ms, reference {r:.1} ms: {x:.2}×");
    if x > target {
        match floor {
            Some((f, fr)) if f / fr > target => d.push_str(&format!(
                ". In the floor section's interleaved rounds the floor program alone (process \
                 start, veth pair, TCX attaches, addresses) took {f:.1} ms against the \
                 reference's {fr:.1} ms ({:.2}×): {target}× the reference is below what the \
                 kernel needs on this machine",
                f / fr
            )),
            Some((f, fr)) => d.push_str(&format!(
                ". In the floor section the floor program took {f:.1} ms against the \
                 reference's {fr:.1} ms ({:.2}×), so the target is within reach of the kernel",
                f / fr
            )),
            None => d.push_str(" (the floor section did not run)"),
        }
    }
    verdict(t, Some(x <= target), d)
}

pub fn verdicts(res: &Results) -> Vec<Verdict> {
    let mut v = Vec::new();
    let floor = res.floor.as_ref();
    let l = res.latency.as_ref();
    let fl_add = floor.and_then(|f| m(&f.add));
    let fl_del = floor.and_then(|f| m(&f.del));
    let beside = |fl: Option<f64>, p: fn(&crate::floor::Floor) -> &Series| {
        fl.zip(floor.and_then(|f| m(p(f))))
    };
    let add_beside = beside(fl_add, |f| &f.plugins_add.reference);
    let del_beside = beside(fl_del, |f| &f.plugins_del.reference);
    match l {
        Some(l) => {
            v.push(vs_reference(
                "ADD",
                &l.warm_add,
                LATENCY_RATIO_TARGET,
                add_beside,
            ));
            v.push(vs_reference(
                "DEL",
                &l.warm_del,
                DEL_RATIO_TARGET,
                del_beside,
            ));
        }
        None => {
            v.push(not_measured(
                format!("ADD ≤ {LATENCY_RATIO_TARGET}× the reference"),
                "latency",
            ));
            v.push(not_measured(
                format!("DEL ≤ {DEL_RATIO_TARGET}× the reference"),
                "latency",
            ));
        }
    }
    let t = format!("ADD within {FLOOR_TARGET}× the floor");
    v.push(match floor {
        Some(f) => match (m(&f.plugins_add.lanbridge), fl_add, fl_del) {
            (Some(la), Some(fa), Some(fd)) => {
                let ld = m(&f.plugins_del.lanbridge).unwrap_or(f64::NAN);
                let ra = m(&f.plugins_add.reference).unwrap_or(f64::NAN);
                let rd = m(&f.plugins_del.reference).unwrap_or(f64::NAN);
                verdict(
                    t,
                    Some(la / fa <= FLOOR_TARGET),
                    format!(
                        "floor ADD {fa:.1} ms, DEL {fd:.1} ms; lanbridge ADD {la:.1} ms ({:.2}× \
                         the floor), DEL {ld:.1} ms ({:.2}×); reference ADD {ra:.1} ms ({:.2}×), \
                         DEL {rd:.1} ms ({:.2}×), interleaved in the same section",
                        la / fa,
                        ld / fd,
                        ra / fa,
                        rd / fd
                    ),
                )
            }
            _ => not_measured(t, "the floor section failed"),
        },
        None => not_measured(t, "floor section"),
    });
    let t = format!(
        "growth from the 1st to the {}th pod ≤ {GROWTH_TARGET}×",
        res.params.growth_pods
    );
    v.push(
        match l.and_then(|l| growth_ratio(&l.growth_add.lanbridge).zip(Some(l))) {
            Some(((a, b, r), l)) => {
                let rf = growth_ratio(&l.growth_add.reference).map_or("—".into(), |(a, b, r)| {
                    format!("{r:.2}× ({a:.1} → {b:.1} ms)")
                });
                let mut d = format!(
                    "lanbridge ADD {a:.1} → {b:.1} ms over {} pods on one bridge ({r:.2}×, first \
                 and last tenth); the reference {rf}",
                    l.growth_pods
                );
                if r > GROWTH_TARGET {
                    d.push_str(&format!(
                        "; +{:.1} ms per ADD with {} ports on the bridge",
                        b - a,
                        l.growth_pods
                    ));
                }
                verdict(t, Some(r <= GROWTH_TARGET), d)
            }
            None => not_measured(t, "latency"),
        },
    );
    let t = format!(
        "{} pods {} at a time ≥ {PODS_PER_S_TARGET}× the reference's pods/s",
        res.params.par_pods, res.params.par_workers
    );
    v.push(
        match l.and_then(|l| {
            m(&l.par_add_wall.lanbridge)
                .zip(m(&l.par_add_wall.reference))
                .zip(Some(l))
        }) {
            Some(((lw, rw), l)) => {
                let n = l.par_pods as f64;
                let x = rw / lw;
                let mut d = format!(
                "lanbridge {:.1} pods/s ({lw:.2} s), reference {:.1} pods/s ({rw:.2} s): {x:.2}×",
                n / lw,
                n / rw
            );
                if x < PODS_PER_S_TARGET {
                    if let Some(s) = ratio(m(&l.seq_add.reference), m(&l.seq_add.lanbridge)) {
                        d.push_str(&format!(
                        "; sequentially lanbridge's ADD is {s:.2}× as fast as the reference's: \
                         with {} workers on {} CPUs the pods/s ratio stays near that per-ADD \
                         ratio",
                        l.par_workers, res.machine.nproc
                    ));
                    }
                }
                verdict(t, Some(x >= PODS_PER_S_TARGET), d)
            }
            None => not_measured(t, "latency"),
        },
    );
    let t = format!("lan-mode DEL ≤ {LAN_DEL_TARGET}× the reference's");
    v.push(
        match res
            .dhcp
            .as_ref()
            .and_then(|d| m(&d.del.lanbridge).zip(m(&d.del.reference)))
        {
            Some((lb, r)) => verdict(
                t,
                Some(lb / r <= LAN_DEL_TARGET),
                format!(
                "lan mode (release through the daemon) {lb:.1} ms, the reference bridge + dhcp \
                 {r:.1} ms: {:.2}×",
                lb / r
            ),
            ),
            None => not_measured(t, "dhcp"),
        },
    );
    let tr = res.traffic.as_ref();
    let t = format!("pod → LAN single-stream TCP ≥ {TPUT_VS_RAW_TARGET}× the plain routed chain");
    let path = TPath::PodToLan;
    let tput = |k: &str| tr.and_then(|t| t.tput(path, k)).and_then(m);
    v.push(match (tput("lb_lan"), tput("raw")) {
        (Some(l), Some(w)) => verdict(
            t,
            Some(l / w >= TPUT_VS_RAW_TARGET),
            format!(
                "lan mode {l:.2} Gbit/s, the chain {w:.2} Gbit/s: {:.2}× (the bridged reference {})",
                l / w,
                tput("ref_bridged").map_or("—".into(), |r| format!("{r:.2} Gbit/s, {:.2}×", l / r))
            ),
        ),
        _ => not_measured(t, "traffic"),
    });
    let t = format!(
        "64-byte UDP pod → LAN ≥ {PPS_VS_REF_TARGET}× the reference and ≥ {PPS_VS_RAW_TARGET}× the chain"
    );
    let pps = |k: &str| tr.and_then(|t| t.pps(path, k)).and_then(m);
    v.push(match (pps("lb_lan"), pps("ref_bridged"), pps("raw")) {
        (Some(l), Some(r), Some(w)) => verdict(
            t,
            Some(l / r >= PPS_VS_REF_TARGET && l / w >= PPS_VS_RAW_TARGET),
            format!(
                "lan mode {l:.0} kpps received, the bridged reference {r:.0} ({:.2}×), the chain \
                 {w:.0} ({:.2}×); one sending thread, so the sender's system calls bound all three",
                l / r,
                l / w
            ),
        ),
        _ => not_measured(t, "traffic"),
    });
    let t = "pod ↔ LAN round trip no slower than the chain's".to_string();
    let rtt = |k: &str| tr.and_then(|t| t.rtt(path, k)).and_then(m);
    v.push(match (rtt("lb_lan"), rtt("raw")) {
        (Some(l), Some(w)) => verdict(
            t,
            Some(l <= w),
            format!("lan mode {l:.1} µs, the chain {w:.1} µs ({:+.1} µs)", l - w),
        ),
        _ => not_measured(t, "traffic"),
    });
    for (fast, target) in [(true, EMPTY_FAST_TARGET), (false, EMPTY_STACK_TARGET)] {
        let t = format!(
            "`{PROG_FROM_POD}` ≤ {target}× an empty program at the same hooks ({})",
            if fast {
                "fast path"
            } else {
                "packets passed to the stack"
            }
        );
        let mut seen = Vec::new();
        for load in res
            .ebpf
            .iter()
            .flat_map(|e| &e.loads)
            .filter(|l| l.fast_path() == fast)
        {
            let ns = |name: &str| {
                load.programs
                    .iter()
                    .find(|c| c.program == name)
                    .and_then(|c| c.ns_per_run())
            };
            if let (Some(p), Some(e)) = (ns(PROG_FROM_POD), ns(&twin_name(PROG_FROM_POD))) {
                seen.push((format!("{} ({})", load.load, load.mode), p, e));
            }
        }
        if seen.is_empty() {
            v.push(not_measured(t, "no such load ran with its twin"));
            continue;
        }
        let worst = seen.iter().map(|(_, p, e)| p / e).fold(0.0, f64::max);
        let list = seen
            .iter()
            .map(|(n, p, e)| format!("{n}: {p:.0} ns vs {e:.0} ns ({:.1}×)", p / e))
            .collect::<Vec<_>>()
            .join("; ");
        let mut d = list;
        if worst > target {
            d.push_str(
                "; the empty program's figure is the hook plus the kernel's accounting (two \
                 clock reads per run), so the rest is the program's own parsing, endpoint \
                 lookup and (fast path) FIB lookup and redirect",
            );
        }
        v.push(verdict(t, Some(worst <= target), d));
    }
    v
}

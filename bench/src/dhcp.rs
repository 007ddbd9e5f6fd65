//! Section 2 (ADD with DHCP) and the daemon half of section 5 (memory of
//! the node's DHCP daemon holding many leases).
//!
//! lanbridge: lan mode, the uplink NOT in the bridge, leases through the eBPF
//! relay, served by `lanbridge daemon`. Reference: `bridge` + `dhcp` on a
//! node whose uplink is enslaved to the bridge — the only topology where it
//! leases at all. Same dnsmasq for both: `--no-ping`, then a few ADDs with
//! its ping check on, as shipped (issue 12: the time to a lease operators see).

use lanbridge_tests::netns::Netns;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guard;
use crate::latency::{concurrently, idx, order, scrub, timed_add, timed_del, Pair};
use crate::stats::Series;
use lanbridge_tests::testbed::Net;

use crate::Params;
use crate::Pool;
use lanbridge_tests::process::proc_status_kib;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dhcp {
    pub cold_add: Pair,
    pub add: Pair,
    pub del: Pair,
    /// ADD with dnsmasq's ping check on (as shipped); absent in older runs.
    #[serde(default)]
    pub add_ping: Pair,
    pub rss_add: Pair,
    /// ADDs `workers` at a time while the daemon fills up to `leases`.
    pub scale_add: Pair,
    pub scale_add_wall: Pair,
    pub scale_del: Pair,
    pub leases: usize,
    pub workers: usize,
    /// How many leases each daemon actually held when measured.
    pub held: [usize; 2],
    /// Daemon memory, KiB: VmHWM / VmRSS at start and with `held` leases.
    pub daemon_hwm_start: [Option<u64>; 2],
    pub daemon_hwm_full: [Option<u64>; 2],
    pub daemon_rss_full: [Option<u64>; 2],
}

/// `nets[0]`: lanbridge lan mode, `nets[1]`: reference bridged + dhcp;
/// `daemons[i]` (PIDs) serve them.
/// `set_ping` restarts the LAN's dnsmasq with its ping check on or off.
pub fn run(
    p: &Params,
    nets: &[Net; 2],
    pools: &[Pool; 2],
    daemons: [Option<u32>; 2],
    set_ping: &mut dyn FnMut(bool),
) -> Dhcp {
    let mut d = Dhcp {
        leases: p.leases,
        workers: p.par_workers,
        ..Dhcp::default()
    };
    for f in order(0) {
        d.daemon_hwm_start[idx(f)] = daemons[idx(f)].and_then(|p| proc_status_kib(p, "VmHWM"));
    }
    crate::progress("dhcp: cold ADD and warm-up");
    for f in order(0) {
        let net = &nets[idx(f)];
        let pod = &pools[idx(f)][0];
        let prev = timed_add(net, "dwarm0", pod, d.cold_add.get_mut(f), None);
        timed_del(net, "dwarm0", pod, prev.as_ref(), &mut Series::new(), None);
    }
    crate::progress(&format!("dhcp: {} ADD/DEL each", p.dhcp_iters));
    // Repetitions of a quarter (at least two ADDs) each, for the spread.
    let chunk = (p.dhcp_iters / 4).max(2);
    for i in 0..p.dhcp_iters {
        if guard::interrupted() {
            break;
        }
        if i.is_multiple_of(chunk) {
            for s in [&mut d.add, &mut d.del, &mut d.rss_add] {
                s.next_rep();
            }
        }
        for f in order(i) {
            let net = &nets[idx(f)];
            let pod = &pools[idx(f)][0];
            let cid = format!("dhcp{i}");
            let prev = timed_add(net, &cid, pod, d.add.get_mut(f), Some(d.rss_add.get_mut(f)));
            if prev.is_some() {
                timed_del(net, &cid, pod, prev.as_ref(), d.del.get_mut(f), None);
            }
        }
    }

    // Each ADD asks for a new address (a new client identifier), so dnsmasq
    // pings before every OFFER.
    let iters = (p.dhcp_iters / 4).max(2);
    crate::progress(&format!("dhcp: {iters} ADD/DEL each, dnsmasq pinging"));
    set_ping(true);
    for i in 0..iters {
        if guard::interrupted() {
            break;
        }
        for f in order(i) {
            let net = &nets[idx(f)];
            let pod = &pools[idx(f)][0];
            let cid = format!("dping{i}");
            let prev = timed_add(net, &cid, pod, d.add_ping.get_mut(f), None);
            if prev.is_some() {
                timed_del(net, &cid, pod, prev.as_ref(), &mut Series::new(), None);
            }
        }
    }
    set_ping(false);

    for f in order(1) {
        crate::progress(&format!(
            "dhcp: {} leases on the {} daemon, {} at a time",
            p.leases,
            f.label(),
            p.par_workers
        ));
        let net = &nets[idx(f)];
        let pool = &pools[idx(f)];
        let (adds, wall) = concurrently(p.leases, p.par_workers, |i| {
            let out = net.add(&format!("lease{i}"), &pool[i]);
            if !out.success() {
                let _ = net.del(&format!("lease{i}"), &pool[i], None);
                scrub(&pool[i]);
            }
            out
        });
        d.scale_add_wall.get_mut(f).push(wall.as_secs_f64());
        let s = d.scale_add.get_mut(f);
        let mut prevs: Vec<Option<Value>> = vec![None; p.leases];
        for (i, out) in adds.iter().enumerate() {
            let Some(out) = out else { continue };
            if out.success() {
                s.push(out.ms());
                prevs[i] = Some(out.json().unwrap_or(Value::Null));
            } else {
                s.fail(out.failure());
            }
        }
        d.held[idx(f)] = prevs.iter().filter(|p| p.is_some()).count();
        d.daemon_hwm_full[idx(f)] = daemons[idx(f)].and_then(|p| proc_status_kib(p, "VmHWM"));
        d.daemon_rss_full[idx(f)] = daemons[idx(f)].and_then(|p| proc_status_kib(p, "VmRSS"));
        let (dels, _) = concurrently(p.leases, p.par_workers, |i| {
            prevs[i].as_ref().map(|prev| {
                let out = net.del(&format!("lease{i}"), &pool[i], Some(prev));
                if !out.success() {
                    scrub(&pool[i]);
                }
                out
            })
        });
        let s = d.scale_del.get_mut(f);
        for out in dels.into_iter().flatten().flatten() {
            if out.success() {
                s.push(out.ms());
            } else {
                s.fail(out.failure());
            }
        }
    }
    d
}

/// Leases `n` pods of `pool` on `net` for the traffic measurements; returns
/// (pod, address) pairs (they stay until the world goes).
pub fn lease_pods<'a>(net: &Net, pods: &'a [&'a Netns], tag: &str) -> anyhow::Result<Vec<String>> {
    let mut ips = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let out = net.add(&format!("{tag}{i}"), pod);
        if !out.success() {
            anyhow::bail!(
                "{} ADD for traffic pod: {}",
                net.flavor.label(),
                out.failure()
            );
        }
        let result = out.json().unwrap_or(Value::Null);
        let ip = lanbridge_tests::result::ips(&result).into_iter().next();
        let ip = ip.ok_or_else(|| anyhow::anyhow!("no address in {result}"))?;
        ips.push(ip.address.split('/').next().unwrap_or_default().to_string());
    }
    Ok(ips)
}

//! Section 2 (ADD with DHCP) and the daemon half of section 5 (memory of
//! the node's DHCP daemon holding many leases).
//!
//! lanbridge: lan mode, the uplink NOT in the bridge, leases through the eBPF
//! relay, served by `lanbridge daemon`. Reference: `bridge` + `dhcp` on a
//! node whose uplink is enslaved to the bridge — the only topology where it
//! leases at all. Same dnsmasq for both: `--no-ping`, then a few ADDs with
//! its ping check on, as shipped (issue 12: the time to a lease operators see).

use lanbridge_tests::netns::Netns;
use lanbridge_tests::process::proc_status_kib;
use lanbridge_tests::testbed::Net;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ab::{self, rotation, Pair};
use crate::stats::Series;
use crate::{progress, Params, Pool};

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
/// `daemons[k]` (PIDs) serve them.
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
    let kib = |k: usize, what| daemons[k].and_then(|pid| proc_status_kib(pid, what));
    d.daemon_hwm_start = [0, 1].map(|k| kib(k, "VmHWM"));
    progress("dhcp: cold ADD and warm-up");
    for k in rotation(2, 0) {
        let prev = ab::add(&nets[k], "dwarm0", &pools[k][0], d.cold_add.at(k), None);
        ab::del(
            &nets[k],
            "dwarm0",
            &pools[k][0],
            prev.as_ref(),
            &mut Series::new(),
            None,
        );
    }
    progress(&format!("dhcp: {} ADD/DEL each", p.dhcp_iters));
    // Repetitions of a quarter (at least two ADDs) each, for the spread.
    let chunk = (p.dhcp_iters / 4).max(2);
    let rec = [&mut d.add, &mut d.del, &mut d.rss_add, &mut Pair::default()];
    ab::rounds(nets, pools, p.dhcp_iters, chunk, "dhcp", rec);

    // Each ADD asks for a new address (a new client identifier), so dnsmasq
    // pings before every OFFER.
    let iters = (p.dhcp_iters / 4).max(2);
    progress(&format!("dhcp: {iters} ADD/DEL each, dnsmasq pinging"));
    set_ping(true);
    let mut unused = [(); 3].map(|_| Pair::default());
    let [a, b, c] = &mut unused;
    ab::rounds(
        nets,
        pools,
        iters,
        usize::MAX,
        "dping",
        [&mut d.add_ping, a, b, c],
    );
    set_ping(false);

    for k in rotation(2, 1) {
        let (n, w) = (p.leases, p.par_workers);
        let label = nets[k].flavor.label();
        progress(&format!(
            "dhcp: {n} leases on the {label} daemon, {w} at a time"
        ));
        let mut del_wall = Series::new();
        let rec = [
            d.scale_add.at(k),
            d.scale_add_wall.at(k),
            d.scale_del.at(k),
            &mut del_wall,
        ];
        let (held, hwm, rss) = (
            &mut d.held[k],
            &mut d.daemon_hwm_full[k],
            &mut d.daemon_rss_full[k],
        );
        ab::batch(&nets[k], &pools[k], (n, w), "lease", rec, |added| {
            *held = added;
            (*hwm, *rss) = (kib(k, "VmHWM"), kib(k, "VmRSS"));
        });
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

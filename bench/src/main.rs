//! `lanbridge-bench`: lanbridge against the reference CNI plugins and the
//! kernel's limit, in the same run, on namespace topologies (issue 6).
//! Run through `cargo xtask bench [--quick]`, as root.
//!
//! Nothing here touches the machine's own network: every namespace, process,
//! bpffs directory and temp dir the run makes is removed at the end, also on
//! failure and on SIGINT / SIGTERM.

mod ab;
mod anatomy;
mod bpf;
mod cluster;
mod criterion;
mod dhcp;
mod ebpf_cost;
mod floor;
mod guard;
mod latency;
mod machine;
mod report;
mod stats;
mod traffic;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use lanbridge_tests::daemon::{LanbridgeDaemon, ReferenceDhcp};
use lanbridge_tests::netns::Netns;
use lanbridge_tests::testbed::{
    Net, RawChain, Testbed, TwoNodes, LAN_HOST, RAW_DST, RAW_FAR, RAW_SRC,
};
use lanbridge_tests::Flavor;
use serde::{Deserialize, Serialize};

use crate::ebpf_cost::Load;
use crate::ebpf_cost::Send::{Tcp, Udp};
use crate::report::Results;
use crate::traffic::Setup;

#[derive(Parser)]
#[command(about = "Benchmarks lanbridge against the reference CNI plugins (run as root)")]
struct Cli {
    /// Short run (under 3 minutes) for day-to-day use.
    #[arg(long)]
    quick: bool,
    /// The lanbridge binary to measure (a release build).
    #[arg(long, default_value = "target/release/lanbridge")]
    lanbridge: PathBuf,
    /// Where REPORT.md, the SVGs and the summary results.json go
    /// (default: docs/bench, or target/bench/quick with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where every sample of the run goes (the input of --from-results).
    #[arg(long, default_value = "target/bench/results.json")]
    raw: PathBuf,
    /// The README whose "Benchmarks" section is rewritten (full runs only).
    #[arg(long, default_value = "README.md")]
    readme: PathBuf,
    /// Leave the README alone.
    #[arg(long)]
    no_readme: bool,
    /// Criterion's output directory, read for the micro-benchmark table.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// Only these sections (comma-separated: latency,dhcp,traffic,ebpf).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Measure nothing: write the report (and README section) again from a
    /// previous run's samples (its --raw file; no root needed).
    #[arg(long)]
    from_results: Option<PathBuf>,
}

/// Sizes of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Params {
    pub warm_iters: usize,
    pub seq_pods: usize,
    pub seq_reps: usize,
    pub par_pods: usize,
    pub par_reps: usize,
    pub par_workers: usize,
    pub growth_pods: usize,
    pub dhcp_iters: usize,
    pub leases: usize,
    pub iperf_secs: f64,
    pub iperf_omit: u32,
    pub traffic_reps: usize,
    pub rtt_iters: usize,
    pub ebpf_secs: f64,
}

impl Params {
    fn new(quick: bool) -> Params {
        fn q<T>(quick: bool, short: T, full: T) -> T {
            if quick {
                short
            } else {
                full
            }
        }
        Params {
            warm_iters: q(quick, 10, 30),
            seq_pods: q(quick, 20, 100),
            seq_reps: q(quick, 2, 3),
            par_pods: q(quick, 24, 100),
            par_reps: q(quick, 2, 3),
            par_workers: 8,
            growth_pods: q(quick, 50, 250),
            dhcp_iters: q(quick, 4, 20),
            leases: q(quick, 24, 250),
            iperf_secs: q(quick, 1.0, 4.0),
            iperf_omit: q(quick, 0, 1),
            traffic_reps: q(quick, 2, 3),
            rtt_iters: q(quick, 2000, 10000),
            ebpf_secs: q(quick, 1.0, 3.0),
        }
    }

    fn pods(&self) -> usize {
        [self.seq_pods, self.par_pods, self.growth_pods, self.leases]
            .into_iter()
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

/// Pod namespaces, reused across measurements (a DEL leaves a pod empty again).
pub type Pool = Vec<Arc<Netns>>;

static START: Mutex<Option<Instant>> = Mutex::new(None);
static FOREIGN_MAX: AtomicUsize = AtomicUsize::new(0);
static PREFIX: Mutex<String> = Mutex::new(String::new());

/// Prints a step with the elapsed time; samples how busy the machine is.
pub fn progress(msg: &str) {
    let t = START
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map_or(0.0, |s| s.elapsed().as_secs_f64());
    let prefix = PREFIX.lock().unwrap_or_else(|p| p.into_inner()).clone();
    FOREIGN_MAX.fetch_max(machine::foreign_netns(&prefix), Ordering::SeqCst);
    eprintln!("[bench {t:6.1}s] {msg}");
}

fn main() -> ExitCode {
    // The floor program the floor section times, started like a plugin.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        return exit("floor", floor::main(&args[2..]));
    }
    lanbridge_tests::cleanup::on_signals(guard::bpf_stats_restore);
    let cli = Cli::parse();
    if let Some(path) = &cli.from_results {
        return exit("lanbridge-bench", rerender(&cli, path));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("lanbridge-bench needs root (network namespaces, bpffs, sysctl); run `sudo cargo xtask bench`");
        return ExitCode::FAILURE;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&cli)));
    guard::cleanup_all();
    let leftovers = leftovers();
    if !leftovers.is_empty() {
        eprintln!("[bench] left behind (removing failed): {leftovers:?}");
    }
    match outcome {
        Ok(Ok(())) if !leftovers.is_empty() => ExitCode::FAILURE,
        Ok(r) => exit("lanbridge-bench", r),
        Err(_) => {
            eprintln!("lanbridge-bench: panicked (see above); everything it made was removed");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of `r`, its error printed as `<who>: <error>`.
fn exit(who: &str, r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{who}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Namespaces and pin dirs of this process still present.
fn leftovers() -> Vec<String> {
    let prefix = format!("lbb{}", std::process::id());
    let mut v = Vec::new();
    for dir in ["/run/netns", "/sys/fs/bpf"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.filter_map(|e| e.ok()) {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with(&format!("{prefix}-")) {
                    v.push(format!("{dir}/{n}"));
                }
            }
        }
    }
    v
}

fn check_tools(lanbridge: &Path) -> Result<()> {
    if !lanbridge.is_file() {
        bail!(
            "{} not found: build it with `cargo xtask build --release` (cargo xtask bench does)",
            lanbridge.display()
        );
    }
    for (tool, pkg) in [
        ("/usr/bin/nsenter", "util-linux"),
        ("/usr/bin/iperf3", "iperf3"),
        ("/usr/sbin/dnsmasq", "dnsmasq-base"),
        ("/usr/sbin/bpftool", "bpftool"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/usr/lib/cni/dhcp", "containernetworking-plugins"),
        ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing: install the Debian package {pkg} (scripts/setup.sh does)");
        }
    }
    Ok(())
}

/// A node per plugin on the LAN (`names`, `addrs`), each with the latency
/// config: subnet mode, `tests/src/fixture.rs` `subnet_conf`.
fn subnet_nodes(bed: &Testbed, names: [&str; 2], addrs: [&str; 2]) -> ([Netns; 2], [Net; 2]) {
    let nodes = [0, 1].map(|k| bed.node(names[k], addrs[k]));
    let flavors = [Flavor::Lanbridge, Flavor::Reference];
    let nets = [0, 1].map(|k| bed.subnet(flavors[k], &nodes[k], "10.244.1.0/24", true));
    (nodes, nets)
}

/// Runs one section; a failure or panic is recorded and the run goes on.
fn section<T>(res: &mut Results, name: &str, f: impl FnOnce() -> Result<T>) -> Option<T> {
    if guard::interrupted() {
        return None;
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            eprintln!("[bench] {name} failed: {e:#}");
            res.errors.push(format!("{name}: {e:#}"));
            None
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            eprintln!("[bench] {name} panicked: {msg}");
            res.errors.push(format!("{name}: panicked: {msg}"));
            None
        }
    }
}

fn body(cli: &Cli) -> Result<()> {
    let started = Instant::now();
    *START.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
    let lanbridge = std::fs::canonicalize(&cli.lanbridge).with_context(|| {
        format!(
            "{} (build it: cargo xtask build --release)",
            cli.lanbridge.display()
        )
    })?;
    check_tools(&lanbridge)?;
    let p = Params::new(cli.quick);
    let want = |s: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == s);
    let prefix = format!("lbb{}", std::process::id());
    let tmp = tempfile::Builder::new().prefix("lbb-").tempdir()?.keep();
    guard::track_dir(&tmp);
    *PREFIX.lock().unwrap_or_else(|p| p.into_inner()) = prefix.clone();
    let mut res = Results {
        quick: cli.quick,
        machine: machine::describe(&lanbridge, &prefix),
        params: p.clone(),
        micro: criterion::read(&cli.criterion),
        ..Results::default()
    };
    FOREIGN_MAX.store(res.machine.foreign_netns_start, Ordering::SeqCst);
    progress(&format!(
        "{} run, namespaces {}-*, temp {}",
        if cli.quick { "quick" } else { "full" },
        prefix,
        tmp.display()
    ));

    // The shared world. Drop order at the end: daemons, then namespaces.
    let mut bed = Testbed::new(&prefix, &tmp, &lanbridge);
    progress(&format!("creating 2 × {} pod namespaces", p.pods()));
    let pools = ["a", "b"].map(|tag| bed.pods(tag, p.pods()));

    // 1. ADD / DEL latency, subnet mode.
    if want("latency") {
        let (nodes, nets) = subnet_nodes(&bed, ["sublb", "subref"], ["10.77.0.21", "10.77.0.22"]);
        res.latency = section(&mut res, "latency", || {
            Ok(latency::run(&p, &nets, &pools, &nodes))
        });
        if Path::new("/usr/bin/strace").exists() {
            progress("latency: one traced ADD and DEL per plugin (strace)");
            let dir = bed.dir("strace");
            let trace = |k: usize| anatomy::trace(&nets[k], &pools[k][0], &dir);
            res.anatomy = section(&mut res, "anatomy", || Ok([trace(0), trace(1)].concat()))
                .unwrap_or_default();
        }
    }

    // The floor of ADD and DEL beside both plugins (issue 15).
    if want("floor") {
        let (_nodes, nets) = subnet_nodes(&bed, ["flolb", "floref"], ["10.77.0.24", "10.77.0.25"]);
        let node = bed.node("floor", "10.77.0.26");
        progress("floor: warm ADD and DEL of the floor program, lanbridge and the reference");
        res.floor = section(&mut res, "floor", || {
            floor::run(&p, &bed, node, &nets, &pools)
        });
        if let Some(f) = &res.floor {
            progress(&f.summary());
        }
    }

    // 2. DHCP: lan mode vs the reference on a bridged node.
    let node_lan = bed.node("nlan", "10.77.0.11");
    let node_brd = bed.bridged_node("nbrd", "10.77.0.12");
    let lb_daemon = LanbridgeDaemon::start_from(&lanbridge, &node_lan, &bed.dir("lbdaemon"));
    let ref_daemon = ReferenceDhcp::start(&node_brd, &bed.dir("refdaemon"));
    let dhcp_nets = [
        bed.lan_mode(&node_lan),
        bed.bridged_dhcp(&node_brd, &ref_daemon.socket),
    ];
    if want("dhcp") {
        res.dhcp = section(&mut res, "dhcp", || {
            Ok(dhcp::run(
                &p,
                &dhcp_nets,
                &pools,
                [lb_daemon.pid(), ref_daemon.proc.pid()],
                &mut |ping| bed.set_dnsmasq_ping(ping),
            ))
        });
    }

    // 3 and 4: traffic setups.
    if want("traffic") || want("ebpf") {
        // Subnet mode on two nodes per plugin: pods 4, 5 and 8 (remote) on
        // lanbridge's, 6, 7 and 9 (remote) on the reference's.
        let lb_two = TwoNodes::new(&bed, Flavor::Lanbridge);
        let ref_two = TwoNodes::new(&bed, Flavor::Reference);
        let (node_tlb, sub_nets) = (&lb_two.nodes[0], &lb_two.nets);
        let raw = RawChain::new(&bed);
        let tpods = bed.pods("t", 10);
        let t = |i: usize| tpods[i].as_ref();
        progress("traffic: leasing / adding 2 pods per setup, 1 on each second node");
        let lb_lan = dhcp::lease_pods(&dhcp_nets[0], &[t(0), t(1)], "tl")?;
        let ref_brd = dhcp::lease_pods(&dhcp_nets[1], &[t(2), t(3)], "tb")?;
        let lb_sub = dhcp::lease_pods(&sub_nets[0], &[t(4), t(5)], "ts")?;
        let ref_sub = dhcp::lease_pods(&ref_two.nets[0], &[t(6), t(7)], "tr")?;
        let lb_far = dhcp::lease_pods(&sub_nets[1], &[t(8)], "ts2")?.remove(0);
        let ref_far = dhcp::lease_pods(&ref_two.nets[1], &[t(9)], "tr2")?.remove(0);
        for two in [&lb_two, &ref_two] {
            res.errors.extend(two.check_forwarding());
        }
        let raw_ips = vec![RAW_SRC.to_string(), RAW_DST.to_string()];
        let (lb_r, ref_r) = (Some((t(8), lb_far.clone())), Some((t(9), ref_far)));
        let raw_r = Some((&raw.far, RAW_FAR.to_string()));
        let setups = [
            ("lb_lan", "lanbridge lan mode", (t(0), t(1)), &lb_lan, None),
            ("lb_subnet", "lanbridge subnet", (t(4), t(5)), &lb_sub, lb_r),
            (
                "ref_bridged",
                "reference, uplink enslaved",
                (t(2), t(3)),
                &ref_brd,
                None,
            ),
            (
                "ref_subnet",
                "reference subnet",
                (t(6), t(7)),
                &ref_sub,
                ref_r,
            ),
            (
                "raw",
                "raw routed chain",
                (&raw.src, &raw.dst),
                &raw_ips,
                raw_r,
            ),
        ];
        let setups: Vec<Setup> = setups
            .into_iter()
            .map(|(key, label, (a, b), ips, remote)| {
                let (a_ip, b_ip) = (ips[0].clone(), ips[1].clone());
                Setup {
                    key,
                    label,
                    a,
                    a_ip,
                    b,
                    b_ip,
                    remote,
                }
            })
            .collect();
        // Every pair reaches the LAN host and each other before measuring.
        for s in &setups {
            for dst in [LAN_HOST, s.b_ip.as_str()] {
                if !s.a.ping(dst) {
                    res.errors
                        .push(format!("{}: {} cannot reach {dst}", s.key, s.a_ip));
                }
            }
            // Pod → pod on another node: both ways, and no NAT on the way.
            let (errors, seen) = cluster::check_remote(s);
            res.errors.extend(errors);
            res.source_seen.extend(seen);
        }
        if want("traffic") {
            res.traffic = section(&mut res, "traffic", || traffic::run(&p, &bed, &setups));
        }
        if want("ebpf") {
            // Loads from pod 0 (lan mode) or 4 (subnet) on lanbridge's
            // network: its pins and counters.
            let lan = (&dhcp_nets[0], &node_lan, t(0), "lan");
            let sub = (&sub_nets[0], node_tlb, t(4), "subnet");
            let (host, lan_peer, sub_peer) = (&bed.host, lb_lan[1].as_str(), lb_sub[1].as_str());
            let loads = [
                (lan, "TCP stream pod → LAN host", Tcp(LAN_HOST, false)),
                (lan, "TCP stream LAN host → pod", Tcp(LAN_HOST, true)),
                (lan, "64-byte UDP pod → LAN host", Udp(host, LAN_HOST)),
                (lan, "TCP stream pod → pod", Tcp(lan_peer, false)),
                (lan, "64-byte UDP pod → pod", Udp(t(1), lan_peer)),
                (sub, "TCP stream pod → pod", Tcp(sub_peer, false)),
                (sub, "64-byte UDP pod → pod", Udp(t(5), sub_peer)),
                (sub, "TCP stream pod → remote pod", Tcp(&lb_far, false)),
            ];
            let loads = loads.map(|((net, node, from, mode), name, send)| Load {
                name,
                mode,
                net,
                node,
                from,
                send,
            });
            res.ebpf = section(&mut res, "ebpf", || {
                let _servers = traffic::iperf_servers(&bed, &setups[..2])?;
                let twins = guard::bpffs_dir(&prefix, "empty");
                std::fs::create_dir_all(&twins)?;
                Ok(ebpf_cost::run(&lanbridge, &loads, p.ebpf_secs, &twins))
            });
        }
    }

    res.machine.load_end = machine::loadavg();
    res.machine.foreign_netns_max = FOREIGN_MAX.load(Ordering::SeqCst);
    res.duration_s = started.elapsed().as_secs_f64();
    if guard::interrupted() {
        bail!("interrupted");
    }
    report::write_raw(&res, &cli.raw)?;
    let rows = render(cli, &res)?;
    print!("{}", summary(&rows));
    drop(lb_daemon);
    drop(ref_daemon);
    Ok(())
}

/// Writes the report of a previous run again (after a change to the report).
fn rerender(cli: &Cli, path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let res: Results =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    render(cli, &res).map(drop)
}

/// Writes the report into `--out` (docs/bench for a full run and
/// target/bench/quick for a quick one) and, for a full run, the README's section.
fn render(cli: &Cli, res: &Results) -> Result<Vec<report::Row>> {
    let default = if res.quick {
        "target/bench/quick"
    } else {
        "docs/bench"
    };
    let out = cli.out.clone().unwrap_or_else(|| default.into());
    let rows = report::write(res, &out)?;
    eprintln!("report written to {}", out.join("REPORT.md").display());
    if res.quick || cli.no_readme || !cli.readme.is_file() {
        return Ok(rows);
    }
    let rel = out.join("REPORT.md");
    let rel = rel
        .strip_prefix(cli.readme.parent().unwrap_or(Path::new("")))
        .unwrap_or(&rel);
    report::update_readme(&cli.readme, res, &rows, &rel.display().to_string())?;
    eprintln!("README section updated in {}", cli.readme.display());
    Ok(rows)
}

fn summary(rows: &[report::Row]) -> String {
    let mut s = String::from("\nlanbridge-bench summary\n");
    for r in rows.iter().filter(|r| r.headline) {
        s.push_str(&format!(
            "  {:<70} lanbridge {:<28} reference {:<28} ratio {:<22} {}\n",
            r.metric,
            r.lanbridge,
            r.reference,
            r.ratio,
            r.met.text()
        ));
    }
    s
}

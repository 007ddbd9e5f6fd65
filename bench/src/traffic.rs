//! Section 3: single-stream TCP throughput (iperf3) and UDP request/response
//! round trips (a ping-pong written here), for each path and each setup,
//! interleaved: every repetition runs every setup once, in a rotating order.
//! Also the small-packet load of section 4 (a UDP blaster and sink).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use lanbridge_tests::netns::Netns;
use serde::{Deserialize, Serialize};

use crate::ab::rotation;
use crate::guard;
use crate::stats::Series;
use crate::Params;
use lanbridge_tests::background::Background;
use lanbridge_tests::process;
use lanbridge_tests::testbed::{Testbed, LAN_HOST};

pub const IPERF_PORT: u16 = 5201;
pub const PINGPONG_PORT: u16 = 7007;
pub const SINK_PORT: u16 = 7008;

/// One way of connecting pods: a plugin setup or the raw chain.
pub struct Setup<'a> {
    pub key: &'static str,
    pub label: &'static str,
    /// The pod that sends (pod → LAN, pod → pod) and its peer on the same node.
    pub a: &'a Netns,
    pub a_ip: String,
    pub b: &'a Netns,
    pub b_ip: String,
    /// A pod on another node and its address, for setups that have a
    /// second node; the others are skipped for [`Path::PodToRemotePod`].
    pub remote: Option<(&'a Netns, String)>,
}

impl Setup<'_> {
    /// Where `path` goes from `a`, if this setup has that path.
    fn target(&self, path: Path) -> Option<String> {
        match path {
            Path::PodToLan | Path::LanToPod => Some(LAN_HOST.to_string()),
            Path::PodToPod => Some(self.b_ip.clone()),
            Path::PodToRemotePod => self.remote.as_ref().map(|(_, ip)| ip.clone()),
        }
    }
}

/// The setups' keys, as the report names them.
pub const SETUPS: [&str; 5] = ["lb_lan", "lb_subnet", "ref_bridged", "ref_subnet", "raw"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Path {
    PodToLan,
    LanToPod,
    PodToPod,
    /// To a pod on another node (subnet mode across nodes).
    PodToRemotePod,
}

impl Path {
    pub const ALL: [Path; 4] = [
        Path::PodToLan,
        Path::LanToPod,
        Path::PodToPod,
        Path::PodToRemotePod,
    ];
    /// The paths with a round-trip measurement.
    pub const RTT: [Path; 3] = [Path::PodToLan, Path::PodToPod, Path::PodToRemotePod];

    pub fn label(self) -> &'static str {
        match self {
            Path::PodToLan => "pod → LAN host",
            Path::LanToPod => "LAN host → pod",
            Path::PodToPod => "pod → pod (same node)",
            Path::PodToRemotePod => "pod → pod on another node",
        }
    }

    /// The label of the path's round trip.
    pub fn rtt_label(self) -> &'static str {
        match self {
            Path::PodToLan | Path::LanToPod => "pod ↔ LAN host",
            Path::PodToPod => "pod ↔ pod (same node)",
            Path::PodToRemotePod => "pod ↔ pod on another node",
        }
    }
}

/// Gbit/s and µs per (path, setup).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Traffic {
    pub seconds: f64,
    pub throughput: Vec<Measured>,
    pub rtt: Vec<Measured>,
    /// Thousands of 64-byte UDP datagrams received per second (kpps), pod
    /// → LAN host (absent in older runs).
    #[serde(default)]
    pub pps: Vec<Measured>,
    pub rtt_iters: usize,
    pub rtt_lost: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Measured {
    pub path: Path,
    pub setup: String,
    pub label: String,
    pub series: Series,
}

impl Traffic {
    pub fn tput(&self, path: Path, setup: &str) -> Option<&Series> {
        find(&self.throughput, path, setup)
    }

    pub fn rtt(&self, path: Path, setup: &str) -> Option<&Series> {
        find(&self.rtt, path, setup)
    }

    /// Whether `path` was measured for any setup (results of older runs
    /// have no pod → remote pod).
    pub fn has(&self, path: Path) -> bool {
        self.throughput.iter().any(|m| m.path == path)
    }
}

fn find<'m>(measured: &'m [Measured], path: Path, setup: &str) -> Option<&'m Series> {
    let m = measured.iter().find(|m| m.path == path && m.setup == setup);
    m.map(|m| &m.series)
}

/// iperf3 servers: one in the LAN host, one in each setup's `b` and remote pod.
pub fn iperf_servers(bed: &Testbed, setups: &[Setup]) -> Result<Vec<Background>> {
    let mut v = Vec::new();
    let mut hosts: Vec<&Netns> = vec![&bed.host];
    hosts.extend(setups.iter().map(|s| s.b));
    hosts.extend(setups.iter().filter_map(|s| s.remote.as_ref().map(|r| r.0)));
    for ns in hosts {
        let mut c = ns.command("iperf3");
        c.args(["-s", "-p", &IPERF_PORT.to_string()]);
        let log = bed.dir("iperf").join("server.log");
        v.push(Background::spawn("iperf3 -s", c, &log));
    }
    // Until they listen.
    std::thread::sleep(Duration::from_millis(300));
    Ok(v)
}

/// One iperf3 client run; Gbit/s received.
pub fn iperf(from: &Netns, to: &str, secs: f64, omit: u32, reverse: bool) -> Result<f64> {
    let mut last = String::new();
    for _attempt in 0..3 {
        let mut c = from.command("iperf3");
        c.args(["-c", to, "-p", &IPERF_PORT.to_string(), "-J"])
            .args(["-t", &format!("{secs}")])
            .args(["-O", &omit.to_string()]);
        if reverse {
            c.arg("-R");
        }
        let out = process::run(&mut c, None, Duration::from_secs_f64(secs + 30.0));
        let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        if let Some(bps) = j["end"]["sum_received"]["bits_per_second"].as_f64() {
            if out.success() && bps > 0.0 {
                return Ok(bps / 1e9);
            }
        }
        last = format!(
            "{} {}",
            j["error"].as_str().unwrap_or_default(),
            out.stderr.trim()
        );
        // "the server is busy" or not listening yet.
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("iperf3 {to}: {last}")
}

/// Pins the calling thread to the machine's last CPU. The ping-pong's two
/// threads share it, so a round trip never waits for a cross-CPU wake-up
/// (an IPI, which on a VM is a hypervisor exit worth tens of µs and made
/// repetitions bimodal): what is left is the path's own cost.
pub fn pin_to_last_cpu() {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is a valid empty set; affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(n - 1, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A UDP server thread in `ns` on `port` handing each datagram to `serve`
/// (optionally on the last CPU, see [`pin_to_last_cpu`]); stops on drop.
pub struct UdpServer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl UdpServer {
    pub fn start(
        ns: &Netns,
        port: u16,
        pinned: bool,
        mut serve: impl FnMut(&UdpSocket, &[u8], SocketAddr) + Send + 'static,
    ) -> Result<UdpServer> {
        // Bound in the namespace, served from a thread of ours.
        let sock = ns.within(move || UdpSocket::bind(("0.0.0.0", port)));
        let sock = sock.map_err(|e| anyhow!("UDP server in {}: {e}", ns.name()))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let handle = std::thread::spawn(move || {
            if pinned {
                pin_to_last_cpu();
            }
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::SeqCst) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    serve(&sock, &buf[..n], from);
                }
            }
        });
        let handle = Some(handle);
        Ok(UdpServer { stop, handle })
    }

    /// The echo server of the ping-pong, on the same CPU as its client.
    pub fn echo(ns: &Netns) -> Result<UdpServer> {
        UdpServer::start(ns, PINGPONG_PORT, true, |sock, req, from| {
            sock.send_to(req, from).ok();
        })
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().ok();
        }
    }
}

/// `iters` UDP round trips of 64-byte requests from `from` to `to`; RTTs in
/// µs and the number of requests that got no answer within 200 ms.
pub fn pingpong(from: &Netns, to: &str, port: u16, iters: usize) -> Result<(Vec<f64>, u64)> {
    let dst: SocketAddr = format!("{to}:{port}").parse()?;
    from.within(move || {
        pin_to_last_cpu();
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.connect(dst)?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let req = [0x5au8; 64];
        let mut buf = [0u8; 2048];
        let mut rtts = Vec::with_capacity(iters);
        let mut lost = 0u64;
        let warmup = 200;
        for i in 0..iters + warmup {
            let t = Instant::now();
            sock.send(&req)?;
            match sock.recv(&mut buf) {
                Ok(_) => {
                    if i >= warmup {
                        rtts.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                Err(_) => lost += 1,
            }
        }
        if rtts.is_empty() {
            bail!("no answer from {dst}");
        }
        Ok((rtts, lost))
    })
}

/// Small-packet load: a sink in `to_ns` and a blaster in `from` sending
/// 64-byte UDP datagrams to `to` for `secs`; returns the datagrams the sink
/// received.
pub fn blast(from: &Netns, to_ns: &Netns, to: &str, secs: f64) -> Result<u64> {
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let sink = UdpServer::start(to_ns, SINK_PORT, false, move |_, _, _| {
        count.fetch_add(1, Ordering::Relaxed);
    })?;
    let dst: SocketAddr = format!("{to}:{SINK_PORT}").parse()?;
    let sent = from.within(move || -> Result<u64> {
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.connect(dst)?;
        let payload = [0u8; 22]; // 64-byte Ethernet frames (14 + 20 + 8 + 22)
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut n = 0u64;
        while Instant::now() < end {
            for _ in 0..64 {
                // ENOBUFS under load just drops a datagram.
                if sock.send(&payload).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    });
    // The last datagrams in flight.
    std::thread::sleep(Duration::from_millis(200));
    drop(sink);
    sent?;
    Ok(received.load(Ordering::Relaxed))
}

/// `reps` repetitions of `run` (its samples, from a setup's `a` to a target)
/// over `paths` and the setups that have them, a slot each; `what` is the
/// progress line, `{rep}` the repetition and `{n}` the number of slots.
fn measure(
    reps: usize,
    paths: &[Path],
    setups: &[Setup],
    what: &str,
    mut run: impl FnMut(&Setup, Path, &str) -> Result<Vec<f64>>,
) -> Result<Vec<Measured>> {
    let slots = paths.iter().flat_map(|&path| {
        let has = setups.iter().filter(move |s| s.target(path).is_some());
        has.map(move |s| Measured {
            path,
            setup: s.key.to_string(),
            label: s.label.to_string(),
            series: Series::new(),
        })
    });
    let mut measured: Vec<Measured> = slots.collect();
    let what = what.replace("{n}", &measured.len().to_string());
    for rep in 0..reps {
        crate::progress(&format!(
            "traffic: {}",
            what.replace("{rep}", &(rep + 1).to_string())
        ));
        for m in measured.iter_mut() {
            m.series.next_rep();
        }
        for &path in paths {
            // Every setup that has the path, starting at another each repetition.
            let turn = rotation(setups.len(), rep).map(|k| &setups[k]);
            for (s, to) in turn.filter_map(|s| Some((s, s.target(path)?))) {
                if guard::interrupted() {
                    bail!("interrupted");
                }
                let r = run(s, path, &to);
                let slot = measured
                    .iter_mut()
                    .find(|m| m.path == path && m.setup == s.key);
                let series = &mut slot.expect("a slot per path and setup").series;
                match r {
                    Ok(v) => v.into_iter().for_each(|x| series.push(x)),
                    Err(e) => series.fail(e.to_string()),
                }
            }
        }
    }
    Ok(measured)
}

/// Section 3 over `setups`; the testbed's LAN host runs the LAN-side
/// servers. Setups without a remote pod have no slot for
/// [`Path::PodToRemotePod`].
pub fn run(p: &Params, bed: &Testbed, setups: &[Setup]) -> Result<Traffic> {
    let (lan_host, reps) = (&bed.host, p.traffic_reps);
    let servers = iperf_servers(bed, setups)?;
    let secs = p.iperf_secs;
    let what = format!("iperf3 repetition {{rep}}/{reps} ({{n}} runs of {secs} s)");
    let throughput = measure(reps, &Path::ALL, setups, &what, |s, path, to| {
        Ok(vec![iperf(
            s.a,
            to,
            secs,
            p.iperf_omit,
            path == Path::LanToPod,
        )?])
    })?;
    drop(servers);

    let secs = p.ebpf_secs;
    let what = format!("64-byte UDP pod → LAN host, repetition {{rep}}/{reps} ({{n}} × {secs} s)");
    let pps = measure(reps, &[Path::PodToLan], setups, &what, |s, _, to| {
        Ok(vec![blast(s.a, lan_host, to, secs)? as f64 / secs / 1e3])
    })?;

    let _echo: Vec<UdpServer> = std::iter::once(lan_host)
        .chain(setups.iter().map(|s| s.b))
        .chain(setups.iter().filter_map(|s| s.remote.as_ref().map(|r| r.0)))
        .map(UdpServer::echo)
        .collect::<Result<_>>()?;
    let iters = p.rtt_iters;
    let what = format!("UDP ping-pong repetition {{rep}}/{reps} ({{n}} × {iters} round trips)");
    let mut lost = 0;
    let rtt = measure(reps, &Path::RTT, setups, &what, |s, _, to| {
        let (rtts, l) = pingpong(s.a, to, PINGPONG_PORT, iters)?;
        lost += l;
        Ok(rtts)
    })?;
    Ok(Traffic {
        seconds: p.iperf_secs,
        throughput,
        rtt,
        pps,
        rtt_iters: iters,
        rtt_lost: lost,
    })
}

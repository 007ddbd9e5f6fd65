//! The floor of ADD and DEL (issue 15): a minimal program doing only what
//! an ADD must do (start a process, create the veth pair with its peer in
//! the pod, put the host end on the bridge, attach the port's TC program
//! with TCX and pin the link, set the pod's address, bring it up and add its
//! default route) and what a DEL must do before it answers (both ends down
//! and renamed, the link's pin renamed; the pair destroyed by a detached
//! child, as lanbridge's DEL does), measured in the same run and interleaved
//! with lanbridge's and the reference's warm ADD and DEL. The programs are empty (`return TCX_NEXT`), loaded and pinned
//! once, as lanbridge's are.
//!
//! The program is this binary: `lanbridge-bench floor add|del …`, run in the
//! node through `nsenter --net`, like a plugin.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use lanbridge::node::naming;
use lanbridge::node::netlink::{Netlink, VethSpec};
use lanbridge::node::netns::NetNs;
use lanbridge::node::reaper::{self, Deleter};
use lanbridge_tests::netns::Netns;
use lanbridge_tests::process::{self, Finished};
use rtnetlink::LinkUnspec;
use serde::{Deserialize, Serialize};

use crate::ab::{rotation, Pair};
use crate::bpf;
use crate::stats::Series;
use lanbridge_tests::testbed::{Net, Testbed};

use crate::Params;
use crate::Pool;

const BRIDGE: &str = "fl0";
const GATEWAY: &str = "10.246.1.1";
/// The pins of the empty program and of its link on the port.
const PROG: &str = "prog_ingress";
const LINK: &str = "link_ingress";

/// The floor beside both plugins, ms.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Floor {
    pub add: Series,
    pub del: Series,
    pub plugins_add: Pair,
    pub plugins_del: Pair,
}

impl Floor {
    /// One line: medians and the ratios to the floor.
    pub fn summary(&self) -> String {
        let m = |s: &Series| crate::stats::median(&s.all());
        let (fa, fd) = (m(&self.add), m(&self.del));
        let (la, ld) = (
            m(&self.plugins_add.lanbridge),
            m(&self.plugins_del.lanbridge),
        );
        let (ra, rd) = (
            m(&self.plugins_add.reference),
            m(&self.plugins_del.reference),
        );
        format!(
            "floor: ADD {fa:.1} ms, DEL {fd:.1} ms; lanbridge ADD {la:.1} ms ({:.2}x floor, \
             {:.2}x ref), DEL {ld:.1} ms ({:.2}x floor, {:.2}x ref); reference ADD {ra:.1} ms, DEL {rd:.1} ms",
            la / fa,
            la / ra,
            ld / fd,
            ld / rd
        )
    }
}

// ---- measuring ----------------------------------------------------------

/// `iters` warm ADD+DEL rounds of the floor, lanbridge and the reference
/// (`nets`, with their pod pools), who goes first rotating.
pub fn run(
    p: &Params,
    bed: &Testbed,
    node: Netns,
    nets: &[Net; 2],
    pools: &[Pool; 2],
) -> Result<Floor> {
    // The node's bridge with the pods' gateway address.
    node.ip(&["link", "add", BRIDGE, "type", "bridge"]);
    node.ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE]);
    node.ip(&["link", "set", BRIDGE, "up"]);
    let pins = crate::guard::bpffs_dir(&bed.prefix, "floor");
    std::fs::create_dir_all(&pins)?;
    let pod = bed.netns("fl0");
    let mut f = Floor::default();
    let exe = std::env::current_exe()?;
    let floor = |verb: &str| -> Finished {
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg(format!("--net={}", node.path().display()))
            .arg("--")
            .arg(&exe)
            .args(["floor", verb, &pod.path().display().to_string()])
            .arg(&pins);
        process::run(&mut cmd, Some(b""), Duration::from_secs(20))
    };
    // One round first: loads and pins the programs, warms the caches.
    for verb in ["add", "del"] {
        let out = floor(verb);
        if !out.success() {
            bail!("floor {verb}: {}", out.failure());
        }
    }
    for i in 0..p.warm_iters {
        for k in rotation(3, i) {
            match k {
                0 => {
                    let add = floor("add");
                    let del = floor("del");
                    if !add.success() || !del.success() {
                        bail!("floor: {} / {}", add.failure(), del.failure());
                    }
                    f.add.push(add.ms());
                    f.del.push(del.ms());
                }
                j => {
                    let (net, pod) = (&nets[j - 1], &pools[j - 1][0]);
                    let container = format!("floor-{i}");
                    let add = net.add(&container, pod);
                    if !add.success() {
                        bail!("{} ADD: {}", net.name(), add.failure());
                    }
                    let del = net.del(&container, pod, add.json().as_ref());
                    if !del.success() {
                        bail!("{} DEL: {}", net.name(), del.failure());
                    }
                    f.plugins_add.at(j - 1).push(add.ms());
                    f.plugins_del.at(j - 1).push(del.ms());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&pins);
    Ok(f)
}

// ---- the floor program ----------------------------------------------------

const HOST: &str = "flh0";
const POD_IF: &str = "eth0";
const POD_ADDR: &str = "10.246.1.2";

/// `floor add|del <pod netns> <pin dir>`, in the node's namespace.
pub fn main(args: &[String]) -> Result<()> {
    let [verb, pod, pins] = args else {
        bail!("usage: floor add|del <pod netns> <pin dir>");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (pod, pins) = (Path::new(pod), Path::new(pins));
    let done = match verb.as_str() {
        "add" => rt.block_on(add(pod, pins)),
        "del" => rt.block_on(del(pod, pins)),
        _ => bail!("floor: add or del, not {verb}"),
    };
    drop(rt);
    reaper::finish(Deleter::Normal);
    done
}

/// The index of link `name` (it must exist).
async fn index(nl: &Netlink, name: &str) -> Result<u32> {
    Ok(nl.existing_link(name).await?.index)
}

async fn add(pod: &Path, pins: &Path) -> Result<()> {
    let node = Netlink::current()?;
    let pod_ns = NetNs::open(pod)?;
    // The peer is created in the pod (no later namespace move).
    let veth = VethSpec {
        name: HOST,
        peer: POD_IF,
        peer_netns: Some(pod_ns.raw_fd()),
        ..VethSpec::default()
    };
    node.add_veth(&veth).await?;
    let host = index(&node, HOST).await?;
    let bridge = index(&node, BRIDGE).await?;
    let set = LinkUnspec::new_with_index(host)
        .controller(bridge)
        .up()
        .build();
    node.set("enslave and up", set).await?;
    // On a thread of its own while the pod's side is set up, as lanbridge
    // does: the attach waits for an RCU grace period holding RTNL.
    let pins = pins.to_path_buf();
    let attached = std::thread::spawn(move || attach(&pins, host));
    // The pod's side, through a netlink socket opened in the pod.
    let nl = Netlink::open(&pod_ns)?;
    let eth = index(&nl, POD_IF).await?;
    nl.add_address(eth, format!("{POD_ADDR}/24").parse()?, false)
        .await?;
    nl.set_up(eth).await?;
    let default = "0.0.0.0/0".parse()?;
    nl.add_route(default, Some(GATEWAY.parse()?), eth, 0)
        .await?;
    attached
        .join()
        .map_err(|_| anyhow::anyhow!("the attach thread panicked"))??;
    Ok(())
}

/// What lanbridge's ADD attaches to the host end `host` in the measured
/// config (subnet mode without portIsolation: its program at TCX ingress),
/// the empty program in its place, the link pinned under `pins`.
fn attach(pins: &Path, host: u32) -> Result<()> {
    let prog = bpf::empty_program(&pins.join(PROG), bpf::TCX_INGRESS)?;
    let link = bpf::link_create(&prog, host, bpf::TCX_INGRESS, 0)?;
    bpf::pin(&link, &pins.join(LINK))
}

/// What a DEL must do before it answers: cut the pod off and free every
/// name the next ADD needs (both ends down and renamed, the link's pin
/// renamed); destroying the pair, which waits for RCU grace periods, is
/// left to a detached child, as lanbridge's DEL does.
async fn del(pod: &Path, pins: &Path) -> Result<()> {
    let node = Netlink::current()?;
    let host = index(&node, HOST).await?;
    let retired = naming::tombstone_link(host);
    node.retire(host, &retired).await?;
    let nl = Netlink::open(&NetNs::open(pod)?)?;
    let eth = index(&nl, POD_IF).await?;
    nl.retire(eth, &naming::tombstone_link(eth)).await?;
    let pin = pins.join(naming::tombstone_pin(host, false));
    std::fs::rename(pins.join(LINK), &pin)?;
    reaper::defer(&retired, vec![pin]);
    Ok(())
}

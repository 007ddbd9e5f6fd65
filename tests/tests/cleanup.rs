//! `lanbridge cleanup`: after ADDs, DELs and one cleanup the node is as it
//! was before the first ADD (links, addresses, routes, sysctls,
//! iptables/nft, bpffs, state); it refuses while attachments exist unless
//! `--force`, and `--dry-run` changes nothing.

use std::path::Path;
use std::time::Duration;

use lanbridge_tests::binary::lanbridge_bin;
use lanbridge_tests::flows::{LanNet, LanOpts};
use lanbridge_tests::process::{self, Finished, DEFAULT_TIMEOUT};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::{Netns, World};

/// Everything of a node namespace lanbridge may touch, as text.
#[derive(Debug, PartialEq)]
struct Snapshot {
    links: Vec<String>,
    addresses: Vec<String>,
    routes: Vec<String>,
    sysctls: Vec<String>,
    iptables: Vec<String>,
    nft: String,
    bpffs: Vec<String>,
    state: Vec<String>,
    /// The scope's marker and the daemon's socket.
    run: Vec<String>,
}

fn snapshot(w: &World) -> Snapshot {
    let node = &w.topo.node;
    // IPv6 duplicate address detection ends on its own time, and adds a
    // local route when it does: wait for it.
    let settled = process::wait_until(Duration::from_secs(5), || {
        !node.ip(&["-o", "addr", "show"]).contains("tentative")
    });
    assert!(settled, "addresses still tentative");
    let lines = |out: String| -> Vec<String> {
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let links = node
        .ip_json(&["-d", "link", "show"])
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            format!(
                "{} {} master={} mtu={} {} {}",
                l["ifname"],
                l["linkinfo"]["info_kind"],
                l["master"],
                l["mtu"],
                l["address"],
                l["flags"]
            )
        })
        .collect();
    let iptables = ["iptables-save", "ip6tables-save"]
        .iter()
        .flat_map(|tool| {
            node.run(&[tool])
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.starts_with('#'))
        // Policy lines carry packet counters.
        .map(|l| l.split(" [").next().unwrap_or_default().to_string())
        .collect();
    let sysctls = node.run(&[
        "grep",
        "-rs",
        ".",
        "/proc/sys/net/ipv4/conf",
        "/proc/sys/net/ipv4/neigh",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ]);
    Snapshot {
        links,
        addresses: lines(node.ip(&["-o", "addr", "show"])),
        routes: lines(node.ip(&["route", "show", "table", "all"])),
        sysctls: lines(sysctls),
        iptables,
        nft: nft_tables(node),
        bpffs: tree(&w.pin_root()),
        state: tree(&w.state_dir().join("lbtnet")),
        run: tree(&w.run_dir()),
    }
}

/// nftables tables other than iptables-nft's own (`ip`/`ip6` families,
/// compared through iptables-save; it creates their base chains lazily).
fn nft_tables(node: &Netns) -> String {
    let mut out = String::new();
    for table in node.run(&["nft", "list", "tables"]).lines() {
        let words: Vec<&str> = table.split_whitespace().collect();
        if let ["table", family, name] = words[..] {
            if family != "ip" && family != "ip6" {
                out += &node.run(&["nft", "list", "table", family, name]);
            }
        }
    }
    out
}

/// Every path under `dir` (empty when it does not exist).
fn tree(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .output()
        .expect("find");
    lines_of(&String::from_utf8_lossy(&out.stdout))
}

fn lines_of(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `lanbridge cleanup <args>` in the node, with its default paths.
fn cleanup(w: &World, args: &[&str]) -> Finished {
    let mut cmd = w.topo.node.command(&lanbridge_bin().display().to_string());
    cmd.arg("cleanup").args(args);
    process::run(&mut cmd, None, DEFAULT_TIMEOUT)
}

fn assert_same(before: &Snapshot, after: &Snapshot, context: &str) {
    for (what, a, b) in [
        ("links", &before.links, &after.links),
        ("addresses", &before.addresses, &after.addresses),
        ("routes", &before.routes, &after.routes),
        ("sysctls", &before.sysctls, &after.sysctls),
        ("iptables", &before.iptables, &after.iptables),
        ("bpffs", &before.bpffs, &after.bpffs),
        ("state", &before.state, &after.state),
        ("run", &before.run, &after.run),
    ] {
        let gone: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
        let new: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
        assert!(
            gone.is_empty() && new.is_empty(),
            "{context}: {what} differ\nmissing: {gone:#?}\nextra: {new:#?}"
        );
    }
    assert_eq!(before.nft, after.nft, "{context}: nft ruleset");
}

/// Subnet mode with gateway, masquerade and macspoofchk (bridge, ip_forward,
/// nat chains, FORWARD accepts, nft table, pins).
#[test]
fn subnet_node_is_as_before_after_del_and_cleanup() {
    let w = World::lanbridge("clean");
    let mut conf = w.subnet_conf("1.0.0", "10.244.1.0/24");
    conf["macspoofchk"] = serde_json::json!(true);
    // A table exists in a namespace from its first change on and stays
    // (empty): create the ones lanbridge uses before the first snapshot.
    for tool in ["iptables", "ip6tables"] {
        for table in ["filter", "nat"] {
            w.topo.node.run(&[tool, "-t", table, "-N", "LBT-PRIME"]);
            w.topo.node.run(&[tool, "-t", table, "-X", "LBT-PRIME"]);
        }
    }
    let before = snapshot(&w);
    let pods: Vec<Netns> = (0..2).map(|i| w.topo.pod(&format!("p{i}"))).collect();
    let atts: Vec<Attachment> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| Attachment::new(&format!("ctr-c{i}"), p, "eth0"))
        .collect();
    for att in &atts {
        w.rt.invoke("ADD", &conf, att, None).expect_ok("ADD");
    }
    let busy = snapshot(&w);
    assert_ne!(busy, before);

    // Attachments left: refused, nothing touched; --dry-run touches nothing.
    let out = cleanup(&w, &[]);
    assert!(!out.success(), "cleanup with pods: {out:?}");
    assert!(out.stderr.contains("ctr-c0"), "{}", out.stderr);
    assert_same(&busy, &snapshot(&w), "refused cleanup");
    let out = cleanup(&w, &["--dry-run", "--force"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("would delete link lb0"),
        "{}",
        out.stdout
    );
    assert_same(&busy, &snapshot(&w), "dry run");

    w.rt.invoke("DEL", &conf, &atts[0], None).expect_ok("DEL");
    let out = cleanup(&w, &["--force"]);
    assert!(out.success(), "cleanup --force: {out:?}");
    assert_same(&before, &snapshot(&w), "after DEL + cleanup --force");
    let again = cleanup(&w, &[]);
    assert!(again.success() && again.stdout.is_empty(), "{again:?}");
}

/// Lan mode with FORWARD DROP: uplink programs and sysctls, the bridge's
/// link-local address, per-pod routes and accepts; the uplink keeps its
/// address and routes.
#[test]
fn lan_node_is_as_before_after_dels_and_cleanup() {
    let lan = LanNet::new(
        "cleanlan",
        "lbtnet",
        LanOpts {
            forward_drop: true,
            extra: None,
        },
    );
    let w = &lan.w;
    let before = snapshot(w);
    let pods: Vec<_> = (0..2).map(|i| lan.add(&format!("l{i}"))).collect();
    assert_ne!(snapshot(w), before);
    for pod in &pods {
        w.rt.invoke("DEL", &lan.conf, &pod.att, None)
            .expect_ok("DEL");
    }
    let out = cleanup(w, &["--network", "lbtnet"]);
    assert!(out.success(), "cleanup: {out:?}");
    assert!(out.stdout.contains("detached from eth0"), "{}", out.stdout);
    assert_same(&before, &snapshot(w), "after DELs + cleanup");
}

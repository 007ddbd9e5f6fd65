//! Crash-proof node state: a plugin killed mid-ADD, a sandbox that vanished
//! without DEL, truncated state files and a full state dir never leave a
//! node where ADD, DEL or GC fail, and afterwards nothing is left.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lanbridge::commands::fault::{Step, DELETER, DEL_STEPS, KILL_ENV};
use lanbridge_tests::binary::lanbridge_bin;
use lanbridge_tests::bpftool::bpftool;
use lanbridge_tests::flows::{arp_frame, send_frames, Capture, LanNet, LanOpts};
use lanbridge_tests::lan::LAN_NET_BRIDGE;
use lanbridge_tests::netns::scoped_defaults;
use lanbridge_tests::process::{self, DEFAULT_TIMEOUT};
use lanbridge_tests::result::{first_ip, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_HOST, NODE_UPLINK};
use lanbridge_tests::World;
use serde_json::Value;

const SUBNET: &str = "10.244.1.0/24";
const NET: &str = "lbtnet";

/// ADD's steps, as `LANBRIDGE_KILL_AFTER` names them.
fn steps() -> impl Iterator<Item = &'static str> {
    Step::ALL.into_iter().map(Step::name)
}

fn conf(w: &World) -> Value {
    w.subnet_conf("1.1.0", SUBNET)
}

fn add(w: &World, att: &Attachment, what: &str) -> Value {
    w.rt.invoke("ADD", &conf(w), att, None).expect_ok(what)
}

fn del(w: &World, att: &Attachment, what: &str) -> String {
    let out = w.rt.invoke("DEL", &conf(w), att, None);
    out.expect_ok(what);
    out.run.stderr
}

/// GC with `valid` as the runtime's live attachments.
fn gc(w: &World, valid: &[&Attachment], what: &str) {
    w.rt.gc_list(&w.subnet_list("1.1.0", SUBNET), valid)
        .unwrap_or_else(|f| panic!("{what}: {f}"));
}

/// An ADD killed with SIGKILL right after `step`: no undo runs at all.
fn killed_add(w: &World, att: &Attachment, step: &str) {
    let env = w.rt.env("ADD", att).with(KILL_ENV, step);
    let out = w.rt.exec(&conf(w), &env);
    assert_eq!(out.code, None, "ADD not killed after {step}: {out}");
}

fn record_path(w: &World, att: &Attachment) -> PathBuf {
    w.state_dir()
        .join(NET)
        .join(format!("{}:{}.json", att.container_id, att.ifname))
}

#[test]
fn sigkill_after_each_add_step_then_del_or_add_converge() {
    let w = World::lanbridge("kill");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-kill", &pod, "eth0");
    for step in steps() {
        // The runtime's usual answer to a failed ADD: DEL.
        killed_add(&w, &att, step);
        del(&w, &att, &format!("DEL after a kill after {step}"));
        gc(&w, &[], &format!("GC after a kill after {step}"));
        w.assert_nothing_left(
            &pod,
            &att.container_id,
            "10.244.1.",
            &format!("kill at {step}, DEL"),
        );

        // A runtime that lost track retries ADD instead.
        killed_add(&w, &att, step);
        let r = add(&w, &att, &format!("ADD after a kill after {step}"));
        assert_eq!(pod.links(), vec!["eth0", "lo"], "after {step}");
        assert!(pod.ping("10.244.1.1"), "pod cut off after {step}");
        assert_eq!(w.map_entries(NET, "lb_endpoints").len(), 1, "after {step}");
        del(&w, &att, &format!("DEL after ADD after kill at {step}"));
        gc(&w, &[], &format!("GC after ADD after kill at {step}"));
        let ip = first_ip(&r);
        w.assert_nothing_left(
            &pod,
            &att.container_id,
            &ip,
            &format!("kill at {step}, ADD"),
        );
    }
}

/// A DEL killed after each of its steps: DEL again, then GC, leave nothing
/// (a retired pair the kill left is swept), and the pod can be added again.
#[test]
fn sigkill_after_each_del_step_then_del_and_gc_leave_nothing() {
    let w = World::lanbridge("killdel");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-kd", &pod, "eth0");
    for step in DEL_STEPS {
        let ip = first_ip(&add(&w, &att, &format!("ADD before killing DEL at {step}")));
        let env = w.rt.env("DEL", &att).with(KILL_ENV, &format!("del:{step}"));
        let out = w.rt.exec(&conf(&w), &env);
        assert_eq!(out.code, None, "DEL not killed after {step}: {out}");
        del(&w, &att, &format!("DEL after a kill after {step}"));
        gc(&w, &[], &format!("GC after a kill after {step}"));
        w.assert_nothing_left(
            &pod,
            &att.container_id,
            &ip,
            &format!("DEL killed at {step}"),
        );
    }
}

/// The deleter DEL leaves the pair to is killed before it deletes: the pair
/// stays retired (down, renamed), the pod bringing its end back up reaches
/// nothing through it, and GC, or `lanbridge cleanup`, removes it and its
/// link pins.
#[test]
fn a_killed_deleter_leaves_a_dead_port_that_gc_and_cleanup_remove() {
    let w = World::lanbridge("reap");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-r", &pod, "eth0");
    let live = w.topo.pod("q");
    let control = Attachment::new("ctr-q", &live, "eth0");
    let q_ip = first_ip(&add(&w, &control, "ADD of the control pod"));
    for sweeper in ["GC", "cleanup"] {
        let ip = first_ip(&add(&w, &att, "ADD"));
        let mac = pod.ip_json(&["link", "show", "eth0"])[0]["address"]
            .as_str()
            .expect("the pod's MAC")
            .to_string();
        let env = w.rt.env("DEL", &att).with(KILL_ENV, DELETER);
        w.rt.exec(&conf(&w), &env)
            .expect_ok("DEL whose deleter is killed");
        let retired = w.retired();
        assert!(
            retired.iter().any(|r| r.starts_with("lbgone"))
                && retired.iter().any(|r| r.contains("/gone_")),
            "no retired link and pins: {retired:?}"
        );
        let dead = pod
            .links()
            .into_iter()
            .find(|l| l.starts_with("lbgone"))
            .expect("the pod's retired end");

        // The pod revives its end: what it sends never reaches the bridge,
        // while the live pod's identical frames do.
        pod.ip(&["link", "set", &dead, "up"]);
        let log = w.path().join(format!("bridge-{sweeper}.log"));
        let capture = Capture::start(&w.topo.node, "lb0", "arp", &log);
        let ask = |mac: &str, ip: &str| {
            arp_frame(
                "ff:ff:ff:ff:ff:ff",
                mac,
                1,
                mac,
                ip,
                "00:00:00:00:00:00",
                "10.244.1.1",
            )
        };
        send_frames(&pod, &dead, vec![ask(&mac, &ip); 3]);
        let q_mac = live.ip_json(&["link", "show", "eth0"])[0]["address"]
            .as_str()
            .expect("the live pod's MAC")
            .to_string();
        send_frames(&live, "eth0", vec![ask(&q_mac, &q_ip); 3]);
        let seen = capture.text();
        assert!(
            seen.contains(&format!("tell {q_ip},")),
            "control not captured: {seen}"
        );
        assert!(
            !seen.contains(&format!("tell {ip},")),
            "the dead port forwarded: {seen}"
        );
        assert!(!pod.ping("10.244.1.1"), "the dead port reaches the gateway");

        match sweeper {
            "GC" => gc(&w, &[&control], "GC after the deleter was killed"),
            _ => {
                // cleanup refuses a network with live attachments: DEL the
                // control pod first (its own deleter runs normally).
                del(&w, &control, "DEL of the control pod");
                let mut cmd = w.topo.node.command(&lanbridge_bin().display().to_string());
                cmd.arg("cleanup");
                let out = process::run(&mut cmd, None, DEFAULT_TIMEOUT);
                assert!(out.success(), "lanbridge cleanup: {}", out.failure());
            }
        }
        w.wait_retired_gone(&format!("after {sweeper}"));
        assert_eq!(
            pod.links(),
            vec!["lo"],
            "after {sweeper}: the pod's end left"
        );
        let ports: Vec<String> = w.port_links("lb0");
        let expected = match sweeper {
            "GC" => 1,
            _ => 0,
        };
        assert_eq!(ports.len(), expected, "after {sweeper}: {ports:?}");
        assert_eq!(w.link_pins(NET).len(), expected, "after {sweeper}");
    }
}

/// The runtime restarted and the sandbox is gone without DEL; a new sandbox
/// of the same container gets the interface again (the dead port's pin,
/// endpoint and record are replaced), and DEL and GC still work.
#[test]
fn add_replaces_what_a_vanished_sandbox_left_behind() {
    let w = World::lanbridge("vanish");
    let old = w.topo.pod("old");
    let att = Attachment::new("ctr-v", &old, "eth0");
    let r = add(&w, &att, "first ADD");
    let veth = host_veth(&r, "lb0");
    let old_index = endpoint_ports(&w);
    old.delete();
    assert!(
        w.topo.node.wait_link(&veth, false),
        "{veth} outlived its pod"
    );

    let new = w.topo.pod("new");
    let att = Attachment::new("ctr-v", &new, "eth0");
    let r = add(&w, &att, "ADD in a new sandbox of the same container");
    let ip = first_ip(&r);
    let ports = endpoint_ports(&w);
    assert_eq!(ports.len(), 1, "endpoints: {ports:?}");
    assert_ne!(ports, old_index, "the dead port's endpoint stayed");
    assert!(new.ping("10.244.1.1"), "the new sandbox is cut off");
    del(&w, &att, "DEL");
    gc(&w, &[], "GC");
    w.assert_nothing_left(&new, "ctr-v", &ip, "after DEL of the replacement");

    // DEL and GC after a vanished sandbox, without a new ADD.
    let pod = w.topo.pod("gone");
    let att = Attachment::new("ctr-g", &pod, "eth0");
    let r = add(&w, &att, "ADD");
    let (ip, veth) = (first_ip(&r), host_veth(&r, "lb0"));
    pod.delete();
    assert!(
        w.topo.node.wait_link(&veth, false),
        "{veth} outlived its pod"
    );
    let gone = att;
    gc(&w, &[&gone], "GC with the vanished attachment still valid");
    assert!(endpoint_ports(&w).is_empty(), "endpoint of a vanished port");
    del(&w, &gone, "DEL after the sandbox vanished");
    gc(&w, &[], "GC");
    let nobody = w.topo.pod("nobody");
    w.assert_nothing_left(&nobody, "ctr-g", &ip, "DEL after the sandbox vanished");
}

/// A record truncated by a crash: DEL works from the deterministic names and
/// says so; GC names the bad record, removes it and goes on with the others.
#[test]
fn truncated_records_never_block_del_or_gc() {
    let w = World::lanbridge("trunc");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-t", &pod, "eth0");
    let ip = first_ip(&add(&w, &att, "ADD"));
    truncate(&record_path(&w, &att));
    let stderr = del(&w, &att, "DEL with a truncated record");
    assert!(
        stderr.contains("ctr-t:eth0.json") && stderr.contains("corrupt"),
        "DEL did not name the bad record: {stderr}"
    );
    del(&w, &att, "DEL again");
    w.assert_nothing_left(&pod, "ctr-t", &ip, "DEL with a truncated record");

    let q = w.topo.pod("q");
    let a = Attachment::new("ctr-a", &pod, "eth0");
    let b = Attachment::new("ctr-b", &q, "eth0");
    add(&w, &a, "ADD a");
    add(&w, &b, "ADD b");
    truncate(&record_path(&w, &a));
    gc(&w, &[], "GC with one truncated record");
    gc(&w, &[], "GC again");
    w.wait_retired_gone("after GC");
    assert_eq!(w.port_links("lb0"), Vec::<String>::new());
    assert_eq!(w.allocations(NET), Vec::<String>::new());
    assert_eq!(w.state_files(), Vec::<PathBuf>::new());
    assert_eq!(w.link_pins(NET), Vec::<String>::new());
    assert!(endpoint_ports(&w).is_empty());
    assert_eq!(w.pod_forward_rules(), Vec::<String>::new());
    assert_eq!(w.nat_rules(), Vec::<String>::new());
}

/// An allocation file truncated by a crash: DEL succeeds, GC frees the
/// address, and the next ADD works.
#[test]
fn truncated_allocation_is_collected() {
    let w = World::lanbridge("alloc");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-al", &pod, "eth0");
    let ip = first_ip(&add(&w, &att, "ADD"));
    truncate(&w.data_dir().join(NET).join(&ip));
    del(&w, &att, "DEL with a truncated allocation");
    gc(&w, &[], "GC");
    w.assert_nothing_left(&pod, "ctr-al", &ip, "after GC");
    let ip = first_ip(&add(&w, &att, "ADD afterwards"));
    del(&w, &att, "DEL");
    w.assert_nothing_left(&pod, "ctr-al", &ip, "after the last DEL");
}

/// A full state dir (and IPAM dir): ADD fails with code 5 naming the file
/// and leaves no partial file or anything else; with space again ADD, DEL
/// and GC work.
#[test]
fn full_state_dir_fails_add_cleanly() {
    let w = World::lanbridge("full");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-full", &pod, "eth0");
    // Create the per-network dirs and the lock files while there is room.
    let ip = first_ip(&add(&w, &att, "ADD"));
    del(&w, &att, "DEL");
    w.assert_nothing_left(&pod, "ctr-full", &ip, "before filling");

    let disk = Tmpfs::mount(&w.state_dir());
    std::fs::create_dir_all(w.state_dir().join(NET)).unwrap();
    disk.fill();
    let out = w.rt.invoke("ADD", &conf(&w), &att, None);
    let code = out.expect_err("ADD on a full state dir");
    assert_eq!(code, 5, "{out}");
    assert!(out.error_text().contains("ctr-full:eth0"), "{out}");
    assert_eq!(w.state_files(), vec![disk.filler()], "partial files");
    disk.free();
    w.assert_nothing_left(&pod, "ctr-full", "10.244.1.", "failed ADD on a full disk");

    let ip = first_ip(&add(&w, &att, "ADD with room again"));
    del(&w, &att, "DEL");
    gc(&w, &[], "GC");
    w.assert_nothing_left(&pod, "ctr-full", &ip, "after DEL");
}

/// A full IPAM dir: ADD fails with code 5 and no allocation file, not even
/// an empty one holding the address for nobody; with room again it works.
#[test]
fn full_ipam_dir_fails_add_cleanly() {
    let w = World::lanbridge("fullipam");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-fi", &pod, "eth0");
    let disk = Tmpfs::mount(&w.data_dir());
    let store = w.data_dir().join(NET);
    std::fs::create_dir_all(&store).unwrap();
    disk.fill();
    let out = w.rt.invoke("ADD", &conf(&w), &att, None);
    assert_eq!(out.expect_err("ADD on a full IPAM dir"), 5, "{out}");
    let mut left: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    assert_eq!(left, vec!["lock"], "partial allocation files");
    disk.free();
    w.assert_nothing_left(&pod, "ctr-fi", "10.244.1.", "failed ADD on a full disk");

    let ip = first_ip(&add(&w, &att, "ADD with room again"));
    del(&w, &att, "DEL");
    w.assert_nothing_left(&pod, "ctr-fi", &ip, "after DEL");
}

/// DEL forgets the pod's flows (either direction) and only the pod's, also
/// among thousands of the node's (more than one batch of keys).
#[test]
fn del_removes_the_pods_flows() {
    let w = World::lanbridge("flows");
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-f", &pod, "eth0");
    let ip = first_ip(&add(&w, &att, "ADD"));
    let (lan, other) = ("192.168.1.5", "10.244.1.200");
    let mut flows = vec![];
    for port in 1..=1500u16 {
        flows.push((ip.as_str(), lan, port));
        flows.push((lan, ip.as_str(), port));
        flows.push((other, lan, port));
    }
    insert_flows(&w, &flows);
    assert_eq!(w.map_entries(NET, "lb_flows").len(), 4500);
    del(&w, &att, "DEL");
    let left = w.map_entries(NET, "lb_flows");
    assert_eq!(left.len(), 1500, "only the other pod's flows stay");
}

/// Container IDs as long as a runtime may send: names and the alias stay
/// within the kernel's limits, the record is found again.
#[test]
fn container_id_of_300_characters() {
    let w = World::lanbridge("longid");
    let pod = w.topo.pod("p");
    let id = "c".repeat(300);
    let att = Attachment::new(&id, &pod, "eth0");
    let r = add(&w, &att, "ADD with a 300-character container ID");
    let veth = host_veth(&r, "lb0");
    let link = w.topo.node.ip_json(&["link", "show", "dev", &veth]);
    let alias = link[0]["ifalias"].as_str().unwrap_or_default().to_string();
    assert!(
        alias.starts_with("lanbridge lbtnet ccc") && alias.len() < 255,
        "{alias}"
    );
    assert_eq!(w.state_files().len(), 1, "no record of the long ID");
    let ip = first_ip(&r);
    w.rt.invoke("DEL", &conf(&w), &att, Some(&r))
        .expect_ok("DEL");
    w.assert_nothing_left(&pod, &id, &ip, "after DEL of the long ID");
}

/// The `ifindex` keys of `lb_endpoints`.
fn endpoint_ports(w: &World) -> Vec<Value> {
    w.map_entries(NET, "lb_endpoints")
        .into_iter()
        .map(|e| e["key"].clone())
        .collect()
}

/// A `lb_flows` entry (FlowKey: saddr, daddr, ports, proto, pad) for TCP.
/// Records flows `(saddr, daddr, sport)` (TCP to port 12345) in `lb_flows`,
/// in one bpftool batch.
fn insert_flows(w: &World, flows: &[(&str, &str, u16)]) {
    let octets = |ip: &str| -> String {
        let ip: std::net::Ipv4Addr = ip.parse().unwrap();
        ip.octets().map(|o| o.to_string()).join(" ")
    };
    let path = w.pin_root().join(NET).join("lb_flows");
    let batch: String = flows
        .iter()
        .map(|(saddr, daddr, sport)| {
            let [hi, lo] = sport.to_be_bytes();
            format!(
                "map update pinned {} key {} {} {hi} {lo} 0x30 0x39 6 0 0 0 value 1 0 0 0 0 0 0 0\n",
                path.display(),
                octets(saddr),
                octets(daddr),
            )
        })
        .collect();
    let file = w.path().join("flows.batch");
    std::fs::write(&file, batch).unwrap();
    bpftool(&["batch", "file", &file.display().to_string()]);
}

fn truncate(path: &Path) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::write(path, &data[..data.len() / 3]).unwrap();
}

/// A small tmpfs over a directory of the world, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run(
            "mount",
            &["-t", "tmpfs", "-o", "size=256k", "lbt-full"],
            dir,
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.dir).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("cleanup: umount {} failed", self.dir.display());
        }
    }
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let status = Command::new(program)
        .args(args)
        .arg(dir)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} {}", dir.display());
}

/// The default paths of a dead node namespace whose inode a new one got:
/// the scope's marker names another namespace, so the first ADD removes the
/// stale pins and records and loads afresh; later ADDs keep them.
#[test]
fn reused_namespace_inode_gets_fresh_pins_and_state() {
    let w = World::lanbridge("reuse");
    let c = conf(&w);
    let [pins, state, run] = scoped_defaults(w.topo.node.inode());
    let program = pins.join(NET).join("lb_from_pod");
    let pinned = || std::fs::metadata(&program).map(|m| m.ino()).ok();

    let old = w.topo.pod("old");
    let att = Attachment::new("ctr-old", &old, "eth0");
    w.rt.invoke("ADD", &c, &att, None).expect_ok("ADD");
    let first = pinned().expect("pinned under the scoped default");
    let old_record = state.join(NET).join("ctr-old:eth0.json");
    assert!(old_record.exists());

    // What a dead namespace with this inode would have left.
    std::fs::write(run.join("netns-cookie"), "1").unwrap();
    let pod = w.topo.pod("p");
    let att = Attachment::new("ctr-new", &pod, "eth0");
    let out = w.rt.invoke("ADD", &c, &att, None);
    out.expect_ok("ADD after the inode was reused");
    assert!(out.stderr.contains("dead network namespace"), "{out}");
    assert!(!old_record.exists(), "a dead namespace's record survived");
    let second = pinned().expect("pinned again");
    assert_ne!(first, second, "the dead namespace's programs were reused");
    assert!(pod.ping("10.244.1.1"), "the new pod is cut off");

    let q = w.topo.pod("q");
    let again = Attachment::new("ctr-new2", &q, "eth0");
    w.rt.invoke("ADD", &c, &again, None)
        .expect_ok("a later ADD");
    assert_eq!(pinned(), Some(second), "a later ADD replaced the pins");
}

/// Lan mode under FORWARD DROP: a plugin killed after each ADD step, then
/// DEL, leaves no pod route, accept, endpoint, link or record behind; killed
/// again and retried, ADD gives a pod that reaches the LAN.
#[test]
fn lan_sigkill_after_each_add_step() {
    let lan = LanNet::new(
        "killlan",
        NET,
        LanOpts {
            forward_drop: true,
            extra: None,
        },
    );
    let w = &lan.w;
    let (pod, att) = lan.pod_ns("k");
    let kill = |step: &str| {
        let env = w.rt.env("ADD", &att).with(KILL_ENV, step);
        let out = w.rt.exec(&lan.conf, &env);
        assert_eq!(out.code, None, "ADD not killed after {step}: {out}");
    };
    let del = |what: &str| {
        w.rt.invoke("DEL", &lan.conf, &att, None).expect_ok(what);
    };
    for step in steps() {
        kill(step);
        del(&format!("DEL after a kill after {step}"));
        let routes: Vec<_> = w
            .topo
            .node
            .routes4()
            .into_iter()
            .filter(|r| r["dev"] == LAN_NET_BRIDGE)
            .collect();
        assert!(routes.is_empty(), "{step}: pod routes left: {routes:?}");
        assert_eq!(w.pod_forward_rules(), Vec::<String>::new(), "{step}");
        assert!(endpoint_ports(w).is_empty(), "{step}: endpoint left");
        let ports: Vec<_> = w
            .link_pins(NET)
            .into_iter()
            .filter(|l| l != NODE_UPLINK)
            .collect();
        assert!(ports.is_empty(), "{step}: port links left: {ports:?}");
        w.wait_retired_gone(step);
        assert_eq!(w.port_links(LAN_NET_BRIDGE), Vec::<String>::new(), "{step}");
        assert!(!record_path(w, &att).exists(), "{step}: record left");

        kill(step);
        w.rt.invoke("ADD", &lan.conf, &att, None)
            .expect_ok(&format!("ADD after a kill after {step}"));
        assert!(pod.ping(LAN_HOST), "{step}: the pod cannot reach the LAN");
        assert_eq!(endpoint_ports(w).len(), 1, "{step}");
        del(&format!("DEL after ADD after kill at {step}"));
    }
}

/// The uplink's link pin gone stale (the uplink was recreated, so its TCX
/// link is defunct; here the pin names another interface's link instead):
/// the next ADD attaches the uplink's programs anew, and its pod gets a
/// lease through them.
#[test]
fn stale_uplink_pin_is_replaced() {
    let lan = LanNet::new("staleup", NET, LanOpts::default());
    let w = &lan.w;
    let a = lan.add("a");
    let dir = w.pin_root().join(NET);
    let uplink_pin = dir.join(format!("link_{NODE_UPLINK}"));
    std::fs::remove_file(&uplink_pin).expect("uplink pinned");
    std::fs::rename(dir.join(format!("link_{}", a.port)), &uplink_pin).expect("bpffs rename");
    let add = |name: &str| {
        let (ns, att) = lan.pod_ns(name);
        let out = w.rt.invoke("ADD", &lan.conf, &att, None);
        out.expect_ok(&format!("ADD {name}"));
        (ns, att, out.run.stderr)
    };
    let (b, att_b, stderr) = add("b");
    assert!(stderr.contains("stale link"), "{stderr}");
    assert!(b.ping(LAN_HOST), "the new pod cannot reach the LAN");
    // Now the pin is the uplink's own: left alone.
    let (_c, att_c, stderr) = add("c");
    assert!(!stderr.contains("stale link"), "{stderr}");
    for att in [&a.att, &att_b, &att_c] {
        w.rt.invoke("DEL", &lan.conf, att, None).expect_ok("DEL");
    }
}

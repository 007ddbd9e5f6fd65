//! `cargo xtask demo`: a LAN, a node and three pods in throwaway network
//! namespaces; lanbridge ADD / CHECK / DEL for each pod, with what each pod
//! got and whether it can reach the others and the LAN. Everything is torn
//! down at the end, also on Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use lanbridge_tests::probe::{ip_of, udp_ask, PeerServer};
use lanbridge_tests::result::{self, host_veth};
use lanbridge_tests::runtime::Attachment;
use lanbridge_tests::topology::{LAN_HOST, LAN_ROUTER, NODE_ADDR, NODE_UPLINK};
use lanbridge_tests::{binary, netns, require_root, Netns, World};
use serde_json::Value;

const SUBNET: &str = "10.244.1.0/24";
const BRIDGE: &str = "lb0";
const PODS: usize = 3;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static TEMP_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// On SIGINT/SIGTERM: remove every namespace and the temp dir, then exit 130.
fn install_cleanup_on_signal() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        let prev = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        assert_ne!(
            prev,
            libc::SIG_ERR,
            "cannot install a handler for signal {sig}"
        );
    }
    thread::spawn(|| loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            eprintln!("\ninterrupted: removing the demo's namespaces and files");
            netns::cleanup_registered();
            let dir = TEMP_DIR.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(dir) = dir {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    eprintln!("remove {}: {e}", dir.display());
                }
            }
            std::process::exit(130);
        }
        thread::sleep(Duration::from_millis(50));
    });
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

struct Pod {
    name: String,
    ns: Netns,
    att: Attachment,
    result: Option<Value>,
}

fn describe(p: &Pod) {
    let Some(r) = &p.result else { return };
    println!("  {} (netns {}):", p.name, p.ns.name());
    for ip in result::ips(r) {
        println!(
            "    interface {:<6} address {:<16} gateway {}",
            ip.interface.as_deref().unwrap_or("?"),
            ip.address,
            ip.gateway.as_deref().unwrap_or("-")
        );
    }
    let mac = p.ns.ip_json(&["link", "show", "eth0"])[0]["address"].clone();
    println!(
        "    mac {}   host side {} on bridge {BRIDGE}",
        mac.as_str().unwrap_or("?"),
        host_veth(r, BRIDGE)
    );
    for route in p.ns.ip(&["-4", "route", "show"]).lines() {
        println!("    route {route}");
    }
}

fn main() -> ExitCode {
    require_root();
    install_cleanup_on_signal();
    println!(
        "lanbridge demo — plugin {}",
        binary::lanbridge_bin().display()
    );
    let w = World::lanbridge("demo");
    *TEMP_DIR.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.path().to_path_buf());
    println!("\nTopology (all in network namespaces, removed at the end):");
    println!(
        "  LAN    {}: bridge lanbr, router {LAN_ROUTER}/24",
        w.topo.lan.name()
    );
    println!("  host   {}: {LAN_HOST}/24", w.topo.lan_host.name());
    println!(
        "  node   {}: {NODE_UPLINK} {NODE_ADDR}/24, default via {LAN_ROUTER}",
        w.topo.node.name()
    );
    let conf = w.subnet_conf("1.0.0", SUBNET);
    println!(
        "\nNetwork config:\n{}",
        serde_json::to_string_pretty(&conf).expect("json")
    );

    let mut failures = 0;
    let mut pods: Vec<Pod> = (0..PODS)
        .map(|i| {
            let name = format!("pod{i}");
            let ns = w.topo.pod(&name);
            let att = Attachment::new(&format!("demo-ctr-{i}"), &ns, "eth0");
            Pod {
                name,
                ns,
                att,
                result: None,
            }
        })
        .collect();

    println!("\nADD");
    for p in &mut pods {
        let out = w.rt.invoke("ADD", &conf, &p.att, None);
        println!("  {}: ADD {}", p.name, mark(out.success()));
        if out.success() {
            p.result = out.json();
        } else {
            failures += 1;
            println!("{out}");
        }
    }
    println!("\nWhat each pod got");
    pods.iter().for_each(describe);

    println!("\nCHECK");
    for p in pods.iter().filter(|p| p.result.is_some()) {
        let out = w.rt.invoke("CHECK", &conf, &p.att, p.result.as_ref());
        println!("  {}: CHECK {}", p.name, mark(out.success()));
        if !out.success() {
            failures += 1;
            println!("{out}");
        }
    }

    println!("\nConnectivity (ping)");
    let up: Vec<&Pod> = pods.iter().filter(|p| p.result.is_some()).collect();
    let server = PeerServer::udp(&w.topo.lan_host, 7777);
    for p in &up {
        let mut line = format!("  {:<5} ->", p.name);
        for q in up.iter().filter(|q| q.name != p.name) {
            let ip = result::first_ip(q.result.as_ref().expect("result"));
            let ok = p.ns.ping(&ip);
            failures += usize::from(!ok);
            line += &format!("  {} {ip} {}", q.name, mark(ok));
        }
        let ok = p.ns.ping(LAN_HOST);
        failures += usize::from(!ok);
        line += &format!("  LAN host {LAN_HOST} {}", mark(ok));
        println!("{line}");
        match udp_ask(&p.ns, &format!("{LAN_HOST}:7777")) {
            Some(seen) => println!(
                "          the LAN host sees {} as {} (masqueraded)",
                p.name,
                ip_of(&seen)
            ),
            None => {
                failures += 1;
                println!("          no UDP answer from the LAN host");
            }
        }
    }
    drop(server);

    println!("\nDEL");
    for p in &pods {
        let out = w.rt.invoke("DEL", &conf, &p.att, p.result.as_ref());
        println!("  {}: DEL {}", p.name, mark(out.success()));
        if !out.success() {
            failures += 1;
            println!("{out}");
        }
    }
    let left = w.port_links(BRIDGE);
    let allocs = w.allocations("lbtnet");
    println!("  host-side links left: {left:?}; addresses still allocated: {allocs:?}");
    failures += usize::from(!left.is_empty()) + usize::from(!allocs.is_empty());

    drop(pods);
    drop(w);
    TEMP_DIR.lock().unwrap_or_else(|p| p.into_inner()).take();
    println!("\nTorn down: namespaces and temp files removed.");
    if failures == 0 {
        println!("demo: all steps ok");
        ExitCode::SUCCESS
    } else {
        println!("demo: {failures} step(s) failed");
        ExitCode::FAILURE
    }
}

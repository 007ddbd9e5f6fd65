//! A real runtime: podman 4.3 with its CNI backend runs a container on a
//! lanbridge network.

use std::path::Path;

use lanbridge_tests::binary::REFERENCE_DIR;
use lanbridge_tests::podman::Podman;
use lanbridge_tests::World;

fn podman_netns() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("cni-") || n.starts_with("netns-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn podman_runs_a_container_on_a_lanbridge_network() {
    let w = World::lanbridge("podman");
    let before = podman_netns();
    let list = w.subnet_list("1.0.0", "10.244.7.0/24");
    let mut list = list;
    list["name"] = serde_json::json!("lbtpod");
    let pm = Podman::new(
        w.path(),
        &w.topo.node,
        &[
            &lanbridge_tests::binary::lanbridge_plugin_dir(w.path()),
            Path::new(REFERENCE_DIR),
        ],
    );
    pm.add_network(&list);
    let rootfs = pm.rootfs().display().to_string();
    let out = pm.run(&[
        "run",
        "--rm",
        "--network",
        "lbtpod",
        "--rootfs",
        &rootfs,
        "/bin/busybox",
        "sh",
        "-c",
        "/bin/busybox ip -4 addr show dev eth0 && /bin/busybox ip route && \
         /bin/busybox ping -c 1 -W 2 10.244.7.1 && /bin/busybox ping -c 1 -W 2 192.168.77.50",
    ]);
    assert!(
        out.success(),
        "podman run failed (exit {:?}, timed out {})\nstdout:\n{}\nstderr:\n{}",
        out.code,
        out.timed_out,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("inet 10.244.7."),
        "no lanbridge address in the container:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("default via 10.244.7.1"),
        "no default route:\n{}",
        out.stdout
    );
    // podman --rm ran DEL: nothing left.
    w.wait_retired_gone("after podman rm");
    assert_eq!(
        w.allocations("lbtpod"),
        Vec::<String>::new(),
        "allocation left after podman rm"
    );
    assert_eq!(
        w.port_links("lb0"),
        Vec::<String>::new(),
        "host link left after podman rm"
    );
    assert_eq!(
        w.state_files(),
        Vec::<std::path::PathBuf>::new(),
        "state left after podman rm"
    );
    drop(pm);
    assert_eq!(podman_netns(), before, "podman left a netns behind");
}

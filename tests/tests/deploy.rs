//! Deployment: the Kubernetes manifests' structure (subnet and lan mode),
//! `lanbridge install` against a temporary root (what the DaemonSets' init
//! containers run), and the image `cargo xtask image` builds, run by podman.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use lanbridge_tests::binary::{lanbridge_bin, static_lanbridge_bin, workspace_dir, REFERENCE_DIR};
use lanbridge_tests::netns::unique_prefix;
use lanbridge_tests::podman::Podman;
use lanbridge_tests::process::{self, Finished, DEFAULT_TIMEOUT};
use lanbridge_tests::{require_root, Netns};
use serde_json::Value;

/// The subnet-mode manifest.
const SUBNET: &str = "deploy/lanbridge.yaml";
/// The lan-mode manifest.
const LAN: &str = "deploy/lanbridge-lan.yaml";
/// Where the daemons serve metrics and probes, on the node.
const METRICS_ADDRESS: &str = "0.0.0.0:9465";

fn manifest(file: &str) -> Vec<Value> {
    let path = workspace_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {file}: {e}"));
    // One document per `---` line; the comment before the first is none.
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("a document");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.iter()
        .map(|d| serde_norway::from_str::<Value>(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

fn mounts(container: &Value) -> BTreeSet<&str> {
    container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| m["mountPath"].as_str().expect("mountPath"))
        .collect()
}

/// The value after `flag` in `cmd`.
fn arg(cmd: &[&str], flag: &str) -> String {
    let i = cmd
        .iter()
        .position(|a| *a == flag)
        .unwrap_or_else(|| panic!("{flag} in {cmd:?}"));
    cmd[i + 1].to_string()
}

fn node_name_from_downward_api(container: &Value) {
    let env = container["env"].as_array().expect("env");
    let node = env
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .unwrap_or_else(|| panic!("no NODE_NAME in {}", container["name"]));
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
}

fn v4_net(cidr: &str) -> (u32, u32) {
    let (addr, len) = cidr.split_once('/').expect("CIDR");
    let addr: Ipv4Addr = addr.parse().expect("IPv4 address");
    let len: u32 = len.parse().expect("prefix length");
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(addr) & mask, mask)
}

#[test]
fn manifest_has_a_config_map_and_a_privileged_host_network_daemon_set() {
    let docs = manifest(SUBNET);
    runs_the_image_with_probes_and_metrics(&docs);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "DaemonSet"]);
    let cm = of_kind(&docs, "ConfigMap");
    let ds = of_kind(&docs, "DaemonSet");
    assert_eq!(ds["apiVersion"], "apps/v1");
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "runs on every node, tainted or not"
    );

    // The init container installs the binary and the conflist.
    let inits = pod["initContainers"].as_array().expect("initContainers");
    assert_eq!(inits.len(), 1);
    let init = &inits[0];
    let cmd = strings(&init["command"]);
    assert_eq!(cmd[..2], ["lanbridge", "install"]);
    assert_eq!(
        arg(&cmd, "--conflist"),
        "/etc/lanbridge/10-lanbridge.conflist"
    );
    assert_eq!(arg(&cmd, "--peers"), "/etc/lanbridge/peers.json");
    assert_eq!(arg(&cmd, "--node"), "$(NODE_NAME)");
    node_name_from_downward_api(init);
    let im = mounts(init);
    for path in ["/opt/cni/bin", "/etc/cni/net.d", "/etc/lanbridge"] {
        assert!(im.contains(path), "init container mounts {path}: {im:?}");
    }

    // The main container runs the daemon following the mounted peers file.
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let daemon = &containers[0];
    assert_eq!(daemon["securityContext"]["privileged"], true);
    let cmd = strings(&daemon["command"]);
    assert_eq!(cmd[..2], ["lanbridge", "daemon"]);
    assert_eq!(arg(&cmd, "--peers"), "/etc/lanbridge/peers.json");
    assert_eq!(arg(&cmd, "--node"), "$(NODE_NAME)");
    node_name_from_downward_api(daemon);
    let dm = mounts(daemon);
    for path in [
        "/sys/fs/bpf",
        "/run/lanbridge",
        "/var/lib/cni",
        "/run/netns",
        "/etc/lanbridge",
    ] {
        assert!(dm.contains(path), "daemon mounts {path}: {dm:?}");
    }
    let config_mount = daemon["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/lanbridge")
        .unwrap();
    assert!(
        config_mount.get("subPath").is_none(),
        "a subPath mount never sees ConfigMap updates"
    );

    // Every mount names a volume; host paths are mounted where they are on the host;
    // the ConfigMap volume is the manifest's ConfigMap.
    let volumes = pod["volumes"].as_array().expect("volumes");
    for c in inits.iter().chain(containers) {
        for m in c["volumeMounts"].as_array().unwrap() {
            let v = volumes
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap_or_else(|| panic!("no volume {}", m["name"]));
            if let Some(host) = v["hostPath"]["path"].as_str() {
                assert_eq!(m["mountPath"], host, "{}", m["name"]);
            } else {
                assert_eq!(v["configMap"]["name"], cm["metadata"]["name"]);
                assert_eq!(m["mountPath"], "/etc/lanbridge");
            }
        }
    }

    // The ConfigMap: a conflist for lanbridge that keeps the cluster un-NATed,
    // and a peers file whose pod subnets are all inside clusterCidrs.
    assert_eq!(cm["metadata"]["namespace"], ds["metadata"]["namespace"]);
    let conflist: Value =
        serde_json::from_str(cm["data"]["10-lanbridge.conflist"].as_str().unwrap())
            .expect("conflist is JSON");
    let plugin = &conflist["plugins"][0];
    assert_eq!(plugin["type"], "lanbridge");
    assert_eq!(plugin["ipMasq"], true);
    assert_eq!(plugin["ipam"]["ranges"][0][0]["subnet"], "{{podCidr}}");
    let cluster: Vec<(u32, u32)> = strings(&plugin["clusterCidrs"])
        .into_iter()
        .map(v4_net)
        .collect();
    let peers: Value = serde_json::from_str(cm["data"]["peers.json"].as_str().unwrap())
        .expect("peers.json is JSON");
    let nodes = peers["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty());
    for n in nodes {
        assert!(n["name"].is_string() && n["address"].is_string(), "{n}");
        let (net, _) = v4_net(n["podCidr"].as_str().unwrap());
        assert!(
            cluster.iter().any(|(c, mask)| net & mask == *c),
            "{} outside clusterCidrs",
            n["podCidr"]
        );
    }
}

/// What both DaemonSets share: every container runs the image `cargo xtask
/// image` builds; the daemon serves metrics on the node's port 9465 and the
/// kubelet probes it there.
fn runs_the_image_with_probes_and_metrics(docs: &[Value]) {
    let pod = &of_kind(docs, "DaemonSet")["spec"]["template"]["spec"];
    let image = format!("lanbridge:{}", env!("CARGO_PKG_VERSION"));
    let inits = pod["initContainers"].as_array().expect("initContainers");
    let containers = pod["containers"].as_array().expect("containers");
    for c in inits.iter().chain(containers) {
        assert_eq!(c["image"], image.as_str(), "{}", c["name"]);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent", "{}", c["name"]);
    }
    let daemon = &containers[0];
    let cmd = strings(&daemon["command"]);
    assert_eq!(cmd[..2], ["lanbridge", "daemon"]);
    assert_eq!(arg(&cmd, "--metrics-address"), METRICS_ADDRESS);
    let port = METRICS_ADDRESS.rsplit_once(':').unwrap().1;
    let ports = daemon["ports"].as_array().expect("ports");
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics");
    assert_eq!(metrics["containerPort"].to_string(), port);
    let template = &of_kind(docs, "DaemonSet")["spec"]["template"]["metadata"];
    assert_eq!(template["annotations"]["prometheus.io/port"], port);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &daemon[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "metrics", "{probe}");
    }
}

#[test]
fn lan_manifest_runs_the_lease_daemon_where_it_sees_pod_namespaces() {
    let docs = manifest(LAN);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "DaemonSet"]);
    runs_the_image_with_probes_and_metrics(&docs);
    let cm = of_kind(&docs, "ConfigMap");
    let ds = of_kind(&docs, "DaemonSet");
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    // Side by side with the subnet-mode DaemonSet in a cluster, never the same objects.
    let subnet = manifest(SUBNET);
    for kind in ["ConfigMap", "DaemonSet"] {
        assert_ne!(
            of_kind(&docs, kind)["metadata"]["name"],
            of_kind(&subnet, kind)["metadata"]["name"]
        );
    }

    // lan mode: an uplink and the daemon's DHCP, no gateway or NAT of lanbridge's own.
    let conflist: Value =
        serde_json::from_str(cm["data"]["10-lanbridge.conflist"].as_str().unwrap())
            .expect("conflist is JSON");
    let plugin = &conflist["plugins"][0];
    assert_eq!(plugin["type"], "lanbridge");
    assert!(plugin["uplink"].is_string());
    assert_eq!(plugin["ipam"]["type"], "dhcp");
    for key in ["isGateway", "isDefaultGateway", "ipMasq"] {
        assert!(plugin.get(key).is_none(), "{key} is not for lan mode");
    }
    let portmap = &conflist["plugins"][1];
    assert_eq!(portmap["type"], "portmap");
    assert_eq!(
        portmap["snat"], false,
        "hostPort clients keep their addresses"
    );

    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true, "/proc/<pid>/ns/net paths");
    let init = &pod["initContainers"][0];
    let cmd = strings(&init["command"]);
    assert_eq!(cmd[..2], ["lanbridge", "install"]);
    assert_eq!(
        arg(&cmd, "--conflist"),
        "/etc/lanbridge/10-lanbridge.conflist"
    );
    let daemon = &pod["containers"][0];
    assert_eq!(daemon["securityContext"]["privileged"], true);
    assert!(
        !strings(&daemon["command"]).contains(&"--peers"),
        "lan mode has no pod subnets to route"
    );
    // Leases survive the daemon (state on the host), the plugin finds its
    // socket, and pod namespaces made after the daemon started are visible
    // under both spellings runtimes use.
    let dm = mounts(daemon);
    for path in [
        "/sys/fs/bpf",
        "/run/lanbridge",
        "/var/lib/cni",
        "/run/netns",
        "/var/run/netns",
    ] {
        assert!(dm.contains(path), "daemon mounts {path}: {dm:?}");
    }
    let volumes = pod["volumes"].as_array().expect("volumes");
    for m in daemon["volumeMounts"].as_array().unwrap() {
        let v = volumes.iter().find(|v| v["name"] == m["name"]).unwrap();
        assert_eq!(m["mountPath"], v["hostPath"]["path"], "{}", m["name"]);
        let path = m["mountPath"].as_str().unwrap();
        if path.ends_with("/netns") || path == "/sys/fs/bpf" {
            assert_eq!(m["mountPropagation"], "HostToContainer", "{path}");
        }
    }
    for m in init["volumeMounts"].as_array().unwrap() {
        let v = volumes.iter().find(|v| v["name"] == m["name"]).unwrap();
        if v.get("configMap").is_some() {
            assert_eq!(v["configMap"]["name"], cm["metadata"]["name"]);
        }
    }
}

/// The ConfigMap's two files, written to `dir`.
fn config_files(dir: &Path) -> (PathBuf, PathBuf) {
    let docs = manifest(SUBNET);
    let data = &of_kind(&docs, "ConfigMap")["data"];
    let conflist = dir.join("10-lanbridge.conflist");
    let peers = dir.join("peers.json");
    std::fs::write(&conflist, data["10-lanbridge.conflist"].as_str().unwrap()).unwrap();
    std::fs::write(&peers, data["peers.json"].as_str().unwrap()).unwrap();
    (conflist, peers)
}

fn install(root: &Path, conflist: &Path, peers: &Path, extra: &[&str]) -> Finished {
    let mut cmd = Command::new(lanbridge_bin());
    cmd.arg("install")
        .arg("--root")
        .arg(root)
        .arg("--conflist")
        .arg(conflist)
        .arg("--peers")
        .arg(peers)
        .args(["--node", "node2"])
        .args(extra)
        .env_remove("NODE_NAME");
    process::run(&mut cmd, None, DEFAULT_TIMEOUT)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_into_a_temporary_root_is_atomic_and_idempotent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (conflist, peers) = config_files(tmp.path());
    let root = tmp.path().join("root");
    let bin = root.join("opt/cni/bin/lanbridge");
    let conf = root.join("etc/cni/net.d/10-lanbridge.conflist");

    // --dry-run: the plan, nothing written.
    let dry = install(&root, &conflist, &peers, &["--dry-run"]);
    assert!(dry.success(), "{dry:?}");
    assert_eq!(
        dry.stdout.lines().collect::<Vec<_>>(),
        [
            format!("install {}", bin.display()),
            format!("install {}", conf.display()),
            "(dry run: nothing written)".to_string(),
        ]
    );
    assert!(!root.exists(), "--dry-run wrote {:?}", files_under(&root));

    let first = install(&root, &conflist, &peers, &[]);
    assert!(first.success(), "{first:?}");
    assert_eq!(
        files_under(&root),
        [conf.clone(), bin.clone()],
        "no temp files left"
    );
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(lanbridge_bin()).unwrap(),
        "the binary is copied whole"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let installed: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    assert_eq!(
        installed["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.2.0/24",
        "node2's pod subnet from the peers file"
    );
    // The installed binary runs.
    let v = process::run(Command::new(&bin).arg("version"), None, DEFAULT_TIMEOUT);
    assert!(v.success() && v.stdout.starts_with("lanbridge "), "{v:?}");

    // Again: nothing rewritten.
    let mtimes = |paths: &[&Path]| -> Vec<std::time::SystemTime> {
        paths
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
            .collect()
    };
    let before = mtimes(&[&bin, &conf]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = install(&root, &conflist, &peers, &[]);
    assert!(second.success(), "{second:?}");
    assert_eq!(
        second.stdout.lines().collect::<Vec<_>>(),
        [
            format!("unchanged {}", bin.display()),
            format!("unchanged {}", conf.display())
        ]
    );
    assert_eq!(mtimes(&[&bin, &conf]), before);

    // A changed config is replaced, the binary is not.
    let text = std::fs::read_to_string(&conflist)
        .unwrap()
        .replace("cni0", "cni1");
    std::fs::write(&conflist, text).unwrap();
    let third = install(&root, &conflist, &peers, &[]);
    assert!(third.success(), "{third:?}");
    assert_eq!(
        third.stdout.lines().collect::<Vec<_>>(),
        [
            format!("unchanged {}", bin.display()),
            format!("update {}", conf.display())
        ]
    );
    assert_eq!(mtimes(&[&bin])[0], before[0]);

    // A broken config is refused and the installed one stays.
    let good = std::fs::read(&conf).unwrap();
    std::fs::write(
        &conflist,
        "{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": [",
    )
    .unwrap();
    let bad = install(&root, &conflist, &peers, &[]);
    assert!(!bad.success(), "{bad:?}");
    assert!(
        bad.stderr.contains("not valid JSON") && bad.stderr.contains("nothing written"),
        "{bad:?}"
    );
    assert_eq!(std::fs::read(&conf).unwrap(), good);
}

/// The image from deploy/Containerfile and the static binary, built by podman
/// offline (all of podman's state in a temp dir, podman in a namespace of its
/// own), runs `lanbridge version`, and each manifest's init container
/// command, with the manifest's mounts, installs onto a temporary host root.
#[test]
fn the_image_runs_version_and_each_init_container_installs() {
    require_root();
    let tmp = tempfile::tempdir().expect("temp dir");
    let node = Netns::create(&format!("{}image", unique_prefix()));
    // No network is used (`--network=none`); podman wants a plugin dir all the same.
    let pm = Podman::new(tmp.path(), &node, &[Path::new(REFERENCE_DIR)]);
    let binary = static_lanbridge_bin();
    let context = tmp.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(&binary, context.join("lanbridge")).unwrap();
    let tag = format!("lanbridge:{}", env!("CARGO_PKG_VERSION"));
    let containerfile = workspace_dir().join("deploy/Containerfile");
    let built = pm.run(&[
        "build",
        "--pull=never",
        "--network=none",
        "--file",
        &containerfile.display().to_string(),
        "--tag",
        &tag,
        &context.display().to_string(),
    ]);
    assert!(built.success(), "podman build: {built:?}");
    let run = |args: &[&str]| -> Finished {
        let mut argv = vec!["run", "--rm", "--network=none"];
        argv.extend(args);
        let out = pm.run(&argv);
        assert!(out.success(), "podman {argv:?}: {out:?}");
        out
    };

    // The image's default command.
    let version = run(&[&tag]);
    assert!(
        version
            .stdout
            .starts_with(&format!("lanbridge {}\n", env!("CARGO_PKG_VERSION")))
            && version.stdout.contains("eBPF object: embedded"),
        "{version:?}"
    );
    // Nothing but the binary in it.
    let inspect = pm.run(&["image", "inspect", &tag]);
    let image: Value = serde_json::from_str(&inspect.stdout).expect("image inspect JSON");
    assert_eq!(
        image[0]["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(1),
        "one layer: {image}"
    );

    for file in [SUBNET, LAN] {
        let docs = manifest(file);
        let dir = tmp.path().join(file.replace('/', "_"));
        let config = dir.join("config");
        let root = dir.join("root");
        std::fs::create_dir_all(&config).unwrap();
        let cm = of_kind(&docs, "ConfigMap");
        for (name, text) in cm["data"].as_object().unwrap() {
            std::fs::write(config.join(name), text.as_str().unwrap()).unwrap();
        }
        // The init container as the kubelet runs it: its mounts, its command
        // ($(NODE_NAME) expanded), the image's PATH.
        let pod = &of_kind(&docs, "DaemonSet")["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        let mut args: Vec<String> = vec![];
        for m in init["volumeMounts"].as_array().unwrap() {
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            let source = match volume["hostPath"]["path"].as_str() {
                Some(host) => root.join(host.trim_start_matches('/')),
                None => config.clone(),
            };
            std::fs::create_dir_all(&source).unwrap();
            let ro = if m["readOnly"] == true { ":ro" } else { "" };
            args.push("--volume".into());
            args.push(format!(
                "{}:{}{ro}",
                source.display(),
                m["mountPath"].as_str().unwrap()
            ));
        }
        let cmd = strings(&init["command"]);
        args.extend(["--entrypoint".into(), cmd[0].into(), tag.clone()]);
        args.extend(cmd[1..].iter().map(|a| a.replace("$(NODE_NAME)", "node2")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let installed = run(&args);
        assert!(
            installed.stdout.contains("install /opt/cni/bin/lanbridge"),
            "{file}: {installed:?}"
        );

        let bin = root.join("opt/cni/bin/lanbridge");
        assert_eq!(
            std::fs::read(&bin).unwrap(),
            std::fs::read(&binary).unwrap(),
            "{file}: the image's binary is installed whole"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let conf: Value = serde_json::from_slice(
            &std::fs::read(root.join("etc/cni/net.d/10-lanbridge.conflist")).unwrap(),
        )
        .unwrap();
        let expected: Value =
            serde_json::from_str(cm["data"]["10-lanbridge.conflist"].as_str().unwrap()).unwrap();
        if file == SUBNET {
            assert_eq!(
                conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.2.0/24",
                "node2's pod subnet"
            );
        } else {
            assert_eq!(conf, expected, "{file}: the conflist as given");
        }
        // Static: it runs on this host's libc as it would on any other.
        let v = process::run(Command::new(&bin).arg("version"), None, DEFAULT_TIMEOUT);
        assert!(v.success() && v.stdout == version.stdout, "{v:?}");
    }
}

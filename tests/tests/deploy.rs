//! Deployment: the Kubernetes manifest's structure, and `lanbridge install`
//! against a temporary root (what the DaemonSet's init container runs).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use lanbridge_tests::binary::{lanbridge_bin, workspace_dir};
use lanbridge_tests::process::{self, Finished, DEFAULT_TIMEOUT};
use serde_json::Value;

fn manifest() -> Vec<Value> {
    let path = workspace_dir().join("deploy/lanbridge.yaml");
    let text = std::fs::read_to_string(&path).expect("read deploy/lanbridge.yaml");
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
    let docs = manifest();
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
    let arg = |cmd: &[&str], flag: &str| -> String {
        let i = cmd
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("{flag} in {cmd:?}"));
        cmd[i + 1].to_string()
    };
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

/// The ConfigMap's two files, written to `dir`.
fn config_files(dir: &Path) -> (PathBuf, PathBuf) {
    let docs = manifest();
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

//! The CNI contract of lanbridge: VERSION, result shapes per cniVersion,
//! error codes, STATUS, and rollback of a failed ADD.

use lanbridge::commands::fault::{self, Step};
use lanbridge_tests::cni::{CniEnv, CniOutput};
use lanbridge_tests::result::{self, first_ip};
use lanbridge_tests::runtime::{version_at_least_040, Attachment};
use lanbridge_tests::{Netns, World};
use serde_json::{json, Value};

const SUBNET: &str = "10.244.1.0/24";
const GATEWAY: &str = "10.244.1.1";
const BRIDGE: &str = "lb0";
const NET: &str = "lbtnet";
const ALL_VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

fn one_pod(w: &World, name: &str) -> (Netns, Attachment) {
    let pod = w.topo.pod(name);
    let att = Attachment::new(&format!("ctr-{name}"), &pod, "eth0");
    (pod, att)
}

/// Asserts nothing of `att` is left in the node, the pod, the dataDir, the
/// stateDir, or iptables (no nat line naming the container or `ip`).
fn assert_nothing_left(w: &World, pod: &Netns, att: &Attachment, context: &str) {
    assert_nothing_left_ip(w, pod, att, "10.244.1.2", context)
}

fn assert_nothing_left_ip(w: &World, pod: &Netns, att: &Attachment, ip: &str, context: &str) {
    w.assert_nothing_left(pod, &att.container_id, ip, context)
}

#[test]
fn version_reports_every_supported_version() {
    let w = World::lanbridge("ver");
    let env = CniEnv::bare("VERSION", &w.rt.cni_path_str());
    let out =
        w.rt.exec_raw("lanbridge", &env, br#"{"cniVersion":"1.1.0"}"#);
    let j = out.expect_ok("VERSION");
    let supported: Vec<&str> = j["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("no supportedVersions: {j}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for v in ALL_VERSIONS {
        assert!(supported.contains(&v), "VERSION lacks {v}: {j}");
    }
}

/// A config without `cniVersion` is 0.1.0, as the reference plugins take
/// it: ADD answers with a 0.1.0 result, and DEL works; both plugins alike.
#[test]
fn a_config_without_cni_version_is_0_1_0_as_in_the_reference() {
    for w in [World::lanbridge("nover"), World::reference("noverref")] {
        let mut conf = w.subnet_conf("0.1.0", SUBNET);
        conf.as_object_mut().expect("object").remove("cniVersion");
        let (pod, att) = one_pod(&w, "nv");
        let out = w.rt.invoke("ADD", &conf, &att, None);
        let r = out.expect_ok(&format!("{} ADD without cniVersion", w.plugin_type()));
        check_shape("0.1.0", &r, &out.stdout);
        assert_eq!(pod.ipv4_addrs("eth0"), vec![format!("{}/24", first_ip(&r))]);
        w.rt.invoke("DEL", &conf, &att, None)
            .expect_ok(&format!("{} DEL without cniVersion", w.plugin_type()));
        assert_eq!(w.allocations(NET), Vec::<String>::new());
    }
}

fn check_shape(version: &str, r: &Value, stdout: &str) {
    assert_eq!(
        r["cniVersion"], version,
        "result cniVersion for {version}: {r}"
    );
    assert!(
        stdout.trim_start().starts_with('{') && stdout.trim_end().ends_with('}'),
        "stdout is not only JSON: {stdout:?}"
    );
    match version {
        "0.1.0" | "0.2.0" => {
            let ip4 = &r["ip4"];
            assert!(ip4.is_object(), "{version}: legacy ip4 object missing: {r}");
            assert!(
                ip4["ip"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("10.244.1.") && s.ends_with("/24")),
                "{r}"
            );
            assert_eq!(ip4["gateway"], GATEWAY, "{r}");
            assert!(
                ip4["routes"].is_array(),
                "{version}: ip4.routes missing: {r}"
            );
            assert!(
                r.get("interfaces").is_none() && r.get("ips").is_none(),
                "{version}: new-style keys in a legacy result: {r}"
            );
        }
        _ => {
            assert!(r.get("ip4").is_none(), "{r}");
            let ifaces = r["interfaces"]
                .as_array()
                .unwrap_or_else(|| panic!("{version}: no interfaces: {r}"));
            assert!(!ifaces.is_empty());
            let ips = r["ips"]
                .as_array()
                .unwrap_or_else(|| panic!("{version}: no ips: {r}"));
            assert_eq!(ips.len(), 1, "{r}");
            let legacy_version = matches!(version, "0.3.0" | "0.3.1" | "0.4.0");
            if legacy_version {
                assert_eq!(
                    ips[0]["version"], "4",
                    "{version}: ips[].version must be \"4\": {r}"
                );
            } else {
                assert!(
                    ips[0].get("version").is_none(),
                    "{version}: ips[].version must be absent: {r}"
                );
            }
            assert_eq!(ips[0]["gateway"], GATEWAY, "{r}");
            let idx = ips[0]["interface"].as_u64().expect("ips[].interface") as usize;
            assert_eq!(ifaces[idx]["name"], "eth0", "{r}");
            assert_eq!(result::sandbox_interfaces(r), vec!["eth0"], "{r}");
        }
    }
    let routes = result::routes(r);
    assert!(
        routes.iter().any(|(dst, _)| dst == "0.0.0.0/0"),
        "{version}: no default route in result: {r}"
    );
}

#[test]
fn add_result_shape_for_every_version() {
    let w = World::lanbridge("shape");
    for version in ALL_VERSIONS {
        let conf = w.subnet_conf(version, SUBNET);
        let (pod, att) = one_pod(&w, &format!("v{}", version.replace('.', "")));
        let out = w.rt.invoke("ADD", &conf, &att, None);
        let r = out.expect_ok(&format!("ADD at {version}"));
        check_shape(version, &r, &out.stdout);
        assert_eq!(pod.ipv4_addrs("eth0"), vec![format!("{}/24", first_ip(&r))]);
        if version_at_least_040(version) {
            w.rt.invoke("CHECK", &conf, &att, Some(&r))
                .expect_ok(&format!("CHECK at {version}"));
        }
        let prev = Some(&r).filter(|_| version_at_least_040(version));
        let del = w.rt.invoke("DEL", &conf, &att, prev);
        del.expect_ok(&format!("DEL at {version}"));
        assert!(
            del.stdout.trim().is_empty(),
            "DEL printed on stdout: {}",
            del.stdout
        );
    }
    assert_eq!(w.allocations(NET), Vec::<String>::new());
}

fn assert_error(out: &CniOutput, code: u64, what: &str) -> String {
    let got = out.expect_err(what);
    assert_eq!(got, code, "{what}: wrong error code\n{out}");
    let j = out.json().expect("error JSON");
    assert!(
        j["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: error without msg: {j}"
    );
    out.error_text()
}

#[test]
fn malformed_input_and_environment_give_spec_error_codes() {
    let w = World::lanbridge("errs");
    let (pod, att) = one_pod(&w, "p");
    let conf = w.subnet_conf("1.0.0", SUBNET);

    let out =
        w.rt.exec_raw("lanbridge", &w.rt.env("ADD", &att), b"{ this is not json");
    assert_error(&out, 6, "bad JSON on stdin");

    for missing in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let mut env = w.rt.env("ADD", &att);
        match missing {
            "CNI_CONTAINERID" => env.container_id = None,
            "CNI_NETNS" => env.netns = None,
            _ => env.ifname = None,
        }
        let out = w.rt.exec(&conf, &env);
        assert_error(&out, 4, &format!("ADD without {missing}"));
    }

    let mut env = w.rt.env("ADD", &att);
    env.command = Some("BOGUS".into());
    assert_error(&w.rt.exec(&conf, &env), 4, "unknown CNI_COMMAND");

    // Without CNI_COMMAND the binary is not a plugin invocation (the reference
    // prints its "about" text; lanbridge is a CLI then): it must not act on
    // the config nor print a CNI result.
    let mut env = w.rt.env("ADD", &att);
    env.command = None;
    let out = w.rt.exec(&conf, &env);
    assert!(
        out.json()
            .is_none_or(|j| j.get("ips").is_none() && j.get("ip4").is_none()),
        "a result without CNI_COMMAND: {out}"
    );

    let mut bad = conf.clone();
    bad["cniVersion"] = json!("9.9.9");
    let out = w.rt.invoke("ADD", &bad, &att, None);
    assert_error(&out, 1, "unsupported cniVersion 9.9.9");

    assert_nothing_left(&w, &pod, &att, "after rejected invocations");
}

#[test]
fn invalid_keys_give_code_7_naming_the_key() {
    let w = World::lanbridge("keys");
    let (pod, att) = one_pod(&w, "p");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let cases = [
        ("mtu", json!(-1)),
        ("mtu", json!("big")),
        ("vlan", json!(4095)),
        ("vlan", json!(5000)),
        ("bridge", json!("this-name-is-way-too-long")),
    ];
    for (key, value) in cases {
        let mut c = conf.clone();
        c[key] = value.clone();
        let out = w.rt.invoke("ADD", &c, &att, None);
        let text = assert_error(&out, 7, &format!("ADD with {key}={value}"));
        assert!(
            text.contains(key),
            "error for {key}={value} does not name the key: {out}"
        );
    }
    assert_nothing_left(&w, &pod, &att, "after invalid configs");
}

/// A runtime retries DEL until it succeeds (kubelet: forever), and the
/// reference's DEL of such configs succeeds: a config ADD refuses (edited
/// after ADD, or never valid) still removes the attachment; only a config
/// naming no network, or JSON that does not parse, is refused.
#[test]
fn del_of_a_config_add_refuses_removes_the_attachment() {
    let w = World::lanbridge("delbad");
    let (pod, att) = one_pod(&w, "p");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    for (key, value) in [
        ("mtu", json!(-1)),
        ("vlan", json!(5000)),
        ("vlanTrunk", json!([{"id": 5}])),
    ] {
        let r =
            w.rt.invoke("ADD", &conf, &att, None)
                .expect_ok("ADD of the valid config");
        let mut bad = conf.clone();
        bad[key] = value.clone();
        w.rt.invoke("ADD", &bad, &att, None)
            .expect_err("ADD of the edited config");
        w.rt.invoke("DEL", &bad, &att, Some(&r))
            .expect_ok(&format!("DEL with {key}={value}"));
        assert_nothing_left(&w, &pod, &att, &format!("DEL with {key}={value}"));
        w.rt.invoke("DEL", &bad, &att, None)
            .expect_ok(&format!("DEL again with {key}={value}"));
    }

    let out =
        w.rt.exec_raw("lanbridge", &w.rt.env("DEL", &att), b"{ not json");
    assert_error(&out, 6, "DEL of bad JSON");
    let mut nameless = conf.clone();
    nameless.as_object_mut().unwrap().remove("name");
    let text = assert_error(
        &w.rt.invoke("DEL", &nameless, &att, None),
        7,
        "DEL without a name",
    );
    assert!(text.contains("name"), "{text}");
}

#[test]
fn accepted_config_variants() {
    let w = World::lanbridge("okkeys");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    // isDefaultGateway implies isGateway (as in the reference); unknown keys are ignored.
    let mut c = conf.clone();
    c["isGateway"] = json!(false);
    c["someUnknownKey"] = json!({"nested": [1, 2]});
    let (pod, att) = one_pod(&w, "p");
    let r =
        w.rt.invoke("ADD", &c, &att, None)
            .expect_ok("ADD isDefaultGateway without isGateway");
    assert_eq!(pod.default_gateway().as_deref(), Some(GATEWAY));
    assert_eq!(
        w.topo.node.ipv4_addrs(BRIDGE),
        vec![format!("{GATEWAY}/24")]
    );
    w.rt.invoke("DEL", &c, &att, Some(&r)).expect_ok("DEL");
}

#[test]
fn missing_netns_is_code_3_for_add_and_fine_for_del() {
    let w = World::lanbridge("nons");
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let path = format!("/run/netns/{}-does-not-exist", w.topo.prefix());
    let att = Attachment::with_path("ctr-gone", &path, "eth0");
    let out = w.rt.invoke("ADD", &conf, &att, None);
    let text = assert_error(&out, 3, "ADD into a missing netns");
    assert!(text.contains(&path), "error does not name {path}: {out}");
    assert_eq!(
        w.allocations(NET),
        Vec::<String>::new(),
        "allocation left by failed ADD"
    );
    assert_eq!(w.port_links(BRIDGE), Vec::<String>::new());
    w.rt.invoke("DEL", &conf, &att, None)
        .expect_ok("DEL with a missing netns");
}

#[test]
fn status_is_0_when_ready_and_50_when_state_dir_unwritable() {
    let w = World::lanbridge("status");
    let list = w.subnet_list("1.1.0", SUBNET);
    w.rt.status_list(&list)
        .unwrap_or_else(|f| panic!("STATUS: {f}"));
    let mut bad = list.clone();
    bad["plugins"][0]["stateDir"] = json!("/proc/lanbridge-test-unwritable/state");
    let f =
        w.rt.status_list(&bad)
            .expect_err("STATUS with an unwritable stateDir must fail");
    assert_error(&f.output, 50, "STATUS with an unwritable stateDir");
}

/// ADD with `LANBRIDGE_FAIL_AFTER=<step>` fails and leaves nothing behind; a
/// normal ADD afterwards works.
fn fail_after(step: Step) {
    let step = step.name();
    let w = World::lanbridge(&format!("f{step}"));
    let conf = w.subnet_conf("1.0.0", SUBNET);
    let (pod, att) = one_pod(&w, "p");
    let env = w.rt.env("ADD", &att).with(fault::ENV, step);
    let out = w.rt.exec(&conf, &env);
    out.expect_err(&format!("ADD with LANBRIDGE_FAIL_AFTER={step}"));
    assert!(
        out.error_text().contains(step),
        "not the injected failure at {step}: {out}"
    );
    assert_nothing_left(&w, &pod, &att, &format!("after failing at {step}"));
    // host-local hands out addresses round-robin, so the next ADD may get .3.
    let r =
        w.rt.invoke("ADD", &conf, &att, None)
            .expect_ok("ADD after a failed ADD");
    let ip = first_ip(&r);
    assert!(ip.starts_with("10.244.1."), "{ip}");
    w.rt.invoke("DEL", &conf, &att, Some(&r)).expect_ok("DEL");
    assert_nothing_left_ip(
        &w,
        &pod,
        &att,
        &ip,
        &format!("after DEL following failure at {step}"),
    );
}

#[test]
fn failed_add_after_bridge_leaves_nothing() {
    fail_after(Step::Bridge);
}

#[test]
fn failed_add_after_veth_leaves_nothing() {
    fail_after(Step::Veth);
}

#[test]
fn failed_add_after_datapath_leaves_nothing() {
    fail_after(Step::Datapath);
}

#[test]
fn failed_add_after_ipam_leaves_nothing() {
    fail_after(Step::Ipam);
}

#[test]
fn failed_add_after_container_leaves_nothing() {
    fail_after(Step::Container);
}

#[test]
fn failed_add_after_host_leaves_nothing() {
    fail_after(Step::Host);
}

#[test]
fn failed_add_after_firewall_leaves_nothing() {
    fail_after(Step::Firewall);
}

#[test]
fn failed_add_after_state_leaves_nothing() {
    fail_after(Step::State);
}

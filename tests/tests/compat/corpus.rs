//! The cases: configs kept as data under `tests/compat/` (the reference
//! plugins' own test configs, cni.dev's examples and the spec's, configs as
//! runtimes and guides install them) plus variations from a small seeded
//! generator. Configs name `"type": "bridge"`; the runner
//! rewrites it for lanbridge.

use serde_json::{json, Map, Value};

/// One config and how the runtime calls the plugin with it.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    /// Where the config comes from (a file and section, or the generator).
    pub from: String,
    /// A network config, or a conflist (has `plugins`).
    pub config: Value,
    /// `CNI_ARGS`.
    pub args: Option<String>,
    /// Capability arguments the runtime passes as `runtimeConfig`.
    pub capabilities: Map<String, Value>,
}

impl Case {
    pub fn is_list(&self) -> bool {
        self.config.get("plugins").is_some()
    }

    /// The `cniVersion` the runtime works in (0.1.0 when the config has none).
    pub fn version(&self) -> &str {
        match self.config.get("cniVersion") {
            Some(v) => v.as_str().unwrap_or("?"),
            None => "0.1.0",
        }
    }
}

/// The data files of the corpus, relative to `tests/`.
const FILES: [&str; 4] = [
    "compat/cni-dev.json",
    "compat/cni-spec.json",
    "compat/field.json",
    "compat/reference-tests.json",
];

/// Every case: the data files' first, then the generated ones.
pub fn all(seed: u64) -> Vec<Case> {
    let mut cases: Vec<Case> = FILES.iter().flat_map(|f| load(f)).collect();
    cases.extend(generated(seed));
    let mut ids = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(ids.insert(c.id.clone()), "case id {} twice", c.id);
    }
    cases
}

fn load(file: &str) -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()));
    let entries: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()));
    entries
        .into_iter()
        .map(|e| Case {
            id: e["case"].as_str().expect("case id").to_string(),
            from: e["from"].as_str().expect("case source").to_string(),
            config: e["config"].clone(),
            args: e["args"].as_str().map(str::to_string),
            capabilities: e["capabilities"].as_object().cloned().unwrap_or_default(),
        })
        .collect()
}

/// SplitMix64: a fixed seed gives the same cases on every run, so the
/// allow-list can name them.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Every `cniVersion` a config may carry; `None`: the key is missing.
const VERSIONS: [Option<&str>; 8] = [
    None,
    Some("0.1.0"),
    Some("0.2.0"),
    Some("0.3.0"),
    Some("0.3.1"),
    Some("0.4.0"),
    Some("1.0.0"),
    Some("1.1.0"),
];
/// Versions whose results carry interfaces and routes of every family, and
/// that both sides speak (the reference 1.1.1 predates 1.1.0).
const MODERN: [&str; 3] = ["0.3.1", "0.4.0", "1.0.0"];

/// A generated case: `conf` gets `cniVersion` (unless `None`) and is wrapped
/// in a one-plugin conflist when `list`.
fn case(id: String, what: &str, version: Option<&str>, list: bool, mut conf: Value) -> Case {
    conf["type"] = json!("bridge");
    conf["name"] = json!("gen");
    let config = if list {
        let mut plugin = conf;
        plugin.as_object_mut().expect("object").remove("name");
        let mut l = json!({"name": "gen", "plugins": [plugin]});
        if let Some(v) = version {
            l["cniVersion"] = json!(v);
        }
        l
    } else {
        if let Some(v) = version {
            conf["cniVersion"] = json!(v);
        }
        conf
    };
    let form = if list { "conflist" } else { "conf" };
    Case {
        id,
        from: format!(
            "generator: {what}, cniVersion {}, {form}",
            version.unwrap_or("missing")
        ),
        config,
        args: None,
        capabilities: Map::new(),
    }
}

fn host_local(subnet: &str) -> Value {
    json!({"type": "host-local", "subnet": subnet})
}

/// The generated variations, `gen-<family>-<n>`.
pub fn generated(seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let bases = [
        json!({"isGateway": true, "ipam": host_local("10.20.0.0/24")}),
        json!({"isDefaultGateway": true, "ipMasq": true, "ipam": host_local("10.21.0.0/24")}),
        json!({"isGateway": true, "ipam": {"type": "static",
               "addresses": [{"address": "10.22.0.5/24", "gateway": "10.22.0.1"}]}}),
    ];

    // Every version, as a conf and as a conflist.
    for (i, v) in VERSIONS.iter().enumerate() {
        for list in [false, true] {
            let base = rng.pick(&bases).clone();
            let id = format!("gen-version-{i}{}", if list { "l" } else { "c" });
            out.push(case(id, "version", *v, list, base));
        }
    }

    // Every key of the bridge plugin, one at a time, over a gateway config.
    let keys: [(&str, Value); 15] = [
        ("isGateway", json!(true)),
        ("isDefaultGateway", json!(true)),
        ("forceAddress", json!(true)),
        ("ipMasq", json!(true)),
        ("mtu", json!(1400)),
        ("hairpinMode", json!(true)),
        ("promiscMode", json!(true)),
        ("vlan", json!(42)),
        ("macspoofchk", json!(true)),
        ("enabledad", json!(true)),
        ("preserveDefaultVlan", json!(true)),
        ("disableContainerInterface", json!(true)),
        ("portIsolation", json!(true)),
        ("ipMasqBackend", json!("iptables")),
        ("vlanTrunk", json!([{"id": 101}])),
    ];
    for (i, (key, value)) in keys.iter().enumerate() {
        let mut conf = json!({"ipam": host_local(&format!("10.30.{i}.0/24"))});
        conf[*key] = value.clone();
        let v = *rng.pick(&MODERN);
        let list = rng.coin();
        out.push(case(format!("gen-key-{key}"), key, Some(v), list, conf));
    }

    // Address shapes: families, range sets, routes, dns.
    let ipams = [
        ("v6", host_local("fd30::/64")),
        (
            "dual",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.31.0.0/24"}], [{"subnet": "fd31::/64"}]]}),
        ),
        (
            "range-set",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.32.0.0/30"}, {"subnet": "10.32.1.0/24"}]]}),
        ),
        (
            "range-bounds",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.33.0.0/24",
                   "rangeStart": "10.33.0.100", "rangeEnd": "10.33.0.110", "gateway": "10.33.0.254"}]]}),
        ),
        (
            "routes",
            json!({"type": "host-local", "subnet": "10.34.0.0/24",
                   "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.34.0.254"}]}),
        ),
        (
            "routes-v6",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.35.0.0/24"}], [{"subnet": "fd35::/64"}]],
                   "routes": [{"dst": "::/0"}, {"dst": "fd99::/48", "gw": "fd35::fe"}]}),
        ),
        (
            "ipam-dns",
            json!({"type": "static", "addresses": [{"address": "10.36.0.5/24", "gateway": "10.36.0.1"},
                                                     {"address": "fd36::5/64", "gateway": "fd36::1"}],
                   "dns": {"nameservers": ["10.36.0.53"], "domain": "lan", "search": ["lan"]}}),
        ),
    ];
    for (what, ipam) in ipams {
        let v = *rng.pick(&MODERN);
        let list = rng.coin();
        let conf = json!({"isGateway": true, "ipam": ipam});
        out.push(case(format!("gen-ipam-{what}"), what, Some(v), list, conf));
    }
    let conf = json!({"isDefaultGateway": true, "ipam": host_local("10.37.0.0/24"),
                      "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"], "options": ["ndots:5"]}});
    out.push(case(
        "gen-conf-dns".into(),
        "dns",
        Some("1.0.0"),
        rng.coin(),
        conf,
    ));

    // What the runtime passes: runtimeConfig, args, CNI_ARGS.
    let mut c = case(
        "gen-runtime-mac".into(),
        "runtimeConfig mac",
        Some("1.0.0"),
        true,
        json!({"isGateway": true, "capabilities": {"mac": true}, "ipam": host_local("10.40.0.0/24")}),
    );
    c.capabilities
        .insert("mac".into(), json!("0a:58:0a:28:00:63"));
    out.push(c);
    out.push(case(
        "gen-args-ips".into(),
        "args.cni.ips",
        Some("1.0.0"),
        false,
        json!({"isGateway": true, "args": {"cni": {"ips": ["10.41.0.41"]}}, "ipam": host_local("10.41.0.0/24")}),
    ));
    for (what, args) in [
        (
            "k8s",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc",
        ),
        ("unknown-strict", "FOO=bar"),
        ("ip", "IP=10.42.0.9"),
    ] {
        let mut c = case(
            format!("gen-cniargs-{what}"),
            "CNI_ARGS",
            Some(*rng.pick(&MODERN)),
            rng.coin(),
            json!({"isGateway": true, "ipam": host_local("10.42.0.0/24")}),
        );
        c.args = Some(args.into());
        out.push(c);
    }

    // Bad values: each must fail on both sides with the same class of error.
    let base = || json!({"isGateway": true, "ipam": host_local("10.50.0.0/24")});
    let bad: [(&str, &str, Value); 14] = [
        ("mtu-negative", "mtu", json!(-1)),
        ("mtu-huge", "mtu", json!(70000)),
        ("vlan-4095", "vlan", json!(4095)),
        ("vlan-negative", "vlan", json!(-1)),
        ("bool-as-string", "isGateway", json!("yes")),
        ("bridge-too-long", "bridge", json!("a-bridge-name-too-long")),
        ("ipam-not-object", "ipam", json!("host-local")),
        ("ipam-no-type", "ipam", json!({"subnet": "10.50.0.0/24"})),
        ("ipam-unknown-type", "ipam", json!({"type": "no-such-ipam"})),
        ("subnet-bad", "ipam", host_local("10.50.0.0/33")),
        (
            "range-outside",
            "ipam",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.50.0.0/24", "rangeStart": "10.51.0.1"}]]}),
        ),
        (
            "static-no-prefix",
            "ipam",
            json!({"type": "static", "addresses": [{"address": "10.50.0.5"}]}),
        ),
        ("mac-bad", "runtimeConfig", json!({"mac": "not-a-mac"})),
        ("ipmasq-backend", "ipMasqBackend", json!("pf")),
    ];
    for (what, key, value) in bad {
        let mut conf = base();
        conf[key] = value;
        let v = Some(*rng.pick(&MODERN));
        out.push(case(format!("gen-bad-{what}"), what, v, rng.coin(), conf));
    }
    for (what, v) in [
        ("version-unknown", json!("9.9.9")),
        ("version-number", json!(1)),
    ] {
        let mut c = case(format!("gen-bad-{what}"), what, None, false, base());
        c.config["cniVersion"] = v;
        out.push(c);
    }
    let mut c = case(
        "gen-bad-no-name".into(),
        "no name",
        Some("1.0.0"),
        false,
        base(),
    );
    c.config.as_object_mut().expect("object").remove("name");
    out.push(c);
    out
}

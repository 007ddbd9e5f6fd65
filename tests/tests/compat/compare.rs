//! Field-by-field comparison of two outcomes, the allow-list of deliberate
//! differences (`tests/compat/allow.json`, each entry naming its reason in
//! README's "Differences from the reference plugins"), and the report table.

use std::collections::BTreeSet;

use crate::corpus::Case;
use crate::observe::{Outcome, LEFT, NOTE};

/// One deliberate difference. `case` and `field` match exactly or, ending in
/// `*`, by prefix; `reference`/`lanbridge`, when given, must be the values.
#[derive(Debug)]
pub struct Allow {
    pub case: String,
    pub field: String,
    pub reference: Option<String>,
    pub lanbridge: Option<String>,
    /// The README bullet (`**<reason>**`) that explains it.
    pub reason: String,
}

impl Allow {
    fn covers(&self, case: &str, d: &Diff) -> bool {
        let want = |pat: &Option<String>, v: &Option<String>| {
            pat.as_ref().is_none_or(|p| Some(p) == v.as_ref())
        };
        glob(&self.case, case)
            && glob(&self.field, &d.field)
            && want(&self.reference, &d.reference)
            && want(&self.lanbridge, &d.lanbridge)
    }
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => pattern == s,
    }
}

pub fn allow_list() -> Vec<Allow> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/allow.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("allow-list {}: {e}", path.display()));
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("allow-list {}: {e}", path.display()));
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(str::to_string);
            let req =
                |k: &str| s(k).unwrap_or_else(|| panic!("allow-list entry without {k:?}: {e}"));
            Allow {
                case: req("case"),
                field: req("field"),
                reference: s("reference"),
                lanbridge: s("lanbridge"),
                reason: req("reason"),
            }
        })
        .collect()
}

/// The README section the allow-list's reasons must be in.
pub fn readme_differences() -> String {
    let path = lanbridge_tests::binary::workspace_dir().join("README.md");
    let text = std::fs::read_to_string(&path).expect("README.md");
    let start = text
        .find("### Differences from the reference plugins")
        .expect("README has a \"Differences from the reference plugins\" section");
    let rest = &text[start + 4..];
    rest[..rest.find("\n#").unwrap_or(rest.len())].to_string()
}

/// One field whose values differ (`None`: the side has no such field).
#[derive(Debug)]
pub struct Diff {
    pub field: String,
    pub reference: Option<String>,
    pub lanbridge: Option<String>,
    /// The allow-list entry (index) that explains it.
    pub allowed: Option<usize>,
}

/// Every field that differs, each with the allow-list entry explaining it,
/// plus lanbridge's leftovers after DEL (those must be empty whatever the
/// reference did).
pub fn diff(case: &Case, reference: &Outcome, lanbridge: &Outcome, allow: &[Allow]) -> Vec<Diff> {
    let fields: BTreeSet<&String> = reference.keys().chain(lanbridge.keys()).collect();
    let mut out = Vec::new();
    for field in fields {
        let (r, l) = (reference.get(field), lanbridge.get(field));
        let leftover = field.starts_with(LEFT) && l.is_some_and(|v| v != "[]");
        if r == l && !leftover || field.starts_with(NOTE) {
            continue;
        }
        let mut d = Diff {
            field: field.clone(),
            reference: r.cloned(),
            lanbridge: l.cloned(),
            allowed: None,
        };
        if !leftover {
            d.allowed = allow.iter().position(|a| a.covers(&case.id, &d));
        }
        out.push(d);
    }
    out
}

/// The report of one case: where it comes from, its config, a table of
/// the differences and the error messages.
pub fn table(
    case: &Case,
    diffs: &[Diff],
    allow: &[Allow],
    reference: &Outcome,
    lanbridge: &Outcome,
) -> String {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    let mut s = format!(
        "\n### {} ({})\nconfig: {}\nargs: {:?} capabilities: {}\n| field | reference | lanbridge | allowed |\n|---|---|---|---|\n",
        case.id,
        case.from,
        case.config,
        case.args,
        serde_json::Value::Object(case.capabilities.clone())
    );
    for d in diffs {
        let why = d
            .allowed
            .map_or("NO".to_string(), |i| allow[i].reason.clone());
        s += &format!(
            "| {} | {} | {} | {why} |\n",
            d.field,
            cell(&d.reference),
            cell(&d.lanbridge)
        );
    }
    for (side, o) in [("reference", reference), ("lanbridge", lanbridge)] {
        for (k, v) in o
            .range(NOTE.to_string()..)
            .take_while(|(k, _)| k.starts_with(NOTE))
        {
            s += &format!("{side} {}: {v}\n", &k[NOTE.len()..]);
        }
    }
    s
}

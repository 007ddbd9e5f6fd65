//! The plugin's layer rule, checked from its source: a top-level module
//! imports (`crate::`, `super::`) only modules `lib.rs` declares before it,
//! and no files import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

/// Module path (`agent/server`; `""` for lib.rs) → the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

pub fn check(src: &Path) -> Result<()> {
    let mut files = BTreeMap::new();
    read(src, src, &mut files)?;
    let graph = graph(&files);
    let order: Vec<&str> = files[""]
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    let rank = |m: &str| order.iter().position(|o| *o == top(m));
    let mut faults = Vec::new();
    for (from, tos) in &graph {
        for to in tos {
            if let (Some(a), Some(b)) = (rank(from), rank(to)) {
                if b > a {
                    faults.push(format!("{from} imports {to}, a layer above it"));
                }
            }
        }
    }
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        circles(&graph, start, &mut Vec::new(), &mut done, &mut faults);
    }
    if !faults.is_empty() {
        bail!(
            "layer rule broken in {}:\n  {}",
            src.display(),
            faults.join("\n  ")
        );
    }
    Ok(())
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap_or_default()
}

fn read(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read(root, &path, files)?;
            continue;
        }
        let Some(rel) = path.strip_prefix(root)?.to_str() else {
            continue;
        };
        let Some(module) = rel.strip_suffix(".rs") else {
            continue;
        };
        let module = match module {
            "main" => continue,
            "lib" => "",
            m => m.strip_suffix("/mod").unwrap_or(m),
        };
        let text = fs::read_to_string(&path)?;
        // A file's unit tests may reach anywhere.
        let text = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        files.insert(module.to_string(), text);
    }
    Ok(())
}

fn graph(files: &BTreeMap<String, String>) -> Graph {
    let mut graph = Graph::new();
    for (module, text) in files {
        let edges = graph.entry(module.clone()).or_default();
        for (anchor, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
            for (at, _) in text.match_indices(anchor) {
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut path = base.clone();
                let mut rest = &text[at + anchor.len()..];
                loop {
                    let ident: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if ident.is_empty() {
                        break;
                    }
                    rest = &rest[ident.len()..];
                    path.push(ident);
                    match rest.strip_prefix("::") {
                        Some(more) => rest = more,
                        None => break,
                    }
                }
                if let Some(target) = resolve(files, &path) {
                    if target != *module {
                        edges.insert(target);
                    }
                }
            }
        }
    }
    graph
}

/// `super` of `module`: its parent for a file, the grandparent's for a dir.
fn parent(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

/// The longest prefix of `path` that names a module file.
fn resolve(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("/"))
        .find(|m| files.contains_key(m))
}

fn circles(
    graph: &Graph,
    at: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    faults: &mut Vec<String>,
) {
    if let Some(pos) = stack.iter().position(|m| m == at) {
        faults.push(format!(
            "import circle: {} -> {at}",
            stack[pos..].join(" -> ")
        ));
        return;
    }
    if done.contains(at) {
        return;
    }
    stack.push(at.to_string());
    for next in graph.get(at).into_iter().flatten() {
        circles(graph, next, stack, done, faults);
    }
    stack.pop();
    done.insert(at.to_string());
}

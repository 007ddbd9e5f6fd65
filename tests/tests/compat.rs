//! Differential compatibility with the reference plugins (Debian's
//! containernetworking-plugins): every config of the corpus (the reference's
//! own test configs, cni.dev's examples, seeded variations) runs through the
//! reference `bridge` and through lanbridge in twin node namespaces — ADD,
//! CHECK, DEL — and the outcomes are compared field by field: exit status and
//! error code, the result's shape and version, the pod's links, addresses and
//! routes, the bridge and its ports, the allocations on disk, and what DEL
//! left. A difference fails unless `tests/compat/allow.json` names it with a
//! reason README explains; lanbridge's DEL must leave nothing.

#[path = "compat/compare.rs"]
mod compare;
#[path = "compat/corpus.rs"]
mod corpus;
#[path = "compat/observe.rs"]
mod observe;

use std::collections::BTreeSet;

use lanbridge_tests::World;

/// The generator's seed: fixed, so the allow-list can name generated cases.
const SEED: u64 = 0x1a4b_0012;
/// Twin worlds running cases side by side.
const THREADS: usize = 6;

#[test]
fn lanbridge_behaves_as_the_reference_plugins_on_the_corpus() {
    // LANBRIDGE_COMPAT_ONLY=<substring> runs only the matching cases.
    let only = std::env::var("LANBRIDGE_COMPAT_ONLY").ok();
    let cases: Vec<_> = corpus::all(SEED)
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| c.id.contains(o.as_str())))
        .collect();
    let allow = compare::allow_list();
    let outcomes = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let cases = &cases;
                s.spawn(move || {
                    let reference = World::reference(&format!("cr{t}"));
                    let lanbridge = World::lanbridge(&format!("cl{t}"));
                    (t..cases.len())
                        .step_by(THREADS)
                        .map(|n| {
                            // The twins are independent: run them side by side.
                            std::thread::scope(|s| {
                                let r = s.spawn(|| observe::run(&reference, &cases[n], n));
                                let l = observe::run(&lanbridge, &cases[n], n);
                                let r = r.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                                (n, r, l)
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        all.sort_by_key(|(n, _, _)| *n);
        all
    });

    let mut report = String::new();
    let mut used = BTreeSet::new();
    let mut explained = 0;
    for (n, reference, lanbridge) in &outcomes {
        let case = &cases[*n];
        let diffs = compare::diff(case, reference, lanbridge, &allow);
        used.extend(diffs.iter().filter_map(|d| d.allowed));
        explained += usize::from(!diffs.is_empty());
        if diffs.iter().any(|d| d.allowed.is_none()) {
            report += &compare::table(case, &diffs, &allow, reference, lanbridge);
        }
    }
    let readme = compare::readme_differences();
    for (i, a) in allow.iter().enumerate() {
        if !used.contains(&i) && only.is_none() {
            report += &format!("\nallow-list entry {i} matches no difference (stale): {a:?}");
        }
        if !readme.contains(&format!("**{}**", a.reason)) {
            report += &format!(
                "\nallow-list entry {i}: README's differences section does not explain **{}**",
                a.reason
            );
        }
    }
    eprintln!(
        "compat: {} cases, {explained} with differences (allow-list: {} entries)",
        cases.len(),
        allow.len()
    );
    assert!(
        report.is_empty(),
        "unexplained differences from the reference plugins:\n{report}"
    );
}

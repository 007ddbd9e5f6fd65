use super::*;

fn want(dst: &str, via: &str, node: &str) -> Wanted {
    Wanted {
        dst: dst.parse().unwrap(),
        via: via.parse().unwrap(),
        node: node.into(),
    }
}

fn route(dst: &str, via: Option<&str>, protocol: u8) -> Installed {
    Installed {
        dst: dst.parse().unwrap(),
        via: via.map(|v| v.parse().unwrap()),
        protocol,
        metric: 0,
    }
}

fn ours(dst: &str, via: &str) -> Installed {
    route(dst, Some(via), RTPROT_LANBRIDGE)
}

/// A node's table before lanbridge: its LAN, its default route, its bridge.
fn base() -> Vec<Installed> {
    vec![
        route("0.0.0.0/0", Some("192.168.1.1"), 3),
        route("192.168.1.0/24", None, 2),
        route("10.244.1.0/24", None, 2),
    ]
}

fn lines(p: &Plan) -> Vec<String> {
    p.actions.iter().map(ToString::to_string).collect()
}

#[test]
fn wanted_routes_are_the_other_nodes_subnets() {
    let peers = Peers::parse(
        br#"{"nodes": [
        {"name": "node3", "address": "192.168.1.13", "podCidr": "10.244.3.0/24"},
        {"name": "node1", "address": "192.168.1.11", "podCidr": "10.244.1.0/24"},
        {"name": "node2", "address": "192.168.1.12", "podCidr": "10.244.2.0/24"}]}"#,
    )
    .unwrap();
    assert_eq!(
        wanted(&peers, "node1").unwrap(),
        [
            want("10.244.2.0/24", "192.168.1.12", "node2"),
            want("10.244.3.0/24", "192.168.1.13", "node3")
        ]
    );
    assert!(wanted(&peers, "node4").is_err());
}

#[test]
fn a_fresh_node_gets_every_route_and_nothing_else_moves() {
    let w = [
        want("10.244.2.0/24", "192.168.1.12", "node2"),
        want("10.244.3.0/24", "192.168.1.13", "node3"),
    ];
    let p = plan(&w, &base());
    assert_eq!(
        lines(&p),
        [
            "add 10.244.2.0/24 via 192.168.1.12 (node2)",
            "add 10.244.3.0/24 via 192.168.1.13 (node3)"
        ]
    );
    assert_eq!(
        p.summary(),
        "2 to add, 0 to replace, 0 to delete, 0 unchanged"
    );
    assert!(p.changes());
}

#[test]
fn a_second_run_changes_nothing() {
    let w = [want("10.244.2.0/24", "192.168.1.12", "node2")];
    let mut live = base();
    live.push(ours("10.244.2.0/24", "192.168.1.12"));
    let p = plan(&w, &live);
    assert!(p.actions.is_empty() && !p.changes());
    assert_eq!(p.unchanged, w);
}

#[test]
fn moved_nodes_are_replaced_and_gone_nodes_deleted_first() {
    let w = [want("10.244.2.0/24", "192.168.1.22", "node2")];
    let mut live = base();
    live.push(ours("10.244.2.0/24", "192.168.1.12"));
    live.push(ours("10.244.3.0/24", "192.168.1.13"));
    let p = plan(&w, &live);
    assert_eq!(
        lines(&p),
        [
            "delete 10.244.3.0/24 via 192.168.1.13 proto lanbridge (no node has this pod subnet any more)",
            "replace 10.244.2.0/24 via 192.168.1.22 (node2; was via 192.168.1.12)",
        ]
    );
    assert_eq!(
        p.summary(),
        "0 to add, 1 to replace, 1 to delete, 0 unchanged"
    );
}

#[test]
fn routes_of_others_are_never_touched() {
    // Someone routes 10.244.2.0/24 by hand; the own default route and LAN
    // are not ours either, even though a node is "removed".
    let w = [
        want("10.244.2.0/24", "192.168.1.12", "node2"),
        want("10.244.3.0/24", "192.168.1.13", "node3"),
    ];
    let mut live = base();
    live.push(route("10.244.2.0/24", Some("192.168.1.99"), 4));
    live.push(route("10.99.0.0/16", Some("192.168.1.98"), 4));
    let p = plan(&w, &live);
    assert_eq!(
        lines(&p),
        [
            "skip 10.244.2.0/24 via 192.168.1.12 (node2): a route lanbridge did not create is in the way: 10.244.2.0/24 via 192.168.1.99 proto static",
            "add 10.244.3.0/24 via 192.168.1.13 (node3)",
        ]
    );
    assert_eq!(p.conflicts(), 1);
    assert!(p.summary().ends_with(", 1 skipped"));
    // Nothing wanted: only our own routes go.
    let mut live = base();
    live.push(ours("10.244.3.0/24", "192.168.1.13"));
    let p = plan(&[], &live);
    assert_eq!(
        p.actions,
        [Action::Delete(ours("10.244.3.0/24", "192.168.1.13"))]
    );
}

#[test]
fn duplicates_of_ours_are_removed() {
    let w = [want("10.244.2.0/24", "192.168.1.12", "node2")];
    let mut live = base();
    let mut dup = ours("10.244.2.0/24", "192.168.1.77");
    dup.metric = 50;
    live.push(dup.clone());
    live.push(ours("10.244.2.0/24", "192.168.1.12"));
    let p = plan(&w, &live);
    assert_eq!(p.actions, [Action::Delete(dup)]);
    assert_eq!(p.unchanged.len(), 1);
}

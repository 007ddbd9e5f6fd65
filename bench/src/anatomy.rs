//! Where an ADD or DEL spends its time: one invocation of each plugin under
//! `strace -f -ttt -T`, broken down into the external programs it ran
//! (iptables, host-local, nft, …: start to exit) and its slowest kernel
//! calls by kind (a netlink request is processed inside `sendto`/`sendmsg`,
//! so its duration is the kernel's work; `bpf()` by command). strace slows
//! everything down, so only the proportions mean something.

use std::collections::BTreeMap;
use std::path::Path;

use lanbridge_tests::netns::Netns;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use lanbridge_tests::testbed::Net;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Anatomy {
    pub flavor: String,
    pub command: String,
    /// First to last traced event, ms.
    pub wall_ms: f64,
    /// (program, runs, total ms from execve to exit).
    pub programs: Tally,
    /// (kind, calls, total ms) of the plugin's own kernel calls, slowest first.
    pub calls: Tally,
}

/// Calls left out: those that only wait (for a child, a pipe, another
/// thread, a timer), and process creation, which strace itself slows down
/// (the children's cost is in their lifetimes).
const WAITS: &str = "clone clone3 fork vfork execve wait4 waitid poll ppoll epoll_wait \
    epoll_pwait epoll_pwait2 futex read nanosleep clock_nanosleep select pselect6 rt_sigsuspend \
    restart_syscall sched_yield";

/// The rtnetlink message types the plugins send, by number (hex).
const RTM: &str = "10 NEWLINK 11 DELLINK 12 GETLINK 13 SETLINK 14 NEWADDR 15 DELADDR 16 GETADDR \
    18 NEWROUTE 19 DELROUTE 1a GETROUTE 1c NEWNEIGH 1e GETNEIGH 24 NEWQDISC 2c NEWTFILTER \
    4a GETNETCONF 58 NEWNSID 5a GETNSID";

fn rtm(t: u32) -> String {
    let words: Vec<&str> = RTM.split_whitespace().collect();
    let name = words
        .chunks(2)
        .find(|w| u32::from_str_radix(w[0], 16) == Ok(t));
    name.map_or(format!("netlink type {t:#x}"), |w| {
        format!("netlink RTM_{}", w[1])
    })
}

/// The identifier in `args` right after `key`.
fn word_after<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    let rest = &args[args.find(key)? + key.len()..];
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    Some(&rest[..end.unwrap_or(rest.len())])
}

fn label(name: &str, args: &str) -> String {
    if matches!(name, "sendto" | "sendmsg") {
        if let Some(t) = word_after(args, "nlmsg_type=") {
            let Some(v) = t
                .strip_prefix("0x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
            else {
                return format!("netlink {t}");
            };
            // IFLA_NET_NS_FD (28): a link moved to another namespace.
            if v == 0x13 && args.contains("\\x08\\x00\\x1c\\x00") {
                return "netlink RTM_SETLINK (move to another netns)".into();
            }
            return rtm(v);
        }
    }
    match word_after(args, "BPF_") {
        Some(cmd) if name == "bpf" => format!("bpf BPF_{cmd}"),
        _ => name.to_string(),
    }
}

/// (what, how many, total ms).
pub type Tally = Vec<(String, usize, f64)>;

/// Parses an `strace -f -ttt -T` log: wall ms, programs, kernel calls.
pub fn parse(text: &str) -> (f64, Tally, Tally) {
    let mut first = f64::NAN;
    let mut last = f64::NAN;
    let mut root: Option<u32> = None;
    // pid -> (program, exec time)
    let mut execs: BTreeMap<u32, (String, f64)> = BTreeMap::new();
    let mut exits: BTreeMap<u32, f64> = BTreeMap::new();
    let mut pending: BTreeMap<u32, String> = BTreeMap::new();
    // (pid, label, seconds)
    let mut calls: Vec<(u32, String, f64)> = Vec::new();
    for line in text.lines() {
        // strace pads the PID column: "4065  1795….288250 execve(…".
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let (Ok(pid), Ok(ts)) = (pid.parse::<u32>(), ts.parse::<f64>()) else {
            continue;
        };
        let rest = rest.trim_start();
        if first.is_nan() {
            first = ts;
            root = Some(pid);
        }
        last = ts;
        if rest.starts_with("+++ exited") || rest.starts_with("+++ killed") {
            exits.insert(pid, ts);
            continue;
        }
        if rest.starts_with("execve(") && Some(pid) != root && !rest.contains("= -1") {
            let program = rest
                .split('"')
                .nth(1)
                .and_then(|p| p.rsplit('/').next())
                .unwrap_or("?")
                .to_string();
            execs.insert(pid, (program, ts));
        }
        // A call split over two lines: keep the first half for its arguments.
        let full = if let Some(stripped) = rest.strip_prefix("<... ") {
            let head = pending.remove(&pid).unwrap_or_default();
            format!("{head} {stripped}")
        } else if rest.ends_with("<unfinished ...>") {
            pending.insert(pid, rest.to_string());
            continue;
        } else {
            rest.to_string()
        };
        let Some(dur) = full
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>'))
            .and_then(|d| d.parse::<f64>().ok())
        else {
            continue;
        };
        let name: String = full
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || WAITS.split_whitespace().any(|w| w == name) {
            continue;
        }
        calls.push((pid, label(&name, &full), dur));
    }
    let mut programs = BTreeMap::new();
    for (pid, (program, start)) in &execs {
        let end = exits.get(pid).copied().unwrap_or(last);
        count(&mut programs, program.clone(), (end - start) * 1e3);
    }
    let mut kinds = BTreeMap::new();
    for (pid, l, d) in calls {
        // A child program's own calls are counted in its lifetime.
        if !execs.contains_key(&pid) {
            count(&mut kinds, l, d * 1e3);
        }
    }
    let mut kinds = slowest_first(kinds);
    kinds.truncate(6);
    ((last - first) * 1e3, slowest_first(programs), kinds)
}

fn count(tally: &mut BTreeMap<String, (usize, f64)>, what: String, ms: f64) {
    let e = tally.entry(what).or_default();
    e.0 += 1;
    e.1 += ms;
}

fn slowest_first(tally: BTreeMap<String, (usize, f64)>) -> Tally {
    let mut v: Tally = tally.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
    v.sort_by(|a, b| b.2.total_cmp(&a.2));
    v
}

/// Traces one ADD and one DEL of `net` on `pod` (which must be empty).
pub fn trace(net: &Net, pod: &Netns, dir: &Path) -> Vec<Anatomy> {
    let mut out = Vec::new();
    let flavor = net.flavor.label();
    let add_log = dir.join(format!("{flavor}-add.strace"));
    let del_log = dir.join(format!("{flavor}-del.strace"));
    let strace = |log: &Path, cmd, prev| {
        let log = log.display().to_string();
        net.under(
            &["strace", "-f", "-ttt", "-T", "-o", &log],
            cmd,
            "anatomy",
            pod,
            prev,
        )
    };
    let add = strace(&add_log, "ADD", None);
    let prev: Option<Value> = add.success().then(|| add.json().unwrap_or(Value::Null));
    let del = strace(&del_log, "DEL", prev.as_ref());
    if !del.success() {
        crate::ab::scrub(pod);
    }
    for (cmd, log, ok) in [
        ("ADD", &add_log, add.success()),
        ("DEL", &del_log, del.success()),
    ] {
        if !ok {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        let (wall_ms, programs, calls) = parse(&text);
        out.push(Anatomy {
            flavor: flavor.into(),
            command: cmd.into(),
            wall_ms,
            programs,
            calls,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_programs_and_slow_calls() {
        let log = "\
10   1.000000 execve(\"/usr/bin/nsenter\", [\"nsenter\"], 0x1 /* 6 vars */) = 0 <0.000200>
10 1.001000 execve(\"/x/lanbridge\", [\"lanbridge\"], 0x1 /* 6 vars */) = 0 <0.000200>
10 1.002000 sendto(13, [{nlmsg_len=32, nlmsg_type=0x11 /* NLMSG_??? */, nlmsg_flags=NLM_F_REQUEST}, \"\"], 32, 0, NULL, 0) = 32 <0.031000>
10 1.035000 sendto(11, [{nlmsg_len=40, nlmsg_type=0x13 /* NLMSG_??? */}, \"\\x05\\x00\\x08\\x00\\x1c\\x00\\x0c\\x00\"], 40, 0, NULL, 12) = 40 <0.004000>
10 1.040000 bpf(BPF_LINK_CREATE, {link_create={prog_fd=19}}, 152 <unfinished ...>
11 1.041000 execve(\"/usr/sbin/iptables\", [\"iptables\", \"-w\"], 0x1 /* 6 vars */) = 0 <0.000100>
10 1.052000 <... bpf resumed>) = 20 <0.012000>
11 1.045000 +++ exited with 0 +++
10 1.060000 wait4(11, NULL, 0, NULL) = 11 <0.010000>
10 1.070000 +++ exited with 0 +++
";
        let (wall, programs, calls) = parse(log);
        assert!((wall - 70.0).abs() < 0.01);
        assert_eq!(programs.len(), 1);
        assert_eq!(programs[0].0, "iptables");
        assert!((programs[0].2 - 4.0).abs() < 0.01);
        assert_eq!(calls[0].0, "netlink RTM_DELLINK");
        assert!((calls[0].2 - 31.0).abs() < 0.01);
        assert_eq!(calls[1].0, "bpf BPF_LINK_CREATE");
        assert_eq!(calls[2].0, "netlink RTM_SETLINK (move to another netns)");
        assert!(calls.iter().all(|c| c.0 != "wait4"));
    }
}

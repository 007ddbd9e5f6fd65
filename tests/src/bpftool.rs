//! `bpftool` as the tests call it: a failing call fails the test, naming
//! its arguments and what bpftool said.

use std::process::Command;

use serde_json::Value;

/// Runs `bpftool <args>`; its stdout.
pub fn bpftool(args: &[&str]) -> String {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("running bpftool");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `bpftool -j <args>`; its JSON.
pub fn bpftool_json(args: &[&str]) -> Value {
    let json = [&["-j"], args].concat();
    let out = bpftool(&json);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bpftool {args:?} JSON: {e}\n{out}"))
}

//! Executing one CNI plugin binary the way a runtime does: environment
//! variables, config on stdin, result or error JSON on stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::process::{self, Finished};

/// Deadline for one plugin invocation.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// `PATH` given to plugins (they may exec iptables, ip, ...).
const PLUGIN_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The CNI environment of one invocation. `None` fields are not set at all,
/// so tests can leave required variables out.
#[derive(Debug, Clone, Default)]
pub struct CniEnv {
    pub command: Option<String>,
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
    pub path: Option<String>,
    /// More variables (e.g. `LANBRIDGE_FAIL_AFTER`).
    pub extra: Vec<(String, String)>,
}

impl CniEnv {
    /// A full environment for `command` on attachment (`container_id`, `netns`, `ifname`).
    pub fn new(
        command: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        cni_path: &str,
    ) -> Self {
        CniEnv {
            command: Some(command.into()),
            container_id: Some(container_id.into()),
            netns: Some(netns.into()),
            ifname: Some(ifname.into()),
            args: None,
            path: Some(cni_path.into()),
            extra: vec![],
        }
    }

    /// Only `CNI_COMMAND` and `CNI_PATH` (VERSION, STATUS, GC).
    pub fn bare(command: &str, cni_path: &str) -> Self {
        CniEnv {
            command: Some(command.into()),
            path: Some(cni_path.into()),
            ..Default::default()
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }
}

/// What one plugin invocation produced: the finished process (its exit
/// code, output, time and peak RSS, through `Deref`) and what was run.
#[derive(Debug, Clone)]
pub struct CniOutput {
    pub plugin: PathBuf,
    pub command: String,
    pub run: Finished,
}

impl std::ops::Deref for CniOutput {
    type Target = Finished;

    fn deref(&self) -> &Finished {
        &self.run
    }
}

impl CniOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// stdout parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }

    /// The `code` of a CNI error object on stdout, if any.
    pub fn error_code(&self) -> Option<u64> {
        self.json().and_then(|j| j["code"].as_u64())
    }

    /// `msg` + `details` of a CNI error object (lowercase concatenation for matching).
    pub fn error_text(&self) -> String {
        match self.json() {
            Some(j) => format!(
                "{} {}",
                j["msg"].as_str().unwrap_or_default(),
                j["details"].as_str().unwrap_or_default()
            ),
            None => String::new(),
        }
    }

    /// Panics with everything we know unless the invocation succeeded; returns
    /// the stdout JSON (`Value::Null` when stdout is empty, as for DEL).
    pub fn expect_ok(&self, what: &str) -> Value {
        if !self.success() {
            panic!("{what}: plugin failed\n{self}");
        }
        if self.stdout.trim().is_empty() {
            return Value::Null;
        }
        self.json()
            .unwrap_or_else(|| panic!("{what}: stdout is not JSON\n{self}"))
    }

    /// Panics unless the invocation failed with a CNI error JSON; returns its code.
    pub fn expect_err(&self, what: &str) -> u64 {
        if self.success() {
            panic!("{what}: plugin unexpectedly succeeded\n{self}");
        }
        self.error_code()
            .unwrap_or_else(|| panic!("{what}: no CNI error JSON on stdout\n{self}"))
    }
}

impl std::fmt::Display for CniOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin {} {}: exit {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.plugin.display(),
            self.command,
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `plugin` with `env` and `stdin`, inside network namespace `ns_path`
/// (via `nsenter --net`) or in the current one when `None`.
pub fn exec_plugin(ns_path: Option<&Path>, plugin: &Path, env: &CniEnv, stdin: &[u8]) -> CniOutput {
    exec_plugin_under(&[], ns_path, plugin, env, stdin)
}

/// [`exec_plugin`] under a wrapper program when `wrapper` is not empty
/// (e.g. `strace -f -o FILE`), which runs `nsenter` (or the plugin) with the
/// plugin's environment.
pub fn exec_plugin_under(
    wrapper: &[&str],
    ns_path: Option<&Path>,
    plugin: &Path,
    env: &CniEnv,
    stdin: &[u8],
) -> CniOutput {
    let mut cmd = plugin_command(wrapper, ns_path, plugin, env);
    CniOutput {
        plugin: plugin.to_path_buf(),
        command: env.command.clone().unwrap_or_default(),
        run: process::run(&mut cmd, Some(stdin), PLUGIN_TIMEOUT),
    }
}

/// The command [`exec_plugin_under`] runs, as a runtime starts a plugin.
pub fn plugin_command(
    wrapper: &[&str],
    ns_path: Option<&Path>,
    plugin: &Path,
    env: &CniEnv,
) -> std::process::Command {
    let mut argv: Vec<std::ffi::OsString> = wrapper.iter().map(Into::into).collect();
    if let Some(p) = ns_path {
        argv.extend([format!("--net={}", p.display()).into(), "--".into()]);
        argv.insert(wrapper.len(), "nsenter".into());
    }
    argv.push(plugin.into());
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", PLUGIN_PATH_ENV);
    let vars = [
        ("CNI_COMMAND", &env.command),
        ("CNI_CONTAINERID", &env.container_id),
        ("CNI_NETNS", &env.netns),
        ("CNI_IFNAME", &env.ifname),
        ("CNI_ARGS", &env.args),
        ("CNI_PATH", &env.path),
    ];
    for (k, v) in vars {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    for (k, v) in &env.extra {
        cmd.env(k, v);
    }
    cmd
}

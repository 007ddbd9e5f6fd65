//! A miniature CNI runtime: runs single configs and conflists the way the
//! spec (and libcni) does: plugins in order for ADD with `prevResult`
//! chained, `name`/`cniVersion` copied from the list, `runtimeConfig` for
//! enabled capabilities, reverse order for DEL, GC with valid attachments.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::cni::{exec_plugin_under, CniEnv, CniOutput};
use crate::netns::Netns;

/// One attachment: what the runtime knows about a container's interface.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: Option<String>,
    /// Capability arguments (e.g. `portMappings`), passed as `runtimeConfig`
    /// to plugins whose `capabilities` enable them.
    pub capability_args: Map<String, Value>,
}

impl Attachment {
    pub fn new(container_id: &str, netns: &Netns, ifname: &str) -> Self {
        Self::with_path(container_id, &netns.path_str(), ifname)
    }

    pub fn with_path(container_id: &str, netns_path: &str, ifname: &str) -> Self {
        Attachment {
            container_id: container_id.into(),
            netns: netns_path.into(),
            ifname: ifname.into(),
            args: None,
            capability_args: Map::new(),
        }
    }

    pub fn capability(mut self, name: &str, value: Value) -> Self {
        self.capability_args.insert(name.into(), value);
        self
    }
}

/// A conflist plugin that failed.
#[derive(Debug)]
pub struct Failure {
    pub plugin_type: String,
    pub output: Box<CniOutput>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin type {:?} failed: {}",
            self.plugin_type, self.output
        )
    }
}

/// Versions before 0.4.0 have no CHECK and no `prevResult` on DEL.
pub fn version_at_least_040(v: &str) -> bool {
    !matches!(v, "0.1.0" | "0.2.0" | "0.3.0" | "0.3.1")
}

/// Runs plugins inside one node namespace with one `CNI_PATH`.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub node: PathBuf,
    pub cni_path: Vec<PathBuf>,
    pub extra_env: Vec<(String, String)>,
    /// A program every plugin runs under (e.g. `strace -f -o FILE`), if any.
    pub wrapper: Vec<String>,
}

impl Runtime {
    pub fn new(node: &Netns, cni_path: &[&Path]) -> Self {
        Runtime {
            node: node.path(),
            cni_path: cni_path.iter().map(|p| p.to_path_buf()).collect(),
            extra_env: vec![],
            wrapper: vec![],
        }
    }

    /// This runtime with every plugin run under `wrapper`.
    pub fn under(&self, wrapper: &[&str]) -> Runtime {
        Runtime {
            wrapper: wrapper.iter().map(|w| w.to_string()).collect(),
            ..self.clone()
        }
    }

    /// `CNI_PATH` as a string.
    pub fn cni_path_str(&self) -> String {
        self.cni_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The plugin executable for `type`, searched in `CNI_PATH` order.
    pub fn find(&self, plugin_type: &str) -> PathBuf {
        self.cni_path
            .iter()
            .map(|d| d.join(plugin_type))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "plugin {plugin_type:?} not found in CNI_PATH {}",
                    self.cni_path_str()
                )
            })
    }

    /// The full environment for `command` on `att`.
    pub fn env(&self, command: &str, att: &Attachment) -> CniEnv {
        let mut env = CniEnv::new(
            command,
            &att.container_id,
            &att.netns,
            &att.ifname,
            &self.cni_path_str(),
        );
        env.args = att.args.clone();
        env.extra = self.extra_env.clone();
        env
    }

    /// Runs the plugin named by `conf["type"]` with an explicit environment.
    pub fn exec(&self, conf: &Value, env: &CniEnv) -> CniOutput {
        let ty = conf["type"].as_str().expect("config has a string \"type\"");
        self.exec_raw(ty, env, conf.to_string().as_bytes())
    }

    /// Runs the plugin named by `conf["type"]` with raw bytes on stdin.
    pub fn exec_raw(&self, plugin_type: &str, env: &CniEnv, stdin: &[u8]) -> CniOutput {
        let wrapper: Vec<&str> = self.wrapper.iter().map(String::as_str).collect();
        let plugin = self.find(plugin_type);
        exec_plugin_under(&wrapper, Some(&self.node), &plugin, env, stdin)
    }

    /// Runs `command` for a single network config, with `runtimeConfig` and
    /// an optional `prevResult` injected.
    pub fn invoke(
        &self,
        command: &str,
        conf: &Value,
        att: &Attachment,
        prev: Option<&Value>,
    ) -> CniOutput {
        let conf = inject(conf, conf, att, prev);
        self.exec(&conf, &self.env(command, att))
    }

    /// ADD of a conflist: returns the final result.
    pub fn add_list(&self, list: &Value, att: &Attachment) -> Result<Value, Failure> {
        let mut prev: Option<Value> = None;
        for plugin in &plugins(list) {
            let conf = inject(list, plugin, att, prev.as_ref());
            let out = self.exec(&conf, &self.env("ADD", att));
            if !out.success() {
                return Err(failure(plugin, out));
            }
            let result = out.json().ok_or_else(|| failure(plugin, out.clone()))?;
            prev = Some(result);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    /// CHECK of a conflist with the cached result of ADD.
    pub fn check_list(
        &self,
        list: &Value,
        att: &Attachment,
        cached: &Value,
    ) -> Result<(), Failure> {
        for plugin in &plugins(list) {
            let conf = inject(list, plugin, att, Some(cached));
            let out = self.exec(&conf, &self.env("CHECK", att));
            if !out.success() {
                return Err(failure(plugin, out));
            }
        }
        Ok(())
    }

    /// DEL of a conflist, in reverse order, with the cached result if any.
    pub fn del_list(
        &self,
        list: &Value,
        att: &Attachment,
        cached: Option<&Value>,
    ) -> Result<(), Failure> {
        let version = list["cniVersion"].as_str().unwrap_or_default();
        let prev = cached.filter(|_| version_at_least_040(version));
        for plugin in plugins(list).iter().rev() {
            let conf = inject(list, plugin, att, prev);
            let out = self.exec(&conf, &self.env("DEL", att));
            if !out.success() {
                return Err(failure(plugin, out));
            }
        }
        Ok(())
    }

    /// GC (1.1.0) of a conflist: every attachment not in `valid` is garbage.
    pub fn gc_list(&self, list: &Value, valid: &[&Attachment]) -> Result<(), Failure> {
        let valid: Vec<Value> = valid
            .iter()
            .map(|a| json!({"containerID": a.container_id, "ifname": a.ifname}))
            .collect();
        for plugin in &plugins(list) {
            let mut conf = inject(list, plugin, &Attachment::with_path("", "", ""), None);
            conf["cni.dev/valid-attachments"] = Value::Array(valid.clone());
            let mut env = CniEnv::bare("GC", &self.cni_path_str());
            env.extra = self.extra_env.clone();
            let out = self.exec(&conf, &env);
            if !out.success() {
                return Err(failure(plugin, out));
            }
        }
        Ok(())
    }

    /// STATUS (1.1.0) of a conflist.
    pub fn status_list(&self, list: &Value) -> Result<(), Failure> {
        for plugin in &plugins(list) {
            let conf = inject(list, plugin, &Attachment::with_path("", "", ""), None);
            let mut env = CniEnv::bare("STATUS", &self.cni_path_str());
            env.extra = self.extra_env.clone();
            let out = self.exec(&conf, &env);
            if !out.success() {
                return Err(failure(plugin, out));
            }
        }
        Ok(())
    }
}

fn plugins(list: &Value) -> Vec<Value> {
    list["plugins"]
        .as_array()
        .cloned()
        .expect("conflist has a \"plugins\" array")
}

fn failure(plugin: &Value, output: CniOutput) -> Failure {
    Failure {
        plugin_type: plugin["type"].as_str().unwrap_or_default().to_string(),
        output: Box::new(output),
    }
}

/// The config one plugin of `list` receives: its own keys plus `name` and
/// `cniVersion` from the list, `runtimeConfig` for the capabilities it
/// enables, and `prevResult`.
pub fn inject(list: &Value, plugin: &Value, att: &Attachment, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    let obj = conf.as_object_mut().expect("plugin config is an object");
    for key in ["name", "cniVersion"] {
        if let Some(v) = list.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    let mut rc = obj
        .get("runtimeConfig")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(caps) = plugin.get("capabilities").and_then(Value::as_object) {
        for (cap, enabled) in caps {
            if enabled == &Value::Bool(true) {
                if let Some(v) = att.capability_args.get(cap) {
                    rc.insert(cap.clone(), v.clone());
                }
            }
        }
    }
    if !rc.is_empty() {
        obj.insert("runtimeConfig".into(), Value::Object(rc));
    }
    if let Some(p) = prev {
        obj.insert("prevResult".into(), p.clone());
    }
    conf
}

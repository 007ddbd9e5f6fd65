//! The spec's environment variables, read once and validated per command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            other => {
                return Err(Error::InvalidEnv {
                    var: "CNI_COMMAND",
                    reason: format!("unknown command {other:?}"),
                })
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }
}

/// What the runtime told us through the environment.
#[derive(Debug, Clone, Default)]
pub struct CniEnv {
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: BTreeMap<String, String>,
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the variables `command` needs; a missing required one is code 4.
    pub fn from_env(command: Command, get: impl Fn(&str) -> Option<String>) -> Result<CniEnv> {
        let attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let required = |var: &'static str| -> Result<String> {
            match get(var).filter(|v| !v.is_empty()) {
                Some(v) => Ok(v),
                None if attachment => Err(Error::InvalidEnv {
                    var,
                    reason: format!("required for {}", command.as_str()),
                }),
                None => Ok(String::new()),
            }
        };
        let container_id = required("CNI_CONTAINERID")?;
        let ifname = required("CNI_IFNAME")?;
        // DEL may come after the sandbox is gone: the netns is then optional.
        let netns = match get("CNI_NETNS").filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None if matches!(command, Command::Add | Command::Check) => {
                return Err(Error::InvalidEnv {
                    var: "CNI_NETNS",
                    reason: format!("required for {}", command.as_str()),
                })
            }
            None => None,
        };
        if attachment {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname).map_err(|reason| Error::InvalidEnv {
                var: "CNI_IFNAME",
                reason,
            })?;
        }
        Ok(CniEnv {
            container_id,
            netns,
            ifname,
            args: parse_args(&get("CNI_ARGS").unwrap_or_default())?,
            path: get("CNI_PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        })
    }

    /// A `CNI_ARGS` value by key, case-insensitively (`IP`, `ip`).
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// `CNI_ARGS` is `K=V;K2=V2`; unknown keys are kept and ignored by the caller.
fn parse_args(raw: &str) -> Result<BTreeMap<String, String>> {
    raw.split(';')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::InvalidEnv {
                var: "CNI_ARGS",
                reason: format!("{pair:?} is not KEY=VALUE"),
            }),
        })
        .collect()
}

fn validate_container_id(id: &str) -> Result<()> {
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Ok(());
    }
    Err(Error::InvalidEnv {
        var: "CNI_CONTAINERID",
        reason: format!("{id:?} must be alphanumeric, '_', '.' or '-', starting alphanumeric"),
    })
}

/// Linux interface name rules (IFNAMSIZ, no '/', ':' or whitespace).
pub fn validate_ifname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("{name:?} must be 1 to 15 bytes"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn add_needs_netns_del_does_not() {
        let vars = [("CNI_CONTAINERID", "abc"), ("CNI_IFNAME", "eth0")];
        let err = CniEnv::from_env(Command::Add, env(&vars)).unwrap_err();
        assert_eq!(err.code(), 4);
        assert!(err.to_string().contains("CNI_NETNS"));
        assert!(CniEnv::from_env(Command::Del, env(&vars))
            .unwrap()
            .netns
            .is_none());
    }

    #[test]
    fn parses_cni_args() {
        let vars = [
            ("CNI_ARGS", "IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=web"),
            ("CNI_PATH", "/a:/b"),
        ];
        let e = CniEnv::from_env(Command::Version, env(&vars)).unwrap();
        assert_eq!(e.arg("ip"), Some("10.0.0.5"));
        assert_eq!(e.arg("K8S_POD_NAME"), Some("web"));
        assert_eq!(e.path.len(), 2);
        let bad = CniEnv::from_env(Command::Version, env(&[("CNI_ARGS", "novalue")]));
        assert_eq!(bad.unwrap_err().code(), 4);
    }

    #[test]
    fn rejects_bad_ids_and_ifnames() {
        let bad_id = [
            ("CNI_CONTAINERID", "a/b"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/x"),
        ];
        assert_eq!(
            CniEnv::from_env(Command::Add, env(&bad_id))
                .unwrap_err()
                .code(),
            4
        );
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("a-very-long-interface").is_err());
        assert!(validate_ifname("a/b").is_err());
    }
}

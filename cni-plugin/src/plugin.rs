//! The CNI entry point: environment + stdin in, one JSON document out.
//! Nothing but the result or the error object is ever written to stdout.

use std::io::{Read, Write};

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::net::UnixStream;

use crate::cli::Reported;
use crate::cni::{version::CURRENT, CniEnv, Command, Error, Result};
use crate::commands;
use crate::config::{self, NetConf};
use crate::dhcp::protocol::{
    read_message, write_message, OpReport, Request, Response, DEFAULT_SOCKET,
};
use crate::dhcp::RecordError;
use crate::ipam::Ipam;

/// Runs `command`; a failure is reported as the CNI error object on stdout.
pub fn main(command: &str) -> Result<(), Reported> {
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| Error::io("reading stdin", e));
    let raw = read.and_then(|_| match stdin.iter().all(u8::is_ascii_whitespace) {
        true => Ok(Value::Null),
        false => config::decode(&stdin),
    });
    // Errors answer in the config's version when it is one we speak.
    let reply_version = raw
        .as_ref()
        .ok()
        .and_then(config::peek_version)
        .filter(|v| crate::cni::version::SUPPORTED.contains(v))
        .unwrap_or(CURRENT)
        .to_string();

    let outcome = raw.and_then(|raw| {
        crate::cli::runtime(1)
            .map_err(|e| Error::io("starting the runtime", e))?
            .block_on(async {
                let started = std::time::Instant::now();
                let outcome = dispatch(command, raw.clone()).await;
                report(command, &raw, &outcome, started.elapsed()).await;
                outcome
            })
    });
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(out)) => {
            print_json(&out);
            Ok(())
        }
        Err(e) => {
            tracing::error!("{} failed: {e}", command);
            print_json(&e.to_json(&reply_version));
            Err(Reported)
        }
    }
}

/// How long the plugin waits for the daemon to take a report.
const REPORT_PATIENCE: Duration = Duration::from_millis(200);

/// Tells the node's daemon, if one listens, what the command did and how
/// long it took (its metrics). Best effort: a runtime never waits long for it.
async fn report(command: &str, raw: &Value, outcome: &Result<Option<Value>>, took: Duration) {
    if !matches!(command, "ADD" | "DEL" | "CHECK" | "GC" | "STATUS") {
        return;
    }
    let socket = raw
        .pointer("/ipam/daemonSocketPath")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::node::scope::file(DEFAULT_SOCKET));
    let request = Request::Report(OpReport {
        command: command.to_string(),
        network: raw
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        code: outcome.as_ref().err().map_or(0, Error::code),
        seconds: took.as_secs_f64(),
    });
    let exchange = async {
        let stream = UnixStream::connect(&socket)
            .await
            .map_err(|e| RecordError::io("connecting", e))?;
        let (reader, mut writer) = stream.into_split();
        write_message(&mut writer, &request).await?;
        read_message::<_, Response>(reader).await
    };
    if let Ok(Err(e)) = tokio::time::timeout(REPORT_PATIENCE, exchange).await {
        tracing::debug!(
            "reporting {command} to the daemon at {}: {e}",
            socket.display()
        );
    }
}

fn print_json(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A runtime that closed our stdout can't be told anything else.
    let written = serde_json::to_writer(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.flush());
    if let Err(e) = written {
        tracing::error!("writing to stdout: {e}");
    }
}

async fn dispatch(command: &str, raw: Value) -> Result<Option<Value>> {
    let command = Command::parse(command)?;
    if command == Command::Version {
        // What the runtime asked about, as given.
        let asked = raw.get("cniVersion").and_then(Value::as_str);
        return Ok(Some(commands::version::run(asked)));
    }
    let env = CniEnv::from_env(command, |k| std::env::var(k).ok())?;
    if raw.is_null() {
        return Err(Error::config(
            "cniVersion",
            "no network configuration on stdin",
        ));
    }
    let conf = match command {
        Command::Del => commands::del::conf_for_del(raw, &env)?,
        _ => NetConf::parse(raw)?,
    };
    match command {
        Command::Add => {
            let result = commands::add::run(&conf, &env).await?;
            Ok(Some(result.to_wire(conf.version)))
        }
        Command::Del => commands::del::run(&conf, &env).await.map(|()| None),
        Command::Check => commands::check::run(&conf, &env).await.map(|()| None),
        Command::Gc => commands::gc::run(&conf, &env).await.map(|()| None),
        Command::Status => {
            let ipam = Ipam::from_conf(&conf, &env)?;
            commands::status::run(&conf, ipam.as_ref())
                .await
                .map(|()| None)
        }
        Command::Version => unreachable!("answered above"),
    }
}

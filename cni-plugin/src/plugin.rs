//! The CNI entry point: environment + stdin in, one JSON document out.
//! Nothing but the result or the error object is ever written to stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::Value;

use crate::cni::{version::CURRENT, CniEnv, Command, Error, Result};
use crate::commands;
use crate::config::{self, NetConf};
use crate::ipam::Ipam;

pub fn main(command: &str) -> ExitCode {
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
            .block_on(dispatch(command, raw))
    });
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(out)) => {
            print_json(&out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{} failed: {e}", command);
            print_json(&e.to_json(&reply_version));
            ExitCode::FAILURE
        }
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
    let conf = NetConf::parse(raw)?;
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

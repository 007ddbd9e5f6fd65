//! `lanbridge monitor`: the node's drops as they happen, with the packet's
//! MACs, addresses, ports and reason, streamed by the daemon (which alone
//! drains the programs' ring buffers).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::config::DEFAULT_PIN_ROOT;
use crate::datapath::Pins;
use crate::dhcp::protocol::{MonitorEvent, Request, DEFAULT_SOCKET};
use crate::node::scope;

#[derive(clap::Args)]
pub struct Args {
    /// Only this network's drops.
    #[arg(long)]
    network: Option<String>,
    /// One JSON object a line instead of text.
    #[arg(long)]
    json: bool,
    /// The daemon's socket (the default is scoped per network namespace).
    #[arg(long, default_value_os_t = scope::file(DEFAULT_SOCKET))]
    socket: PathBuf,
    /// The networks' `pinRoot`, where `--network` must exist (the default is
    /// scoped per network namespace).
    #[arg(long, default_value_os_t = scope::dir(DEFAULT_PIN_ROOT))]
    pin_root: PathBuf,
}

pub fn main(args: &Args) -> Result<(), String> {
    if let Some(network) = &args.network {
        if !Pins::new(&args.pin_root, network).dir().is_dir() {
            return Err(super::unknown_network(&args.pin_root, network));
        }
    }
    let mut stream = UnixStream::connect(&args.socket).map_err(|e| {
        format!(
            "connecting to the daemon at {}: {e} (is `lanbridge daemon` running in this \
             network namespace?)",
            args.socket.display()
        )
    })?;
    let request = Request::Monitor {
        network: args.network.clone(),
    };
    let mut line = serde_json::to_vec(&request).expect("requests serialize");
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("writing to {}: {e}", args.socket.display()))?;
    if !args.json {
        let what = args.network.as_deref().unwrap_or("every network");
        eprintln!("Listening for drops on {what}; Ctrl-C to stop.");
    }
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(|e| format!("reading from the daemon: {e}"))?;
        if args.json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<MonitorEvent>(&line) {
            Ok(MonitorEvent::Drop(record)) => println!("{record}"),
            Ok(MonitorEvent::Lost { count }) => {
                eprintln!("{count} drop events lost: the terminal read too slowly")
            }
            Err(e) => return Err(format!("reading from the daemon: {e}: {line}")),
        }
    }
    Err("the daemon closed the connection".into())
}

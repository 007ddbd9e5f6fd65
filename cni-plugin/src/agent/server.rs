//! The daemon's unix socket: mode 0600, a stale file from a dead daemon is
//! replaced, a live daemon's socket is left alone. Bounded so that no client
//! and no load can end or starve the daemon: at most [`MAX_CONNECTIONS`] at
//! once, a request must arrive within [`READ_TIMEOUT`] (and fit
//! [`MAX_MESSAGE`](crate::dhcp::protocol::MAX_MESSAGE)), and a failing accept
//! (EMFILE, ENFILE, ENOBUFS) pauses instead of ending `serve`.

use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;

use super::error::{AgentError, Result};
use super::Daemon;
use crate::commands::errors::answer;
use crate::dhcp::protocol::{read_message, write_message, MonitorEvent, Request, Response};
use crate::dhcp::RecordError;

/// The listening socket: the one systemd passed (socket activation,
/// `lanbridge-daemon.socket`), else `path` bound here. `true` when it came
/// from systemd, which then owns its file.
pub async fn listen(path: &Path) -> Result<(UnixListener, bool)> {
    match activated()? {
        Some(listener) => {
            tracing::info!("using the socket systemd passed (socket activation)");
            Ok((listener, true))
        }
        None => Ok((bind(path).await?, false)),
    }
}

/// The one socket of `LISTEN_FDS` (sd_listen_fds(3)): fd 3, when the
/// variables are meant for this process.
fn activated() -> Result<Option<UnixListener>> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    if !ours || std::env::var("LISTEN_FDS").as_deref() != Ok("1") {
        return Ok(None);
    }
    const SD_LISTEN_FDS_START: i32 = 3;
    // SAFETY: systemd passed fd 3 to this process, and nothing else in it
    // takes ownership of that fd.
    let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(SD_LISTEN_FDS_START) };
    let err = |e| AgentError::io("taking the socket systemd passed (fd 3)", e);
    listener.set_nonblocking(true).map_err(err)?;
    UnixListener::from_std(listener).map(Some).map_err(err)
}

async fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(AgentError::io(
                format!("binding {}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another lanbridge daemon is listening there",
                ),
            ));
        }
        tracing::info!("removing stale socket {}", path.display());
        std::fs::remove_file(path)
            .map_err(|e| AgentError::io(format!("removing stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| AgentError::io(format!("binding {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| AgentError::io(format!("chmod 0600 {}", path.display()), e))?;
    Ok(listener)
}

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept, doubling up to [`ACCEPT_PAUSE_MAX`].
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(2);

pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) -> Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut pause = ACCEPT_PAUSE;
    let mut failing = false;
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Logged once per run of failures, not per retry.
                if !failing {
                    tracing::error!("accepting on the daemon socket: {e}; retrying");
                    failing = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                continue;
            }
        };
        if failing {
            tracing::info!("accepting on the daemon socket again");
            failing = false;
            pause = ACCEPT_PAUSE;
        }
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match handle(stream, &daemon).await {
                // A health probe connects and closes.
                Err(AgentError::Record(RecordError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    tracing::debug!("connection closed before a whole request")
                }
                Err(e) => tracing::warn!("plugin connection: {e}"),
                Ok(()) => {}
            }
        });
    }
}

async fn handle(stream: UnixStream, daemon: &Arc<Daemon>) -> Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    let request: Request = tokio::time::timeout(READ_TIMEOUT, read_message(&mut reader))
        .await
        .map_err(|_| {
            AgentError::io(
                "reading a request on the daemon socket",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("none within {READ_TIMEOUT:?}: closing the connection"),
                ),
            )
        })??;
    let response = match request {
        Request::Acquire(req) => {
            let key = req.holder.key.clone();
            match daemon.acquire(*req).await {
                Ok(lease) => Response::Lease { lease },
                Err(e) => {
                    // The plugin's stderr is often swallowed by the runtime.
                    tracing::warn!(
                        "no lease for {}/{} on network {}: {e}",
                        key.container_id,
                        key.ifname,
                        key.network
                    );
                    error(e)
                }
            }
        }
        Request::Release { key } => match daemon.release(&key).await {
            Ok(sent) => Response::Released { sent },
            Err(e) => error(e),
        },
        Request::Leases => match daemon.leases() {
            Ok(leases) => Response::Leases { leases },
            Err(e) => error(e),
        },
        Request::Status { key } => Response::Status {
            status: daemon.status(&key),
        },
        Request::LeaseStates => Response::LeaseStates {
            states: daemon.book.all(),
        },
        Request::Report(report) => {
            super::metrics::operation(&report);
            Response::Noted
        }
        Request::Monitor { network } => {
            return monitor(reader, writer, daemon, network).await;
        }
    };
    Ok(write_message(&mut writer, &response).await?)
}

/// Streams drop events until the client closes its end (or stops reading
/// and the daemon's writes fail).
async fn monitor(
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    daemon: &Arc<Daemon>,
    network: Option<String>,
) -> Result<()> {
    let mut events = daemon.drops.subscribe();
    let mut byte = [0u8; 1];
    loop {
        let event = tokio::select! {
            // Anything more from the client, or its end, ends the stream.
            _ = reader.read(&mut byte) => return Ok(()),
            event = events.recv() => event,
        };
        let line = match event {
            Ok(record) if network.as_ref().is_none_or(|n| *n == record.network) => {
                MonitorEvent::Drop(Box::new((*record).clone()))
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(count)) => MonitorEvent::Lost { count },
            Err(RecvError::Closed) => return Ok(()),
        };
        write_message(&mut writer, &line).await?;
    }
}

/// The failure with the code `commands::errors` gives it.
fn error(e: AgentError) -> Response {
    let (code, msg) = match e {
        AgentError::Io { context, source } => answer(RecordError::Io { context, source }),
        AgentError::Record(e) => answer(e),
        AgentError::Node(e) => answer(e),
        AgentError::Dhcp(e) => answer(e),
        AgentError::Datapath(e) => answer(e),
    };
    Response::Error { code, msg }
}

//! The daemon's unix socket: mode 0600, a stale file from a dead daemon is
//! replaced, a live daemon's socket is left alone. Bounded so that no client
//! and no load can end or starve the daemon: at most [`MAX_CONNECTIONS`] at
//! once, a request must arrive within [`READ_TIMEOUT`] (and fit
//! [`MAX_MESSAGE`](crate::dhcp::protocol::MAX_MESSAGE)), and a failing accept
//! (EMFILE, ENFILE, ENOBUFS) pauses instead of ending `serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::Daemon;
use crate::cni::{Error, Result};
use crate::dhcp::protocol::{read_message, write_message, Request, Response};

pub async fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::io(
                format!("binding {}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another lanbridge daemon is listening there",
                ),
            ));
        }
        tracing::info!("removing stale socket {}", path.display());
        std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("removing stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| Error::io(format!("binding {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(format!("chmod 0600 {}", path.display()), e))?;
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
                Err(Error::Io { source, .. })
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
    let (reader, mut writer) = stream.into_split();
    let request: Request = tokio::time::timeout(READ_TIMEOUT, read_message(reader))
        .await
        .map_err(|_| {
            Error::io(
                "reading a request on the daemon socket",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("none within {READ_TIMEOUT:?}: closing the connection"),
                ),
            )
        })??;
    let response = match request {
        Request::Acquire(req) => match daemon.acquire(req).await {
            Ok(lease) => Response::Lease { lease },
            Err(e) => error(e),
        },
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
    };
    write_message(&mut writer, &response).await
}

fn error(e: Error) -> Response {
    Response::Error {
        code: e.code(),
        msg: e.to_string(),
    }
}

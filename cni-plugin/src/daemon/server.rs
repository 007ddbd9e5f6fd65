//! The daemon's unix socket: mode 0600, a stale file from a dead daemon is
//! replaced, a live daemon's socket is left alone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use super::protocol::{read_message, write_message, Request, Response};
use super::Daemon;
use crate::cni::{Error, Result};

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

pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) -> Result<()> {
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::io("accepting on the daemon socket", e))?;
        let daemon = daemon.clone();
        tokio::spawn(async move {
            match handle(stream, &daemon).await {
                // A health probe connects and closes.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    tracing::debug!("connection closed without a request")
                }
                Err(e) => tracing::warn!("plugin connection: {e}"),
                Ok(()) => {}
            }
        });
    }
}

async fn handle(stream: UnixStream, daemon: &Arc<Daemon>) -> Result<()> {
    let (reader, mut writer) = stream.into_split();
    let request: Request = read_message(reader).await?;
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
    };
    write_message(&mut writer, &response).await
}

fn error(e: Error) -> Response {
    Response::Error {
        code: e.code(),
        msg: e.to_string(),
    }
}

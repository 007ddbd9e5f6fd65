//! rtnetlink, one connection per namespace: the socket is created inside the
//! namespace and kept, so every request on it acts there.

mod addr;
pub mod bridge;

mod link;
mod route;

pub use route::Installed;

use std::os::fd::{FromRawFd, IntoRawFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, TokioSocket};
use rtnetlink::Handle;

use crate::node::error::{Error, Result};
use crate::node::gone::found;
use crate::node::netns::NetNs;

pub use link::{LinkInfo, VethSpec};

pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a route netlink socket inside `ns` and drives it on the runtime.
    pub fn open(ns: &NetNs) -> Result<Netlink> {
        let fd = ns.run(|| Ok(Socket::new(NETLINK_ROUTE)?.into_raw_fd()))?;
        // SAFETY: `fd` was just created above and is owned by nobody else.
        let socket = unsafe { TokioSocket::from_raw_fd(fd) };
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Opens a route netlink socket in the caller's namespace (the agent's).
    pub fn current() -> Result<Netlink> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::io("opening a netlink socket", e))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        found(links.try_next().await)
            .map(Option::flatten)
            .map_err(|e| Error::netlink(format!("get link {name}"), e))
    }
}

/// Whether a netlink error is the kernel's `-errno`.
pub fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

//! The main routing table of the current network namespace, over rtnetlink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::node::gone::done;

use super::{Action, Installed, Wanted, RTPROT_LANBRIDGE};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("opening a netlink socket: {0}")]
    Open(std::io::Error),
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
    #[error("{0}")]
    Message(String),
}

/// A route netlink connection in the namespace the caller runs in.
pub struct RouteTable {
    handle: Handle,
}

impl RouteTable {
    /// Opens the connection; needs a tokio runtime.
    pub fn open() -> Result<RouteTable, TableError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(TableError::Open)?;
        tokio::spawn(conn);
        Ok(RouteTable { handle })
    }

    /// Every unicast route of the main table, both families.
    pub async fn list(&self) -> Result<Vec<Installed>, TableError> {
        let mut all = Vec::new();
        for query in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(|source| TableError::Netlink {
                    op: "listing routes".into(),
                    source,
                })?;
            all.extend(msgs.iter().filter_map(installed));
        }
        Ok(all)
    }

    /// Carries out one action; conflicts are not actions.
    pub async fn apply(&self, action: &Action) -> Result<(), TableError> {
        let (msg, replace) = match action {
            Action::Add(w) => (message(w, 0)?, false),
            Action::Replace { want, was } => (message(want, was.metric)?, true),
            Action::Delete(r) => {
                let msg = delete_message(r)?;
                return done(self.handle.route().del(msg).execute().await).map_err(|source| {
                    TableError::Netlink {
                        op: format!("delete {}", r.dst),
                        source,
                    }
                });
            }
            Action::Conflict { .. } => return Ok(()),
        };
        let mut req = self.handle.route().add(msg);
        if replace {
            req = req.replace();
        }
        req.execute().await.map_err(|source| TableError::Netlink {
            op: action.to_string(),
            source,
        })
    }
}

fn bad(e: impl std::fmt::Display) -> TableError {
    TableError::Message(e.to_string())
}

/// `<dst> via <via> proto 76 [metric m]` in the main table.
fn message(w: &Wanted, metric: u32) -> Result<RouteMessage, TableError> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(w.dst.addr(), w.dst.prefix_len())
        .map_err(bad)?
        .gateway(w.via)
        .map_err(bad)?
        .protocol(RouteProtocol::from(RTPROT_LANBRIDGE));
    if metric != 0 {
        b = b.priority(metric);
    }
    Ok(b.build())
}

/// Matches only our route: the kernel compares the protocol, gateway and
/// metric given here.
fn delete_message(r: &Installed) -> Result<RouteMessage, TableError> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(r.dst.addr(), r.dst.prefix_len())
        .map_err(bad)?
        .protocol(RouteProtocol::from(RTPROT_LANBRIDGE));
    if let Some(via) = r.via {
        b = b.gateway(via).map_err(bad)?;
    }
    if r.metric != 0 {
        b = b.priority(r.metric);
    }
    Ok(b.build())
}

/// A unicast route of the main table, or `None`.
fn installed(msg: &RouteMessage) -> Option<Installed> {
    let mut table = u32::from(msg.header.table);
    let mut dst = None;
    let mut via = None;
    let mut metric = 0;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Gateway(a) => via = addr(a),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || msg.header.kind != RouteType::Unicast {
        return None;
    }
    let dst = match (dst, msg.header.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (None, _) => return None,
    };
    Some(Installed {
        dst: IpNet::new(dst, msg.header.destination_prefix_length).ok()?,
        via,
        protocol: u8::from(msg.header.protocol),
        metric,
    })
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

//! Routes in a namespace's main table.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope};
use rtnetlink::{IpVersion, RouteMessageBuilder};

use super::{is_errno, Netlink};
use crate::cni::{Error, Result};
use crate::gone::done;

/// A route as CHECK compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoute {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
}

impl Netlink {
    /// Adds `dst via gw dev index`; an identical existing route is fine.
    pub async fn add_route(&self, dst: IpNet, gw: Option<IpAddr>, index: u32) -> Result<()> {
        let msg = route_message(dst, gw, index)?;
        added(self.handle.route().add(msg).execute().await, dst, gw, index)
    }

    /// Like [`Netlink::add_route`], but a route to `dst` through another
    /// gateway stays too (`NLM_F_APPEND`, no `NLM_F_EXCL`, which rtnetlink's
    /// request always sets): IPAM's routes to one destination through
    /// several gateways, installed as the reference installs them.
    pub async fn add_route_beside(&self, dst: IpNet, gw: Option<IpAddr>, index: u32) -> Result<()> {
        use futures::StreamExt;
        use rtnetlink::packet_core::{
            NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
        };
        use rtnetlink::packet_route::RouteNetlinkMessage;

        let msg = route_message(dst, gw, index)?;
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let result = async {
            let mut response = self.handle.clone().request(req)?;
            while let Some(reply) = response.next().await {
                if let NetlinkPayload::Error(e) = reply.payload {
                    return Err(rtnetlink::Error::NetlinkError(e));
                }
            }
            Ok(())
        }
        .await;
        added(result, dst, gw, index)
    }

    pub async fn routes(&self) -> Result<Vec<LiveRoute>> {
        let mut all = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let msg = match version {
                IpVersion::V4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
                IpVersion::V6 => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
            };
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(msg)
                .execute()
                .try_collect()
                .await
                .map_err(|e| Error::netlink("list routes", e))?;
            all.extend(msgs.into_iter().filter_map(live_route));
        }
        Ok(all)
    }
}

fn route_message(dst: IpNet, gw: Option<IpAddr>, index: u32) -> Result<RouteMessage> {
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst.addr(), dst.prefix_len())
        .map_err(|e| Error::config("routes", e.to_string()))?
        .output_interface(index);
    if let Some(gw) = gw {
        builder = builder
            .gateway(gw)
            .map_err(|e| Error::config("routes", e.to_string()))?;
    }
    Ok(builder.build())
}

/// An add's outcome: an identical existing route is fine.
fn added(
    result: std::result::Result<(), rtnetlink::Error>,
    dst: IpNet,
    gw: Option<IpAddr>,
    index: u32,
) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
        Err(e) => Err(Error::netlink(
            format!("add route {dst} via {gw:?} dev {index}"),
            e,
        )),
    }
}

fn live_route(msg: RouteMessage) -> Option<LiveRoute> {
    let prefix = msg.header.destination_prefix_length;
    let mut dst = None;
    let mut gw = None;
    let mut oif = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Gateway(a) => gw = addr(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    let v4 = msg.header.address_family == rtnetlink::packet_route::AddressFamily::Inet;
    let dst = dst.unwrap_or(if v4 {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    });
    Some(LiveRoute {
        dst: IpNet::new(dst, prefix).ok()?,
        gw,
        oif,
    })
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// `ip route replace <dst>/32 dev <index> src <src> scope link`: a lan-mode pod.
    pub async fn add_host_route(&self, dst: Ipv4Addr, index: u32, src: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, 32)
            .output_interface(index)
            .pref_source(src)
            .scope(RouteScope::Link)
            .build();
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("add route {dst}/32 dev {index}"), e))
    }

    /// Removes `<dst>/32` from the main table; an absent route is fine.
    pub async fn del_host_route(&self, dst: Ipv4Addr, index: u32) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, 32)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build();
        done(self.handle.route().del(msg).execute().await)
            .map_err(|e| Error::netlink(format!("delete route {dst}/32"), e))
    }
}

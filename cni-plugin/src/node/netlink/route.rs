//! Routes: the pods' routes (CHECK, lan mode's /32s) and the main table's
//! routes to other nodes' pod subnets, marked [`RTPROT_LANBRIDGE`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::{is_errno, Netlink};
use crate::node::error::{Error, Result};
use crate::node::gone::done;
use crate::node::naming::RTPROT_LANBRIDGE;

/// A route as CHECK compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRoute {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
}

impl Netlink {
    /// Adds `dst via gw dev index [metric m]` (0: the kernel's default);
    /// an identical existing route is fine.
    pub async fn add_route(
        &self,
        dst: IpNet,
        gw: Option<IpAddr>,
        index: u32,
        metric: u32,
    ) -> Result<()> {
        let msg = route_message(dst, gw, index, metric)?;
        added(self.handle.route().add(msg).execute().await, dst, gw, index)
    }

    /// Like [`Netlink::add_route`], but a route to `dst` through another
    /// gateway stays too (`NLM_F_APPEND`, no `NLM_F_EXCL`, which rtnetlink's
    /// request always sets): IPAM's routes to one destination through
    /// several gateways, installed as the reference installs them.
    pub async fn add_route_beside(
        &self,
        dst: IpNet,
        gw: Option<IpAddr>,
        index: u32,
        metric: u32,
    ) -> Result<()> {
        use futures::StreamExt;
        use rtnetlink::packet_core::{
            NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
        };
        use rtnetlink::packet_route::RouteNetlinkMessage;

        let msg = route_message(dst, gw, index, metric)?;
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
        Ok(self
            .dump_routes()
            .await?
            .into_iter()
            .filter_map(live_route)
            .collect())
    }

    /// Every route the kernel lists, IPv4 then IPv6.
    async fn dump_routes(&self) -> Result<Vec<RouteMessage>> {
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
                .map_err(|e| Error::netlink("list routes", e))?;
            all.extend(msgs);
        }
        Ok(all)
    }
}

fn route_message(dst: IpNet, gw: Option<IpAddr>, index: u32, metric: u32) -> Result<RouteMessage> {
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst.addr(), dst.prefix_len())
        .map_err(|e| Error::BadRoute(e.to_string()))?
        .output_interface(index);
    if metric != 0 {
        builder = builder.priority(metric);
    }
    if let Some(gw) = gw {
        builder = builder
            .gateway(gw)
            .map_err(|e| Error::BadRoute(e.to_string()))?;
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
    let v4 = msg.header.address_family == AddressFamily::Inet;
    let dst = dst.unwrap_or(if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
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

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub dst: IpNet,
    pub via: Option<IpAddr>,
    /// The route's protocol; [`RTPROT_LANBRIDGE`] marks ours.
    pub protocol: u8,
    /// The route's metric (0 when the kernel reports none).
    pub metric: u32,
}

impl Installed {
    pub fn ours(&self) -> bool {
        self.protocol == RTPROT_LANBRIDGE
    }
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        write!(f, " proto {}", proto_name(self.protocol))?;
        if self.metric != 0 {
            write!(f, " metric {}", self.metric)?;
        }
        Ok(())
    }
}

fn proto_name(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        16 => "dhcp".into(),
        RTPROT_LANBRIDGE => "lanbridge".into(),
        other => other.to_string(),
    }
}

impl Netlink {
    /// Every unicast route of the main table, both families.
    pub async fn main_routes(&self) -> Result<Vec<Installed>> {
        Ok(self
            .dump_routes()
            .await?
            .iter()
            .filter_map(installed)
            .collect())
    }

    /// `<dst> via <via> proto 76 [metric m]` in the main table, replacing
    /// the route of that metric when `replace`.
    pub async fn put_route(
        &self,
        dst: IpNet,
        via: IpAddr,
        metric: u32,
        replace: bool,
    ) -> Result<()> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.addr(), dst.prefix_len())
            .map_err(|e| Error::BadRoute(e.to_string()))?
            .gateway(via)
            .map_err(|e| Error::BadRoute(e.to_string()))?
            .protocol(RouteProtocol::from(RTPROT_LANBRIDGE));
        if metric != 0 {
            b = b.priority(metric);
        }
        let mut req = self.handle.route().add(b.build());
        if replace {
            req = req.replace();
        }
        req.execute()
            .await
            .map_err(|e| Error::netlink(format!("add route {dst} via {via}"), e))
    }

    /// Deletes a route of ours: the kernel compares the protocol, gateway
    /// and metric given here, so nobody else's route goes. Gone is done.
    pub async fn delete_route(&self, r: &Installed) -> Result<()> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.dst.addr(), r.dst.prefix_len())
            .map_err(|e| Error::BadRoute(e.to_string()))?
            .protocol(RouteProtocol::from(RTPROT_LANBRIDGE));
        if let Some(via) = r.via {
            b = b.gateway(via).map_err(|e| Error::BadRoute(e.to_string()))?;
        }
        if r.metric != 0 {
            b = b.priority(r.metric);
        }
        done(self.handle.route().del(b.build()).execute().await)
            .map_err(|e| Error::netlink(format!("delete route {}", r.dst), e))
    }
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

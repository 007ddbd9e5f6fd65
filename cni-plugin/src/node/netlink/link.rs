//! Links: lookup, veth pairs, settings, deleting.

use std::os::fd::RawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo as NlInfo, LinkMessage};
use rtnetlink::{LinkUnspec, LinkVeth};

use super::Netlink;
use crate::node::error::{Error, Result};
use crate::node::gone::found;
use crate::node::mac::Mac;

/// A veth pair to create.
#[derive(Debug, Default)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    pub mtu: Option<u32>,
    pub peer_mac: Option<Mac>,
    /// Where the peer goes (a namespace fd); this namespace when `None`.
    pub peer_netns: Option<RawFd>,
}

/// What lanbridge needs to know about a link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// None for a link without a 6-octet address.
    pub mac: Option<Mac>,
    pub mtu: u32,
    pub up: bool,
    pub master: Option<u32>,
    pub kind: Option<String>,
    pub alias: Option<String>,
}

impl From<LinkMessage> for LinkInfo {
    fn from(msg: LinkMessage) -> LinkInfo {
        let mut info = LinkInfo {
            index: msg.header.index,
            up: msg.header.flags.contains(LinkFlags::Up),
            ..LinkInfo::default()
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => info.name = n,
                LinkAttribute::Address(a) => info.mac = Mac::from_slice(&a),
                LinkAttribute::Mtu(m) => info.mtu = m,
                LinkAttribute::Controller(c) => info.master = Some(c),
                LinkAttribute::IfAlias(a) => info.alias = Some(a),
                LinkAttribute::LinkInfo(infos) => {
                    info.kind = infos.into_iter().find_map(|i| match i {
                        NlInfo::Kind(k) => Some(k.to_string()),
                        _ => None,
                    })
                }
                _ => {}
            }
        }
        info
    }
}

impl Netlink {
    pub async fn link(&self, name: &str) -> Result<Option<LinkInfo>> {
        Ok(self.link_by_name(name).await?.map(LinkInfo::from))
    }

    pub async fn links(&self) -> Result<Vec<LinkInfo>> {
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(LinkInfo::from)
            .try_collect()
            .await
            .map_err(|e| Error::netlink("list links", e))
    }

    /// A link that must exist because lanbridge just created or moved it.
    pub async fn existing_link(&self, name: &str) -> Result<LinkInfo> {
        self.link(name).await?.ok_or_else(|| Error::LinkMissing {
            name: name.to_string(),
        })
    }

    /// Creates a veth pair, both ends down: `name` in this namespace, the
    /// peer in `peer_netns` when given. Creating the peer in place spares a
    /// later namespace move, which waits for an RCU grace period.
    pub async fn add_veth(&self, veth: &VethSpec<'_>) -> Result<()> {
        let mut builder = LinkVeth::new(veth.name, veth.peer);
        if let Some(mtu) = veth.mtu {
            builder = builder.mtu(mtu);
        }
        let mut msg = builder.build();
        // The peer is a nested message with attributes of its own.
        let mut peer_attrs = Vec::new();
        if let Some(mtu) = veth.mtu {
            peer_attrs.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = veth.peer_mac {
            peer_attrs.push(LinkAttribute::Address(mac.as_ref().to_vec()));
        }
        if let Some(fd) = veth.peer_netns {
            peer_attrs.push(LinkAttribute::NetNsFd(fd));
        }
        extend_peer(&mut msg, peer_attrs);
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("create veth {}/{}", veth.name, veth.peer), e))
    }

    pub async fn set(&self, op: &str, msg: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(op.to_string(), e))
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.set(&format!("set link {index} up"), msg).await
    }

    pub async fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).alias(alias).build();
        self.set(&format!("set alias of link {index}"), msg).await
    }

    pub async fn set_master(&self, index: u32, master: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).controller(master).build();
        self.set(&format!("attach link {index} to bridge {master}"), msg)
            .await
    }

    /// Takes a link out of service and frees its name: down (a veth drops
    /// what its down peer sends, the bridge disables the port), then renamed
    /// to `name` (the kernel refuses to rename a link that is up). Leaves the
    /// costly destruction (RCU grace periods under RTNL) to someone else.
    /// Returns false when the link was already gone.
    pub async fn retire(&self, index: u32, name: &str) -> Result<bool> {
        let down = LinkUnspec::new_with_index(index).down().build();
        let rename = LinkUnspec::new_with_index(index).name(name).build();
        for (op, msg) in [("set down", down), ("rename to", rename)] {
            let done = found(self.handle.link().set(msg).execute().await)
                .map_err(|e| Error::netlink(format!("{op} {name}: link {index}"), e))?;
            if done.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Deletes a link; a link that is already gone is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<bool> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        found(self.handle.link().del(link.index).execute().await)
            .map(|deleted| deleted.is_some())
            .map_err(|e| Error::netlink(format!("delete link {name}"), e))
    }
}

fn extend_peer(msg: &mut LinkMessage, attrs: Vec<LinkAttribute>) {
    use rtnetlink::packet_route::link::{InfoData, InfoVeth};
    for attr in &mut msg.attributes {
        if let LinkAttribute::LinkInfo(infos) = attr {
            for info in infos {
                if let NlInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = info {
                    peer.attributes.extend(attrs);
                    return;
                }
            }
        }
    }
}

//! Interface addresses.

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};

use super::{is_errno, Netlink};
use crate::node::error::{Error, Result};
use crate::node::gone::done;

impl Netlink {
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNet>> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink(format!("list addresses of link {index}"), e))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let prefix = m.header.prefix_len;
                m.attributes.into_iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => IpNet::new(ip, prefix).ok(),
                    _ => None,
                })
            })
            .collect())
    }

    /// Adds an address; `nodad` skips IPv6 duplicate address detection.
    /// An address that is already there is fine (idempotent).
    pub async fn add_address(&self, index: u32, net: IpNet, nodad: bool) -> Result<()> {
        let mut req = self
            .handle
            .address()
            .add(index, net.addr(), net.prefix_len());
        if nodad && net.addr().is_ipv6() {
            let msg = req.message_mut();
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::netlink(
                format!("add address {net} to link {index}"),
                e,
            )),
        }
    }

    pub async fn del_address(&self, index: u32, net: IpNet) -> Result<()> {
        let mut msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(net.addr())
            .execute();
        while let Some(msg) = msgs
            .try_next()
            .await
            .map_err(|e| Error::netlink(format!("find address {net}"), e))?
        {
            if msg.header.prefix_len != net.prefix_len() {
                continue;
            }
            done(self.handle.address().del(msg).execute().await)
                .map_err(|e| Error::netlink(format!("delete address {net}"), e))?;
        }
        Ok(())
    }
}

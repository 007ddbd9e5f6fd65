//! The node's bridge and its ports.

use rtnetlink::packet_route::link::{BridgeVlanInfoFlags, InfoKind};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkBridgeVlan, LinkUnspec};

use super::{is_errno, LinkInfo, Netlink, VethSpec};
use crate::node::error::{Error, Result};
use crate::node::naming;

/// How the bridge should look; applied whether lanbridge created it or not.
pub struct BridgeSpec<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub promisc: bool,
    pub vlan_filtering: bool,
}

/// Per-port options of the reference plugin.
pub struct BridgePortSpec {
    pub hairpin: bool,
    pub isolated: bool,
    pub vlan: Option<u16>,
}

impl Netlink {
    /// Creates the bridge if missing. Safe when many ADDs race: whoever loses
    /// the creation race gets EEXIST and uses the winner's bridge.
    pub async fn ensure_bridge(&self, spec: &BridgeSpec<'_>) -> Result<(LinkInfo, bool)> {
        let mut created = false;
        if self.link(spec.name).await?.is_none() {
            // A fixed MAC: otherwise the bridge takes its lowest port's MAC and
            // the gateway's MAC changes under the pods as ports come and go.
            let mut builder =
                LinkBridge::new(spec.name).address(naming::bridge_mac(spec.name).as_ref().to_vec());
            if let Some(mtu) = spec.mtu {
                builder = builder.mtu(mtu);
            }
            if spec.vlan_filtering {
                builder = builder.vlan_filtering(true);
            }
            match self.handle.link().add(builder.build()).execute().await {
                Ok(()) => created = true,
                Err(e) if is_errno(&e, libc::EEXIST) => {}
                Err(e) if spec.vlan_filtering && is_errno(&e, libc::EOPNOTSUPP) => {
                    return Err(Error::NoVlanFiltering)
                }
                Err(e) => return Err(Error::netlink(format!("create bridge {}", spec.name), e)),
            }
        }
        let link = self.existing_link(spec.name).await?;
        if link.kind.as_deref() != Some(InfoKind::Bridge.to_string().as_str()) {
            return Err(Error::NotABridge {
                name: spec.name.to_string(),
            });
        }
        if spec.vlan_filtering && !created {
            let msg = LinkBridge::new(spec.name).vlan_filtering(true).build();
            let mut msg = msg;
            msg.header.index = link.index;
            self.handle
                .link()
                .change(msg)
                .execute()
                .await
                .map_err(|e| match is_errno(&e, libc::EOPNOTSUPP) {
                    true => Error::NoVlanFiltering,
                    false => Error::netlink(format!("enable vlan_filtering on {}", spec.name), e),
                })?;
        }
        let mut up = LinkUnspec::new_with_index(link.index).up();
        if spec.promisc {
            up = up.promiscuous(true);
        }
        self.set(&format!("bring bridge {} up", spec.name), up.build())
            .await?;
        Ok((link, created))
    }

    /// The gateway port of VLAN `vid`: a veth pair in the node whose end
    /// `<bridge>.<vid>` holds the gateway address and whose other end is an
    /// untagged member of the VLAN. Shared by all pods of the VLAN.
    pub async fn ensure_vlan_gateway(
        &self,
        bridge: &LinkInfo,
        vid: u16,
        mtu: Option<u32>,
    ) -> Result<LinkInfo> {
        let name = naming::vlan_gateway(&bridge.name, vid);
        if name.len() > 15 {
            return Err(Error::VlanNameTooLong { name });
        }
        let peer = naming::vlan_gateway_peer(&bridge.name, vid);
        if self.link(&name).await?.is_none() {
            let veth = VethSpec {
                name: &name,
                peer: &peer,
                mtu,
                ..VethSpec::default()
            };
            match self.add_veth(&veth).await {
                Err(Error::Netlink { source, .. }) if is_errno(&source, libc::EEXIST) => {}
                other => other?,
            }
        }
        let port = self.existing_link(&peer).await?;
        self.set_master(port.index, bridge.index).await?;
        self.configure_port(
            port.index,
            &BridgePortSpec {
                hairpin: false,
                isolated: false,
                vlan: Some(vid),
            },
        )
        .await?;
        self.set_up(port.index).await?;
        let gw = self.existing_link(&name).await?;
        self.set_up(gw.index).await?;
        Ok(gw)
    }

    pub async fn configure_port(&self, port: u32, spec: &BridgePortSpec) -> Result<()> {
        let msg = LinkBridgePort::new(port)
            .hairpin(spec.hairpin)
            .isolated(spec.isolated)
            .build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set bridge port options on link {port}"), e))?;
        if let Some(vid) = spec.vlan {
            let msg = LinkBridgeVlan::new(port)
                .vlan(
                    vid,
                    BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged,
                )
                .build();
            self.set(&format!("add vlan {vid} to link {port}"), msg)
                .await?;
        }
        Ok(())
    }
}

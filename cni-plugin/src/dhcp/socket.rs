//! The client's sockets, created inside the pod's network namespace.
//!
//! Broadcasts of a client without an address (DISCOVER, REQUEST, DECLINE)
//! leave through a packet socket on the interface, built whole with IPv4
//! source 0.0.0.0: a UDP socket, even bound to the interface, would borrow
//! the address of another interface of the pod (the primary network's
//! `eth0` when lanbridge leases for `net1`), and the port's source guard
//! drops a DHCP client packet from an address that is not the pod's.
//! Everything sent once the leased address is configured (unicast renewals
//! and releases, rebinding broadcasts) goes through an ordinary UDP socket
//! bound to 0.0.0.0:68 and to the interface, which takes that address as
//! source and its next hop from the pod's routes.
//!
//! Receiving uses the packet socket too. Until the pod has an address, a
//! broadcast reply from the server fails the reverse-path check when the pod
//! has `rp_filter` on (no route back to the server), and the UDP socket never
//! sees it; a packet socket reads it before the IP layer, as dhclient,
//! udhcpc and systemd-networkd do. The UDP socket keeps port 68 bound (no
//! ICMP port-unreachable for unicast replies) but drops whatever it receives.
//!
//! A third socket, for ARP, probes granted addresses (see [`super::arp`]).
//!
//! A RELEASE needs only the UDP socket ([`UnicastSocket`]): closing a packet
//! socket waits for an RCU grace period (`synchronize_net` in the kernel's
//! `packet_release`), tens of milliseconds on a busy node, that every
//! lan-mode DEL would wait for twice.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::arp::{self, ArpSocket};
use super::error::DhcpError;
use super::frame::{self, client_datagram, link_address, CLIENT_PORT, SERVER_PORT};
use crate::node::mac::Mac;
use crate::node::netns::NetNs;

/// A DHCP client's endpoint on one interface of one namespace.
pub struct DhcpSocket {
    ifindex: u32,
    udp: UnicastSocket,
    packet: AsyncFd<Socket>,
    arp: ArpSocket,
}

/// The UDP socket alone, bound to 0.0.0.0:68 and the interface: sends from
/// the address the interface holds.
pub struct UnicastSocket {
    ifname: String,
    udp: UdpSocket,
}

/// One received datagram for the client port.
pub struct Received {
    pub source: Ipv4Addr,
    pub payload: Vec<u8>,
}

impl DhcpSocket {
    /// Opens the sockets on `ifname` inside `netns`; they stay in that
    /// namespace. Must be called within a tokio runtime, which drives them.
    pub fn open(netns: &NetNs, ifname: &str) -> Result<DhcpSocket, DhcpError> {
        open_in(netns, ifname, |name| {
            let (ifindex, udp, packet, arp) = create(&name)?;
            Ok(DhcpSocket {
                udp: UnicastSocket::new(name, udp)?,
                // SAFETY: the Socket owns its fd, which nothing else
                // closes or replaces while the AsyncFd holds it.
                packet: unsafe {
                    AsyncFd::register_with_interest(
                        packet,
                        Interest::READABLE | Interest::WRITABLE,
                    )?
                },
                arp: ArpSocket::new(arp)?,
                ifindex,
            })
        })
    }

    pub fn ifname(&self) -> &str {
        &self.udp.ifname
    }

    /// The UDP socket, for what a configured client sends (a RELEASE).
    pub fn unicast_socket(&self) -> &UnicastSocket {
        &self.udp
    }

    /// Closes the sockets on a blocking thread: closing each packet socket
    /// waits for an RCU grace period, which neither an ADD that already has
    /// its lease nor the daemon's other requests (a worker thread blocked
    /// in `close`) must wait for.
    pub fn close_in_background(self) {
        tokio::task::spawn_blocking(move || drop(self));
    }

    /// Sends to 255.255.255.255:67 on the interface from 0.0.0.0: for a
    /// client that has no address on it yet.
    pub async fn broadcast(&self, message: &[u8]) -> Result<(), DhcpError> {
        let packet = frame::unconfigured_broadcast(message);
        let to = link_address(self.ifindex, libc::ETH_P_IP as u16, Some(Mac::BROADCAST));
        loop {
            let mut ready = self
                .packet
                .writable()
                .await
                .map_err(|e| self.send_error(e))?;
            match ready.try_io(|s| s.get_ref().send_to(&packet, &to)) {
                Ok(result) => return result.map(drop).map_err(|e| self.send_error(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends to 255.255.255.255:67 on the interface from the address the
    /// interface holds (rebinding).
    pub async fn broadcast_bound(&self, message: &[u8]) -> Result<(), DhcpError> {
        self.udp.send(message, Ipv4Addr::BROADCAST).await
    }

    /// Sends to `server`:67, routed by the pod's own table.
    pub async fn unicast(&self, message: &[u8], server: Ipv4Addr) -> Result<(), DhcpError> {
        self.udp.unicast(message, server).await
    }

    fn send_error(&self, source: io::Error) -> DhcpError {
        DhcpError::Send {
            ifname: self.ifname().to_string(),
            to: Ipv4Addr::BROADCAST,
            source,
        }
    }

    /// The next UDP datagram to port 68 that reached the interface.
    pub async fn recv(&self) -> Result<Received, DhcpError> {
        let mut buf = vec![0u8; 65536];
        loop {
            let mut ready = self
                .packet
                .readable()
                .await
                .map_err(|e| self.recv_error(e))?;
            let n = match ready.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(result) => result.map_err(|e| self.recv_error(e))?,
                Err(_would_block) => continue,
            };
            // The filter already keeps other traffic out; this also strips
            // the headers.
            if let Some(d) = client_datagram(&buf[..n]) {
                return Ok(Received {
                    source: d.source,
                    payload: d.payload.to_vec(),
                });
            }
        }
    }

    /// Probes `address` with ARP as `mac` (RFC 5227): the MAC of another
    /// host that claims it, or `None` after [`arp::PROBE_TIME`].
    pub async fn probe(&self, mac: Mac, address: Ipv4Addr) -> Result<Option<Mac>, DhcpError> {
        self.arp
            .probe(mac, address)
            .await
            .map_err(|source| DhcpError::Probe {
                ifname: self.ifname().to_string(),
                address,
                source,
            })
    }

    fn recv_error(&self, source: io::Error) -> DhcpError {
        DhcpError::Receive {
            ifname: self.ifname().to_string(),
            source,
        }
    }
}

impl UnicastSocket {
    /// Opens the UDP socket alone on `ifname` inside `netns`. Must be called
    /// within a tokio runtime, which drives it.
    pub fn open(netns: &NetNs, ifname: &str) -> Result<UnicastSocket, DhcpError> {
        open_in(netns, ifname, |name| {
            let udp = udp_socket(&name)?;
            UnicastSocket::new(name, udp)
        })
    }

    fn new(ifname: String, udp: Socket) -> io::Result<UnicastSocket> {
        Ok(UnicastSocket {
            ifname,
            udp: UdpSocket::from_std(udp.into())?,
        })
    }

    /// Sends to `server`:67, routed by the pod's own table.
    pub async fn unicast(&self, message: &[u8], server: Ipv4Addr) -> Result<(), DhcpError> {
        self.send(message, server).await
    }

    async fn send(&self, message: &[u8], to: Ipv4Addr) -> Result<(), DhcpError> {
        self.udp
            .send_to(message, SocketAddrV4::new(to, SERVER_PORT))
            .await
            .map(drop)
            .map_err(|source| DhcpError::Send {
                ifname: self.ifname.clone(),
                to,
                source,
            })
    }
}

/// Runs `make` (given the interface's name) on a thread inside `netns`, in
/// the caller's tokio runtime: the sockets it opens belong to the pod's
/// namespace, and registering them with the reactor does not care which
/// namespace the thread is in.
fn open_in<T: Send>(
    netns: &NetNs,
    ifname: &str,
    make: impl FnOnce(String) -> io::Result<T> + Send,
) -> Result<T, DhcpError> {
    let runtime = tokio::runtime::Handle::current();
    let name = ifname.to_string();
    netns
        .run(move || {
            let _entered = runtime.enter();
            make(name)
        })
        .map_err(|e| open_error(ifname, e))
}

fn open_error(ifname: &str, e: crate::node::error::Error) -> DhcpError {
    DhcpError::Open {
        ifname: ifname.to_string(),
        source: Box::new(e),
    }
}

/// Creates the sockets on `ifname` in the calling thread's namespace.
fn create(ifname: &str) -> io::Result<(u32, Socket, Socket, Socket)> {
    let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(io::Error::from)?;
    let udp = udp_socket(ifname)?;

    // Protocol 0: nothing is queued until bind() names the protocol, by which
    // time the filter is in place.
    let packet = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(0)))?;
    packet.attach_filter(&frame::client_filter())?;
    packet.bind(&link_address(ifindex, libc::ETH_P_IP as u16, None))?;
    packet.set_nonblocking(true)?;
    Ok((ifindex, udp, packet, arp::create(ifindex)?))
}

/// The UDP socket on `ifname` in the calling thread's namespace.
fn udp_socket(ifname: &str) -> io::Result<Socket> {
    let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_broadcast(true)?;
    // Another socket of this client (e.g. a RELEASE while a renewal runs)
    // may hold port 68 on the same interface.
    udp.set_reuse_address(true)?;
    udp.bind_device(Some(ifname.as_bytes()))?;
    udp.attach_filter(&frame::drop_all_filter())?;
    udp.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())?;
    udp.set_nonblocking(true)?;
    Ok(udp)
}

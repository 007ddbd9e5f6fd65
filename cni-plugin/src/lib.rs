//! lanbridge: a CNI bridge plugin with a TC eBPF datapath, as a library.
//!
//! The layers, bottom up; each imports only those below it. `cni` and
//! `node` are independent foundations.
//!
//! Errors: every layer fails in its own terms (`node::error::Error`,
//! `dhcp::DhcpError` and `RecordError`, `DatapathError`, `LanError`,
//! `IpamError`, `agent::AgentError`); `commands::errors` is the one table that
//! gives each its CNI code. Only `config` fails with the wire's
//! `cni::Error` itself: a config the runtime hands over is the CNI spec's
//! own input, and its failures are the spec's codes for it (7, invalid
//! config; 2, an unsupported field; 6, an undecodable `prevResult`): a
//! config error type would only copy those variants.

/// The CNI spec's wire format: versions, the runtime's environment, results
/// and the error object with its code. Imports nothing of lanbridge.
pub mod cni;

/// Host plumbing that knows nothing of CNI and imports nothing above it:
/// network namespaces, per-namespace default paths, sysctls, netlink (links,
/// addresses, the bridge, the one route module), `naming` (the one home of
/// every name lanbridge gives a node object), `mac` (one MAC parser and
/// formatter), `gone` ("not found means done", and the first error of a
/// teardown), `firewall` (netfilter over netlink behind one front door: the
/// networks' FORWARD accepts and masquerade, `macspoofchk`, an older build's
/// per-pod rules), `reaper` (destroys retired links in a detached child
/// once the plugin has answered) and its own `error`.
pub mod node;

/// The network configuration: parsing and validating what the runtime hands
/// on stdin (uses `node` for its per-namespace default paths).
pub mod config;

/// The DHCP client (messages, options, raw sockets, ARP probes, leases), the
/// plugin ↔ agent protocol (leases, command reports, the drop stream) and
/// the agent's lease files.
pub mod dhcp;

/// IP address management: host-local, static, delegated plugins and DHCP
/// through the agent (over `dhcp`'s protocol); fails with `IpamError`.
pub mod ipam;

/// The eBPF datapath: the embedded object, loading, pins, maps, attaching
/// programs to the bridge ports, upgrades, the drop-event ring.
pub mod datapath;

/// Lan mode: the bridge's uplink to the LAN whose DHCP server leases pods
/// their addresses.
pub mod lan;

/// The CNI commands (ADD, DEL, CHECK, GC, STATUS, VERSION), the attachment
/// record they keep (`state`), ADD's steps (`fault::Step`, run in order with
/// their undo stack by `steps`, unit-tested with a fake) and `errors`, the
/// one table mapping every domain error to its CNI code.
pub mod commands;

/// The node agent (`lanbridge daemon`): owns the DHCP leases, follows the
/// peers file to keep the routes to other nodes' pod subnets, drains the
/// programs' drop events (log, `monitor`) and serves metrics and probes.
/// It answers a plugin's failed request with the code `commands::errors`
/// gives the failure.
pub mod agent;

/// `lanbridge` run by a person: one clap tree (status, inspect, monitor,
/// install, cleanup, daemon, routes) and one tokio runtime builder.
pub mod cli;

/// `lanbridge` run by a container runtime: `CNI_COMMAND` dispatch, the result
/// or error on stdout and the exit code.
pub mod plugin;

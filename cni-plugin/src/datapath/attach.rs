//! Attaching a pinned program to an interface's TC ingress.
//!
//! TCX (kernel 6.6+) with the link pinned next to the program, so the
//! attachment outlives the plugin process and `bpftool link show` lists it
//! (Debian's bpftool 7.1 prints TCX links as "type 11"). Older kernels get a
//! clsact qdisc and a netlink filter (`bpftool net show`).

use std::path::PathBuf;

use aya::programs::links::FdLink;
use aya::programs::tc::{self, NlOptions, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType};
use aya::util::KernelVersion;

use super::error::DatapathError;
use super::pins::{unpin, Pins};
use crate::node::gone::found;

/// Where a program runs on its interface.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hook {
    Ingress,
    Egress,
}

impl Hook {
    fn tc(self) -> TcAttachType {
        match self {
            Hook::Ingress => TcAttachType::Ingress,
            Hook::Egress => TcAttachType::Egress,
        }
    }
}

pub fn attach(
    pins: &Pins,
    prog: &'static str,
    ifname: &str,
    hook: Hook,
) -> Result<(), DatapathError> {
    let egress = hook == Hook::Egress;
    let prog_err = |source| DatapathError::Program { name: prog, source };
    let mut program = SchedClassifier::from_pin(pins.object(prog)).map_err(prog_err)?;
    let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    if !tcx {
        match tc::qdisc_add_clsact(ifname) {
            Err(tc::TcError::AlreadyAttached) | Ok(()) => {}
            Err(e) => return Err(prog_err(e.into())),
        }
        let id = program
            .attach_with_options(
                ifname,
                hook.tc(),
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .map_err(prog_err)?;
        // The filter must outlive this process; it goes with the interface.
        std::mem::forget(program.take_link(id).map_err(prog_err)?);
        return Ok(());
    }
    let id = program
        .attach_with_options(
            ifname,
            hook.tc(),
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(prog_err)?;
    let link: FdLink = program
        .take_link(id)
        .map_err(prog_err)?
        .try_into()
        .map_err(|source| DatapathError::Link {
            path: pins.link(ifname, egress),
            source,
        })?;
    let path = pins.link(ifname, egress);
    // A pin left by a dead interface of the same name holds the name.
    detach(pins, ifname, hook)?;
    link.pin(&path)
        .map_err(|source| DatapathError::Pin { path, source })?;
    Ok(())
}

pub fn is_attached(pins: &Pins, ifname: &str, hook: Hook) -> bool {
    pins.link(ifname, hook == Hook::Egress).exists()
}

/// Unpins the interface's link, which detaches it; a missing pin is fine.
pub fn detach(pins: &Pins, ifname: &str, hook: Hook) -> Result<(), DatapathError> {
    unpin(&pins.link(ifname, hook == Hook::Egress))
}

/// Renames the interface's link pin to the dead port's (`ifindex`), leaving
/// the link attached until its device is destroyed; returns the new path,
/// or None when there was no pin.
pub fn retire(
    pins: &Pins,
    ifname: &str,
    ifindex: u32,
    hook: Hook,
) -> Result<Option<PathBuf>, DatapathError> {
    let egress = hook == Hook::Egress;
    let (from, to) = (pins.link(ifname, egress), pins.tombstone(ifindex, egress));
    found(std::fs::rename(&from, &to))
        .map(|renamed| renamed.map(|()| to))
        .map_err(|e| DatapathError::io(format!("renaming {}", from.display()), e))
}

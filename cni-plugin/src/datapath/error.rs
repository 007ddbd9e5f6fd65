//! Datapath failures, by the aya operation that failed.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("this lanbridge was built without its eBPF object (run `cargo xtask build-ebpf` before building)")]
    NoObject,
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("pinning {path:?}: {source}")]
    Pin {
        path: PathBuf,
        source: aya::pin::PinError,
    },
    #[error("link {path:?}: {source}")]
    Link {
        path: PathBuf,
        source: aya::programs::links::LinkError,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("the eBPF object has no program or map named {0}")]
    Missing(&'static str),
    #[error("attaching the port's programs panicked")]
    AttachPanicked,
    /// A DHCP client identifier longer than an endpoint holds.
    #[error("a {len}-byte client identifier does not fit the datapath's {max}")]
    ClientIdTooLong { len: usize, max: usize },
}

impl DatapathError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        DatapathError::Io {
            context: context.into(),
            source,
        }
    }
}

//! The CNI spec: versions, environment, errors, results.

pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use env::{CniEnv, Command};
pub use error::{Error, Result};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::Version;

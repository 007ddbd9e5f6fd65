//! VERSION: which spec versions this plugin speaks.

use serde_json::{json, Value};

use crate::cni::version::{CURRENT, SUPPORTED};

/// Answers in the version the runtime asked about, if we speak it.
pub fn run(requested: Option<&str>) -> Value {
    let version = requested
        .filter(|v| SUPPORTED.contains(v))
        .unwrap_or(CURRENT);
    json!({ "cniVersion": version, "supportedVersions": SUPPORTED })
}

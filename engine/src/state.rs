//! Observed state: what a probe found on one host, as plain data. Produced by
//! `remote::probe`, consumed by `plan`; it never talks to anything itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the engine keeps its own state on a host (lock, applied record, backups, pending
/// restarts).
pub const STATE_DIR: &str = "/var/lib/stackdeploy";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Facts gathered on the host (hostname, os_family, init, cpus, memory_mb, ...).
    pub facts: toml::Table,
    /// Every managed path of the catalog, plus paths the last run managed.
    pub paths: BTreeMap<String, PathState>,
    pub packages: BTreeMap<String, PackageState>,
    /// Service name → running?
    pub services: BTreeMap<String, bool>,
    /// Exec name → does it need to run (its `creates`/`unless` guards say so)?
    pub execs: BTreeMap<String, bool>,
    /// What the last successful run recorded, if any.
    pub applied: Option<Applied>,
    /// Restarts an interrupted run owed (resource ids such as `service:haproxy`).
    pub pending_restarts: Vec<String>,
    /// Managed paths that are symlinks a file follows (`links = "follow"`) → the path they
    /// resolve to, which is where that file is written.
    pub links: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PathState {
    Missing,
    File {
        sha256: String,
        mode: u32,
        owner: String,
        group: String,
    },
    Directory {
        mode: u32,
        owner: String,
        group: String,
    },
    /// A symlink, socket, device...: never replaced silently.
    Other {
        what: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "version", rename_all = "lowercase")]
pub enum PackageState {
    Installed(String),
    Absent,
}

/// The record a run leaves on the host (`/var/lib/stackdeploy/applied.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub commit: String,
    pub run_id: String,
    /// Seconds since the epoch.
    pub time: u64,
    /// Managed file path → sha256 of the content written.
    pub files: BTreeMap<String, String>,
    /// Patched file path → the patch in it, so the next run knows it is in place and, once
    /// the catalog drops it, can take it out again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub patches: BTreeMap<String, AppliedPatch>,
}

/// A patch a run left in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPatch {
    /// The patch file (`profiles/<p>/patches/<name>`).
    pub source: String,
    /// Hex SHA-256 of `patch`.
    pub sha256: String,
    /// Hex SHA-256 of the file without the patch and with it.
    pub original: String,
    pub patched: String,
    /// The patch's text: what undoes it when the catalog no longer has it.
    pub patch: String,
    /// What it notified (`service:NAME`, `exec:NAME`): refreshed when it is taken out too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

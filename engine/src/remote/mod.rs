//! The remote side of plan and apply: the shell scripts run on hosts over one SSH exec each,
//! and the parsers of what they print. Scripts are POSIX sh plus coreutils, util-linux `flock`
//! and dpkg/rpm, which every supported host has; nothing is installed on hosts.
//!
//! - [`script`]: the builder every script is written with; it quotes each value by its type.
//! - `probe.sh` and `apply.sh`: the fixed preludes, checked with shellcheck by the tests.
//! - [`probe`] and [`apply`]: whole scripts and their output parsers. An apply script is a
//!   list of typed [`apply::Step`]s rendered in order.
//! - one module per resource kind (`package`, `directory`, `file`, `exec`, `service`) owning
//!   its probe and apply fragments: a new resource kind adds a module here.
//!
//! Generating a script and parsing its output are pure; running them is the rollout's job.
//! Every [`Script`] also carries its [`Intent`], what it does as data, so a host that is not
//! a shell (the rollout's test fake) can answer it.

pub mod apply;
mod directory;
mod exec;
mod file;
mod package;
pub mod probe;
pub mod script;
mod service;

use std::time::Duration;

/// Seconds a command of the composition (an exec, a service's start, a package install, a
/// validate) may run on a host when its resource sets no `timeout`.
pub const DEFAULT_TIMEOUT: u64 = 600;

use script::Sh;

pub use probe::ProbeRequest;

/// A script to run on a host, with the bytes it reads on stdin.
#[derive(Debug, Clone)]
pub struct Script {
    pub command: String,
    pub stdin: Vec<u8>,
    /// Give up on the command after this long (pipeline checks); `None`: no limit beyond the
    /// connection's keepalives.
    pub timeout: Option<Duration>,
    pub intent: Intent,
}

/// What a script does, as data.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Probe(ProbeRequest),
    /// Print the content of these files (for diffs).
    Fetch(Vec<String>),
    /// Converge the host: the steps in order, file contents on stdin in step order.
    Apply(Vec<apply::Step>),
    /// A command of the composition (a pipeline check), run as it is.
    Command(String),
}

impl Intent {
    /// What a probe script asks about (`None` for other scripts).
    pub fn probe(&self) -> Option<&ProbeRequest> {
        match self {
            Intent::Probe(r) => Some(r),
            _ => None,
        }
    }

    /// What the script does in a few words, for logs.
    pub fn summary(&self) -> String {
        match self {
            Intent::Probe(r) => format!(
                "probe {} path(s), {} package(s), {} service(s), {} exec(s)",
                r.paths.len(),
                r.packages.len(),
                r.services.len(),
                r.execs.len()
            ),
            Intent::Fetch(paths) => format!("fetch {} file(s)", paths.len()),
            Intent::Apply(steps) => format!("apply {} step(s)", steps.len()),
            Intent::Command(_) => "check command".to_string(),
        }
    }
}

impl Script {
    /// A pipeline check's command, run by the user's shell under `timeout(1)`, which kills its
    /// whole process group at the deadline. The command reads itself from stdin, so nothing
    /// it holds shows in the host's process list; its own stdin is `/dev/null`.
    pub fn check(command: &str, timeout: Duration) -> Script {
        let secs = timeout.as_secs().max(1);
        let mut sh = Sh::new();
        sh.code("timeout -k 5").int(secs).code(" \"${SHELL:-sh}\" -c");
        sh.arg(&crate::shell::read_and_eval(command.len(), true));
        sh.code("; rc=$?; case $rc in 124|137) echo \"timed out after").int(secs);
        sh.code(" s\" ;; esac; exit $rc").nl();
        Script {
            command: sh.finish(),
            stdin: command.as_bytes().to_vec(),
            // The engine's own deadline only backs timeout(1) up.
            timeout: Some(timeout + Duration::from_secs(15)),
            intent: Intent::Command(command.to_string()),
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

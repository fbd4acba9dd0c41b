//! The remote side of plan and apply: the shell scripts run on hosts over one SSH exec each,
//! and the parsers of what they print. Scripts are POSIX sh plus coreutils, util-linux `flock`
//! and dpkg/rpm, which every supported host has; nothing is installed on hosts.
//!
//! Generating a script and parsing its output are pure functions (unit-tested here); running
//! them is the runner's job.

pub mod apply;
pub mod probe;

pub(crate) use crate::transport::shell_quote as q;

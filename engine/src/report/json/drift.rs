//! `drift --format json`: every compared host's drift from the commit it runs, and the hosts
//! that could not be compared.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Problem, ProblemKind, SchemaVersion};
use crate::plan::drift::HostDrift;
use crate::report::drift::HostResult;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftDoc<'a> {
    pub schema_version: SchemaVersion,
    pub environment: &'a str,
    /// How many resources drifted, on every host together (`0`: none; the exit code is then
    /// 0, else 2, or 1 with errors).
    pub drifted: usize,
    /// The hosts that could be compared, drifted or not.
    pub hosts: Vec<&'a HostDrift>,
    /// Hosts that could not be compared (unreachable, never applied, a commit this clone
    /// lacks), each naming its host.
    pub errors: Vec<Problem>,
}

pub fn document<'a>(environment: &'a str, results: &[HostResult<'a>]) -> DriftDoc<'a> {
    let hosts: Vec<&HostDrift> = results.iter().filter_map(|(_, r)| r.ok()).collect();
    DriftDoc {
        schema_version: SchemaVersion,
        environment,
        drifted: hosts.iter().map(|d| d.drift.len()).sum(),
        errors: results
            .iter()
            .filter_map(|(h, r)| r.err().map(|e| Problem::on_host(ProblemKind::Host, h, e)))
            .collect(),
        hosts,
    }
}

//! `apply --format json`: how each host's apply went, and the problems of those that failed.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::error::ErrorKind;
use crate::rollout::{HostOutcome, HostResult};

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyDoc<'a> {
    pub schema_version: SchemaVersion,
    pub environment: &'a str,
    /// The commit applied.
    pub commit: Commit,
    pub run_id: &'a str,
    /// How many changes were made, on every host together.
    pub changes: usize,
    /// Every host the apply worked on, in rollout order.
    pub hosts: Vec<ApplyHost<'a>>,
    /// Why hosts failed (one per failed host), and hosts of a saved plan refused because
    /// they changed since it was made (with `--skip-drifted`).
    pub errors: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Unchanged,
    Changed,
    Failed,
    /// Not attempted: the rollout stopped (failure budget) before its batch.
    Skipped,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplyHost<'a> {
    pub host: &'a str,
    pub role: &'a str,
    pub status: HostStatus,
    /// What was done, in order: (resource, what), also before a failure.
    pub done: &'a [(String, String)],
    /// Why it failed.
    pub error: Option<&'a str>,
}

pub fn document<'a>(
    environment: &'a str,
    commit: Commit,
    run_id: &'a str,
    results: &'a [HostResult],
    refused: &[(String, String)],
) -> ApplyDoc<'a> {
    let mut errors = Vec::new();
    let hosts: Vec<ApplyHost> = results
        .iter()
        .map(|r| {
            let (status, done, error): (_, &[(String, String)], _) = match &r.outcome {
                HostOutcome::Unchanged => (HostStatus::Unchanged, &[], None),
                HostOutcome::Changed(done) => (HostStatus::Changed, done, None),
                HostOutcome::Failed { error, done } => {
                    let mut p = Problem::of(error);
                    p.host.get_or_insert_with(|| r.host.clone());
                    errors.push(p);
                    (HostStatus::Failed, done, Some(error.detail()))
                }
                HostOutcome::Skipped => (HostStatus::Skipped, &[], None),
            };
            ApplyHost { host: &r.host, role: &r.role, status, done, error }
        })
        .collect();
    errors.extend(refused.iter().map(|(h, why)| Problem::on_host(ErrorKind::Host, h, why)));
    ApplyDoc {
        schema_version: SchemaVersion,
        environment,
        commit,
        run_id,
        changes: hosts.iter().map(|h| h.done.len()).sum(),
        hosts,
        errors,
    }
}

//! `plan --format json`: every host's plan, and the hosts that could not be planned.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::plan::{Change, HostPlan, Restart};
use crate::rollout::HostRun;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanDoc<'a> {
    pub schema_version: SchemaVersion,
    pub environment: &'a str,
    /// The commit every host is planned to converge to.
    pub commit: Commit,
    /// How many changes the plan makes: every change and restart on every host, once each
    /// (`0`: nothing to do; the exit code is then 0, else 2).
    pub changes: usize,
    /// The hosts that could be planned, in rollout order (those with nothing to do included).
    pub hosts: Vec<PlanHost<'a>>,
    /// Hosts that could not be planned (unreachable, no sudo, ...), each naming its host.
    pub errors: Vec<Problem>,
}

/// One host's plan.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanHost<'a> {
    pub host: &'a str,
    pub role: &'a str,
    pub address: &'a str,
    pub port: u16,
    /// In apply order.
    pub changes: &'a [Change],
    /// Services (and refresh-only execs) restarted after the changes.
    pub restarts: &'a [Restart],
}

impl<'a> PlanHost<'a> {
    pub fn of(p: &'a HostPlan) -> PlanHost<'a> {
        PlanHost {
            host: &p.host,
            role: &p.role,
            address: &p.address,
            port: p.port,
            changes: &p.changes,
            restarts: &p.restarts,
        }
    }
}

/// How many changes `plans` make, restarts included.
pub fn change_count<'p>(plans: impl IntoIterator<Item = &'p HostPlan>) -> usize {
    plans.into_iter().map(|p| p.changes.len() + p.restarts.len()).sum()
}

pub fn document<'a>(environment: &'a str, commit: Commit, runs: &'a [HostRun]) -> PlanDoc<'a> {
    let plans: Vec<&HostPlan> = runs.iter().filter_map(|r| r.plan.as_ref()).collect();
    PlanDoc {
        schema_version: SchemaVersion,
        environment,
        commit,
        changes: change_count(plans.iter().copied()),
        hosts: plans.into_iter().map(PlanHost::of).collect(),
        errors: runs.iter().filter_map(|r| r.error.as_ref()).map(Problem::of).collect(),
    }
}

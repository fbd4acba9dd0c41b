//! `pipeline gate --format json`: whether every shard of a stage passed, and the stage's
//! result as recorded.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, ProblemKind, SchemaVersion};
use crate::pipeline::gate::Gate;
use crate::pipeline::stage_status::StageStatus;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateDoc<'a> {
    pub schema_version: SchemaVersion,
    pub commit: Commit,
    pub stage: &'a str,
    /// `passed` once every shard passed (the stage is then recorded as passed), else `failed`.
    pub status: StageStatus,
    /// How many shards the stage ran in (0: none recorded).
    pub shards: usize,
    /// Shards (1-based) that passed.
    pub passed: &'a [usize],
    pub failed: Vec<FailedShard<'a>>,
    /// Shards with no result yet.
    pub missing: &'a [usize],
    /// The stage's result as recorded.
    pub detail: &'a str,
    /// The hosts of the shards that passed.
    pub hosts: &'a [String],
    /// Each shard that failed or has not run (kind `stage`), or why none was found.
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FailedShard<'a> {
    /// 1-based.
    pub shard: usize,
    pub detail: &'a str,
}

pub fn document<'a>(gate: &'a Gate, commit: Commit) -> GateDoc<'a> {
    let of = |k: usize| format!("shard {k}/{} of stage '{}'", gate.shards, gate.stage);
    let mut errors: Vec<Problem> = gate
        .failed
        .iter()
        .map(|(k, why)| {
            let mut p = Problem::new(ProblemKind::Stage, &format!("{} failed: {why}", of(*k)));
            p.detail = why.clone();
            p
        })
        .collect();
    errors.extend(
        gate.missing
            .iter()
            .map(|k| Problem::new(ProblemKind::Stage, &format!("{} has not run", of(*k)))),
    );
    if !gate.open() && errors.is_empty() {
        errors.push(Problem::new(ProblemKind::Stage, &gate.result.detail));
    }
    GateDoc {
        schema_version: SchemaVersion,
        commit,
        stage: &gate.stage,
        status: gate.result.status,
        shards: gate.shards,
        passed: &gate.passed,
        failed: gate.failed.iter().map(|(k, why)| FailedShard { shard: *k, detail: why }).collect(),
        missing: &gate.missing,
        detail: &gate.result.detail,
        hosts: &gate.result.hosts,
        errors,
    }
}

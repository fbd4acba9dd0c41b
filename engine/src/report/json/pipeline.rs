//! `pipeline run --format json`: how each stage of the run went, and the stages it did not
//! get to.

use crate::pipeline::hooks::HookDelivery;
use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, ProblemKind, SchemaVersion};
use crate::model::stages::StageKind;
use crate::pipeline::checks::{CheckResult, PlannedCheck};
use crate::pipeline::runner::HostApply;
use crate::pipeline::stage_status::StageStatus;
use crate::pipeline::{Ended, Outcome};

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDoc<'a> {
    pub schema_version: SchemaVersion,
    pub commit: Commit,
    pub run_id: &'a str,
    /// How the run ended: `passed` (every stage run passed), `failed`, `refused` (a stage's
    /// `requires` had not passed) or `awaiting_approval` (exit 3).
    pub status: StageStatus,
    /// The stages that ran, in order: `passed` or `failed`.
    pub stages: Vec<StageDoc<'a>>,
    /// The stages after them that did not run: the first `awaiting_approval` or `refused` when
    /// that stopped the run, the rest `skipped`.
    pub not_run: Vec<NotRunDoc<'a>>,
    /// The stage that failed or was refused (kind `stage`; `message` names the stage).
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StageDoc<'a> {
    pub name: &'a str,
    pub kind: StageKind,
    pub environment: Option<&'a str>,
    pub status: StageStatus,
    /// When it started, seconds since the epoch.
    pub started: u64,
    pub duration_secs: f64,
    pub hosts: &'a [String],
    /// Why it failed (redacted), or a short summary.
    pub detail: &'a str,
    /// How its apply went on each host; empty for stages that do not apply.
    pub applies: &'a [HostApply],
    pub checks: &'a [CheckResult],
    /// The checks it did not get to, because it failed before them.
    pub checks_not_run: &'a [PlannedCheck],
    /// The events this run sent to `[[hooks]]` at the stage's end (delivered or not).
    pub hooks: &'a [HookDelivery],
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NotRunDoc<'a> {
    pub name: &'a str,
    pub kind: StageKind,
    pub environment: Option<&'a str>,
    pub status: StageStatus,
    /// "not run: stage 'integration' failed", "not run: waiting for approval (...)".
    pub reason: &'a str,
    /// The hosts it would work on.
    pub hosts: &'a [String],
    pub checks: &'a [PlannedCheck],
}

/// How a run that ended so stands.
pub fn ended_status(ended: Ended) -> StageStatus {
    match ended {
        Ended::Passed => StageStatus::Passed,
        Ended::Failed => StageStatus::Failed,
        Ended::Refused => StageStatus::Refused,
        Ended::AwaitingApproval => StageStatus::AwaitingApproval,
    }
}

pub fn document<'a>(outcome: &'a Outcome, commit: Commit, run_id: &'a str) -> PipelineDoc<'a> {
    let mut errors = Vec::new();
    let stages = outcome
        .stages
        .iter()
        .map(|r| {
            let status = if r.passed { StageStatus::Passed } else { StageStatus::Failed };
            if !r.passed {
                let mut p = Problem::new(
                    ProblemKind::Stage,
                    &format!("stage '{}' failed: {}", r.name, r.detail),
                );
                p.detail = r.detail.clone();
                errors.push(p);
            }
            StageDoc {
                name: &r.name,
                kind: r.kind,
                environment: r.environment.as_deref(),
                status,
                started: r.started,
                duration_secs: r.duration_secs,
                hosts: &r.hosts,
                detail: &r.detail,
                applies: &r.applies,
                checks: &r.checks,
                checks_not_run: &r.checks_not_run,
                hooks: &r.hooks,
            }
        })
        .collect();
    let not_run = outcome
        .not_run
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let status = match outcome.ended {
                Ended::Refused if i == 0 => StageStatus::Refused,
                Ended::AwaitingApproval if i == 0 => StageStatus::AwaitingApproval,
                _ => StageStatus::Skipped,
            };
            if status == StageStatus::Refused {
                let mut p = Problem::new(
                    ProblemKind::Stage,
                    &format!("stage '{}' refused: {}", n.name, n.reason),
                );
                p.detail = n.reason.clone();
                errors.push(p);
            }
            NotRunDoc {
                name: &n.name,
                kind: n.kind,
                environment: n.environment.as_deref(),
                status,
                reason: &n.reason,
                hosts: &n.hosts,
                checks: &n.checks,
            }
        })
        .collect();
    PipelineDoc {
        schema_version: SchemaVersion,
        commit,
        run_id,
        status: ended_status(outcome.ended),
        stages,
        not_run,
        errors,
    }
}

//! What the engine reports while it works, as typed events. The engine never prints: rollouts
//! and pipelines send events to an [`Events`] sink, and `report` renders them (plain lines, or a
//! progress bar on a terminal).

use crate::error::Error;
use crate::model::stages::StageKind;

#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A step over many hosts begins: `probing` or `applying` `hosts` hosts.
    StepStarted {
        step: &'static str,
        hosts: usize,
    },
    /// The step that started last is over.
    StepEnded,
    /// A host is through the current step, whatever happened to it.
    HostFinished {
        host: &'a str,
    },
    HostFailed {
        host: &'a str,
        error: &'a Error,
    },
    /// Nothing to change on the host.
    HostUnchanged {
        host: &'a str,
    },
    HostApplying {
        host: &'a str,
        changes: usize,
        restarts: usize,
    },
    HostChanged {
        host: &'a str,
        changes: usize,
        restarted: &'a [&'a str],
    },
    /// The host's packages went in; it is planned and applied once more for the `patches`
    /// patches whose files those packages brought (so "applying" and "done" come twice).
    HostPlannedAgain {
        host: &'a str,
        patches: usize,
    },
    /// Not attempted: the rollout stopped before the host's batch.
    HostSkipped {
        host: &'a str,
    },

    PipelineStarted {
        commit: &'a str,
        summary: &'a str,
        run_id: &'a str,
    },
    StageStarted {
        name: &'a str,
        kind: StageKind,
        environment: Option<&'a str>,
    },
    StageFinished {
        name: &'a str,
        passed: bool,
        seconds: f64,
    },
    /// The stage's `requires` have not passed for the commit; the run stops.
    StageRefused {
        name: &'a str,
        commit: &'a str,
        requires: &'a [String],
        missing: &'a [String],
    },
    /// The stage needs `stackdeploy approve`; the run stops.
    AwaitingApproval {
        name: &'a str,
        commit: &'a str,
    },
    /// The pipeline state was pulled from (`pushed: false`) or pushed to the state remote.
    StateSynced {
        remote: &'a str,
        pushed: bool,
        summary: &'a str,
    },
    /// Publishing failed: the stage that recorded it fails.
    StatePushFailed {
        error: &'a Error,
    },
    /// A failed canary's hosts go back to the released commit.
    CanaryRollback {
        to: &'a str,
    },
    /// A hook was sent an event (`[[hooks]]`), and whether it took it.
    HookDelivered {
        hook: &'a str,
        event: &'a str,
        host: Option<&'a str>,
        delivered: bool,
        /// `on_failure = "warn"`: not delivering it does not fail the stage.
        warn_only: bool,
        tries: u32,
        /// Why it was not delivered (redacted).
        detail: &'a str,
    },
}

/// Where events go. Called from worker threads.
pub trait Events: Sync {
    fn emit(&self, event: Event<'_>);
}

/// A sink that drops everything.
#[cfg(test)]
pub struct Silent;

#[cfg(test)]
impl Events for Silent {
    fn emit(&self, _: Event<'_>) {}
}

//! `pipeline gate`: a stage that ran in N shards (N CI jobs, `pipeline run --shard K/N`) passes
//! once all N recorded a pass for the commit. Each shard's result is its own note entry
//! (`deploy@2/4`), so shards that publish at once merge record by record (`sync`); the gate
//! reads them all, records the stage itself, and promotes as an unsharded run would have.
//!
//! What stays per shard: the failure budget and batches (each shard's rollout has its own), and
//! the time it takes. What is global: which hosts a stage selects (canaries are chosen from the
//! whole environment, each shard applies those in its part), the stage's result and the
//! environment's commit, which only the gate moves.

use std::collections::BTreeMap;

use super::hooks::{StageEnd, failure_detail};
use super::runner::Runner;
use super::store::{StageResult, StageStatus};
use crate::error::Errors;
use crate::event::Event;
use crate::model::Pipeline;
use crate::model::shard::parse_stage_key;
use crate::model::stages::Stage;
use crate::runinfo::now;

/// What the gate found.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub stage: String,
    /// How many shards the stage ran in (0: none recorded).
    pub shards: usize,
    /// Shards (1-based) with a passing result.
    pub passed: Vec<usize>,
    /// Shards that failed, with why.
    pub failed: Vec<(usize, String)>,
    /// Shards with no result.
    pub missing: Vec<usize>,
    /// The stage's result as recorded.
    pub result: StageResult,
}

impl Gate {
    pub fn open(&self) -> bool {
        self.result.status == StageStatus::Passed
    }
}

impl Runner<'_> {
    /// Gathers the shards of `stage` for `commit`, records the stage's result and, when every
    /// shard passed, promotes the environment. The shard count is that of the newest shard
    /// result (a rerun with another count replaces the older one).
    pub fn gate(&self, commit: &str, stage: &Stage) -> Result<Gate, Errors> {
        if let Some(remote) = self.state_remote {
            let summary = self.store.pull(remote)?;
            self.events.emit(Event::StateSynced { remote, pushed: false, summary: &summary });
        }
        let record = self.store.read(commit)?;
        let shards: Vec<(usize, usize, &StageResult)> = record
            .stages
            .iter()
            .filter_map(|(key, r)| match parse_stage_key(key) {
                Some((name, k, n)) if name == stage.name => Some((k, n, r)),
                _ => None,
            })
            .collect();
        let count = shards.iter().max_by_key(|(_, _, r)| r.time).map_or(0, |(_, n, _)| *n);
        let of_count: BTreeMap<usize, &StageResult> =
            shards.iter().filter(|(_, n, _)| *n == count).map(|(k, _, r)| (*k, *r)).collect();
        let mut gate = Gate {
            stage: stage.name.clone(),
            shards: count,
            passed: Vec::new(),
            failed: Vec::new(),
            missing: Vec::new(),
            result: StageResult {
                status: StageStatus::Failed,
                kind: format!("{:?}", stage.kind).to_lowercase(),
                environment: stage.environment.clone(),
                hosts: Vec::new(),
                duration_secs: 0.0,
                run_id: self.run.id.clone(),
                user: self.run.user.clone(),
                time: now(),
                detail: String::new(),
                hooks_fired: Vec::new(),
            },
        };
        for k in 1..=count {
            match of_count.get(&k) {
                Some(r) if r.status == StageStatus::Passed => {
                    gate.passed.push(k);
                    gate.result.hosts.extend(r.hosts.iter().cloned());
                    gate.result.duration_secs = gate.result.duration_secs.max(r.duration_secs);
                }
                Some(r) => gate.failed.push((k, r.detail.clone())),
                None => gate.missing.push(k),
            }
        }
        gate.result.hosts.sort();
        gate.result.hosts.dedup();
        let mut all_passed = count > 0 && gate.failed.is_empty() && gate.missing.is_empty();
        let name = |k: &usize| format!("{k}/{count}");
        gate.result.detail = if count == 0 {
            format!(
                "no shard of stage '{}' has run for this commit (pipeline run --shard K/N)",
                stage.name
            )
        } else if all_passed {
            format!("all {count} shards passed, {} host(s)", gate.result.hosts.len())
        } else {
            let mut why = Vec::new();
            if !gate.failed.is_empty() {
                let failed: Vec<String> = gate.failed.iter().map(|(k, _)| name(k)).collect();
                why.push(format!("shard(s) {} failed", failed.join(", ")));
            }
            if !gate.missing.is_empty() {
                let missing: Vec<String> = gate.missing.iter().map(name).collect();
                why.push(format!("shard(s) {} have not run", missing.join(", ")));
            }
            why.join("; ")
        };
        if count > 0 && gate.missing.is_empty() {
            // Every shard ran: the stage's own events are the gate's (the shards sent their
            // hosts').
            let prior = record.stages.get(&stage.name);
            let (keys, failed) = self.gate_hooks(commit, stage, &gate, all_passed, prior);
            gate.result.hooks_fired = keys;
            if let Some(why) = failed {
                gate.result.detail = format!("{}; {why}", gate.result.detail);
                all_passed = false;
            }
        }
        if all_passed {
            gate.result.status = StageStatus::Passed;
            if let Some(env) = &stage.environment {
                // As an unsharded run promotes: each shard recorded its hosts as exceptions.
                self.promote(stage, env, &gate.result.hosts, commit, true)?;
            }
        }
        self.store.record_stage(commit, &stage.name, gate.result.clone())?;
        if let Some(remote) = self.state_remote {
            let summary = self.store.push(remote)?;
            self.events.emit(Event::StateSynced { remote, pushed: true, summary: &summary });
        }
        Ok(gate)
    }

    /// The hooks of the gated stage's end; returns the deliveries to record, and why the
    /// stage fails when a hook with `on_failure = "fail"` did not take its event.
    fn gate_hooks(
        &self,
        commit: &str,
        stage: &Stage,
        gate: &Gate,
        passed: bool,
        prior: Option<&StageResult>,
    ) -> (Vec<String>, Option<String>) {
        let comp = self.load_at(commit).ok();
        let pipeline = match &comp {
            Some(c) => c.pipeline.clone(),
            None => match self.repo.snapshot_at(commit).and_then(|s| Pipeline::from_snapshot(&s)) {
                Ok(p) => p,
                Err(e) => return (Vec::new(), Some(format!("hooks: {e}"))),
            },
        };
        let end = StageEnd {
            stage,
            commit,
            passed,
            hosts: &gate.result.hosts,
            prior,
            shard: false,
            moves_environment: true,
        };
        match self.fire_hooks(&pipeline, comp.as_ref(), &end) {
            Ok(None) => (Vec::new(), None),
            Ok(Some(fired)) => {
                let why = failure_detail(&fired);
                (fired.keys, why)
            }
            Err(e) => (Vec::new(), Some(format!("hooks: {e}"))),
        }
    }
}

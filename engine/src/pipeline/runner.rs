//! Running the stages of pipeline.toml for one commit: each stage's gate (its `requires` must
//! have passed for the commit, its approval must be recorded), its work by kind, its result in
//! the store, and the promotion refs it moves.
//!
//! - `precommit` runs precommit validation;
//! - `deploy` applies to the environment twice, and fails if the second apply changed anything;
//! - `integration` and `performance` run checks only;
//! - `canary` applies to its hosts and runs checks; on failure those hosts go back to the
//!   commit the environment runs;
//! - `release` applies in the environment's rollout batches.
//!
//! A new stage kind is a variant of [`StageKind`] and a branch in [`Runner::stage`].

use std::time::Instant;

use serde::Serialize;

use super::checks::{CheckResult, PlannedCheck, planned, run_checks};
use super::hooks::{HookDelivery, StageEnd, failure_detail};
use super::store::{StageResult, StageStatus, Store};
use crate::catalog::{Compiler, parameter_secrets};
use crate::composition::Composition;
use crate::error::{Error, ErrorKind, Errors};
use crate::event::{Event, Events};
use crate::facts::FactCache;
use crate::model::hooks::{HookEvent, OnFailure};
use crate::model::stages::{Stage, StageKind};
use crate::model::{Environment, Host, Shard};
use crate::plan::history::History;
use crate::rollout::{Connect, HostOutcome, HostResult, Hosts, Rollout, failures};
use crate::runinfo::{RunInfo, now};
use crate::secrets::{Keys, Secrets};
use crate::source::{Repo, Snapshot, short};

/// What one stage did, for the summary, JSON, JUnit and the note.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: String,
    pub kind: StageKind,
    pub environment: Option<String>,
    pub passed: bool,
    /// When it started, seconds since the epoch.
    pub started: u64,
    pub duration_secs: f64,
    pub hosts: Vec<String>,
    /// Why it failed (redacted), or a short summary.
    pub detail: String,
    /// How the stage's apply went on each host, in the order the hosts were selected; empty
    /// for stages that do not apply and when nothing was pushed (the hosts did not compile).
    pub applies: Vec<HostApply>,
    pub checks: Vec<CheckResult>,
    /// The checks the stage did not get to, because it failed before them (an apply failed,
    /// nothing compiled); empty once its checks ran.
    pub checks_not_run: Vec<PlannedCheck>,
    /// The events this run sent to `[[hooks]]` at the stage's end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookDelivery>,
}

/// One host's apply in a stage.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostApply {
    pub host: String,
    pub result: ApplyResult,
    /// The host's time in the stage's applies (both of a deploy's), measured.
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum ApplyResult {
    Unchanged,
    /// Converged with this many changes.
    Changed(usize),
    /// Why it failed (the host's error; for a deploy, also "the second apply changed ...").
    Failed(ApplyFailure),
    /// Not attempted: the rollout stopped before the host's batch.
    NotAttempted,
}

/// A failed apply: its detail, and its kind, which tells a change that ran and failed
/// ([`ErrorKind::Apply`], a catalog that does not compile) from a host that could not be
/// worked on ([`ErrorKind::Host`]: unreachable, refused, locked). JSON shows the detail alone.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct ApplyFailure {
    #[serde(skip)]
    pub kind: ErrorKind,
    pub detail: String,
}

/// A stage the run did not get to, and why: for the JUnit report, which lists it as skipped.
#[derive(Debug, Clone, Serialize)]
pub struct NotRun {
    pub name: String,
    pub kind: StageKind,
    pub environment: Option<String>,
    /// "stage 'integration' failed", "waiting for approval", "requires: 'canary' has not run".
    pub reason: String,
    /// The hosts it would work on (empty when the composition does not load).
    pub hosts: Vec<String>,
    pub checks: Vec<PlannedCheck>,
}

/// How a pipeline run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every stage run passed.
    Passed,
    /// A stage failed.
    Failed,
    /// A stage's `requires` had not passed for the commit; nothing was recorded for it.
    Refused,
    /// A stage needs a manual approval first.
    AwaitingApproval,
}

pub struct Outcome {
    pub commit: String,
    pub ended: Ended,
    /// The stages that ran, in order.
    pub stages: Vec<StageReport>,
    /// The stages after them that did not run (the one refused or awaiting approval first).
    pub not_run: Vec<NotRun>,
}

/// Connections to the hosts of an environment.
pub type Connector<'a> = dyn Fn(&Environment) -> Box<dyn Connect> + 'a;

/// Everything a pipeline run works with.
pub struct Runner<'a> {
    pub repo: &'a Repo,
    pub store: &'a dyn Store,
    pub connect: &'a Connector<'a>,
    pub keys: &'a Keys,
    pub facts: &'a FactCache,
    pub forks: usize,
    pub events: &'a dyn Events,
    pub run: &'a RunInfo,
    /// Where the state is published after every stage (`[project] state_remote`).
    pub state_remote: Option<&'a str>,
    /// The part of each environment's hosts this run works on (`--shard K/N`): stages that
    /// work on hosts record their result per shard, for `pipeline gate`.
    pub shard: Option<&'a Shard>,
}

fn summarize(errors: &Errors) -> String {
    let mut lines: Vec<String> = errors.iter().take(5).map(|e| e.to_string()).collect();
    if errors.len() > 5 {
        lines.push(format!("... and {} more", errors.len() - 5));
    }
    lines.join("\n")
}

impl Runner<'_> {
    /// Runs `stages` for `commit` (whose files are `snapshot`), stopping at the first that fails,
    /// is refused or waits for an approval.
    pub fn run(
        &self,
        commit: &str,
        snapshot: &Snapshot,
        stages: &[Stage],
    ) -> Result<Outcome, Errors> {
        if let Some(remote) = self.state_remote {
            // Requirements, approvals and the environments' commits are the shared state's.
            let summary = self.store.pull(remote)?;
            self.events.emit(Event::StateSynced { remote, pushed: false, summary: &summary });
        }
        let comp = self.load(snapshot);
        let summary = self.repo.summary(commit);
        self.events.emit(Event::PipelineStarted {
            commit,
            summary: &summary,
            run_id: &self.run.id,
        });
        let mut reports = Vec::new();
        let mut ended = Ended::Passed;
        // Why the stages from this index on did not run.
        let mut stopped: Option<(usize, String)> = None;
        for (index, stage) in stages.iter().enumerate() {
            let record = self.store.read(commit)?;
            let missing: Vec<String> = stage
                .requires
                .iter()
                .filter(|r| !record.passed(r))
                .map(|r| match record.stages.get(r) {
                    Some(_) => format!("'{r}' failed"),
                    None => format!("'{r}' has not run"),
                })
                .collect();
            if !missing.is_empty() {
                self.events.emit(Event::StageRefused {
                    name: &stage.name,
                    commit,
                    requires: &stage.requires,
                    missing: &missing,
                });
                ended = Ended::Refused;
                let why =
                    format!("not run: its requirements have not passed ({})", missing.join(", "));
                stopped = Some((index, why));
                break;
            }
            if stage.approval && !record.approvals.contains_key(&stage.name) {
                self.events.emit(Event::AwaitingApproval { name: &stage.name, commit });
                ended = Ended::AwaitingApproval;
                let why = format!(
                    "not run: waiting for approval (stackdeploy approve {} --stage {})",
                    short(commit),
                    stage.name
                );
                stopped = Some((index, why));
                break;
            }
            self.events.emit(Event::StageStarted {
                name: &stage.name,
                kind: stage.kind,
                environment: stage.environment.as_deref(),
            });
            let started = Instant::now();
            let started_at = now();
            let key = self.record_key(stage);
            let mut report = self.stage(snapshot, &comp, stage);
            // Hooks before promotion: a hook that must not miss the change (a CMDB) keeps the
            // environment where it was until it took it.
            let hooks_fired = self.stage_hooks(snapshot, &comp, stage, &mut report, commit, {
                record.stages.get(&key)
            });
            if report.passed && !(self.shard.is_some() && report.hosts.is_empty()) {
                let env = stage.environment.as_deref().unwrap_or_default();
                let whole = self.shard.is_none();
                if let Err(e) = self.promote(stage, env, &report.hosts, commit, whole) {
                    report.passed = false;
                    report.detail = e.to_string();
                }
            }
            report.duration_secs = started.elapsed().as_secs_f64();
            report.started = started_at;
            let result = StageResult {
                status: if report.passed { StageStatus::Passed } else { StageStatus::Failed },
                kind: format!("{:?}", stage.kind).to_lowercase(),
                environment: stage.environment.clone(),
                hosts: report.hosts.clone(),
                duration_secs: report.duration_secs,
                run_id: self.run.id.clone(),
                user: self.run.user.clone(),
                time: now(),
                detail: report.detail.clone(),
                hooks_fired,
            };
            self.store.record_stage(commit, &key, result.clone())?;
            if let Some(remote) = self.state_remote {
                // Other agents go by the remote: a stage they cannot see did not pass for them,
                // so it does not pass here either, and a rerun repeats it (stages are idempotent).
                match self.store.push(remote) {
                    Ok(summary) => self.events.emit(Event::StateSynced {
                        remote,
                        pushed: true,
                        summary: &summary,
                    }),
                    Err(e) => {
                        self.events.emit(Event::StatePushFailed { error: &e });
                        let why = format!("its result could not be published: {e}");
                        report.passed = false;
                        report.detail = if report.detail.is_empty() {
                            why
                        } else {
                            format!("{}; {why}", report.detail)
                        };
                        let failed = StageResult {
                            status: StageStatus::Failed,
                            detail: report.detail.clone(),
                            ..result
                        };
                        self.store.record_stage(commit, &key, failed)?;
                    }
                }
            }
            self.events.emit(Event::StageFinished {
                name: &stage.name,
                passed: report.passed,
                seconds: report.duration_secs,
            });
            let passed = report.passed;
            reports.push(report);
            if !passed {
                ended = Ended::Failed;
                stopped = Some((index + 1, format!("not run: stage '{}' failed", stage.name)));
                break;
            }
        }
        let not_run = match stopped {
            Some((from, why)) => {
                stages[from..].iter().map(|s| not_run(comp.as_ref().ok(), s, &why)).collect()
            }
            None => Vec::new(),
        };
        Ok(Outcome { commit: commit.to_string(), ended, stages: reports, not_run })
    }

    fn load(&self, snapshot: &Snapshot) -> Result<Composition, Errors> {
        let comp = Composition::load(snapshot)?;
        Ok(Composition { keyring: self.keys.for_deploying(), ..comp })
    }

    pub(super) fn load_at(&self, commit: &str) -> Result<Composition, Errors> {
        self.load(&self.repo.snapshot_at(commit)?)
    }

    /// Applies `comp`'s catalogs to `hosts` of `env`. Err: the hosts do not compile (nothing
    /// was pushed).
    pub(super) fn apply(
        &self,
        comp: &Composition,
        env: &Environment,
        hosts: &[&Host],
    ) -> Result<Vec<HostResult>, Errors> {
        let load = |c: &str| self.repo.snapshot_at(c).ok();
        let history = History::new(&load, comp.keyring.clone());
        let connect = (self.connect)(env);
        let hosts_of = Hosts {
            connect: connect.as_ref(),
            facts: self.facts,
            history: &history,
            forks: self.forks,
            events: self.events,
        };
        Rollout::new(comp, env, hosts_of)?.converge(hosts, self.run)
    }

    fn stage(
        &self,
        snapshot: &Snapshot,
        comp: &Result<Composition, Errors>,
        stage: &Stage,
    ) -> StageReport {
        let mut report = StageReport {
            name: stage.name.clone(),
            kind: stage.kind,
            environment: stage.environment.clone(),
            passed: false,
            started: 0,
            duration_secs: 0.0,
            hosts: Vec::new(),
            detail: String::new(),
            applies: Vec::new(),
            checks: Vec::new(),
            checks_not_run: Vec::new(),
            hooks: Vec::new(),
        };
        if stage.kind == StageKind::Precommit {
            let facts = |h: &Host| self.facts.facts(h);
            let result = crate::precommit::check(snapshot, &facts, self.keys.for_showing());
            report.passed = result.passed();
            report.detail = if report.passed {
                format!("{} host(s) compiled", result.hosts)
            } else {
                let shown: Vec<String> =
                    result.problems.iter().take(5).map(|p| p.to_string()).collect();
                shown.join("\n")
            };
            return report;
        }
        let comp = match comp {
            Ok(c) => c,
            Err(errors) => {
                report.detail = format!("the composition does not compile:\n{}", summarize(errors));
                return report;
            }
        };
        let env = match comp.pipeline.environment(stage.environment.as_deref().unwrap_or_default())
        {
            Ok(e) => e,
            Err(e) => {
                report.detail = e.to_string();
                return report;
            }
        };
        let mut hosts = stage.select(env);
        if let Some(shard) = self.shard {
            // Canaries and other selections are the whole environment's; each shard works on
            // those in its part.
            hosts = shard.take(&env.hosts, &hosts);
            if hosts.is_empty() {
                report.passed = true;
                report.detail = format!("no host of this stage in shard {shard}");
                return report;
            }
        }
        report.hosts = hosts.iter().map(|h| h.name.clone()).collect();
        // Until they run, the checks count as not run (the stage may stop before them).
        report.checks_not_run = planned(&stage.checks, &hosts);

        if stage.kind.applies() {
            let results = match self.apply(comp, env, &hosts) {
                Ok(r) => r,
                Err(errors) => {
                    report.detail = format!("does not compile:\n{}", summarize(&errors));
                    return report;
                }
            };
            report.applies = results.iter().map(host_apply).collect();
            let failed = failures(&results);
            if !failed.is_empty() {
                report.detail =
                    format!("apply failed on {}:\n{}", failed_hosts(&results), failed.join("\n"));
                if stage.kind == StageKind::Canary {
                    report.detail.push_str(&self.rollback_canaries(env, &hosts));
                }
                return report;
            }
            if stage.kind == StageKind::Deploy {
                // Idempotency: a second apply of the same commit must change nothing.
                match self.apply(comp, env, &hosts) {
                    Ok(second) => {
                        let changed = changes(&second);
                        let failed = failures(&second);
                        second_apply(&mut report.applies, &second);
                        if !changed.is_empty() || !failed.is_empty() {
                            report.detail = format!(
                                "not idempotent: the second apply changed things:\n{}",
                                [changed, failed].concat().join("\n")
                            );
                            return report;
                        }
                    }
                    Err(errors) => {
                        report.detail = summarize(&errors);
                        return report;
                    }
                }
            }
        }

        let compiler = match Compiler::new(comp) {
            Ok(c) => c,
            Err(errors) => {
                report.detail = summarize(&errors);
                return report;
            }
        };
        let secrets = environment_secrets(comp, env);
        let connect = (self.connect)(env);
        report.checks =
            run_checks(&stage.checks, env, &hosts, &compiler, &secrets, connect.as_ref());
        report.checks_not_run.clear();
        let failed_checks: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("check '{}' on {} failed: {}", c.name, c.on, c.output))
            .collect();
        if !failed_checks.is_empty() {
            report.detail = failed_checks.join("\n");
            if stage.kind == StageKind::Canary {
                report.detail.push_str(&self.rollback_canaries(env, &hosts));
            }
            return report;
        }

        // Promotion follows in `run`, after the hooks.
        report.passed = true;
        report.detail = format!("{} host(s)", report.hosts.len());
        report
    }

    /// Fires the hooks of the stage's end into `report` (a failing `on_failure = "fail"` hook
    /// fails it); returns the deliveries to record with the stage's result.
    fn stage_hooks(
        &self,
        snapshot: &Snapshot,
        comp: &Result<Composition, Errors>,
        stage: &Stage,
        report: &mut StageReport,
        commit: &str,
        prior: Option<&StageResult>,
    ) -> Vec<String> {
        // A commit whose profiles do not compile still has hooks, for its stage_failed.
        let owned;
        let pipeline = match comp {
            Ok(c) => &c.pipeline,
            Err(_) => match crate::model::Pipeline::from_snapshot(snapshot) {
                Ok(p) => {
                    owned = p;
                    &owned
                }
                Err(_) => return Vec::new(),
            },
        };
        let sharded = self.shard.is_some() && stage.kind != StageKind::Precommit;
        let end = StageEnd {
            stage,
            commit,
            passed: report.passed,
            hosts: &report.hosts.clone(),
            prior,
            shard: sharded,
            moves_environment: !sharded,
        };
        let carried = || match prior {
            Some(p) if p.status == StageStatus::Failed => p.hooks_fired.clone(),
            _ => Vec::new(),
        };
        match self.fire_hooks(pipeline, comp.as_ref().ok(), &end) {
            Ok(None) => carried(),
            Ok(Some(fired)) => {
                if let Some(why) = failure_detail(&fired) {
                    report.detail = if report.passed || report.detail.is_empty() {
                        why
                    } else {
                        format!("{}\n{why}", report.detail)
                    };
                    report.passed = false;
                }
                report.hooks = fired.deliveries;
                fired.keys
            }
            Err(e) => {
                // The events are unknown: only a hook that must not miss one fails the stage.
                let env = stage.environment.as_deref();
                let must = pipeline.hooks.iter().any(|h| {
                    h.on_failure == OnFailure::Fail
                        && HookEvent::ALL.into_iter().any(|ev| h.wants(ev, &stage.name, env))
                });
                let why = format!("hooks: {e}");
                report.detail = if (must && report.passed) || report.detail.is_empty() {
                    why
                } else {
                    format!("{}\n{why}", report.detail)
                };
                report.passed &= !must;
                carried()
            }
        }
    }

    /// Where a stage's result is recorded: under its name, or per shard when this run is one
    /// shard of a stage that works on hosts (precommit compiles everything on every shard).
    fn record_key(&self, stage: &Stage) -> String {
        match self.shard {
            Some(shard) if stage.kind != StageKind::Precommit => shard.stage_key(&stage.name),
            _ => stage.name.clone(),
        }
    }

    /// A passed stage moves the promotion refs: deploy and release say the environment runs the
    /// commit (its hosts are no longer exceptions), a canary records its hosts as exceptions.
    /// `whole`: the stage passed on the whole environment (an unsharded run, or `pipeline gate`
    /// once every shard passed). A shard of a deploy or release records its hosts as exceptions
    /// too: the environment runs the commit once every shard has.
    pub(super) fn promote(
        &self,
        stage: &Stage,
        env: &str,
        hosts: &[String],
        commit: &str,
        whole: bool,
    ) -> Result<(), Error> {
        match stage.kind {
            StageKind::Deploy | StageKind::Release if whole => {
                self.store.set_env_commit(
                    env,
                    commit,
                    &format!("stackdeploy: {} passed", stage.name),
                )?;
                self.store
                    .update_host_commits(env, &|map| map.retain(|h, _| !hosts.contains(h)))?;
            }
            StageKind::Canary | StageKind::Deploy | StageKind::Release => {
                self.store.update_host_commits(env, &|map| {
                    for h in hosts {
                        map.insert(h.clone(), commit.to_string());
                    }
                })?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Returns canary hosts to the environment's released commit; says what happened.
    fn rollback_canaries(&self, env: &Environment, hosts: &[&Host]) -> String {
        let released = match self.store.env_commit(&env.name) {
            Ok(Some(c)) => c,
            _ => {
                return format!(
                    "\nno released commit of {} to roll the canary hosts back to",
                    env.name
                );
            }
        };
        self.events.emit(Event::CanaryRollback { to: &released });
        let comp = match self.load_at(&released) {
            Ok(c) => c,
            Err(errors) => {
                return format!(
                    "\nrollback impossible, {} does not compile: {}",
                    short(&released),
                    summarize(&errors)
                );
            }
        };
        let Ok(old_env) = comp.pipeline.environment(&env.name) else {
            return format!(
                "\nrollback impossible: {} has no environment {}",
                short(&released),
                env.name
            );
        };
        let old_hosts: Vec<&Host> =
            old_env.hosts.iter().filter(|h| hosts.iter().any(|c| c.name == h.name)).collect();
        match self.apply(&comp, old_env, &old_hosts) {
            Ok(results) => {
                let failed = failures(&results);
                if let Ok(mut map) = self.store.host_commits(&env.name) {
                    map.retain(|h, _| !old_hosts.iter().any(|o| &o.name == h));
                    let _ = self.store.set_host_commits(&env.name, &map);
                }
                if failed.is_empty() {
                    format!("\ncanary hosts rolled back to {}", short(&released))
                } else {
                    format!("\nrollback of the canary hosts FAILED:\n{}", failed.join("\n"))
                }
            }
            Err(errors) => format!("\nrollback impossible: {}", summarize(&errors)),
        }
    }
}

/// A host's apply result as the report shows it.
fn host_apply(r: &HostResult) -> HostApply {
    let result = match &r.outcome {
        HostOutcome::Unchanged => ApplyResult::Unchanged,
        HostOutcome::Changed(done) => ApplyResult::Changed(done.len()),
        HostOutcome::Failed { error, .. } => ApplyResult::Failed(ApplyFailure {
            kind: error.kind(),
            detail: error.detail().to_string(),
        }),
        HostOutcome::Skipped => ApplyResult::NotAttempted,
    };
    HostApply { host: r.host.clone(), result, duration_secs: r.time.as_secs_f64() }
}

/// A deploy's second apply: a host it changed or failed on failed the stage's idempotency.
fn second_apply(applies: &mut [HostApply], second: &[HostResult]) {
    for r in second {
        let Some(a) = applies.iter_mut().find(|a| a.host == r.host) else { continue };
        a.duration_secs += r.time.as_secs_f64();
        let (kind, detail) = match &r.outcome {
            HostOutcome::Unchanged => continue,
            HostOutcome::Changed(done) => (
                ErrorKind::Apply,
                format!(
                    "not idempotent: the second apply changed {}",
                    done.iter()
                        .map(|(id, what)| format!("{id} {what}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            HostOutcome::Failed { error, .. } => {
                (error.kind(), format!("the second apply failed: {}", error.detail()))
            }
            // The budget stopped it at other hosts: this one was not tested again.
            HostOutcome::Skipped => (ErrorKind::Host, "the second apply did not reach it".into()),
        };
        a.result = ApplyResult::Failed(ApplyFailure { kind, detail });
    }
}

/// `db01, ctl01`: the hosts whose apply failed or was not attempted.
fn failed_hosts(results: &[HostResult]) -> String {
    results.iter().filter(|r| r.failed()).map(|r| r.host.as_str()).collect::<Vec<_>>().join(", ")
}

/// What a stage that did not run would have worked on, as far as the composition tells.
fn not_run(comp: Option<&Composition>, stage: &Stage, why: &str) -> NotRun {
    let env =
        comp.zip(stage.environment.as_deref()).and_then(|(c, e)| c.pipeline.environment(e).ok());
    let hosts = env.map(|e| stage.select(e)).unwrap_or_default();
    NotRun {
        name: stage.name.clone(),
        kind: stage.kind,
        environment: stage.environment.clone(),
        reason: why.to_string(),
        hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        checks: planned(&stage.checks, &hosts),
    }
}

/// `host: id what, ...` for every host an apply changed.
fn changes(results: &[HostResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            HostOutcome::Changed(done) => Some(format!(
                "{}: {}",
                r.host,
                done.iter().map(|(id, what)| format!("{id} {what}")).collect::<Vec<_>>().join(", ")
            )),
            _ => None,
        })
        .collect()
}

/// The stages from `from` to `to` (names; default the first and the last).
pub fn select<'p>(
    stages: &'p [Stage],
    from: Option<&str>,
    to: Option<&str>,
) -> Result<&'p [Stage], Error> {
    let index = |name: Option<&str>, default: usize| -> Result<usize, Error> {
        match name {
            None => Ok(default),
            Some(n) => stages.iter().position(|s| s.name == n).ok_or_else(|| {
                let known: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
                crate::error::usage(format!(
                    "no stage '{n}' (stages: {}){}",
                    known.join(", "),
                    crate::suggest::hint(n, known.iter().copied())
                ))
            }),
        }
    };
    let (from, to) = (index(from, 0)?, index(to, stages.len().saturating_sub(1))?);
    if from > to {
        return Err(crate::error::usage("--from comes after --to"));
    }
    Ok(&stages[from..=to])
}

/// Every secret value of an environment's hosts at a commit, for redacting what is not a
/// catalog (check output, hook payloads, status).
pub(crate) fn environment_secrets(comp: &Composition, env: &Environment) -> Secrets {
    let mut secrets = Secrets::default();
    for h in &env.hosts {
        if let Some(s) = parameter_secrets(comp, h) {
            secrets.extend(&s);
        }
    }
    secrets
}

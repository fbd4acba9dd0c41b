//! Rolling a commit out to hosts: compile, connect, probe, plan ([`Rollout::prepare`]), then
//! converge in rollout order and batches ([`Rollout::apply`]).
//!
//! One connection per host for the whole run, hosts handled concurrently on a bounded pool of
//! threads. A host that fails is recorded and the others go on; the rollout stops starting
//! batches once more hosts failed than the environment's failure budget allows. Hosts are
//! reached through [`Connect`] (SSH for users, a scripted fake host in the unit tests), and
//! progress goes to an [`Events`] sink: nothing here prints.

mod apply;
mod connect;
pub mod drift;
#[cfg(test)]
pub(crate) mod fake;
mod gate;
mod prepare;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::catalog::{Catalog, Compiler, EnvContext};
use crate::composition::Composition;
use crate::error::{Error, Errors};
use crate::event::Events;
use crate::facts::FactCache;
use crate::model::{Environment, Host};
use crate::plan::HostPlan;
use crate::plan::history::History;
use crate::runinfo::RunInfo;
use crate::state::Observed;

pub use connect::{Connect, Remote, Ssh, SshOptions};
pub use gate::gate;

/// One host through a run: its catalog, its connection, what the probe saw, its plan.
pub struct HostRun {
    pub host: Host,
    pub catalog: Catalog,
    pub remote: Option<Box<dyn Remote>>,
    pub observed: Option<Observed>,
    pub plan: Option<HostPlan>,
    pub error: Option<Error>,
    /// How long connecting, probing and planning took (an unreachable host's whole time).
    pub prepare_time: Duration,
}

impl HostRun {
    /// Does applying this host change anything, its applied record included?
    pub fn needs_apply(&self, commit: &str) -> bool {
        let changes = self.plan.as_ref().is_some_and(|p| !p.is_empty());
        let record = self
            .observed
            .as_ref()
            .is_some_and(|o| o.applied.as_ref().is_none_or(|a| a.commit != commit));
        changes || record
    }
}

/// What happened to one host in an apply.
#[derive(Debug)]
pub enum HostOutcome {
    /// Nothing to do.
    Unchanged,
    /// Converged; the changes made (resource id, what was done).
    Changed(Vec<(String, String)>),
    /// Failed (before or during apply); what was done before the failure is in `done`.
    Failed { error: Error, done: Vec<(String, String)> },
    /// Not attempted: the rollout stopped before its batch.
    Skipped,
}

#[derive(Debug)]
pub struct HostResult {
    pub host: String,
    pub role: String,
    pub outcome: HostOutcome,
    /// The host's time in the run, preparing and applying (not the wait for its batch).
    pub time: Duration,
}

impl HostResult {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, HostOutcome::Failed { .. } | HostOutcome::Skipped)
    }
}

/// `host: why` for every host that failed or was skipped.
pub fn failures(results: &[HostResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            HostOutcome::Failed { error, .. } => Some(format!("{}: {}", r.host, error.detail())),
            HostOutcome::Skipped => Some(format!("{}: skipped (rollout stopped)", r.host)),
            _ => None,
        })
        .collect()
}

/// Everything a rollout of one environment at one commit works with.
pub struct Rollout<'a> {
    pub env: &'a Environment,
    pub commit: String,
    compiler: Compiler<'a>,
    env_ctx: EnvContext,
    connect: &'a dyn Connect,
    facts: &'a FactCache,
    history: &'a History<'a>,
    /// At most this many hosts are worked on at once.
    forks: usize,
    events: &'a dyn Events,
    /// Where the engine keeps its state on hosts.
    state_dir: &'a str,
}

/// What a rollout reaches hosts with and reports to.
#[derive(Clone, Copy)]
pub struct Hosts<'a> {
    pub connect: &'a dyn Connect,
    pub facts: &'a FactCache,
    pub history: &'a History<'a>,
    pub forks: usize,
    pub events: &'a dyn Events,
}

impl<'a> Rollout<'a> {
    /// A rollout of `comp`'s catalogs to `env` (an environment of `comp`). Fails when the
    /// composition's templates do not parse.
    pub fn new(
        comp: &'a Composition,
        env: &'a Environment,
        hosts: Hosts<'a>,
    ) -> Result<Rollout<'a>, Errors> {
        let commit =
            comp.origin.commit_id().map(str::to_string).unwrap_or_else(|| "worktree".to_string());
        let compiler = Compiler::new(comp)?;
        let env_ctx = EnvContext::new(comp, env, &|h| hosts.facts.facts(h));
        Ok(Rollout {
            env,
            commit,
            compiler,
            env_ctx,
            connect: hosts.connect,
            facts: hosts.facts,
            history: hosts.history,
            forks: hosts.forks.max(1),
            events: hosts.events,
            state_dir: crate::state::STATE_DIR,
        })
    }

    /// Compiles `hosts` at the rollout's commit, connects to them, probes and plans. Nothing is
    /// touched when any host does not compile (every compile error is returned); a host that
    /// cannot be reached or probed keeps its error in its [`HostRun`].
    pub fn prepare(&self, hosts: &[&Host]) -> Result<Vec<HostRun>, Errors> {
        prepare::prepare(self, hosts)
    }

    /// Converges prepared hosts in rollout order (role order, then batches), honouring the
    /// environment's failure budget.
    pub fn apply(&self, runs: Vec<HostRun>, run: &RunInfo) -> Vec<HostResult> {
        apply::apply(self, runs, run)
    }

    /// [`prepare`](Self::prepare), then [`apply`](Self::apply) whatever was planned.
    pub fn converge(&self, hosts: &[&Host], run: &RunInfo) -> Result<Vec<HostResult>, Errors> {
        let runs = self.prepare(hosts)?;
        Ok(self.apply(runs, run))
    }
}

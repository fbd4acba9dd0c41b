//! Returning an environment to an earlier commit: by default its previous release, the newest
//! first-parent ancestor of the commit it runs whose note records a passed release (or, for an
//! environment without a release stage, deploy) to it.

use std::collections::BTreeMap;

use super::hooks::{Fired, StageEnd};
use super::runner::Runner;
use super::store::{Record, StageStatus, Store};
use crate::composition::Composition;
use crate::error::{Error, Errors, Result};
use crate::model::Host;
use crate::model::hooks::ROLLBACK_STAGE;
use crate::model::stages::{HostSelect, Stage, StageKind};
use crate::rollout::{HostResult, failures};
use crate::source::Repo;

/// The release of `env` before `current`, if there is one, and the notes on the way that
/// could not be read (their commits count as not released).
pub fn previous_release(
    repo: &Repo,
    store: &dyn Store,
    current: &str,
    env: &str,
) -> Result<(Option<String>, Vec<Error>)> {
    let mut unreadable = Vec::new();
    for commit in repo.first_parents(current, usize::MAX)?.into_iter().skip(1) {
        let record = match store.read(&commit) {
            Ok(r) => r,
            Err(e) => {
                unreadable.push(e);
                continue;
            }
        };
        if ran_in(&record, env) {
            return Ok((Some(commit), unreadable));
        }
    }
    Ok((None, unreadable))
}

/// Did a deploy or release of `env` pass with the commit `record` is of (so `env` ran it)?
pub fn ran_in(record: &Record, env: &str) -> bool {
    record.stages.values().any(|s| {
        s.status == StageStatus::Passed
            && s.environment.as_deref() == Some(env)
            && (s.kind == "release" || s.kind == "deploy")
    })
}

/// What a rollback did: the hosts' results, and what its hooks did (`None`: no hook wants
/// its events, or it did not complete).
pub struct RolledBack {
    pub results: Vec<HostResult>,
    pub hooks: Option<std::result::Result<Fired, Error>>,
}

impl Runner<'_> {
    /// Converges every host of `env` to `target`. When every host made it, the environment's
    /// ref names `target` and no host is an exception any more, and the hooks (target's
    /// pipeline.toml) get the events of that change as of a release named `rollback`: the
    /// hosts the inventory gains and loses, every host that changed commit, then
    /// `stage_passed` and `release_done`. They are sent once the hosts run `target`, so a hook
    /// that fails cannot hold anything back: the caller reports it.
    pub fn rollback(&self, env: &str, target: &str) -> std::result::Result<RolledBack, Errors> {
        let comp = self.load_at(target)?;
        let environment = comp.pipeline.environment(env)?;
        let hosts: Vec<&Host> = environment.hosts.iter().collect();
        let results = self.apply(&comp, environment, &hosts)?;
        if !failures(&results).is_empty() {
            return Ok(RolledBack { results, hooks: None });
        }
        // Before the refs move: the events are those of the environment's release and
        // exceptions (canaries) to `target`; one that runs `target` already did not change.
        let changed = self.store.env_commit(env)?.as_deref() != Some(target)
            || !self.store.host_commits(env)?.is_empty();
        let hooks = if changed { self.rollback_hooks(&comp, env, target, &hosts) } else { None };
        self.store.set_env_commit(env, target, "stackdeploy: rollback")?;
        self.store.set_host_commits(env, &BTreeMap::new())?;
        Ok(RolledBack { results, hooks })
    }

    /// The hooks of `comp` for `env`'s change to `target`, as of a release named `rollback`.
    fn rollback_hooks(
        &self,
        comp: &Composition,
        env: &str,
        target: &str,
        hosts: &[&Host],
    ) -> Option<Result<Fired>> {
        let stage = Stage {
            name: ROLLBACK_STAGE.into(),
            kind: StageKind::Release,
            environment: Some(env.to_string()),
            hosts: HostSelect::All,
            checks: Vec::new(),
            approval: false,
            requires: Vec::new(),
            line: 0,
        };
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let end = StageEnd {
            stage: &stage,
            commit: target,
            passed: true,
            hosts: &names,
            prior: None,
            shard: false,
            moves_environment: true,
        };
        self.fire_hooks(&comp.pipeline, Some(comp), &end).transpose()
    }
}

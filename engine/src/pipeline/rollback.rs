//! Returning an environment to an earlier commit: by default its previous release, the newest
//! first-parent ancestor of the commit it runs whose note records a passed release (or, for an
//! environment without a release stage, deploy) to it.

use std::collections::BTreeMap;

use super::runner::Runner;
use super::store::{StageStatus, Store};
use crate::error::{Error, Errors, Result};
use crate::model::Host;
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
        let released = record.stages.values().any(|s| {
            s.status == StageStatus::Passed
                && s.environment.as_deref() == Some(env)
                && (s.kind == "release" || s.kind == "deploy")
        });
        if released {
            return Ok((Some(commit), unreadable));
        }
    }
    Ok((None, unreadable))
}

impl Runner<'_> {
    /// Converges every host of `env` to `target`. When every host made it, the environment's
    /// ref names `target` and no host is an exception any more.
    pub fn rollback(
        &self,
        env: &str,
        target: &str,
    ) -> std::result::Result<Vec<HostResult>, Errors> {
        let comp = self.load_at(target)?;
        let environment = comp.pipeline.environment(env)?;
        let hosts: Vec<&Host> = environment.hosts.iter().collect();
        let results = self.apply(&comp, environment, &hosts)?;
        if failures(&results).is_empty() {
            self.store.set_env_commit(env, target, "stackdeploy: rollback")?;
            self.store.set_host_commits(env, &BTreeMap::new())?;
        }
        Ok(results)
    }
}

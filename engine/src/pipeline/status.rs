//! What `status` shows: recent commits × stages, and the commit each environment and host runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::store::{StageStatus, Store};
use crate::error::Result;
use crate::model::Pipeline;
use crate::source::Repo;

/// A stage of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Passed,
    Failed,
    /// Approved, not run yet.
    Approved,
    Pending,
}

impl Cell {
    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Passed => "passed",
            Cell::Failed => "failed",
            Cell::Approved => "approved",
            Cell::Pending => "pending",
        }
    }
}

pub struct CommitStatus {
    pub id: String,
    pub subject: String,
    /// In stage order.
    pub stages: Vec<(String, Cell)>,
}

pub struct EnvStatus {
    pub name: String,
    /// The commit the environment runs; `None` before its first deploy.
    pub commit: Option<String>,
    /// Hosts that run another commit (canaries): host → commit.
    pub exceptions: BTreeMap<String, String>,
    /// Every host of the inventory with the commit it runs.
    pub hosts: BTreeMap<String, Option<String>>,
}

pub struct Status {
    pub stages: Vec<String>,
    /// Newest first.
    pub commits: Vec<CommitStatus>,
    pub environments: Vec<EnvStatus>,
}

/// The status of `count` first-parent commits from `head`, with `pipeline`'s stages and
/// environments.
pub fn status(
    repo: &Repo,
    store: &dyn Store,
    pipeline: &Pipeline,
    head: &str,
    count: usize,
) -> Result<Status> {
    let mut commits = Vec::new();
    for id in repo.first_parents(head, count.max(1))? {
        let record = store.read(&id)?;
        let stages = pipeline
            .stages
            .iter()
            .map(|s| {
                let cell =
                    match (record.stages.get(&s.name), record.approvals.contains_key(&s.name)) {
                        (Some(r), _) if r.result == StageStatus::Passed => Cell::Passed,
                        (Some(_), _) => Cell::Failed,
                        (None, true) => Cell::Approved,
                        (None, false) => Cell::Pending,
                    };
                (s.name.clone(), cell)
            })
            .collect();
        commits.push(CommitStatus { subject: repo.summary(&id), id, stages });
    }
    let mut environments = Vec::new();
    for (name, env) in &pipeline.environments {
        let commit = store.env_commit(name)?;
        let exceptions = store.host_commits(name)?;
        let hosts = env
            .hosts
            .iter()
            .map(|h| (h.name.clone(), exceptions.get(&h.name).or(commit.as_ref()).cloned()))
            .collect();
        environments.push(EnvStatus { name: name.clone(), commit, exceptions, hosts });
    }
    Ok(Status {
        stages: pipeline.stages.iter().map(|s| s.name.clone()).collect(),
        commits,
        environments,
    })
}

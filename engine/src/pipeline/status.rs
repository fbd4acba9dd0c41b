//! What `status` shows: recent commits × stages, and the commit each environment and host runs.

use std::collections::BTreeMap;

use super::store::{Record, StageStatus, Store};
use crate::error::Result;
use crate::model::Pipeline;
use crate::source::Repo;

pub struct CommitStatus {
    pub id: String,
    pub subject: String,
    /// In stage order.
    pub stages: Vec<(String, StageStatus)>,
    /// Why its note cannot be read (and how to repair it), when it cannot.
    pub error: Option<String>,
}

pub struct EnvStatus {
    pub name: String,
    /// The commit the environment runs; `None` before its first deploy.
    pub commit: Option<String>,
    /// Hosts that run another commit (canaries): host → commit.
    pub exceptions: BTreeMap<String, String>,
    /// Every host of the inventory with the commit it runs.
    pub hosts: BTreeMap<String, Option<String>>,
    /// Why its refs cannot be read (and how to repair them), when they cannot.
    pub error: Option<String>,
}

pub struct Status {
    pub stages: Vec<String>,
    /// Newest first.
    pub commits: Vec<CommitStatus>,
    pub environments: Vec<EnvStatus>,
}

fn cell(record: &Record, stage: &str) -> StageStatus {
    match (record.stages.get(stage), record.approvals.contains_key(stage)) {
        (Some(r), _) => r.status,
        (None, true) => StageStatus::Approved,
        (None, false) => StageStatus::Pending,
    }
}

/// The status of `count` first-parent commits from `head`, with `pipeline`'s stages and
/// environments. Promotion state that cannot be read is shown as such, with how to repair it:
/// it does not hide the rest.
pub fn status(
    repo: &Repo,
    store: &dyn Store,
    pipeline: &Pipeline,
    head: &str,
    count: usize,
) -> Result<Status> {
    let mut commits = Vec::new();
    for id in repo.first_parents(head, count.max(1))? {
        let (record, error) = match store.read(&id) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let stages = pipeline
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    record.as_ref().map_or(StageStatus::Unreadable, |r| cell(r, &s.name)),
                )
            })
            .collect();
        commits.push(CommitStatus { subject: repo.summary(&id), id, stages, error });
    }
    let mut environments = Vec::new();
    for (name, env) in &pipeline.environments {
        let (commit, exceptions) = (store.env_commit(name), store.host_commits(name));
        let error = [commit.as_ref().err(), exceptions.as_ref().err()]
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .reduce(|a, b| format!("{a}\n{b}"));
        let (commit, exceptions) = (commit.ok().flatten(), exceptions.unwrap_or_default());
        let hosts = env
            .hosts
            .iter()
            .map(|h| (h.name.clone(), exceptions.get(&h.name).or(commit.as_ref()).cloned()))
            .collect();
        environments.push(EnvStatus { name: name.clone(), commit, exceptions, hosts, error });
    }
    Ok(Status {
        stages: pipeline.stages.iter().map(|s| s.name.clone()).collect(),
        commits,
        environments,
    })
}

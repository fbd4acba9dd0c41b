//! What `status` shows: recent commits × stages, and the commit each environment and host runs.

use std::collections::BTreeMap;

use super::store::{Record, StageStatus, Store};
use crate::error::Result;
use crate::model::shard::fact_text;
use crate::model::{Host, Pipeline};
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
    /// With `--by`: the hosts by the values of those facts and the commit they run.
    pub groups: Vec<HostGroup>,
}

/// Hosts of one environment with the same values of the `--by` facts, running one commit.
pub struct HostGroup {
    /// In `--by` order; `None` where the hosts have no such fact. Read from pipeline.toml of
    /// the commit the hosts run (what they were deployed with), or of the starting commit for
    /// hosts never deployed.
    pub facts: Vec<Option<String>>,
    pub commit: Option<String>,
    pub hosts: Vec<String>,
}

pub struct Status {
    pub stages: Vec<String>,
    /// The facts hosts are grouped by (`--by`), in order.
    pub by: Vec<String>,
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

/// The values of the `--by` facts, and the commit.
type GroupKey = (Vec<Option<String>>, Option<String>);

fn inventory_host<'p>(p: &'p Pipeline, env: &str, host: &str) -> Option<&'p Host> {
    p.environments.get(env).and_then(|e| e.host(host))
}

/// The hosts of `env` by the values of the facts `by` and the commit each runs (`hosts`).
fn groups(
    repo: &Repo,
    pipeline: &Pipeline,
    env: &str,
    env_commit: Option<&String>,
    hosts: &BTreeMap<String, Option<String>>,
    by: &[String],
) -> Vec<HostGroup> {
    // A release is what a host was deployed with: a fact changed in a later commit (a region
    // moved to the next release) counts once the host runs that commit.
    let mut deployed: BTreeMap<&str, Option<Pipeline>> = BTreeMap::new();
    let mut groups: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
    for (host, commit) in hosts {
        let at = commit.as_deref().and_then(|c| {
            deployed
                .entry(c)
                .or_insert_with(|| {
                    repo.snapshot_at(c).ok().and_then(|s| Pipeline::from_snapshot(&s).ok())
                })
                .as_ref()
        });
        let facts = at
            .and_then(|p| inventory_host(p, env, host))
            .or_else(|| inventory_host(pipeline, env, host))
            .map(|h| &h.facts);
        let values = by.iter().map(|f| facts.and_then(|t| t.get(f)).map(fact_text)).collect();
        groups.entry((values, commit.clone())).or_default().push(host.clone());
    }
    let mut groups: Vec<HostGroup> = groups
        .into_iter()
        .map(|((facts, commit), hosts)| HostGroup { facts, commit, hosts })
        .collect();
    // Within one combination of values, the environment's commit comes before its canaries'.
    groups.sort_by_key(|g| (g.facts.clone(), g.commit.as_ref() != env_commit));
    groups
}

/// The status of `count` first-parent commits from `head`, with `pipeline`'s stages and
/// environments, their hosts grouped by the facts `by` when given. Promotion state that cannot
/// be read is shown as such, with how to repair it: it does not hide the rest.
pub fn status(
    repo: &Repo,
    store: &dyn Store,
    pipeline: &Pipeline,
    head: &str,
    count: usize,
    by: &[String],
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
        let groups = if by.is_empty() {
            Vec::new()
        } else {
            groups(repo, pipeline, name, commit.as_ref(), &hosts, by)
        };
        environments.push(EnvStatus {
            name: name.clone(),
            commit,
            exceptions,
            hosts,
            error,
            groups,
        });
    }
    Ok(Status {
        stages: pipeline.stages.iter().map(|s| s.name.clone()).collect(),
        by: by.to_vec(),
        commits,
        environments,
    })
}

//! `status --format json`: recent commits × stages, and the commit each environment and host
//! runs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::error::ErrorKind;
use crate::pipeline::stage_status::StageStatus;
use crate::pipeline::status::Status;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusDoc<'a> {
    pub schema_version: SchemaVersion,
    /// The stages of pipeline.toml, in order.
    pub stages: &'a [String],
    /// Newest first (first parents of the starting commit).
    pub commits: Vec<CommitStages<'a>>,
    /// By environment name.
    pub environments: BTreeMap<&'a str, EnvDoc<'a>>,
    /// Promotion state that cannot be read (a note, an environment's refs), each saying how
    /// to repair it; the rest of the document is still right.
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommitStages<'a> {
    pub commit: Commit,
    /// Stage name → its status for this commit (`passed`, `failed`, `approved`, `pending`,
    /// `unreadable`).
    pub stages: BTreeMap<&'a str, StageStatus>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EnvDoc<'a> {
    /// The commit the environment runs; `null` before its first deploy.
    pub commit: Option<Commit>,
    /// Every host of the inventory → the commit it runs (canaries may run another).
    pub hosts: BTreeMap<&'a str, Option<Commit>>,
    /// With `--by FACT`: the hosts by the values of those facts and the commit they run (one
    /// entry per combination), each value as pipeline.toml of that commit declares it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<HostGroupDoc<'a>>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostGroupDoc<'a> {
    /// `--by` fact → the hosts' value; `null` when they have no such fact.
    pub facts: BTreeMap<&'a str, Option<&'a str>>,
    /// The commit they run; `null` before their first deploy.
    pub commit: Option<Commit>,
    pub hosts: &'a [String],
}

/// `summary` gives a commit's subject.
pub fn document<'a>(status: &'a Status, summary: &dyn Fn(&str) -> String) -> StatusDoc<'a> {
    let commit = |id: &str| Commit::new(id, summary(id));
    let mut errors = Vec::new();
    let commits = status
        .commits
        .iter()
        .map(|c| {
            errors.extend(c.error.iter().map(|e| Problem::new(ErrorKind::Git, e)));
            CommitStages {
                commit: Commit::new(&c.id, c.subject.clone()),
                stages: c.stages.iter().map(|(n, s)| (n.as_str(), *s)).collect(),
            }
        })
        .collect();
    let environments = status
        .environments
        .iter()
        .map(|e| {
            errors.extend(e.error.iter().map(|e| Problem::new(ErrorKind::Git, e)));
            let hosts =
                e.hosts.iter().map(|(h, c)| (h.as_str(), c.as_deref().map(commit))).collect();
            let groups = (!status.by.is_empty()).then(|| {
                e.groups
                    .iter()
                    .map(|g| HostGroupDoc {
                        facts: status
                            .by
                            .iter()
                            .map(String::as_str)
                            .zip(g.facts.iter().map(Option::as_deref))
                            .collect(),
                        commit: g.commit.as_deref().map(commit),
                        hosts: &g.hosts,
                    })
                    .collect()
            });
            (e.name.as_str(), EnvDoc { commit: e.commit.as_deref().map(commit), hosts, groups })
        })
        .collect();
    StatusDoc {
        schema_version: SchemaVersion,
        stages: &status.stages,
        commits,
        environments,
        errors,
    }
}

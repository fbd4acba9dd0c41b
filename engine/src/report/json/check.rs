//! `check --format json`: precommit validation of the composition at a commit.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::precommit::Precommit;
use crate::source::Origin;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckDoc {
    pub schema_version: SchemaVersion,
    /// The commit checked (or the working tree, with `--worktree`).
    pub commit: Commit,
    /// No problems: the exit code is 0, else 1.
    pub ok: bool,
    /// Every problem found, the same one on many hosts once (with `hosts`).
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// How many environments and hosts were compiled.
    pub environments: usize,
    pub hosts: usize,
}

pub fn document(result: &Precommit, origin: &Origin) -> CheckDoc {
    CheckDoc {
        schema_version: SchemaVersion,
        commit: Commit::of(origin),
        ok: result.passed(),
        errors: result
            .problems
            .iter()
            .map(|p| Problem { hosts: p.hosts.clone(), ..Problem::of(&p.error) })
            .collect(),
        warnings: result.warnings.iter().map(Problem::of).collect(),
        environments: result.environments,
        hosts: result.hosts,
    }
}

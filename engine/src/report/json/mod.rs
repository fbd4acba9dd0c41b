//! The `--format json` documents: one typed document per output (a file each, named after
//! it), what they all share (the schema version, the commit object, the `errors` array), and
//! the JSON Schema of each ([`schema`]), generated from these types and published under
//! docs/schemas/. The text, JUnit and HTML renderings are the other modules of `report`.
//!
//! Every document has `schema_version` and `errors` (empty when there are none). A command
//! that stops before it has its result prints a [`Failure`] instead, which its schema allows.

pub mod apply;
pub mod catalog;
pub mod check;
pub mod diff;
pub mod drift;
pub mod gate;
pub mod import;
pub mod lookup;
pub mod pipeline;
pub mod plan;
pub mod schema;
pub mod status;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

use crate::error::{Error, ErrorKind, Errors, Location};
use crate::source::Origin;

/// Version of every JSON document the CLI prints; bumped on incompatible changes (the
/// changelog is docs/json.md).
pub const SCHEMA_VERSION: u32 = 2;

/// `schema_version`: always [`SCHEMA_VERSION`], which the schema pins with `const`, so a
/// consumer validating against an older schema is told rather than misreading fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(SCHEMA_VERSION)
    }
}

impl JsonSchema for SchemaVersion {
    fn schema_name() -> Cow<'static, str> {
        "SchemaVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The version of this document's schema; changes are listed in docs/json.md.",
            "type": "integer",
            "const": SCHEMA_VERSION,
        })
    }
}

/// A commit, the same object in every document: `{"id": sha, "summary": subject}`, or
/// `{"worktree": path}` for a composition read from the working tree (`--worktree`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Commit {
    Commit {
        /// The full hex object id.
        id: String,
        /// The first line of the commit message (empty when the commit is not in this clone).
        summary: String,
    },
    Worktree {
        /// The working tree, uncommitted edits included.
        worktree: String,
    },
}

impl Commit {
    pub fn new(id: &str, summary: impl Into<String>) -> Commit {
        Commit::Commit { id: id.to_string(), summary: summary.into() }
    }

    pub fn of(origin: &Origin) -> Commit {
        match origin {
            Origin::Commit { id, summary } => Commit::new(id, summary.clone()),
            Origin::Worktree { path } => Commit::Worktree { worktree: path.display().to_string() },
        }
    }

    /// `id` in a repository, with its subject from it.
    pub fn in_repo(repo: &crate::source::Repo, id: &str) -> Commit {
        Commit::new(id, repo.summary(id))
    }
}

/// What kind of problem: the engine's error kinds, and `stage` for a pipeline stage that
/// failed or was refused (or, for `pipeline gate`, a shard that failed or has not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    /// A file of the composition cannot be parsed.
    Syntax,
    /// The composition parses but is inconsistent.
    Invalid,
    /// A hiera lookup failed.
    Lookup,
    /// Rendering a template failed.
    Render,
    /// The git repository, a revision or the promotion state could not be read or written.
    Git,
    /// The command line or the environment names something that does not exist.
    Usage,
    /// Talking to a host failed: unreachable, refused, locked, lost.
    Host,
    /// A change ran on a host and failed (a command, a validation, a restart).
    Apply,
    /// The local lab could not be managed.
    Lab,
    /// A local file could not be read or written.
    Io,
    /// A pipeline stage failed or was refused.
    Stage,
}

impl From<ErrorKind> for ProblemKind {
    fn from(kind: ErrorKind) -> ProblemKind {
        match kind {
            ErrorKind::Syntax => ProblemKind::Syntax,
            ErrorKind::Invalid => ProblemKind::Invalid,
            ErrorKind::Lookup => ProblemKind::Lookup,
            ErrorKind::Render => ProblemKind::Render,
            ErrorKind::Git => ProblemKind::Git,
            ErrorKind::Usage => ProblemKind::Usage,
            ErrorKind::Host => ProblemKind::Host,
            ErrorKind::Apply => ProblemKind::Apply,
            ErrorKind::Lab => ProblemKind::Lab,
            ErrorKind::Io => ProblemKind::Io,
        }
    }
}

/// One problem, the same object in every document's `errors` (and `warnings`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What went wrong and where, as the text output says it (`path:line: detail`).
    pub message: String,
    /// What went wrong, without the location.
    pub detail: String,
    /// The composition file, relative to the repository root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The hosts the same problem was found on (`check` groups them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Problem {
    pub fn of(e: &Error) -> Problem {
        let (path, line, host) = match e.location() {
            Some(Location::File { path, line }) => (Some(path.display().to_string()), *line, None),
            Some(Location::Host { host }) => (None, None, Some(host.clone())),
            None => (None, None, None),
        };
        Problem {
            kind: e.kind().into(),
            message: e.to_string(),
            detail: e.detail().to_string(),
            path,
            line,
            host,
            hosts: Vec::new(),
        }
    }

    pub fn all(errors: &Errors) -> Vec<Problem> {
        errors.iter().map(Problem::of).collect()
    }

    /// A problem known only by its text.
    pub fn new(kind: impl Into<ProblemKind>, detail: &str) -> Problem {
        Problem {
            kind: kind.into(),
            message: detail.to_string(),
            detail: detail.to_string(),
            path: None,
            line: None,
            host: None,
            hosts: Vec::new(),
        }
    }

    /// A problem on `host` known only by its text.
    pub fn on_host(kind: impl Into<ProblemKind>, host: &str, detail: &str) -> Problem {
        Problem {
            kind: kind.into(),
            message: format!("{host}: {detail}"),
            detail: detail.to_string(),
            path: None,
            line: None,
            host: Some(host.to_string()),
            hosts: Vec::new(),
        }
    }
}

/// What a command prints with `--format json` when it stops before it has a result (an unknown
/// environment, a composition that does not load, a saved plan that drifted).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub schema_version: SchemaVersion,
    /// The command, as typed: `plan`, `pipeline run`.
    pub command: String,
    /// Why it stopped; never empty.
    #[schemars(length(min = 1))]
    pub errors: Vec<Problem>,
}

impl Failure {
    pub fn text(command: &str, errors: &Errors) -> String {
        text(&Failure {
            schema_version: SchemaVersion,
            command: command.to_string(),
            errors: Problem::all(errors),
        })
    }
}

/// A document as printed: pretty, with a final newline.
pub fn text(doc: &impl Serialize) -> String {
    serde_json::to_string_pretty(doc).expect("documents serialise") + "\n"
}

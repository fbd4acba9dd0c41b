//! stackdeploy: a declarative deployment pipeline engine.
//!
//! Data flows one way: a [`Snapshot`] of the composition at a commit → [`Composition`] → a
//! compiled [`Catalog`] per host → a plan against probed state → apply → a recorded result.
//! git, SSH and printing stay at the edges (`source`, `transport`, `commands`/`report`);
//! everything in between is pure and unit-tested. `docs/architecture.md` maps the modules.
//!
//! The public API is what the `stackdeploy` binary, the benchmarks and the integration tests
//! need: the CLI entry point, loading and compiling compositions, commit-to-commit diffs and
//! their review report, SSH sessions and the local lab. Everything else is crate-private.

mod catalog;
pub mod cli;
mod commands;
mod composition;
mod digest;
mod error;
mod event;
mod exit;
mod facts;
#[doc(hidden)]
pub mod fuzzing;
mod glob;
mod hiera;
mod import;
pub mod lab;
mod model;
mod patchfile;
mod pipeline;
mod plan;
mod pool;
mod precommit;
mod remote;
mod report;
mod rollout;
mod runinfo;
mod secrets;
mod shell;
mod source;
mod sql;
mod state;
mod suggest;
mod template;
#[cfg(test)]
mod testing;
mod text;
mod transport;
mod utc;
mod workdir;

pub use catalog::{Catalog, Compiler, EnvContext, Resource, compile_all};
pub use commands::run;
pub use composition::Composition;
pub use error::{Error, ErrorKind, Errors, Location, Result};
pub use exit::ExitStatus;
pub use model::{Environment, Host, Pipeline};
pub use plan::compare::{EnvDiff, Side, diff_env};
pub use source::{Origin, Repo, Snapshot};
pub use transport::{Output, Session, Target};

/// What reviewers read: a diff (or plan) grouped by change, as text, JSON or HTML.
pub mod review {
    pub use crate::report::Style;
    pub use crate::report::review::{Review, html, text};
}

//! `stackdeploy state pull|push`: the pipeline state shared through a git remote, and which
//! remote the other commands share it through.

use super::{CmdResult, Context};
use crate::cli::StateAction;
use crate::error::Errors;
use crate::exit::ExitStatus;
use crate::model::Pipeline;
use crate::pipeline::GitStore;
use crate::source::Repo;

/// The remote the pipeline state is shared through, if any: `STACKDEPLOY_STATE_REMOTE` (so a
/// CI file can turn sharing on without editing pipeline.toml), else `[project] state_remote`.
pub(super) fn shared_remote(pipeline: &Pipeline) -> Option<String> {
    std::env::var("STACKDEPLOY_STATE_REMOTE")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| pipeline.state_remote.clone())
}

/// The shared remote of the composition at HEAD of `repo` (pipeline.toml only).
pub(super) fn shared_remote_of(repo: &Repo) -> Result<Option<String>, Errors> {
    let pipeline = Pipeline::from_snapshot(&repo.snapshot_at("HEAD")?)?;
    Ok(shared_remote(&pipeline))
}

/// Pulls from the shared remote, if there is one; says so on stderr.
pub(super) fn pull_shared(store: &GitStore, remote: Option<&str>) -> Result<(), Errors> {
    if let Some(remote) = remote {
        let synced = store.pull(remote)?;
        super::note(format_args!("pipeline state pulled from {remote}: {}", synced.summary()));
    }
    Ok(())
}

/// Pushes to the shared remote, if there is one; says so on stderr.
pub(super) fn push_shared(store: &GitStore, remote: Option<&str>) -> Result<(), Errors> {
    if let Some(remote) = remote {
        let synced = store.push(remote)?;
        super::note(format_args!("pipeline state pushed to {remote}: {}", synced.summary()));
    }
    Ok(())
}

pub(super) fn run(ctx: &Context, action: &StateAction) -> CmdResult {
    let repo = ctx.repo()?;
    let store = GitStore::open(repo.dir())?;
    let (arg, push) = match action {
        StateAction::Pull(a) => (a, false),
        StateAction::Push(a) => (a, true),
    };
    let remote = match &arg.remote {
        Some(r) => r.clone(),
        None => shared_remote_of(&repo)?.unwrap_or_else(|| "origin".to_string()),
    };
    if push {
        push_shared(&store, Some(&remote))?;
    } else {
        pull_shared(&store, Some(&remote))?;
    }
    Ok(ExitStatus::Ok)
}

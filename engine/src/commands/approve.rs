//! `stackdeploy approve REV --stage S`: a manual approval, recorded in the commit's note.

use super::{CmdResult, Context};
use crate::cli::ApproveArgs;
use crate::error;
use crate::exit::ExitStatus;
use crate::model::Pipeline;
use crate::pipeline::{GitStore, Store, store::Approval};
use crate::source::short;

pub(super) fn run(ctx: &Context, args: &ApproveArgs) -> CmdResult {
    let repo = ctx.repo()?;
    let commit = repo.resolve(&args.commit)?;
    let pipeline = Pipeline::from_snapshot(&repo.snapshot_at(&commit)?)?;
    let Some(stage) = pipeline.stages.iter().find(|s| s.name == args.stage) else {
        let known: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        return Err(error::usage(format!(
            "no stage '{}' (stages: {}){}",
            args.stage,
            known.join(", "),
            crate::suggest::hint(&args.stage, known.iter().copied())
        ))
        .into());
    };
    if !stage.approval {
        super::note(format_args!(
            "note: stage '{}' does not need approval; recording it anyway",
            stage.name
        ));
    }
    let approval = Approval::now();
    let store = GitStore::open(repo.dir())?;
    let remote = super::state::shared_remote(&pipeline);
    super::state::pull_shared(&store, remote.as_deref())?;
    store.approve(&commit, &stage.name, approval.clone())?;
    super::state::push_shared(&store, remote.as_deref())?;
    super::note(format_args!(
        "approved stage '{}' for commit {} (as {})",
        stage.name,
        short(&commit),
        approval.user
    ));
    Ok(ExitStatus::Ok)
}

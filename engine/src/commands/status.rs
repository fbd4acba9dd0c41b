//! `stackdeploy status`: recent commits × stages, and what each environment and host runs.

use super::{CmdResult, Context, out};
use crate::cli::{Format, StatusArgs};
use crate::exit::ExitStatus;
use crate::model::Pipeline;
use crate::pipeline::GitStore;
use crate::report::json;
use crate::report::status as report;

pub(super) fn run(ctx: &Context, args: &StatusArgs) -> CmdResult {
    let repo = ctx.repo()?;
    let head = repo.resolve(ctx.rev.as_deref().unwrap_or("HEAD"))?;
    let pipeline = Pipeline::from_snapshot(&repo.snapshot_at(&head)?)?;
    let store = GitStore::open(repo.dir())?;
    let status = crate::pipeline::status::status(&repo, &store, &pipeline, &head, args.count)?;
    out(&match args.format {
        Format::Json => json::text(&json::status::document(&status, &|id| repo.summary(id))),
        Format::Text => report::text(&status),
    });
    Ok(ExitStatus::Ok)
}

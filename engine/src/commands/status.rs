//! `stackdeploy status`: recent commits × stages, and what each environment and host runs.

use super::{CmdResult, Context, out};
use crate::cli::{Format, StatusArgs};
use crate::error;
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
    for fact in &args.by {
        let hosts = || pipeline.environments.values().flat_map(|e| &e.hosts);
        if !hosts().any(|h| h.facts.contains_key(fact)) {
            let known: std::collections::BTreeSet<&str> =
                hosts().flat_map(|h| h.facts.keys().map(String::as_str)).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.into_iter().collect::<Vec<_>>().join(", ")
            };
            return Err(error::usage(format!(
                "status --by {fact}: no host in pipeline.toml has the fact '{fact}' (facts of \
                 its hosts: {known}); set it in a host's or an environment's `facts`"
            ))
            .into());
        }
    }
    let status =
        crate::pipeline::status::status(&repo, &store, &pipeline, &head, args.count, &args.by)?;
    out(&match args.format {
        Format::Json => json::text(&json::status::document(&status, &|id| repo.summary(id))),
        Format::Text => report::text(&status),
    });
    Ok(ExitStatus::Ok)
}

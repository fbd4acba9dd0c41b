//! `stackdeploy status`: recent commits × stages, and what each environment and host runs.

use super::{CmdResult, Context, out};
use crate::cli::{Format, StatusArgs};
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::model::Pipeline;
use crate::pipeline::GitStore;
use crate::report::json;
use crate::report::status as report;
use crate::secrets::Secrets;
use crate::source::Repo;

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
    let mut status =
        crate::pipeline::status::status(&repo, &store, &pipeline, &head, args.count, &args.by)?;
    // Commit subjects and fact values are redacted as every other output is: a password
    // pasted into a commit message or a fact is not printed again here.
    let secrets = secrets_at(ctx, &repo, &head)?;
    for commit in &mut status.commits {
        commit.subject = secrets.redact(&commit.subject).into_owned();
    }
    for group in status.environments.iter_mut().flat_map(|e| &mut e.groups) {
        for value in group.facts.iter_mut().flatten() {
            *value = secrets.redact(value).into_owned();
        }
    }
    let summary = |id: &str| secrets.redact(&repo.summary(id)).into_owned();
    out(&match args.format {
        Format::Json => json::text(&json::status::document(&status, &summary)),
        Format::Text => report::text(&status),
    });
    Ok(ExitStatus::Ok)
}

/// Every environment's secrets at `commit`; none, with a warning, when it does not load
/// (status still shows a broken commit's results).
fn secrets_at(ctx: &Context, repo: &Repo, commit: &str) -> Result<Secrets, Errors> {
    let comp = match super::load(&repo.snapshot_at(commit)?, ctx.keyring()?) {
        Ok(comp) => comp,
        Err(errors) => {
            super::note(format_args!(
                "warning: commit {} does not load ({}), so secrets in commit subjects and facts \
                 are not redacted",
                crate::source::short(commit),
                errors.into_iter().next().map(|e| e.to_string()).unwrap_or_default()
            ));
            return Ok(Secrets::default());
        }
    };
    let mut secrets = Secrets::default();
    for env in comp.pipeline.environments.values() {
        secrets.extend(&crate::pipeline::runner::environment_secrets(&comp, env));
    }
    Ok(secrets)
}

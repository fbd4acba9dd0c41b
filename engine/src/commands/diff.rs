//! `stackdeploy diff`: an environment's catalogs at two commits, compared with no host
//! contacted, for reviewers and CI.

use std::path::Path;

use super::{CmdResult, Context, load, out, write_file};
use crate::catalog::{Compiler, EnvContext};
use crate::cli::{DiffArgs, Format};
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::model::Host;
use crate::pipeline::{GitStore, Store, store::env_ref};
use crate::plan::compare::{Side, diff_env};
use crate::report::{Style, json, review};
use crate::source::CommitSummary;

/// Commits listed in the HTML report; a longer range says how many more there are.
const MAX_COMMITS: usize = 200;

pub(super) fn run(ctx: &Context, args: &DiffArgs) -> CmdResult {
    let repo = ctx.repo()?;
    if args.from.is_none() {
        // A name that is no environment at all is the mistake to report, before its ref.
        crate::model::Pipeline::from_snapshot(&ctx.snapshot()?.1)?.environment(&args.env)?;
    }
    let from_rev = match &args.from {
        Some(rev) => rev.clone(),
        None => GitStore::open(repo.dir())?.env_commit(&args.env)?.ok_or_else(|| {
            error::usage(format!(
                "environment '{}' has no deployed commit yet ({} is not set); give the \
                 older commit: `stackdeploy diff REV_A [REV_B] --env {}`",
                args.env,
                env_ref(&args.env),
                args.env
            ))
        })?,
    };
    let keyring = ctx.keyring()?;
    let old = load(&repo.snapshot_at(&from_rev)?, keyring.clone())?;
    let new_snapshot = match (&args.to, ctx.worktree) {
        (Some(_), true) => {
            return Err(error::usage(
                "give either REV_B or --worktree, not both: --worktree diffs against the working tree",
            )
            .into());
        }
        (Some(rev), false) => repo.snapshot_at(rev)?,
        (None, _) => ctx.snapshot()?.1,
    };
    let new = load(&new_snapshot, keyring)?;
    let commit_of = |c: &crate::composition::Composition| {
        c.origin.commit_id().unwrap_or("worktree").to_string()
    };
    let (from_commit, to_commit) = (commit_of(&old), commit_of(&new));

    let new_env = new.pipeline.environment(&args.env)?;
    let old_env = old.pipeline.environments.get(&args.env);
    let cache = FactCache::new(repo.dir());
    let facts = |h: &Host| cache.facts(h);
    let (old_compiler, new_compiler) = (Compiler::new(&old)?, Compiler::new(&new)?);
    // An environment that is new at REV_B compares against nothing: every host is added.
    let old_ctx = old_env.map(|e| EnvContext::new(&old, e, &facts));
    let new_ctx = EnvContext::new(&new, new_env, &facts);
    let limit = args.limit.as_deref();
    if let Some(limit) = limit {
        // A host removed at REV_B is still one the limit may name: its removal is the diff.
        let mut known: Vec<&Host> = new_env.hosts.iter().collect();
        let removed = old_env.iter().flat_map(|e| &e.hosts);
        known.extend(removed.filter(|h| new_env.host(&h.name).is_none()));
        if !known.iter().any(|h| crate::model::stages::matches(limit, h)) {
            return Err(crate::model::limit::no_match(&args.env, &known, limit).into());
        }
    }
    let selected = |h: &Host| limit.is_none_or(|l| crate::model::stages::matches(l, h));
    let started = std::time::Instant::now();
    let result = diff_env(
        &args.env,
        &Side {
            commit: &from_commit,
            compiler: &old_compiler,
            env: old_env.zip(old_ctx.as_ref()),
            facts: &facts,
        },
        &Side {
            commit: &to_commit,
            compiler: &new_compiler,
            env: Some((new_env, &new_ctx)),
            facts: &facts,
        },
        &selected,
    )?;
    tracing::debug!(
        hosts = result.compared,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "diff computed"
    );
    let mut view = review::Review::of_diff(&result);
    if let Some(path) = &args.html {
        if new.origin.commit_id().is_some() {
            let (commits, total) = repo.commits_between(&from_commit, &to_commit, MAX_COMMITS)?;
            let redacted = commits
                .into_iter()
                .map(|c| CommitSummary {
                    subject: result.redact(&c.subject),
                    author: result.redact(&c.author),
                    ..c
                })
                .collect();
            view.commits = Some((redacted, total));
        }
        write_html(path, &view)?;
    }
    match args.format {
        Format::Text if crate::report::quiet() => out(&review::summary_text(&view)),
        Format::Text => out(&review::text(&view, Style::for_stdout())),
        Format::Json => {
            let (from, to) = (json::Commit::of(&old.origin), json::Commit::of(&new.origin));
            out(&json::text(&json::diff::document(&view, from, to)));
        }
    }
    Ok(if args.exit_code && view.has_changes() { ExitStatus::Changes } else { ExitStatus::Ok })
}

/// Writes the review page to `path` and its stylesheet next to it (`diff.html` → `diff.css`),
/// each atomically. The page links the stylesheet by file name, so a CI server that serves
/// artifacts with `style-src 'self'` (and no inline styles) still applies it.
pub(super) fn write_html(path: &Path, view: &review::Review) -> Result<(), Errors> {
    let css = path.with_extension("css");
    let name = match css.file_name() {
        Some(name) if css != path => name.to_string_lossy().into_owned(),
        _ => {
            return Err(error::usage(format!(
                "--html {}: name the page's file, e.g. review.html (its stylesheet is written \
                 next to it with the extension .css)",
                path.display()
            ))
            .into());
        }
    };
    write_file(&css, review::STYLESHEET)?;
    write_file(path, &review::html(view, &name))
}

//! The `diff` command: an environment's catalogs at two commits, compared with no host
//! contacted, for reviewers and CI.

use std::path::Path;

use crate::app::{CmdResult, Context, out};
use crate::catalog::{Compiler, EnvContext};
use crate::cli::{DiffArgs, Format};
use crate::diff::{Side, diff_env};
use crate::error::{self, Error};
use crate::facts::FactCache;
use crate::model::Composition;
use crate::report::review::{self, Review};
use crate::source::Repo;

pub fn diff(ctx: &Context, args: &DiffArgs) -> CmdResult {
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let from_rev = match &args.from {
        Some(rev) => rev.clone(),
        None => crate::promotion::env_commit(repo.git(), &args.env)
            .map_err(|e| vec![e])?
            .map(|id| id.to_string())
            .ok_or_else(|| {
                vec![error::usage(format!(
                    "environment '{}' has no deployed commit yet ({} is not set); give the \
                     older commit: `stackdeploy diff REV_A [REV_B] --env {}`",
                    args.env,
                    crate::promotion::env_ref(&args.env),
                    args.env
                ))]
            })?,
    };
    let keyring = ctx.keyring()?;
    let mut old = Composition::load(&repo.snapshot_at(&from_rev).map_err(|e| vec![e])?)?;
    old.keyring = keyring.clone();
    let new_snapshot = match (&args.to, ctx.worktree) {
        (Some(_), true) => {
            return Err(vec![error::usage(
                "give either REV_B or --worktree, not both: --worktree diffs against the working tree",
            )]);
        }
        (Some(rev), false) => repo.snapshot_at(rev),
        (None, _) => Ok(ctx.snapshot()?.1),
    }
    .map_err(|e| vec![e])?;
    let mut new = Composition::load(&new_snapshot)?;
    new.keyring = keyring;
    let commit_of = |c: &Composition| c.origin.commit_id().unwrap_or("worktree").to_string();
    let (from_commit, to_commit) = (commit_of(&old), commit_of(&new));

    let new_env = new.pipeline.environment(&args.env).map_err(|e| vec![e])?;
    let old_env = old.pipeline.environments.get(&args.env);
    let cache = FactCache::new(repo.dir());
    let facts = |h: &crate::model::Host| cache.facts(h);
    let (old_compiler, new_compiler) = (Compiler::new(&old)?, Compiler::new(&new)?);
    // An environment that is new at REV_B compares against nothing: every host is added.
    let old_ctx = old_env.map(|e| EnvContext::new(&old, e, &facts));
    let new_ctx = EnvContext::new(&new, new_env, &facts);
    let limit = args.limit.as_deref();
    let selected =
        |h: &crate::model::Host| limit.is_none_or(|l| crate::model::stages::matches(l, h));
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
    let view = Review::of_diff(&result);
    if let Some(path) = &args.html {
        write_report(path, &review::html(&view)).map_err(|e| vec![e])?;
    }
    match args.format {
        Format::Text => out(&review::text(&view, crate::converge::style())),
        Format::Json => out(&review::json(&view)),
    }
    Ok(if args.exit_code && view.has_changes() { 2 } else { 0 })
}

/// Writes a report file whole or not at all (temp file, then rename).
pub(crate) fn write_report(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error::io(format!("cannot write {}", path.display())).with_source(e)
    })?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

//! `stackdeploy drift --env E`: what changed on each host that no commit asked for, compared
//! with the commit the host runs; exit 0 none, 2 drift, 1 error.

use std::sync::Arc;

use super::plan::{Setup, env_name, selected, setup};
use super::{CmdResult, Context, out};
use crate::cli::{DriftArgs, Format};
use crate::error::{self, Error};
use crate::exit::ExitStatus;
use crate::pipeline::{GitStore, Store};
use crate::report::Style;
use crate::rollout::drift::survey;
use crate::source::short;

pub(super) fn run(ctx: &Context, args: &DriftArgs) -> CmdResult {
    if ctx.worktree || ctx.rev.is_some() {
        return Err(error::usage(
            "drift compares each host with the commit it runs (its applied record), not with \
             --rev or the working tree: drop them (`stackdeploy diff` compares commits)",
        )
        .into());
    }
    let setup: Setup = setup(ctx, &args.run, false)?;
    let env_name = env_name(&args.run)?;
    let env = setup.comp.pipeline.environment(env_name)?;
    let hosts = selected(env, &args.run)?;
    let head = setup.comp.origin.commit_id().unwrap_or_default().to_string();
    // Where the promotion state says each host is: usually right, so one probe each.
    let store = GitStore::open(setup.repo.dir())?;
    let env_commit = store.env_commit(env_name)?;
    let host_commits = store.host_commits(env_name)?;
    let guess = |h: &crate::model::Host| {
        host_commits.get(&h.name).or(env_commit.as_ref()).cloned().unwrap_or_else(|| head.clone())
    };
    let keyring = ctx.keyring()?;
    let load = |commit: &str| -> Result<Arc<crate::composition::Composition>, Error> {
        let snapshot = setup.repo.snapshot_at(commit).map_err(|e| {
            error::git(format!(
                "runs commit {}, which this clone does not have: fetch it (`git fetch`, or \
                 `stackdeploy state pull` for the pipeline's refs) and run drift again",
                short(commit)
            ))
            .with_source(e)
        })?;
        super::load(&snapshot, keyring.clone()).map(Arc::new).map_err(|errors| {
            let first = errors.into_iter().next().unwrap_or_else(|| error::invalid("no detail"));
            error::invalid(format!("commit {} does not load: {first}", short(commit)))
        })
    };
    let surveyed = setup.reach(env, |reach| survey(env_name, &hosts, &guess, &load, reach));

    let results: Vec<(&str, Result<_, &str>)> = surveyed
        .iter()
        .map(|s| (s.host.as_str(), s.result.as_ref().map_err(|e| e.detail())))
        .collect();
    let style = Style::for_stdout();
    match args.run.format {
        Format::Text if crate::report::quiet() => {
            out(&crate::report::drift::brief(&results, style))
        }
        Format::Text => out(&crate::report::drift::text(&results, style)),
        Format::Json => {
            let json = crate::report::json::drift::document(env_name, &results);
            out(&crate::report::json::text(&json))
        }
    }
    if let Some(path) = &args.html {
        let drifts: Vec<_> = surveyed.iter().filter_map(|s| s.result.as_ref().ok()).collect();
        let errors: Vec<(String, String)> = surveyed
            .iter()
            .filter_map(|s| s.result.as_ref().err().map(|e| (s.host.clone(), e.detail().into())))
            .collect();
        let review = crate::report::review::Review::of_drift(env_name, &drifts, &errors);
        super::diff::write_html(path, &review)?;
    }
    let failed = surveyed.iter().any(|s| s.result.is_err());
    let drifted = surveyed.iter().any(|s| s.result.as_ref().is_ok_and(|d| d.drifted()));
    Ok(if failed {
        ExitStatus::Failed
    } else if drifted {
        ExitStatus::Changes
    } else {
        ExitStatus::Ok
    })
}

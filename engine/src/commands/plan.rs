//! `stackdeploy plan`: a dry run over SSH, optionally saved for `apply PLANFILE` and written as
//! an HTML report. Also what `plan` and `apply` share: the composition at a commit, the hosts
//! `--limit` selects, and a rollout over SSH.

use std::path::Path;
use std::time::Duration;

use super::{CmdResult, Context, out, write_file};
use crate::cli::{Format, PlanArgs, RunArgs};
use crate::composition::Composition;
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::model::{Environment, Host};
use crate::plan::history::History;
use crate::plan::planfile::SavedPlan;
use crate::report::Style;
use crate::report::json;
use crate::report::plan::{plans_brief, plans_text, run_errors};
use crate::report::progress::Progress;
use crate::report::review::Review;
use crate::rollout::{HostRun, Hosts, Rollout, Ssh, SshOptions};
use crate::runinfo::{now, user};
use crate::source::Repo;

/// The composition of a plan or apply, and how its hosts are reached.
pub(super) struct Setup {
    pub repo: Repo,
    pub comp: Composition,
    pub facts: FactCache,
    pub ssh: SshOptions,
    pub forks: usize,
}

impl Setup {
    pub fn new(repo: Repo, comp: Composition, args: &RunArgs) -> Setup {
        let facts = FactCache::new(repo.dir());
        let ssh = SshOptions {
            trust_new_host_keys: args.trust_new_host_keys,
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        };
        Setup { repo, comp, facts, ssh, forks: args.forks.max(1) }
    }

    /// Runs `f` with a rollout of this composition to `env` over SSH, reporting progress.
    pub fn rollout<R>(
        &self,
        env: &Environment,
        f: impl FnOnce(&Rollout<'_>) -> Result<R, Errors>,
    ) -> Result<R, Errors> {
        self.reach(env, |hosts| f(&Rollout::new(&self.comp, env, hosts)?))
    }

    /// Runs `f` with what reaches the hosts of `env` over SSH (with `env`'s SSH settings),
    /// reporting progress.
    pub fn reach<R>(&self, env: &Environment, f: impl FnOnce(Hosts<'_>) -> R) -> R {
        let load = |c: &str| self.repo.snapshot_at(c).ok();
        let history = History::new(&load, self.comp.keyring.clone());
        let ssh = Ssh::new(env, self.repo.dir(), self.ssh.clone());
        let progress = Progress::new();
        f(Hosts {
            connect: &ssh,
            facts: &self.facts,
            history: &history,
            forks: self.forks,
            events: &progress,
        })
    }
}

pub(super) fn env_name(args: &RunArgs) -> Result<&str, Errors> {
    args.env.as_deref().ok_or_else(|| {
        error::usage("which environment? pass --env ENV (or set STACKDEPLOY_ENV)").into()
    })
}

/// The composition at the command's commit. `refuse_worktree`: what runs must be a commit.
pub(super) fn setup(ctx: &Context, args: &RunArgs, refuse_worktree: bool) -> Result<Setup, Errors> {
    if ctx.worktree && refuse_worktree {
        return Err(error::usage(
            "apply (and plan --out, whose plan apply will use) reads the composition from a commit; commit your changes (or pass --rev) instead of --worktree",
        )
        .into());
    }
    let (repo, comp) = ctx.load()?;
    Ok(Setup::new(repo, comp, args))
}

/// The hosts of `env` that `--limit` selects (all without one) in `--shard`'s part; none is an
/// error.
pub(super) fn selected<'e>(env: &'e Environment, run: &RunArgs) -> Result<Vec<&'e Host>, Errors> {
    let limit = run.limit.as_deref();
    let mut hosts = crate::model::limit::select(&env.name, &env.hosts, limit)?;
    if let Some(shard) = run.shard.shard()? {
        hosts = shard.take(&env.hosts, &hosts);
        if hosts.is_empty() {
            return Err(error::usage(format!(
                "shard {shard} of environment '{}' has no host{}",
                env.name,
                if limit.is_some() { " that --limit selects" } else { "" }
            ))
            .into());
        }
    }
    Ok(hosts)
}

/// Prints the plans of prepared hosts (`brief`: only failures and the summary line); returns
/// (any changes, any host failed).
pub(super) fn print_plans(
    runs: &[HostRun],
    setup: &Setup,
    env: &str,
    format: Format,
    brief: bool,
) -> (bool, bool) {
    let changes = runs.iter().filter_map(|r| r.plan.as_ref()).any(|p| !p.is_empty());
    let failed = runs.iter().any(|r| r.error.is_some());
    let commit = setup.comp.origin.commit_id().unwrap_or("worktree");
    match format {
        Format::Text if brief => out(&plans_brief(runs, commit, Style::for_stdout())),
        Format::Text => out(&plans_text(runs, env, commit, Style::for_stdout())),
        Format::Json => {
            let commit = json::Commit::of(&setup.comp.origin);
            out(&json::text(&json::plan::document(env, commit, runs)));
        }
    }
    (changes, failed)
}

pub(super) fn run(ctx: &Context, args: &PlanArgs) -> CmdResult {
    let setup = setup(ctx, &args.run, args.out.is_some())?;
    let env_name = env_name(&args.run)?;
    let env = setup.comp.pipeline.environment(env_name)?;
    let hosts = selected(env, &args.run)?;
    let (commit, runs) = setup.rollout(env, |r| Ok((r.commit.clone(), r.prepare(&hosts)?)))?;
    let (changes, failed) =
        print_plans(&runs, &setup, env_name, args.run.format, crate::report::quiet());
    if let Some(path) = &args.html {
        let plans: Vec<_> = runs.iter().filter_map(|r| r.plan.as_ref()).collect();
        let review = Review::of_plans(env_name, &commit, &plans, &run_errors(&runs));
        super::diff::write_html(path, &review)?;
    }
    if let Some(path) = &args.out {
        let mut saved = SavedPlan::new(env_name, &commit, &user(), now());
        for r in &runs {
            if let (Some(plan), Some(observed)) = (&r.plan, &r.observed) {
                saved.add(plan.clone(), observed, &r.catalog);
            }
        }
        saved.failed = run_errors(&runs);
        write_file(path, &saved.to_json())?;
        super::note(format_args!(
            "apply exactly this plan with: stackdeploy apply {}{}",
            path.display(),
            if ctx.dir == Path::new(".") {
                String::new()
            } else {
                format!(" -C {}", ctx.dir.display())
            }
        ));
    }
    Ok(if failed {
        ExitStatus::Failed
    } else if changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Ok
    })
}

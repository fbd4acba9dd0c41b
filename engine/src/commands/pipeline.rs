//! `stackdeploy pipeline run`: the stages of pipeline.toml for one commit. Also what the
//! commands that run stages and rollbacks share: this machine's git store, keys, facts cache,
//! progress and SSH.

use super::{CmdResult, Context, confirm, out};
use crate::cli::{Format, GateArgs, PipelineAction, PipelineRunArgs};
use crate::error;
use crate::error::Errors;
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::model::{Environment, PIPELINE_FILE, Pipeline, Shard};
use crate::pipeline::runner::{Connector, select};
use crate::pipeline::{Ended, GitStore, Runner};
use crate::report::progress::Progress;
use crate::report::{json, junit, pipeline as report};
use crate::rollout::{Connect, Ssh, SshOptions};
use crate::runinfo::RunInfo;
use crate::secrets::Keys;
use crate::source::Repo;
use crate::source::short;

/// What a pipeline runner works with on this machine.
pub(super) struct Machine {
    pub store: GitStore,
    pub keys: Keys,
    pub facts: FactCache,
    pub progress: Progress,
    pub run: RunInfo,
    connect: Box<Connector<'static>>,
}

impl Machine {
    pub fn new(ctx: &Context, repo: &Repo) -> Result<Machine, Errors> {
        let dir = repo.dir().to_path_buf();
        let connect = move |env: &Environment| -> Box<dyn Connect> {
            Box::new(Ssh::new(env, &dir, SshOptions::default()))
        };
        Ok(Machine {
            store: GitStore::open(repo.dir())?,
            keys: ctx.keys()?,
            facts: FactCache::new(repo.dir()),
            progress: Progress::new(),
            run: RunInfo::current(),
            connect: Box::new(connect),
        })
    }

    pub fn runner<'a>(
        &'a self,
        repo: &'a Repo,
        forks: usize,
        state_remote: Option<&'a str>,
        shard: Option<&'a Shard>,
    ) -> Runner<'a> {
        Runner {
            repo,
            store: &self.store,
            connect: self.connect.as_ref(),
            keys: &self.keys,
            facts: &self.facts,
            forks: forks.max(1),
            events: &self.progress,
            run: &self.run,
            state_remote,
            shard,
        }
    }
}

/// This machine's name, for reports (the kernel's, else `HOSTNAME`, else `localhost`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

pub(super) fn run(ctx: &Context, action: &PipelineAction) -> CmdResult {
    match action {
        PipelineAction::Run(a) => run_stages(ctx, a),
        PipelineAction::Gate(a) => gate(ctx, a),
    }
}

fn run_stages(ctx: &Context, args: &PipelineRunArgs) -> CmdResult {
    if ctx.worktree {
        return Err(error::usage(
            "pipeline stages run on commits only; commit your changes instead of --worktree",
        )
        .into());
    }
    let repo = ctx.repo()?;
    let commit = repo.resolve(ctx.rev.as_deref().unwrap_or("HEAD"))?;
    let snapshot = repo.snapshot_at(&commit)?;
    // The stages come from pipeline.toml alone, so a commit whose profiles do not compile still
    // gets its precommit stage run (and failed) and recorded.
    let pipeline = Pipeline::from_snapshot(&snapshot)?;
    if pipeline.stages.is_empty() {
        return Err(error::usage("pipeline.toml declares no [[stages]]")
            .at_file(PIPELINE_FILE, None)
            .into());
    }
    let stages = select(&pipeline.stages, args.from.as_deref(), args.to.as_deref())?;
    let question = format!(
        "Run stages {} for commit {}?",
        stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        short(&commit)
    );
    if stages.iter().any(|s| s.kind.applies()) && !args.yes && !confirm("pipeline run", &question)?
    {
        return Ok(ExitStatus::Failed);
    }
    if args.lab {
        let envs: std::collections::BTreeSet<&str> =
            stages.iter().filter_map(|s| s.environment.as_deref()).collect();
        for name in envs {
            let (_, up) = super::lab::up(repo.dir(), pipeline.environment(name)?)?;
            super::note(format_args!("lab '{name}' is up: {} host(s)", up.len()));
        }
    }
    let shard = args.shard.shard()?;
    let machine = Machine::new(ctx, &repo)?;
    let remote = super::state::shared_remote(&pipeline);
    let runner = machine.runner(&repo, args.forks, remote.as_deref(), shard.as_ref());
    let outcome = runner.run(&commit, &snapshot, stages)?;
    let run = &machine.run;
    if let Some(path) = &args.junit {
        super::write_file(path, &junit::junit(&outcome, &hostname()))?;
    }
    match args.format {
        Format::Text => out(&report::text(&outcome)),
        Format::Json => {
            let commit = json::Commit::in_repo(&repo, &commit);
            out(&json::text(&json::pipeline::document(&outcome, commit, &run.id)));
        }
    }
    Ok(match outcome.ended {
        Ended::Passed => ExitStatus::Ok,
        Ended::AwaitingApproval => ExitStatus::AwaitingApproval,
        Ended::Failed | Ended::Refused => ExitStatus::Failed,
    })
}

fn gate(ctx: &Context, args: &GateArgs) -> CmdResult {
    let repo = ctx.repo()?;
    let commit = repo.resolve(ctx.rev.as_deref().unwrap_or("HEAD"))?;
    let pipeline = Pipeline::from_snapshot(&repo.snapshot_at(&commit)?)?;
    let stage = select(&pipeline.stages, Some(&args.stage), Some(&args.stage))?
        .first()
        .expect("one stage selected");
    let machine = Machine::new(ctx, &repo)?;
    let remote = super::state::shared_remote(&pipeline);
    let gate = machine.runner(&repo, 1, remote.as_deref(), None).gate(&commit, stage)?;
    match args.format {
        Format::Text => out(&report::gate_text(&gate, &commit)),
        Format::Json => {
            let commit = json::Commit::in_repo(&repo, &commit);
            out(&json::text(&json::gate::document(&gate, commit)));
        }
    }
    Ok(ExitStatus::failed_if(!gate.open()))
}

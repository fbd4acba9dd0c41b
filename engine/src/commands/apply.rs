//! `stackdeploy apply`: converge an environment (after showing the plan and asking), or apply
//! exactly a saved plan on the hosts that still match it.

use std::path::Path;

use super::plan::{Setup, env_name, print_plans, selected, setup};
use super::{CmdResult, Context, confirm, out};
use crate::cli::{ApplyArgs, Format, RunArgs};
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::plan::planfile::SavedPlan;
use crate::report::Style;
use crate::report::json;
use crate::report::plan::{gate_text, plans_text, results_text};
use crate::rollout::{HostResult, gate};
use crate::runinfo::RunInfo;
use crate::source::short;

pub(super) fn run(ctx: &Context, args: &ApplyArgs) -> CmdResult {
    if let Some(path) = &args.plan {
        return apply_saved(ctx, args, path);
    }
    let setup = setup(ctx, &args.run, true)?;
    let env = setup.comp.pipeline.environment(env_name(&args.run)?)?;
    let hosts = selected(env, &args.run)?;
    let run = RunInfo::current();
    let results = setup.rollout(env, |rollout| {
        let runs = rollout.prepare(&hosts)?;
        // With --format json stdout holds one document, the apply's: the plan asked about
        // goes to stderr. Under -q the plan is left out only when nobody is asked to confirm it.
        match args.run.format {
            Format::Text => {
                let brief = crate::report::quiet() && args.yes;
                print_plans(&runs, &setup, &env.name, Format::Text, brief);
            }
            Format::Json => {
                use std::io::IsTerminal;
                let style =
                    Style { color: crate::report::color_for(std::io::stderr().is_terminal()) };
                eprint!("{}", plans_text(&runs, &env.name, &rollout.commit, style));
            }
        }
        let needed = runs.iter().any(|r| r.needs_apply(&rollout.commit));
        if needed && !args.yes && !confirm("apply", "Apply these changes?")? {
            return Ok(None);
        }
        Ok(Some(rollout.apply(runs, &run)))
    })?;
    match results {
        Some(results) => Ok(report(&results, &[], &setup, &env.name, &run, &args.run)),
        None => Ok(ExitStatus::Failed),
    }
}

/// Prints an apply's results (and the hosts of a saved plan refused); failed when any host
/// failed or was skipped.
fn report(
    results: &[HostResult],
    refused: &[(String, String)],
    setup: &Setup,
    env: &str,
    run: &RunInfo,
    args: &RunArgs,
) -> ExitStatus {
    match args.format {
        Format::Text => eprint!("{}", results_text(results, Style::for_stdout())),
        Format::Json => {
            let commit = json::Commit::of(&setup.comp.origin);
            out(&json::text(&json::apply::document(env, commit, &run.id, results, refused)));
        }
    }
    ExitStatus::failed_if(results.iter().any(HostResult::failed))
}

/// `apply PLANFILE`: compile the plan's commit, probe the plan's hosts, and converge only
/// those whose state is still what the plan saw (all of them, unless --skip-drifted).
fn apply_saved(ctx: &Context, args: &ApplyArgs, path: &Path) -> CmdResult {
    let text = std::fs::read_to_string(path).map_err(|e| {
        error::io(format!("cannot read plan file {}", path.display())).with_source(e)
    })?;
    let saved = SavedPlan::parse(&path.display().to_string(), &text)?;
    if ctx.worktree || ctx.rev.is_some() {
        return Err(error::usage(format!(
            "a saved plan applies its own commit ({}); drop --rev/--worktree",
            short(&saved.commit)
        ))
        .into());
    }
    if let Some(e) = args.run.env.as_deref().filter(|e| *e != saved.environment) {
        return Err(error::usage(format!(
            "the plan is for environment '{}', not '{e}'",
            saved.environment
        ))
        .into());
    }
    if args.run.limit.is_some() {
        return Err(error::usage(
            "--limit does not combine with a saved plan: plan again with --limit instead",
        )
        .into());
    }
    let repo = ctx.repo()?;
    let comp = super::load(&repo.snapshot_at(&saved.commit)?, ctx.keyring()?)?;
    let setup = Setup::new(repo, comp, &args.run);
    let env = setup.comp.pipeline.environment(&saved.environment)?;
    let mut hosts = Vec::new();
    let mut missing: Vec<(String, String)> = Vec::new();
    for h in &saved.hosts {
        match env.host(&h.plan.host) {
            Some(host) => hosts.push(host),
            None => missing.push((h.plan.host.clone(), "no longer in the inventory".into())),
        }
    }
    // One of N jobs applying a plan of the whole environment: this shard's part of it.
    if let Some(shard) = args.run.shard.shard()? {
        hosts = shard.take(&env.hosts, &hosts);
    }
    super::note(format_args!(
        "applying the plan {} for {} (commit {}, planned by {})",
        path.display(),
        saved.environment,
        short(&saved.commit),
        saved.by
    ));
    let run = RunInfo::current();
    let applied = setup.rollout(env, |rollout| {
        let mut gate = gate(&saved, rollout.prepare(&hosts)?);
        gate.refused.splice(0..0, missing);
        let shown = if crate::report::quiet() && args.yes { &[][..] } else { &gate.accepted[..] };
        eprint!("{}", gate_text(shown, &gate.refused, Style::for_stdout()));
        if !gate.refused.is_empty() && !args.skip_drifted {
            return Err(Errors::from(error::usage(format!(
                "{} host(s) changed since the plan was made, so nothing was applied; plan again \
                 and review, or pass --skip-drifted to apply the {} host(s) that match it",
                gate.refused.len(),
                gate.accepted.len()
            ))));
        }
        if !args.yes && !confirm("apply", "Apply this plan?")? {
            return Ok(None);
        }
        let refused = std::mem::take(&mut gate.refused);
        Ok(Some((rollout.apply(gate.accepted, &run), refused)))
    })?;
    let Some((results, refused)) = applied else { return Ok(ExitStatus::Failed) };
    let status = report(&results, &refused, &setup, &saved.environment, &run, &args.run);
    Ok(if !refused.is_empty() { ExitStatus::Failed } else { status })
}

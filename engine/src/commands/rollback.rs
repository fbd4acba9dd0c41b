//! `stackdeploy rollback --env E [--to REV]`: converge an environment back to its previous
//! release, or to REV.

use super::{CmdResult, Context, confirm};
use crate::cli::RollbackArgs;
use crate::error;
use crate::exit::ExitStatus;
use crate::model::Pipeline;
use crate::pipeline::hooks::failure_detail;
use crate::pipeline::rollback::{previous_release, ran_in};
use crate::pipeline::{GitStore, Store};
use crate::report::Style;
use crate::report::plan::results_text;
use crate::rollout::HostResult;
use crate::source::short;

pub(super) fn run(ctx: &Context, args: &RollbackArgs) -> CmdResult {
    let repo = ctx.repo()?;
    let store = GitStore::open(repo.dir())?;
    // Where the environment is now is the shared state's word, not this clone's.
    let remote = super::state::shared_remote_of(&repo)?;
    super::state::pull_shared(&store, remote.as_deref())?;
    let target = match &args.to {
        Some(rev) => {
            let target = repo.resolve(rev)?;
            Pipeline::from_snapshot(&repo.snapshot_at(&target)?)?.environment(&args.env)?;
            // Going back is going to what ran; anything else is a deploy, with its stages.
            if !ran_in(&store.read(&target)?, &args.env) {
                return Err(error::usage(format!(
                    "commit {} never passed a deploy or release of '{}' (`stackdeploy status` \
                     shows what did), so this would be no rollback but an untested change: put \
                     it on '{}' through the pipeline, or with `stackdeploy apply --rev {} --env \
                     {}`",
                    short(&target),
                    args.env,
                    args.env,
                    short(&target),
                    args.env
                ))
                .into());
            }
            target
        }
        None => {
            Pipeline::from_snapshot(&repo.snapshot_at("HEAD")?)?.environment(&args.env)?;
            let current = store.env_commit(&args.env)?.ok_or_else(|| {
                error::usage(format!(
                    "environment '{}' was never deployed, so there is nothing to roll back",
                    args.env
                ))
            })?;
            let (found, unreadable) = previous_release(&repo, &store, &current, &args.env)?;
            for e in &unreadable {
                super::note(format_args!("warning: {e}"));
            }
            found.ok_or_else(|| {
                error::usage(format!(
                    "no release of '{}' before {}; name a commit with --to",
                    args.env,
                    short(&current)
                ))
            })?
        }
    };
    let question = format!("Roll {} back to {}?", args.env, short(&target));
    if !args.yes && !confirm("rollback", &question)? {
        return Ok(ExitStatus::Failed);
    }
    super::note(format_args!("rolling {} back to {}", args.env, short(&target)));
    let machine = super::pipeline::Machine::new(ctx, &repo)?;
    let done = machine.runner(&repo, args.forks, None, None).rollback(&args.env, &target)?;
    eprint!("{}", results_text(&done.results, Style { color: false }));
    // Published whatever the hosts did: the refs say what each runs now.
    super::state::push_shared(&store, remote.as_deref())?;
    if done.results.iter().any(HostResult::failed) {
        return Ok(ExitStatus::Failed);
    }
    super::note(format_args!("{} now runs {}", args.env, short(&target)));
    // The hosts run the target whatever the hooks say; a hook that must not miss an event
    // makes the exit status say it did.
    let undelivered = match &done.hooks {
        Some(Ok(fired)) => failure_detail(fired),
        Some(Err(e)) => Some(format!("hooks: {e}")),
        None => None,
    };
    if let Some(why) = undelivered {
        super::note(format_args!(
            "error: {why}\nThe rollback is done and recorded; these events are not sent again: \
             tell the systems behind those hooks by hand (the payloads are in the hook docs, \
             docs/composition.md \"Hooks\")"
        ));
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Ok)
}

//! `stackdeploy check`: precommit validation of the composition at a commit.

use super::{CmdResult, Context, out};
use crate::cli::{CheckArgs, Format};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::report::json;
use crate::report::precommit as report;

pub(super) fn run(ctx: &Context, args: &CheckArgs) -> CmdResult {
    let (repo, snapshot) = ctx.snapshot()?;
    let cache = FactCache::new(repo.dir());
    let result = crate::precommit::check(&snapshot, &|h| cache.facts(h), ctx.keyring()?);
    match args.format {
        Format::Text => {
            out(&report::text(&result));
            super::note(report::verdict(&result, &snapshot.origin));
        }
        Format::Json => out(&json::text(&json::check::document(&result, &snapshot.origin))),
    }
    Ok(ExitStatus::failed_if(!result.passed()))
}

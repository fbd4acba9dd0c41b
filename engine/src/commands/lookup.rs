//! `stackdeploy lookup`: one hiera key for one host, optionally with every level searched.

use super::{CmdResult, Context, find_host, out};
use crate::catalog::{Compiler, lookup_secrets};
use crate::cli::{Format, LookupArgs, MergeArg};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::hiera::{LevelOutcome, Merge};
use crate::report::lookup as report;
use crate::secrets::Secrets;

pub(super) fn run(ctx: &Context, args: &LookupArgs) -> CmdResult {
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(&args.target.env)?;
    let host = find_host(env, &args.target.host)?;
    let cache = FactCache::new(repo.dir());
    let compiler = Compiler::new(&comp)?;
    let hiera = compiler.host_hiera(host, cache.facts(host))?;
    let merge = args.merge.map(|m| match m {
        MergeArg::First => Merge::First,
        MergeArg::Unique => Merge::Unique,
        MergeArg::Hash => Merge::Hash,
        MergeArg::Deep => Merge::Deep,
    });
    let (result, mut explain) = hiera.explain(&args.key, merge);
    let value = result?;
    let secrets =
        if args.show_secrets { Secrets::default() } else { lookup_secrets(&comp, &hiera, host) };
    let value = value.map(|v| secrets.redact_value(&v));
    for level in &mut explain.levels {
        if let LevelOutcome::Found(v) = &mut level.outcome {
            *v = secrets.redact_value(v);
        }
    }
    let text = match args.format {
        Format::Text if args.explain => {
            report::explain_text(&explain, &host.name, &env.name, &value)
        }
        Format::Text => value.as_ref().map(|v| report::value_text(v) + "\n").unwrap_or_default(),
        Format::Json => report::json(
            &args.key,
            &host.name,
            &env.name,
            &comp.origin,
            &value,
            args.explain.then_some(&explain),
        ),
    };
    out(&secrets.redact(&text));
    if value.is_none() {
        eprintln!(
            "error: '{}' has no value for host {} (searched {}); run with --explain for details",
            args.key,
            host.name,
            hiera.searched_paths().join(", ")
        );
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Ok)
}

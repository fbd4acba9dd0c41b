//! `stackdeploy lookup`: one hiera key for one host, optionally with every level searched.

use super::{CmdResult, Context, find_host, out};
use crate::catalog::{Compiler, lookup_secrets};
use crate::cli::{Format, LookupArgs, MergeArg};
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::hiera::{Explain, LevelOutcome, Merge, MergeOptions};
use crate::report::json;
use crate::report::lookup as report;
use crate::secrets::Secrets;

pub(super) fn run(ctx: &Context, args: &LookupArgs) -> CmdResult {
    let mut explain = None;
    let result = lookup(ctx, args, &mut explain);
    match (result, args.format) {
        // With --format json every outcome is one JSON document on stdout, errors included.
        (Err(errors), Format::Json) => {
            let explain = explain.filter(|_| args.explain);
            let query = json::lookup::Query {
                key: &args.key,
                host: &args.target.host,
                environment: &args.target.env,
            };
            out(&json::text(&json::lookup::failed(&query, &errors, explain.as_ref())));
            for e in &errors {
                eprintln!("error: {e}");
            }
            Ok(ExitStatus::Failed)
        }
        (Err(errors), Format::Text) => {
            if let Some(explain) = explain.filter(|_| args.explain) {
                out(&report::explain_text(&explain, &args.target.host, &args.target.env, None));
            }
            Err(errors)
        }
        (Ok(status), _) => Ok(status),
    }
}

/// Fills `explain` as far as the lookup got, so a failure still shows the levels searched.
fn lookup(ctx: &Context, args: &LookupArgs, explain_out: &mut Option<Explain>) -> CmdResult {
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(&args.target.env)?;
    let host = find_host(env, &args.target.host)?;
    let cache = FactCache::new(repo.dir());
    let compiler = Compiler::new(&comp)?;
    let hiera = compiler.host_hiera(host, cache.facts(host))?;
    let merge = merge_options(args)?;
    let (result, mut explain) = hiera.explain(&args.key, merge);
    // After the lookup: the values it decrypted are among the secrets to hide.
    let secrets =
        if args.show_secrets { Secrets::default() } else { lookup_secrets(&comp, &hiera, host) };
    for level in &mut explain.levels {
        match &mut level.outcome {
            LevelOutcome::Found(v) => *v = secrets.redact_value(v),
            LevelOutcome::Error(m) => *m = secrets.redact(m).into_owned(),
            _ => {}
        }
    }
    *explain_out = Some(explain.clone());
    let value = result.map_err(|e| e.map_detail(|d| secrets.redact(d).into_owned()))?;
    let value = value.map(|v| secrets.redact_value(&v));
    let text = match args.format {
        Format::Text if args.explain => {
            report::explain_text(&explain, &host.name, &env.name, Some(&value))
        }
        Format::Text => value.as_ref().map(|v| report::value_text(v) + "\n").unwrap_or_default(),
        Format::Json => {
            let query =
                json::lookup::Query { key: &args.key, host: &host.name, environment: &env.name };
            let doc = json::lookup::found(
                &query,
                &comp.origin,
                value.as_ref(),
                args.explain.then_some(&explain),
            );
            json::text(&doc)
        }
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

/// `--merge` replaces the key's lookup_options whole, as Puppet's does: a deep merge knocks
/// out only with `--knockout-prefix`.
fn merge_options(args: &LookupArgs) -> Result<Option<MergeOptions>, Errors> {
    let strategy = args.merge.map(|m| match m {
        MergeArg::First => Merge::First,
        MergeArg::Unique => Merge::Unique,
        MergeArg::Hash => Merge::Hash,
        MergeArg::Deep => Merge::Deep,
    });
    match (strategy, &args.knockout_prefix) {
        (Some(Merge::Deep), Some(p)) if p.is_empty() => Err(error::usage(
            "--knockout-prefix must not be empty (leave it out for a deep merge without knockouts)",
        )
        .into()),
        (Some(strategy), knockout_prefix)
            if strategy == Merge::Deep || knockout_prefix.is_none() =>
        {
            Ok(Some(MergeOptions { strategy, knockout_prefix: knockout_prefix.clone() }))
        }
        (None, None) => Ok(None),
        _ => Err(error::usage("--knockout-prefix needs --merge deep").into()),
    }
}

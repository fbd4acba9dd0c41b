//! `stackdeploy catalog`: one host's compiled catalog.

use super::{CmdResult, Context, find_host, out};
use crate::catalog::{Compiler, EnvContext};
use crate::cli::{CatalogArgs, Format};
use crate::exit::ExitStatus;
use crate::facts::FactCache;
use crate::report::catalog as report;
use crate::report::json;

pub(super) fn run(ctx: &Context, args: &CatalogArgs) -> CmdResult {
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(&args.target.env)?;
    let host = find_host(env, &args.target.host)?;
    let compiler = Compiler::new(&comp)?;
    let cache = FactCache::new(repo.dir());
    let env_ctx = EnvContext::new(&comp, env, &|h| cache.facts(h));
    let catalog = compiler.compile(&env_ctx, host, cache.facts(host))?;
    let shown = if args.show_secrets { catalog } else { catalog.redacted() };
    out(&match args.format {
        Format::Text => report::text(&shown, &comp.origin),
        Format::Json => json::text(&json::catalog::document(&shown, &comp.origin)),
    });
    Ok(ExitStatus::Ok)
}

//! The command layer: turns parsed arguments into engine calls and prints the results.
//! This is the only place (with `report`) that knows about stdout/stderr and exit codes.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use serde_json::json;

use crate::catalog::{Compiler, EnvContext, Secrets};
use crate::cli::{CatalogArgs, CheckArgs, Cli, Command, Format, LookupArgs, MergeArg};
use crate::error::{self, Error};
use crate::facts::FactCache;
use crate::hiera::Merge;
use crate::model::Composition;
use crate::report;
use crate::source::{Repo, Snapshot};

/// Runs the CLI and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors, but 2 means "changes" for `plan`; errors are 1.
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    init_tracing(cli.verbose);
    let ctx = Context {
        dir: cli.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        rev: cli.rev.clone(),
        worktree: cli.worktree,
        show_only: match &cli.command {
            Command::Check(_) | Command::Diff(_) => true,
            Command::Catalog(a) => !a.show_secrets,
            Command::Lookup(a) => !a.show_secrets,
            _ => false,
        },
    };
    let result = match &cli.command {
        Command::Check(a) => check(&ctx, a),
        Command::Catalog(a) => catalog(&ctx, a),
        Command::Lookup(a) => lookup(&ctx, a),
        Command::Diff(a) => crate::review::diff(&ctx, a),
        Command::Plan(a) => crate::converge::plan(&ctx, a),
        Command::Apply(a) => crate::converge::apply(&ctx, a),
        Command::Lab(a) => crate::converge::lab(&ctx, a),
        Command::Secret(a) => crate::secret::command(&ctx, a),
        Command::Pipeline(a) => crate::promote::pipeline(&ctx, a),
        Command::Approve(a) => crate::promote::approve(&ctx, a),
        Command::Status(a) => crate::promote::status(&ctx, a),
        Command::Rollback(a) => crate::promote::rollback(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            errors.first().map_or(1, Error::exit_code)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "stackdeploy=debug",
        _ => "stackdeploy=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(crate) type CmdResult = Result<i32, Vec<Error>>;

/// Where the composition comes from, shared by every command.
pub(crate) struct Context {
    pub dir: PathBuf,
    pub rev: Option<String>,
    pub worktree: bool,
    /// The command only shows or checks catalogs: without a key file, encrypted values show
    /// as `<encrypted:…>` placeholders instead of being an error.
    pub show_only: bool,
}

impl Context {
    pub fn snapshot(&self) -> Result<(Repo, Snapshot), Vec<Error>> {
        let repo = Repo::discover(&self.dir).map_err(|e| vec![e])?;
        let snapshot = if self.worktree {
            eprintln!(
                "note: reading the working tree {} (uncommitted changes included), not a commit",
                repo.dir().display()
            );
            repo.snapshot_worktree()
        } else {
            repo.snapshot_at(self.rev.as_deref().unwrap_or("HEAD"))
        }
        .map_err(|e| vec![e])?;
        Ok((repo, snapshot))
    }

    /// The keyring for this command, from the key file named by STACKDEPLOY_AGE_KEY_FILE.
    pub fn keyring(&self) -> Result<std::sync::Arc<crate::hiera::Keyring>, Vec<Error>> {
        crate::secret::keyring(self.show_only)
    }

    pub fn load(&self) -> Result<(Repo, Composition), Vec<Error>> {
        let (repo, snapshot) = self.snapshot()?;
        let mut comp = Composition::load(&snapshot)?;
        comp.keyring = self.keyring()?;
        for w in &comp.warnings {
            tracing::warn!("{w}");
        }
        Ok((repo, comp))
    }
}

/// Asks on the terminal before a command changes hosts; `Ok(false)` when the answer is not
/// "yes". Off a terminal (CI) there is nobody to ask: the caller must have been given `--yes`.
pub(crate) fn confirm(command: &str, question: &str) -> Result<bool, Vec<Error>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(vec![error::usage(format!(
            "{command} needs --yes when not run from a terminal (CI)"
        ))]);
    }
    eprint!("{question} Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(true)
    } else {
        eprintln!("{command} cancelled; nothing was changed");
        Ok(false)
    }
}

pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn check(ctx: &Context, args: &CheckArgs) -> CmdResult {
    let (repo, snapshot) = ctx.snapshot()?;
    let result = crate::check::check(&snapshot, &FactCache::new(repo.dir()), ctx.keyring()?);
    match args.format {
        Format::Text => {
            let mut text = String::new();
            for e in &result.problems {
                text.push_str(&format!("{e}\n"));
            }
            for w in &result.warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            out(&text);
            if result.problems.is_empty() {
                eprintln!(
                    "ok: {} environment(s), {} host(s), {} role(s), {} profile(s) compiled from {}",
                    result.environments,
                    result.hosts,
                    result.roles,
                    result.profiles,
                    snapshot.origin.label()
                );
            } else {
                eprintln!("{} problem(s) in {}", result.problems.len(), snapshot.origin.label());
            }
        }
        Format::Json => {
            let doc = json!({
                "schema_version": report::SCHEMA_VERSION,
                "origin": report::origin_json(&snapshot.origin),
                "ok": result.problems.is_empty(),
                "problems": result.problems.iter().map(|p| {
                    let mut v = report::error_json(&p.error);
                    v["hosts"] = json!(p.hosts);
                    v
                }).collect::<Vec<_>>(),
                "warnings": result.warnings.iter().map(report::error_json).collect::<Vec<_>>(),
                "environments": result.environments,
                "hosts": result.hosts,
            });
            out(&(serde_json::to_string_pretty(&doc).expect("json") + "\n"));
        }
    }
    Ok(if result.problems.is_empty() { 0 } else { 1 })
}

fn catalog(ctx: &Context, args: &CatalogArgs) -> CmdResult {
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(&args.target.env).map_err(|e| vec![e])?;
    let host = find_host(env, &args.target.host)?;
    let compiler = Compiler::new(&comp)?;
    let cache = FactCache::new(repo.dir());
    let env_ctx = EnvContext::new(&comp, env, &|h| cache.facts(h));
    let catalog = compiler.compile(&env_ctx, host, cache.facts(host))?;
    let shown = if args.show_secrets { catalog } else { catalog.redacted() };
    out(&match args.format {
        Format::Text => report::catalog_text(&shown, &comp.origin),
        Format::Json => report::catalog_json(&shown, &comp.origin),
    });
    Ok(0)
}

fn lookup(ctx: &Context, args: &LookupArgs) -> CmdResult {
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(&args.target.env).map_err(|e| vec![e])?;
    let host = find_host(env, &args.target.host)?;
    let cache = FactCache::new(repo.dir());
    let compiler = Compiler::new(&comp)?;
    let hiera = compiler.host_hiera(host, cache.facts(host)).map_err(|e| vec![e])?;
    let merge = args.merge.map(|m| match m {
        MergeArg::First => Merge::First,
        MergeArg::Unique => Merge::Unique,
        MergeArg::Hash => Merge::Hash,
        MergeArg::Deep => Merge::Deep,
    });
    let (result, mut explain) = hiera.explain(&args.key, merge);
    let value = result.map_err(|e| vec![e])?;
    let secrets = if args.show_secrets {
        Secrets::default()
    } else {
        crate::check::host_secrets(&comp, &hiera, host)
    };
    let value = value.map(|v| secrets.redact_value(&v));
    for level in &mut explain.levels {
        if let crate::hiera::Outcome::Found(v) = &mut level.outcome {
            *v = secrets.redact_value(v);
        }
    }
    let text = match args.format {
        Format::Text if args.explain => {
            report::explain_text(&explain, &host.name, &env.name, &value)
        }
        Format::Text => match &value {
            Some(v) => report::value_text(v) + "\n",
            None => String::new(),
        },
        Format::Json => {
            let mut doc = json!({
                "schema_version": report::SCHEMA_VERSION,
                "origin": report::origin_json(&comp.origin),
                "key": args.key,
                "host": host.name,
                "environment": env.name,
                "found": value.is_some(),
                "value": value,
            });
            if args.explain {
                doc["explain"] = serde_json::to_value(&explain).expect("json");
            }
            serde_json::to_string_pretty(&doc).expect("json") + "\n"
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
        return Ok(1);
    }
    Ok(0)
}

pub(crate) fn find_host<'e>(
    env: &'e crate::model::Environment,
    name: &str,
) -> Result<&'e crate::model::Host, Vec<Error>> {
    env.host(name).ok_or_else(|| {
        let known: Vec<&str> = env.hosts.iter().map(|h| h.name.as_str()).collect();
        vec![error::usage(format!(
            "no host '{name}' in environment '{}' (hosts: {})",
            env.name,
            known.join(", ")
        ))]
    })
}

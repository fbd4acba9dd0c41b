//! The command layer: one file per subcommand. Each takes its parsed arguments, calls the
//! engine, renders what comes back (with `report`) and returns an [`ExitStatus`]; none holds
//! logic of its own beyond choosing what to call. This is the only place (with `report`) that
//! knows about stdout, stderr, terminals and exit codes.
//!
//! A new subcommand is a variant of `cli::Command`, a file here, and a line in [`run`].

mod apply;
mod approve;
mod catalog;
mod check;
mod completions;
mod diff;
mod drift;
mod import;
mod lab;
mod lookup;
mod pipeline;
mod plan;
mod rollback;
mod secret;
mod state;
mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::composition::Composition;
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::model::{Environment, Host};
use crate::secrets::Keys;
use crate::source::{Repo, Snapshot};

/// Runs the CLI and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors, but 2 means "changes" for `plan`; errors are 1.
            let status = if e.use_stderr() { ExitStatus::Failed } else { ExitStatus::Ok };
            return status.code();
        }
    };
    crate::report::set_color_choice(cli.color);
    crate::report::set_quiet(cli.quiet);
    init_tracing(cli.verbose, cli.quiet);
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
        Command::Check(a) => check::run(&ctx, a),
        Command::Catalog(a) => catalog::run(&ctx, a),
        Command::Lookup(a) => lookup::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Drift(a) => drift::run(&ctx, a),
        Command::Apply(a) => apply::run(&ctx, a),
        Command::Lab(a) => lab::run(&ctx, &a.action),
        Command::Secret(a) => secret::run(&ctx, &a.action),
        Command::Pipeline(a) => pipeline::run(&ctx, &a.action),
        Command::Approve(a) => approve::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Rollback(a) => rollback::run(&ctx, a),
        Command::State(a) => state::run(&ctx, &a.action),
        Command::Import(a) => import::run(&a.action),
        Command::Completions(a) => completions::completions(a.shell),
        Command::Man => completions::man(),
        Command::Schema(a) => schema(&a.output),
    };
    match result {
        Ok(status) => status.code(),
        Err(errors) => {
            // With --format json every outcome is one JSON document on stdout, failures too.
            if let Some(command) = json_command(&cli.command) {
                out(&crate::report::json::Failure::text(command, &errors));
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            ExitStatus::Failed.code()
        }
    }
}

/// `stackdeploy schema OUTPUT`: the JSON Schema of one output, as published in docs/schemas/.
fn schema(name: &str) -> CmdResult {
    use crate::report::json::schema::Output;
    let Some(output) = Output::ALL.into_iter().find(|o| o.name() == name) else {
        let names: Vec<&str> = Output::ALL.iter().map(|o| o.name()).collect();
        return Err(error::usage(format!(
            "no output '{name}' has a schema (outputs: {})",
            names.join(", ")
        ))
        .into());
    };
    out(&output.schema_text());
    Ok(ExitStatus::Ok)
}

/// The command's name when it was asked for `--format json` and does not print its own
/// document on failure (`lookup` and `import hiera` do).
fn json_command(command: &Command) -> Option<&'static str> {
    use crate::cli::{Format::Json, PipelineAction};
    match command {
        Command::Check(a) if a.format == Json => Some("check"),
        Command::Catalog(a) if a.format == Json => Some("catalog"),
        Command::Diff(a) if a.format == Json => Some("diff"),
        Command::Plan(a) if a.run.format == Json => Some("plan"),
        Command::Apply(a) if a.run.format == Json => Some("apply"),
        Command::Status(a) if a.format == Json => Some("status"),
        Command::Pipeline(a) => match &a.action {
            PipelineAction::Run(r) if r.format == Json => Some("pipeline run"),
            PipelineAction::Gate(g) if g.format == Json => Some("pipeline gate"),
            _ => None,
        },
        _ => None,
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "error",
        0 => "warn",
        1 => "stackdeploy=debug",
        _ => "stackdeploy=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let ansi = crate::report::color_for(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

pub(crate) type CmdResult = Result<ExitStatus, Errors>;

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
    pub fn repo(&self) -> Result<Repo, Errors> {
        Ok(Repo::find(&self.dir, crate::model::PIPELINE_FILE)?)
    }

    pub fn snapshot(&self) -> Result<(Repo, Snapshot), Errors> {
        let repo = self.repo()?;
        let snapshot = if self.worktree {
            note(format_args!(
                "note: reading the working tree {} (uncommitted changes included), not a commit",
                repo.dir().display()
            ));
            repo.snapshot_worktree()?
        } else {
            repo.snapshot_at(self.rev.as_deref().unwrap_or("HEAD"))?
        };
        Ok((repo, snapshot))
    }

    /// The identities in the file named by STACKDEPLOY_AGE_KEY_FILE, if any.
    pub fn keys(&self) -> Result<Keys, Errors> {
        Ok(Keys::from_environment()?)
    }

    /// The keyring this command decrypts with.
    pub fn keyring(&self) -> Result<std::sync::Arc<crate::secrets::Keyring>, Errors> {
        let keys = self.keys()?;
        Ok(if self.show_only { keys.for_showing() } else { keys.for_deploying() })
    }

    pub fn load(&self) -> Result<(Repo, Composition), Errors> {
        let (repo, snapshot) = self.snapshot()?;
        let comp = load(&snapshot, self.keyring()?)?;
        Ok((repo, comp))
    }
}

/// Loads a composition with the keyring its command decrypts with, logging its warnings.
pub(crate) fn load(
    snapshot: &Snapshot,
    keyring: std::sync::Arc<crate::secrets::Keyring>,
) -> Result<Composition, Errors> {
    let comp = Composition { keyring, ..Composition::load(snapshot)? };
    for w in &comp.warnings {
        tracing::warn!("{w}");
    }
    Ok(comp)
}

/// Asks on the terminal before a command changes hosts; `Ok(false)` when the answer is not
/// "yes". Off a terminal (CI) there is nobody to ask: the caller must have been given `--yes`.
pub(crate) fn confirm(command: &str, question: &str) -> Result<bool, Errors> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(error::usage(format!(
            "{command} needs --yes when not run from a terminal (CI)"
        ))
        .into());
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

/// A note for the person at the terminal (what was written, what to run next): on stderr,
/// and left out under `-q`.
pub(crate) fn note(text: impl std::fmt::Display) {
    if !crate::report::quiet() {
        eprintln!("{text}");
    }
}

pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

pub(crate) fn find_host<'e>(env: &'e Environment, name: &str) -> Result<&'e Host, Errors> {
    env.host(name).ok_or_else(|| {
        let known: Vec<&str> = env.hosts.iter().map(|h| h.name.as_str()).collect();
        error::usage(format!(
            "no host '{name}' in environment '{}' (hosts: {}){}",
            env.name,
            known.join(", "),
            crate::suggest::hint(name, known.iter().copied())
        ))
        .into()
    })
}

/// Writes a report file whole or not at all (temp file, then rename).
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), Errors> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error::io(format!("cannot write {}", path.display())).with_source(e)
    })?;
    note(format_args!("wrote {}", path.display()));
    Ok(())
}

//! The command line, as clap structs that mirror the flags. `commands` turns them into actions;
//! the definitions stay in this file of their own so a build script can reuse them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Declarative deployment pipeline engine: compiles roles, profiles and \
hiera data from a git commit into per-host catalogs and converges hosts over SSH.";

const LONG_ABOUT: &str = "Declarative deployment pipeline engine.

The composition (pipeline.toml, roles/, profiles/, hieradata/) is read from a git commit \
(--rev, default HEAD), never from uncommitted files unless --worktree is given, so what is \
checked and deployed is exactly what was committed.

Run from anywhere inside the composition: like git with .git, stackdeploy looks for \
pipeline.toml in the current directory (or -C DIR) and its parents. Paths given on the \
command line (--out, --html, --junit, PLANFILE, ...) are relative to where you run it.";

/// Shown under every `--help` and `-h` of the top-level command; `exit_codes_are_documented`
/// checks it against [`crate::exit::ExitStatus`].
const EXIT_CODES: &str = "Exit codes:
  0  success (plan: no changes; drift: no drift)
  1  error: bad input or usage, a failed host or stage, a refusal, a cancelled prompt
  2  plan (and diff --exit-code) found changes, drift found drift; import wrote what it could but left something out
  3  pipeline run stopped at a stage waiting for `stackdeploy approve`";

#[derive(Parser, Debug)]
#[command(name = "stackdeploy", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXIT_CODES)]
pub struct Cli {
    /// Composition directory; the git repository is discovered from it [default: current directory]
    #[arg(short = 'C', long = "dir", global = true, env = "STACKDEPLOY_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Read the composition from this git revision (commit, branch, tag) [default: HEAD]
    #[arg(
        long,
        global = true,
        env = "STACKDEPLOY_REV",
        value_name = "REV",
        conflicts_with = "worktree"
    )]
    pub rev: Option<String>,

    /// Read the working tree instead of a commit (uncommitted edits included; for local iteration)
    #[arg(long, global = true)]
    pub worktree: bool,

    /// Colour output: auto (only on a terminal), always (even piped), never. Without it, a
    /// non-empty NO_COLOR turns colour off and a non-zero CLICOLOR_FORCE turns it on
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors and each command's result (plan/diff/apply: their summary line, JSON
    /// and data as usual); no progress, notes or hints. README.md, "Quiet output", per command
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Precommit validation: parse everything and compile every host of every environment
    ///
    /// Prints each problem as `path:line: message` and exits 1 if there is any. Touches no host.
    Check(CheckArgs),
    /// Show the compiled catalog of one host: every resource in apply order, with rendered files
    Catalog(CatalogArgs),
    /// Look up a hiera key for one host, optionally explaining every level searched
    Lookup(LookupArgs),
    /// What moving an environment between two commits changes, per file, with no host contacted
    ///
    /// Compiles every host of the environment at both commits (with cached facts) and shows
    /// each distinct change once, with the hosts it applies to ("4 compute hosts: ..."), the
    /// restarts that would follow, and hosts added or removed.
    Diff(DiffArgs),
    /// Dry run over SSH: what apply would change on each host (exit 0 none, 2 changes, 1 error)
    ///
    /// Probes every host in one round trip, prints unified diffs of the files that would
    /// change, packages, services, and the restarts that would follow. Touches nothing.
    Plan(PlanArgs),
    /// What changed on hosts that nobody committed (exit 0 none, 2 drift, 1 error)
    ///
    /// Compares every host with the commit it runs (its applied record, not HEAD): managed
    /// files edited, chmod-ed, chown-ed or removed by hand, services not in the state the
    /// catalog wants, packages not as it wants them. Diffs are redacted. Touches nothing.
    Drift(DriftArgs),
    /// Converge the hosts of an environment over SSH, in rollout order and batches
    ///
    /// With PLANFILE (from `plan --out`), applies exactly what was reviewed: the plan's commit,
    /// and only on hosts whose state is still what the plan was computed against.
    Apply(ApplyArgs),
    /// Encrypted hiera values (age): encrypt a value, or edit a data file's secrets
    Secret(SecretArgs),
    /// Local lab hosts: one real sshd per host of an environment, in its own namespaces
    Lab(LabArgs),
    /// The deployment pipeline of pipeline.toml's [[stages]], for one commit
    Pipeline(PipelineArgs),
    /// Record a manual approval of a gated stage for a commit
    Approve(ApproveArgs),
    /// Commits × stages, and which commit each environment and host runs
    Status(StatusArgs),
    /// Converge an environment back to its previous release (or --to REV)
    Rollback(RollbackArgs),
    /// Share the pipeline state (stage notes, environment and canary refs) with a git remote
    ///
    /// `pull` merges the remote's state into this clone's; `push` pulls, then publishes what
    /// this clone recorded (refs with a lease, notes merged, retried when another agent pushed
    /// meanwhile). With `state_remote` set, `pipeline run`, `approve` and `rollback` do both
    /// themselves.
    State(StateArgs),
    /// Convert another tool's data into the composition's (Puppet's Hiera 5)
    Import(ImportArgs),
    /// Print a shell completion script (e.g. `stackdeploy completions bash > /etc/bash_completion.d/stackdeploy`)
    Completions(CompletionsArgs),
    /// Print the man page, in roff (e.g. `stackdeploy man > stackdeploy.1; man -l stackdeploy.1`)
    Man,
    /// Print the JSON Schema of a `--format json` output (also in docs/schemas/)
    Schema(SchemaArgs),
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// The output: check, catalog, lookup, diff, plan, apply, pipeline, gate, status, import,
    /// or note (the records git notes hold)
    pub output: String,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub action: PipelineAction,
}

#[derive(Subcommand, Debug)]
pub enum PipelineAction {
    /// Run the stages for a commit (--rev, default HEAD), stopping at the first failure
    ///
    /// Exit 0: every stage run passed; 1: a stage failed or was refused; 3: stopped at a stage
    /// waiting for `stackdeploy approve`.
    Run(PipelineRunArgs),
    /// Pass a stage that ran in shards (`pipeline run --shard K/N`) once every shard passed
    ///
    /// Records the stage as passed for the commit (so later stages' `requires` hold) and, for a
    /// deploy or release, moves the environment to the commit. Exit 0: every shard passed;
    /// 1: a shard failed or has not run (each is named).
    Gate(GateArgs),
}

#[derive(Args, Debug)]
pub struct GateArgs {
    /// The stage whose shards to gather
    #[arg(long, value_name = "STAGE")]
    pub stage: String,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct PipelineRunArgs {
    /// First stage to run (earlier stages must have passed for this commit)
    #[arg(long, value_name = "STAGE")]
    pub from: Option<String>,

    /// Last stage to run
    #[arg(long, value_name = "STAGE")]
    pub to: Option<String>,

    /// Do not ask for confirmation (required when not on a terminal, e.g. in CI)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// First bring up the local lab hosts of every environment the stages use
    #[arg(long)]
    pub lab: bool,

    /// Write a JUnit XML report (one test case per stage) to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// How many hosts to work on at once
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub forks: usize,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The commit to approve (any revision: HEAD, a hash, a tag)
    pub commit: String,

    /// The gated stage
    #[arg(long, value_name = "STAGE")]
    pub stage: String,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    #[command(subcommand)]
    pub action: StateAction,
}

#[derive(Subcommand, Debug)]
pub enum StateAction {
    /// Fetch the remote's pipeline state and merge it into this clone's
    Pull(StateRemoteArg),
    /// Pull, then push this clone's pipeline state to the remote
    Push(StateRemoteArg),
}

#[derive(Args, Debug)]
pub struct StateRemoteArg {
    /// The git remote (a name or URL) [default: $STACKDEPLOY_STATE_REMOTE, else pipeline.toml's
    /// state_remote, else origin]
    #[arg(long, value_name = "REMOTE")]
    pub remote: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// How many commits to show (first-parent history from --rev, default HEAD)
    #[arg(long, short = 'n', default_value_t = 10)]
    pub count: usize,

    /// Group each environment's hosts by a static fact of pipeline.toml (repeatable), e.g.
    /// `--by openstack_release`: which release each environment and region runs. The value is
    /// the one of the commit the host runs
    #[arg(long, value_name = "FACT")]
    pub by: Vec<String>,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// Environment from pipeline.toml to roll back
    #[arg(short, long, env = "STACKDEPLOY_ENV", value_name = "ENV")]
    pub env: String,

    /// The commit to return to [default: the release before the current one]
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,

    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// How many hosts to work on at once
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub forks: usize,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older commit [default: the commit the environment runs, refs/stackdeploy/envs/ENV]
    #[arg(value_name = "REV_A")]
    pub from: Option<String>,

    /// The newer commit [default: --rev, else HEAD; the working tree with --worktree]
    #[arg(value_name = "REV_B")]
    pub to: Option<String>,

    /// Environment from pipeline.toml
    #[arg(short, long, env = "STACKDEPLOY_ENV", value_name = "ENV")]
    pub env: String,

    /// Only hosts matching: names or globs (`compute*`), `role:NAME`, `fact:KEY=VALUE`;
    /// `,` for any of, `&` for all of (`role:compute & fact:region=osaka`)
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write an HTML report for reviewers to FILE, and its stylesheet next to it (.css)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Exit 2 when there are changes, 0 when there are none (like `git diff --exit-code`)
    #[arg(long)]
    pub exit_code: bool,
}

/// Working on one part of an environment's hosts, one CI job per part.
#[derive(Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Only part K of N of the environment's hosts (each role's hosts dealt out in turn), for
    /// N parallel CI jobs (GitLab: "$CI_NODE_INDEX/$CI_NODE_TOTAL"); a pipeline stage records
    /// its result per shard, and `pipeline gate` passes the stage once every shard has
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// With --shard: hosts with the same value of this static fact stay in one shard (`region`)
    #[arg(long, value_name = "FACT", requires = "shard")]
    pub shard_by: Option<String>,
}

impl ShardArgs {
    pub fn shard(&self) -> Result<Option<crate::model::Shard>, crate::error::Error> {
        self.shard
            .as_deref()
            .map(|s| crate::model::Shard::parse(s, self.shard_by.clone()))
            .transpose()
            .map_err(crate::error::usage)
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Environment from pipeline.toml (with a saved plan: the plan's environment)
    #[arg(short, long, env = "STACKDEPLOY_ENV", value_name = "ENV")]
    pub env: Option<String>,

    /// Only hosts matching: names or globs (`compute*`), `role:NAME`, `fact:KEY=VALUE`;
    /// `,` for any of, `&` for all of (`role:compute & fact:region=osaka`)
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,

    #[command(flatten)]
    pub shard: ShardArgs,

    /// How many hosts to work on at once
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub forks: usize,

    /// Record host keys of hosts not yet in known_hosts (trust on first use); a changed key is
    /// still refused
    #[arg(long)]
    pub trust_new_host_keys: bool,

    /// Seconds to wait for a host to answer
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Save the plan to FILE for `apply FILE` (commit, probed state per host; no secret values)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also write an HTML report for reviewers to FILE, and its stylesheet next to it (.css)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DriftArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Also write an HTML report to FILE, and its stylesheet next to it (.css): each drifted
    /// file or service once, with the hosts it drifted on
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Do not ask for confirmation (required when not on a terminal, e.g. in CI)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// A plan saved by `plan --out`: apply exactly it (its commit, its hosts)
    #[arg(value_name = "PLANFILE")]
    pub plan: Option<PathBuf>,

    /// With PLANFILE: apply the hosts that still match the plan even when others drifted
    #[arg(long, requires = "plan")]
    pub skip_drifted: bool,
}

#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
}

#[derive(Subcommand, Debug)]
pub enum SecretAction {
    /// Print `KEY = "ENC[AGE,...]"` for a value read from stdin, to paste into hieradata
    ///
    /// Encrypts to the recipients of pipeline.toml's `[secrets] recipients` (age public
    /// keys), so anyone can add a secret but only holders of an identity can read it.
    Encrypt(SecretEncryptArgs),
    /// Edit the encrypted values of a hieradata file in $EDITOR, decrypted, then re-encrypt
    ///
    /// Needs the identity file named by STACKDEPLOY_AGE_KEY_FILE. Values that are unchanged
    /// keep their ciphertext, so the commit shows only what really changed.
    Edit(SecretEditArgs),
    /// Create an age identity file (private key) and print its public key (recipient)
    Keygen(SecretKeygenArgs),
}

#[derive(Args, Debug)]
pub struct SecretEncryptArgs {
    /// The hiera key the value is for (only used to print the line to paste)
    pub key: String,
}

#[derive(Args, Debug)]
pub struct SecretEditArgs {
    /// A hieradata file, e.g. hieradata/common.toml
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct SecretKeygenArgs {
    /// Where to write the identity (refused if it exists)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Subcommand, Debug)]
pub enum LabAction {
    /// Start one sshd per host of the environment (harmless when already up)
    Up(LabEnv),
    /// Stop exactly the lab's daemons (and everything started inside its hosts), remove its state
    Down(LabEnv),
    /// Show which lab hosts are running
    Status(LabEnv),
}

#[derive(Args, Debug)]
pub struct LabEnv {
    /// Environment from pipeline.toml whose hosts the lab runs
    #[arg(short, long, env = "STACKDEPLOY_ENV", value_name = "ENV")]
    pub env: String,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct HostArgs {
    /// Environment from pipeline.toml
    #[arg(short, long, env = "STACKDEPLOY_ENV", value_name = "ENV")]
    pub env: String,

    /// Host name from the environment's inventory
    #[arg(long, value_name = "HOST")]
    pub host: String,
}

#[derive(Args, Debug)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub target: HostArgs,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Show secret values instead of `<secret:KEY#hash>` markers
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// The key, e.g. `keystone::admin_password`
    pub key: String,

    #[command(flatten)]
    pub target: HostArgs,

    /// Merge behaviour; replaces the key's lookup_options whole, as Puppet's --merge does
    #[arg(long, value_enum, value_name = "HOW")]
    pub merge: Option<MergeArg>,

    /// With --merge deep: strings starting with PREFIX knock values out (without it, none do)
    #[arg(long, value_name = "PREFIX", alias = "knock-out-prefix", allow_hyphen_values = true)]
    pub knockout_prefix: Option<String>,

    /// Show every hierarchy level searched, the file, and what was found
    #[arg(long)]
    pub explain: bool,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Show secret values instead of `<secret:KEY#hash>` markers
    #[arg(long)]
    pub show_secrets: bool,
}

/// When to colour output (`--color`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    /// Only when writing to a terminal
    Auto,
    /// Always, even into a pipe or a file
    Always,
    /// Never
    Never,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For people (coloured on a terminal)
    Text,
    /// One JSON document with `"schema_version": 1`, for scripts
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum MergeArg {
    /// The value of the highest-priority level that has the key
    First,
    /// Every level's arrays (or scalars) in one array, duplicates removed
    Unique,
    /// The top-level keys of every level's tables; the higher level wins per key
    Hash,
    /// Tables merged recursively, arrays unioned (knockouts with --knockout-prefix)
    Deep,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub action: ImportAction,
}

#[derive(Subcommand, Debug)]
pub enum ImportAction {
    /// Convert a Hiera 5 setup (hiera.yaml and its YAML/JSON/eyaml data) into hieradata TOML
    ///
    /// Writes OUT/hieradata/<path>.toml for every data file under the datadir(s), and prints
    /// the `[hiera]` block for pipeline.toml, the files written, and everything not converted
    /// (other backends, globs, mapped_paths, eyaml values, nulls, ...) as `file:line: what —
    /// what to do`. Refuses to overwrite a file unless --force. Paths are as given (not
    /// relative to -C). Exit 0: everything converted; 2: written, but something was left out
    /// (see the report); 1: an error (a file that is not YAML, a hiera.yaml that is not
    /// version 5, an output in the way).
    Hiera(ImportHieraArgs),
}

#[derive(Args, Debug)]
pub struct ImportHieraArgs {
    /// The Hiera 5 configuration (hiera.yaml)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// The data directory [default: hiera.yaml's defaults.datadir, else `data`, next to it]
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<PathBuf>,

    /// Where to write hieradata/ (a composition's root)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Replace output files that exist
    #[arg(long)]
    pub force: bool,

    /// Output format: text for people, or json for scripts
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::exit::ExitStatus;

    /// Every argument, option and subcommand a user can reach says what it is for: walks the
    /// whole clap tree, so a flag added later without a doc comment fails here.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
                // A shell's name (clap_complete's enum) is its own description.
                let named = arg.get_id() == "shell";
                for value in arg.get_possible_values().iter().filter(|_| !named) {
                    if value.get_help().is_none() && !value.is_hide_set() {
                        missing.push(format!("{path} {} value {}", arg.get_id(), value.get_name()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{sub_path} (the subcommand)"));
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "stackdeploy", &mut missing);
        assert!(missing.is_empty(), "no help text for:\n  {}", missing.join("\n  "));
    }

    #[test]
    fn exit_codes_are_documented() {
        let help = Cli::command().render_help().to_string();
        for status in [
            ExitStatus::Ok,
            ExitStatus::Failed,
            ExitStatus::Changes,
            ExitStatus::Incomplete,
            ExitStatus::AwaitingApproval,
        ] {
            let line = format!("\n  {}  ", status.code());
            assert!(
                help.contains(&line),
                "exit code {} ({status:?}) not in -h:\n{help}",
                status.code()
            );
        }
    }
}

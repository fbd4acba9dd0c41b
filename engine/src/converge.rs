//! The `plan`, `apply` and `lab` commands: compile at a commit, then hand the hosts to
//! `run`, and print what came back.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::{CmdResult, Context, out};
use crate::catalog::{Catalog, Compiler, EnvContext, Secrets};
use crate::cli::{ApplyArgs, Format, LabAction, LabArgs, PlanArgs, RunArgs};
use crate::error::{self, Error};
use crate::facts::FactCache;
use crate::lab::{Lab, LabHost};
use crate::model::{Composition, Environment, Host};
use crate::plan::HostPlan;
use crate::plan::saved::{SavedPlan, drift};
use crate::progress::Progress;
use crate::report::plan::{self as report, Style};
use crate::report::review::Review;
use crate::review::write_report;
use crate::run::{self, HostRun, OldRedaction, Options};
use crate::source::Repo;

pub(crate) fn style() -> Style {
    Style { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
}

/// Does `host` match `--limit`? (No limit matches every host.)
fn matches_limit(host: &Host, limit: Option<&str>) -> bool {
    limit.is_none_or(|l| crate::model::stages::matches(l, host))
}

fn env_name(args: &RunArgs) -> Result<&str, Vec<Error>> {
    args.env.as_deref().ok_or_else(|| {
        vec![error::usage("which environment? pass --env ENV (or set STACKDEPLOY_ENV)")]
    })
}

fn options(args: &RunArgs) -> Options {
    Options {
        forks: args.forks.max(1),
        trust_new_host_keys: args.trust_new_host_keys,
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
    }
}

/// Everything plan and apply share: compile the selected hosts, connect, probe, plan.
pub(crate) struct Prepared {
    pub commit: String,
    pub runs: Vec<HostRun>,
}

fn prepare(
    ctx: &Context,
    args: &RunArgs,
    refuse_worktree: bool,
) -> Result<(Repo, Composition, Prepared), Vec<Error>> {
    if ctx.worktree && refuse_worktree {
        return Err(vec![error::usage(
            "apply (and plan --out, whose plan apply will use) reads the composition from a commit; commit your changes (or pass --rev) instead of --worktree",
        )]);
    }
    let (repo, comp) = ctx.load()?;
    let env = comp.pipeline.environment(env_name(args)?).map_err(|e| vec![e])?;
    let hosts: Vec<&Host> =
        env.hosts.iter().filter(|h| matches_limit(h, args.limit.as_deref())).collect();
    if hosts.is_empty() {
        return Err(vec![error::usage(format!(
            "--limit {} matches no host of environment '{}'",
            args.limit.as_deref().unwrap_or(""),
            env.name
        ))]);
    }
    let prepared = prepare_hosts(&repo, &comp, env, &hosts, &options(args))?;
    Ok((repo, comp, prepared))
}

/// Compiles `hosts` of `env` at the composition's commit, connects to them, probes and plans.
/// Nothing is pushed anywhere when any host does not compile.
pub(crate) fn prepare_hosts(
    repo: &Repo,
    comp: &Composition,
    env: &Environment,
    hosts: &[&Host],
    options: &Options,
) -> Result<Prepared, Vec<Error>> {
    let commit =
        comp.origin.commit_id().map(str::to_string).unwrap_or_else(|| "worktree".to_string());
    let cache = FactCache::new(repo.dir());
    let compiler = Compiler::new(comp)?;
    let env_ctx = EnvContext::new(comp, env, &|h| cache.facts(h));
    let mut catalogs = Vec::new();
    let mut errors = Vec::new();
    for host in hosts {
        match compiler.compile(&env_ctx, host, cache.facts(host)) {
            Ok(c) => catalogs.push(((*host).clone(), c)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let old = OldCommits::new(repo, comp.keyring.clone());
    let recompile = |h: &Host, facts: &toml::Table| -> Result<Catalog, Vec<Error>> {
        compiler.compile(&env_ctx, h, facts.clone())
    };
    let old_secrets = |h: &Host, c: &str, new: &Secrets| old.redaction(h, c, new);
    let job = run::Job {
        env,
        dir: repo.dir(),
        commit: &commit,
        options,
        facts_seen: &|h, facts| cache.store(h, facts),
        recompile: &recompile,
        old_secrets: &old_secrets,
    };
    let runs = run::prepare(&job, catalogs, &Progress::new("probing", hosts.len()));
    Ok(Prepared { commit, runs })
}

/// Who holds a host's lock during a run, as shown to a second run.
pub(crate) fn lock_owner(run_id: &str) -> String {
    format!(
        "run {run_id} by {}@{} (pid {})",
        crate::promotion::user(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        std::process::id()
    )
}

/// Compositions of commits that hosts run, loaded once each, for redacting old secrets.
/// git2's repository handle is Send but not Sync, so this one owns its own, behind a mutex.
struct OldCommits {
    repo: Mutex<Option<Repo>>,
    keyring: std::sync::Arc<crate::hiera::Keyring>,
    loaded: Mutex<Vec<(String, Option<Arc<Composition>>)>>,
}

impl OldCommits {
    fn new(repo: &Repo, keyring: std::sync::Arc<crate::hiera::Keyring>) -> OldCommits {
        OldCommits {
            repo: Mutex::new(Repo::discover(repo.dir()).ok()),
            keyring,
            loaded: Mutex::new(Vec::new()),
        }
    }

    fn redaction(&self, host: &Host, commit: &str, new: &Secrets) -> Option<OldRedaction> {
        let comp = {
            let mut loaded = self.loaded.lock().unwrap();
            if !loaded.iter().any(|(c, _)| c == commit) {
                let comp = self
                    .repo
                    .lock()
                    .unwrap()
                    .as_ref()
                    .and_then(|r| r.snapshot_at(commit).ok())
                    .and_then(|s| Composition::load(&s).ok())
                    .map(|c| Arc::new(Composition { keyring: self.keyring.clone(), ..c }));
                loaded.push((commit.to_string(), comp));
            }
            loaded.iter().find(|(c, _)| c == commit)?.1.clone()?
        };
        // Compiled outside the lock: hosts are prepared in parallel.
        let env = comp.pipeline.environments.get(&host.environment)?;
        let mut with_facts = env.host(&host.name)?.clone();
        with_facts.facts = host.facts.clone();
        // A full compile also knows the values only templates look up (`lookup('k')`) and
        // which files were secret; an old commit that does not compile leaves just its
        // parameters' secrets.
        let compiler = Compiler::new(&comp).ok();
        let env_ctx = EnvContext::new(&comp, env, &|h| h.facts.clone());
        let compiled = compiler.as_ref().and_then(|c| {
            c.compile(&env_ctx, &with_facts, with_facts.facts.clone()).ok().map(|cat| (c, cat))
        });
        match compiled {
            Some((compiler, catalog)) => {
                let mut secrets = catalog.secrets.clone();
                compiler.add_newly_secret(
                    &with_facts,
                    || with_facts.facts.clone(),
                    &mut secrets,
                    new,
                );
                let secret_files =
                    catalog.files().filter(|f| f.secret).map(|f| f.path.clone()).collect();
                Some(OldRedaction { secrets, secret_files })
            }
            None => crate::check::secrets_of(&comp, &with_facts)
                .map(|secrets| OldRedaction { secrets, ..Default::default() }),
        }
    }
}

fn print_plans(prepared: &Prepared, format: Format) -> (bool, bool) {
    let changes = prepared.runs.iter().filter_map(|r| r.plan.as_ref()).any(|p| !p.is_empty());
    let failed = prepared.runs.iter().any(|r| r.error.is_some());
    match format {
        Format::Text => {
            let st = style();
            let mut text = String::new();
            for r in &prepared.runs {
                match (&r.plan, &r.error) {
                    (Some(p), _) => text.push_str(&report::host_text(p, st)),
                    (None, Some(e)) => {
                        text.push_str(&format!("{}: error: {}\n", r.host.name, e.detail()))
                    }
                    _ => {}
                }
            }
            let to_change = prepared
                .runs
                .iter()
                .filter(|r| r.plan.as_ref().is_some_and(|p| !p.is_empty()))
                .count();
            let errors = prepared.runs.iter().filter(|r| r.error.is_some()).count();
            text.push_str(&format!(
                "Plan: {to_change} host(s) to change, {} unchanged, {errors} failed (commit {})\n",
                prepared.runs.len() - to_change - errors,
                crate::source::short(&prepared.commit)
            ));
            out(&text);
        }
        Format::Json => {
            let plans: Vec<_> = prepared.runs.iter().filter_map(|r| r.plan.as_ref()).collect();
            let errors: Vec<(String, String)> = prepared
                .runs
                .iter()
                .filter_map(|r| {
                    r.error.as_ref().map(|e| (r.host.name.clone(), e.detail().to_string()))
                })
                .collect();
            out(&report::plans_json(&plans, &errors, &prepared.commit));
        }
    }
    (changes, failed)
}

pub fn plan(ctx: &Context, args: &PlanArgs) -> CmdResult {
    let (_repo, _comp, prepared) = prepare(ctx, &args.run, args.out.is_some())?;
    let env = env_name(&args.run)?;
    let (changes, failed) = print_plans(&prepared, args.run.format);
    let plans: Vec<&HostPlan> = prepared.runs.iter().filter_map(|r| r.plan.as_ref()).collect();
    if let Some(path) = &args.html {
        let review = Review::of_plans(env, &prepared.commit, &plans, &run_errors(&prepared));
        write_report(path, &crate::report::review::html(&review)).map_err(|e| vec![e])?;
    }
    if let Some(path) = &args.out {
        let mut saved = SavedPlan::new(
            env,
            &prepared.commit,
            &crate::promotion::user(),
            crate::promotion::now(),
        );
        for r in &prepared.runs {
            if let (Some(plan), Some(observed)) = (&r.plan, &r.observed) {
                saved.add(plan.clone(), observed, &r.catalog);
            }
        }
        saved.failed = run_errors(&prepared);
        write_report(path, &saved.to_json()).map_err(|e| vec![e])?;
        eprintln!(
            "apply exactly this plan with: stackdeploy apply {}{}",
            path.display(),
            if ctx.dir == Path::new(".") {
                String::new()
            } else {
                format!(" -C {}", ctx.dir.display())
            }
        );
    }
    Ok(if failed {
        1
    } else if changes {
        2
    } else {
        0
    })
}

fn run_errors(prepared: &Prepared) -> Vec<(String, String)> {
    prepared
        .runs
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| (r.host.name.clone(), e.detail().to_string())))
        .collect()
}

pub fn apply(ctx: &Context, args: &ApplyArgs) -> CmdResult {
    if let Some(path) = &args.plan {
        return apply_saved(ctx, args, path);
    }
    let (_repo, comp, prepared) = prepare(ctx, &args.run, true)?;
    let env = comp.pipeline.environment(env_name(&args.run)?).map_err(|e| vec![e])?;
    let (changes, _) = print_plans(&prepared, args.run.format);
    let needs_record = prepared.runs.iter().any(|r| {
        r.observed
            .as_ref()
            .is_some_and(|o| o.applied.as_ref().is_none_or(|a| a.commit != prepared.commit))
    });
    if (changes || needs_record)
        && !args.yes
        && !crate::app::confirm("apply", "Apply these changes?")?
    {
        return Ok(1);
    }
    converge(env, prepared.runs, &prepared.commit, &args.run)
}

fn converge(env: &Environment, runs: Vec<HostRun>, commit: &str, args: &RunArgs) -> CmdResult {
    let run_id = run_id();
    let owner = lock_owner(&run_id);
    let options = Options { trust_new_host_keys: false, ..options(args) };
    let progress = Progress::new("applying", runs.len());
    let results = run::apply(env, runs, commit, &run_id, &owner, &options, &progress);
    drop(progress);
    match args.format {
        Format::Text => eprint!("{}", report::results_text(&results, style())),
        Format::Json => out(&report::results_json(&results, commit, &run_id)),
    }
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, run::Outcome::Failed { .. } | run::Outcome::Skipped));
    Ok(if failed { 1 } else { 0 })
}

/// `apply PLANFILE`: compile the plan's commit, probe the plan's hosts, and converge only
/// those whose state is still what the plan saw (all of them, unless --skip-drifted).
fn apply_saved(ctx: &Context, args: &ApplyArgs, path: &Path) -> CmdResult {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![error::io(format!("cannot read plan file {}", path.display())).with_source(e)]
    })?;
    let saved = SavedPlan::parse(&path.display().to_string(), &text).map_err(|e| vec![e])?;
    if ctx.worktree || ctx.rev.is_some() {
        return Err(vec![error::usage(format!(
            "a saved plan applies its own commit ({}); drop --rev/--worktree",
            crate::source::short(&saved.commit)
        ))]);
    }
    if let Some(e) = args.run.env.as_deref().filter(|e| *e != saved.environment) {
        return Err(vec![error::usage(format!(
            "the plan is for environment '{}', not '{e}'",
            saved.environment
        ))]);
    }
    if args.run.limit.is_some() {
        return Err(vec![error::usage(
            "--limit does not combine with a saved plan: plan again with --limit instead",
        )]);
    }
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let mut comp = Composition::load(&repo.snapshot_at(&saved.commit).map_err(|e| vec![e])?)?;
    comp.keyring = ctx.keyring()?;
    let env = comp.pipeline.environment(&saved.environment).map_err(|e| vec![e])?;
    let mut hosts = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for h in &saved.hosts {
        match env.host(&h.plan.host) {
            Some(host) => hosts.push(host),
            None => refused.push((h.plan.host.clone(), "no longer in the inventory".into())),
        }
    }
    eprintln!(
        "applying the plan {} for {} (commit {}, planned by {})",
        path.display(),
        saved.environment,
        crate::source::short(&saved.commit),
        saved.by
    );
    let prepared = prepare_hosts(&repo, &comp, env, &hosts, &options(&args.run))?;
    let mut accepted = Vec::new();
    for run in prepared.runs {
        let reasons = match (&run.error, &run.plan, &run.observed) {
            (Some(e), _, _) => vec![e.detail().to_string()],
            (None, Some(plan), Some(observed)) => {
                let host = saved.host(&run.host.name).expect("planned host");
                drift(host, observed, plan, &run.catalog)
            }
            _ => vec!["not prepared".to_string()],
        };
        if reasons.is_empty() {
            accepted.push(run);
        } else {
            refused.push((run.host.name.clone(), reasons.join("; ")));
        }
    }
    let st = style();
    let mut text = String::new();
    for r in &accepted {
        if let Some(p) = &r.plan {
            text.push_str(&report::host_text(p, st));
        }
    }
    for (host, why) in &refused {
        text.push_str(&format!("{}: REFUSED: {why}\n", st.paint("31", host)));
    }
    eprint!("{text}");
    if !refused.is_empty() && !args.skip_drifted {
        return Err(vec![error::usage(format!(
            "{} host(s) changed since the plan was made, so nothing was applied; plan again              and review, or pass --skip-drifted to apply the {} host(s) that match it",
            refused.len(),
            accepted.len()
        ))]);
    }
    if !args.yes && !crate::app::confirm("apply", "Apply this plan?")? {
        return Ok(1);
    }
    let code = converge(env, accepted, &saved.commit, &args.run)?;
    Ok(if refused.is_empty() { code } else { 1 })
}

pub(crate) fn run_id() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{}", now.as_secs(), std::process::id())
}

pub(crate) fn lab_hosts(env: &Environment) -> Result<Vec<LabHost>, Vec<Error>> {
    env.hosts
        .iter()
        .map(|h| {
            let address = h.address.parse().map_err(|_| {
                vec![error::lab(format!(
                    "host {} has address '{}', but lab hosts need an IP address (e.g. 127.0.10.11)",
                    h.name, h.address
                ))]
            })?;
            Ok(LabHost { name: h.name.clone(), address, port: h.port })
        })
        .collect()
}

/// Starts an environment's lab: `lab up` and `pipeline run --lab`.
pub(crate) fn lab_up(
    composition_dir: &Path,
    env: &Environment,
) -> Result<(Lab, Vec<crate::lab::HostStatus>), Vec<Error>> {
    let lab = Lab::new(crate::workdir::lab(composition_dir, &env.name));
    crate::workdir::create(composition_dir).map_err(|e| {
        vec![error::lab(format!("cannot create {}", lab.state_dir().display())).with_source(e)]
    })?;
    let statuses = lab.up(&lab_hosts(env)?).map_err(|e| vec![e])?;
    Ok((lab, statuses))
}

pub fn lab(ctx: &Context, args: &LabArgs) -> CmdResult {
    let env_name = match &args.action {
        LabAction::Up(e) | LabAction::Down(e) | LabAction::Status(e) => &e.env,
    };
    // The lab needs only the inventory: a composition that does not compile (the usual state
    // while iterating) must not keep anyone from bringing the lab up or, above all, down.
    if let LabAction::Down(_) = &args.action {
        let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
        let stopped =
            Lab::new(crate::workdir::lab(repo.dir(), env_name)).down().map_err(|e| vec![e])?;
        eprintln!("lab '{env_name}' is down ({} host(s) stopped)", stopped.len());
        return Ok(0);
    }
    let (repo, snapshot) = ctx.snapshot()?;
    let pipeline = crate::model::Pipeline::from_snapshot(&snapshot).map_err(|e| vec![e])?;
    let env = pipeline.environment(env_name).map_err(|e| vec![e])?;
    match &args.action {
        LabAction::Up(_) => {
            let (lab, statuses) = lab_up(repo.dir(), env)?;
            for s in &statuses {
                eprintln!(
                    "{}: {:?} on {}:{} (sshd pid {})",
                    s.name,
                    s.state,
                    s.address,
                    s.port,
                    s.pid.map_or("-".into(), |p| p.to_string())
                );
            }
            eprintln!(
                "lab '{env_name}' is up: {} host(s); client key {}, known_hosts {}",
                statuses.len(),
                lab.identity_file().display(),
                lab.known_hosts_file().display()
            );
        }
        LabAction::Down(_) => unreachable!("handled above"),
        LabAction::Status(_) => {
            let lab = Lab::new(crate::workdir::lab(repo.dir(), env_name));
            let statuses = lab.status(&lab_hosts(env)?).map_err(|e| vec![e])?;
            let mut text = String::new();
            for s in &statuses {
                let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                text.push_str(&format!(
                    "{}\t{}:{}\t{:?}\t{pid}\n",
                    s.name, s.address, s.port, s.state
                ));
            }
            out(&text);
        }
    }
    Ok(0)
}

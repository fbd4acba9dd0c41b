//! Running plan and apply against hosts: connect, probe, plan, and converge in rollout order.
//!
//! One SSH session per host for the whole run, hosts handled concurrently on a bounded pool
//! of threads. A host that fails is recorded and the others go on; the rollout stops starting
//! batches once more hosts failed than the environment's failure budget allows. Progress goes
//! to an [`Events`] sink; nothing here prints.

mod pool;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::catalog::{Catalog, Secrets};
use crate::error::{self, Error};
use crate::model::{Environment, Host};
use crate::plan::{HostPlan, OldContent, plan_host};
use crate::remote::{apply, probe};
use crate::state::{Applied, Observed, PathState};
use crate::transport::{Session, Target};

pub use pool::parallel;

#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many hosts are worked on at once.
    pub forks: usize,
    pub trust_new_host_keys: bool,
    pub connect_timeout: Duration,
}

/// Progress of a run, reported as it happens (from worker threads).
pub trait Events: Sync {
    fn host(&self, host: &str, message: &str);
    /// A host is through the current step (planned, or applied, failed or skipped).
    fn finished(&self, _host: &str) {}
}

/// One host through a run: its catalog, its session, what the probe saw, its plan.
pub struct HostRun {
    pub host: Host,
    pub catalog: Catalog,
    pub session: Option<Session>,
    pub observed: Option<Observed>,
    pub plan: Option<HostPlan>,
    pub error: Option<Error>,
}

/// The SSH target of a host, from the environment's SSH settings. Relative key and
/// known_hosts paths are relative to the composition directory.
pub fn target(env: &Environment, host: &Host, dir: &Path, options: &Options) -> Target {
    let resolve = |p: &str| -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest)
        } else {
            dir.join(p)
        }
    };
    Target {
        host: host.name.clone(),
        address: host.address.clone(),
        port: host.port,
        user: env.ssh.user.clone(),
        identity: env.ssh.identity.as_deref().map(resolve),
        known_hosts: resolve(env.ssh.known_hosts.as_deref().unwrap_or("~/.ssh/known_hosts")),
        sudo: env.ssh.sudo,
        trust_new_host_keys: options.trust_new_host_keys,
        connect_timeout: options.connect_timeout,
    }
}

/// What the commit a host runs says about its secrets, so that a plan's diffs show neither
/// old secret values nor the old content of a file that was secret.
#[derive(Debug, Default)]
pub struct OldRedaction {
    /// That commit's secret values, plus the values it gives keys the new catalog marks secret.
    pub secrets: Secrets,
    /// Files that commit marks `secret` (also when the new commit no longer does).
    pub secret_files: BTreeSet<String>,
}

/// Gives the redaction for a host at another commit (the one the host runs), given the secrets
/// of the catalog being planned. `None` when that commit cannot be read.
pub type OldSecrets<'a> = dyn Fn(&Host, &str, &Secrets) -> Option<OldRedaction> + Sync + 'a;

/// Recompiles a host's catalog with the facts its probe gathered.
pub type Recompile<'a> = dyn Fn(&Host, &toml::Table) -> Result<Catalog, Vec<Error>> + Sync + 'a;

/// What preparing a host needs besides the host itself.
pub struct Job<'a> {
    pub env: &'a Environment,
    /// The composition directory (relative key and known_hosts paths start there).
    pub dir: &'a Path,
    pub commit: &'a str,
    pub options: &'a Options,
    /// Told the facts each probe gathered (to cache them).
    pub facts_seen: &'a (dyn Fn(&Host, &toml::Table) + Sync),
    pub recompile: &'a Recompile<'a>,
    pub old_secrets: &'a OldSecrets<'a>,
}

/// Connects to every host, probes it, and plans it. Failures stay with their host.
pub fn prepare(job: &Job<'_>, catalogs: Vec<(Host, Catalog)>, events: &dyn Events) -> Vec<HostRun> {
    parallel(catalogs, job.options.forks, |(host, catalog)| {
        let mut run =
            HostRun { host, catalog, session: None, observed: None, plan: None, error: None };
        if let Err(e) = prepare_host(&mut run, job) {
            events.host(&run.host.name, &format!("failed: {e}"));
            run.error = Some(e);
        }
        events.finished(&run.host.name);
        run
    })
}

fn prepare_host(run: &mut HostRun, job: &Job<'_>) -> Result<(), Error> {
    let Job { env, dir, commit, options, facts_seen, recompile, old_secrets } = *job;
    let name = run.host.name.clone();
    let mut session = Session::connect(&target(env, &run.host, dir, options))?;
    let mut observed = probe_once(&mut session, &run.catalog, &name)?;
    facts_seen(&run.host, &observed.facts);

    // The catalog was compiled with cached facts; if the host's facts changed, compile again,
    // and probe again only if that changed what is managed.
    let mut facts = observed.facts.clone();
    facts.extend(run.host.facts.clone());
    let fresh = recompile(&run.host, &facts).map_err(|errors| {
        let first = errors.into_iter().next().unwrap_or_else(|| error::invalid("compile failed"));
        first.at_host(&name)
    })?;
    if fresh.resources != run.catalog.resources {
        // New packages, services or exec guards must be probed too, not just new paths.
        run.catalog = fresh;
        observed = probe_once(&mut session, &run.catalog, &name)?;
    }

    let differing: Vec<&str> = run
        .catalog
        .files()
        .filter(|f| matches!(observed.paths.get(&f.path), Some(PathState::File { sha256, .. }) if *sha256 != f.sha256))
        .map(|f| f.path.as_str())
        .collect();
    let old_files = if differing.is_empty() {
        BTreeMap::new()
    } else {
        let out = session.exec(&probe::fetch_script(&differing), b"")?;
        probe::parse_fetch(&name, &out.stdout)?
    };
    let old = match observed.applied.as_ref().map(|a| a.commit.as_str()) {
        Some(c) if c == commit => {
            Some(OldRedaction { secrets: run.catalog.secrets.clone(), ..Default::default() })
        }
        Some(c) => {
            let mut with_facts = run.host.clone();
            with_facts.facts = facts.clone();
            old_secrets(&with_facts, c, &run.catalog.secrets)
        }
        None => None,
    };
    let plan = plan_host(
        &run.catalog,
        &observed,
        commit,
        &OldContent {
            files: &old_files,
            secrets: old.as_ref().map(|o| &o.secrets),
            label: "on host",
            withheld: old.as_ref().map_or(&BTreeSet::new(), |o| &o.secret_files),
        },
    )?;
    run.session = Some(session);
    run.observed = Some(observed);
    run.plan = Some(plan);
    Ok(())
}

fn probe_once(session: &mut Session, catalog: &Catalog, host: &str) -> Result<Observed, Error> {
    // Paths the last run managed may have left the catalog; they are probed so their removal
    // can be planned. Their list comes from the host's own record, so it takes a first look.
    let first = session.exec(&probe::script(catalog, &[]), b"")?;
    let mut observed = probe::parse(host, &String::from_utf8_lossy(&first.stdout))
        .map_err(|e| add_stderr(e, &first.stderr, &catalog.secrets))?;
    let extra: Vec<String> = observed
        .applied
        .as_ref()
        .map(|a| a.files.keys().filter(|p| !observed.paths.contains_key(*p)).cloned().collect())
        .unwrap_or_default();
    if !extra.is_empty() {
        let out = session.exec(&probe::script(catalog, &extra), b"")?;
        observed = probe::parse(host, &String::from_utf8_lossy(&out.stdout))
            .map_err(|e| add_stderr(e, &out.stderr, &catalog.secrets))?;
    }
    Ok(observed)
}

fn add_stderr(e: Error, stderr: &[u8], secrets: &Secrets) -> Error {
    let text = String::from_utf8_lossy(stderr);
    let text = secrets.redact(&text);
    let text = text.trim();
    if text.is_empty() {
        e
    } else {
        let detail = format!("{} (stderr: {})", e.detail(), text.lines().last().unwrap_or(""));
        match e.location() {
            Some(crate::error::Location::Host { host }) => {
                error::host(detail).at_host(host.clone())
            }
            _ => error::host(detail),
        }
    }
}

/// What happened to one host in an apply.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to do.
    Unchanged,
    /// Converged; the changes made.
    Changed(Vec<(String, String)>),
    /// Failed (before or during apply); what was done before the failure is in `done`.
    Failed { error: Error, done: Vec<(String, String)> },
    /// Not attempted: the rollout stopped before its batch.
    Skipped,
}

pub struct HostResult {
    pub host: String,
    pub role: String,
    pub outcome: Outcome,
}

/// Converges prepared hosts in rollout order (role order, then batches), honouring the
/// environment's failure budget.
pub fn apply(
    env: &Environment,
    runs: Vec<HostRun>,
    commit: &str,
    run_id: &str,
    lock_owner: &str,
    options: &Options,
    events: &dyn Events,
) -> Vec<HostResult> {
    let mut by_role: BTreeMap<usize, Vec<HostRun>> = BTreeMap::new();
    let rank = |role: &str| {
        env.rollout.order.iter().position(|r| r == role).unwrap_or(env.rollout.order.len())
    };
    for run in runs {
        by_role.entry(rank(&run.host.role)).or_default().push(run);
    }
    let failures = Mutex::new(0usize);
    let mut results = Vec::new();
    let mut stopped = false;
    for (_, mut group) in by_role {
        group.sort_by(|a, b| a.host.name.cmp(&b.host.name));
        let total = group.len();
        let mut batches_sizes =
            env.rollout.batches.iter().map(|b| b.size(total)).chain(std::iter::repeat(total));
        let mut queue = group.into_iter().peekable();
        while queue.peek().is_some() {
            let size = batches_sizes.next().unwrap_or(total);
            let batch: Vec<HostRun> = queue.by_ref().take(size).collect();
            if stopped {
                results.extend(batch.into_iter().map(|r| {
                    events.host(
                        &r.host.name,
                        "skipped: the rollout stopped (failure budget exceeded)",
                    );
                    events.finished(&r.host.name);
                    HostResult { host: r.host.name, role: r.host.role, outcome: Outcome::Skipped }
                }));
                continue;
            }
            let outcomes = parallel(batch, options.forks, |run| {
                let host = run.host.name.clone();
                let role = run.host.role.clone();
                let outcome = apply_host(run, commit, run_id, lock_owner, events);
                events.finished(&host);
                if matches!(outcome, Outcome::Failed { .. }) {
                    *failures.lock().unwrap() += 1;
                }
                HostResult { host, role, outcome }
            });
            results.extend(outcomes);
            if *failures.lock().unwrap() > env.rollout.failure_budget {
                stopped = true;
            }
        }
    }
    results
}

fn apply_host(
    mut run: HostRun,
    commit: &str,
    run_id: &str,
    lock_owner: &str,
    events: &dyn Events,
) -> Outcome {
    let name = run.host.name.clone();
    if let Some(error) = run.error.take() {
        return Outcome::Failed { error, done: Vec::new() };
    }
    let (Some(plan), Some(mut session)) = (run.plan.take(), run.session.take()) else {
        return Outcome::Failed {
            error: error::host("not prepared").at_host(&name),
            done: Vec::new(),
        };
    };
    if plan.is_empty()
        && run
            .observed
            .as_ref()
            .and_then(|o| o.applied.as_ref())
            .is_some_and(|a| a.commit == commit)
    {
        events.host(&name, "no changes");
        return Outcome::Unchanged;
    }
    events.host(
        &name,
        &format!("applying {} change(s), {} restart(s)", plan.changes.len(), plan.restarts.len()),
    );
    let applied = Applied {
        commit: commit.to_string(),
        run_id: run_id.to_string(),
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        files: run.catalog.files().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
    };
    let script = apply::script(&run.catalog, &plan, &applied, lock_owner);
    let output = match session.exec(&script.command, &script.stdin) {
        Ok(o) => o,
        Err(e) => {
            events.host(&name, &format!("failed: {e}"));
            return Outcome::Failed { error: e, done: Vec::new() };
        }
    };
    let report = apply::parse(&String::from_utf8_lossy(&output.stdout));
    let redact = |s: &str| run.catalog.secrets.redact(s).into_owned();
    if let Some(holder) = report.locked_by {
        let e = error::host(format!("is locked by another run ({holder}); wait for it or, if it died, remove /var/lib/stackdeploy/lock.owner after checking")).at_host(&name);
        events.host(&name, &format!("failed: {e}"));
        return Outcome::Failed { error: e, done: report.done };
    }
    if let Some((resource, why)) = report.failed {
        let e = error::host(format!("{resource}: {}", redact(&why))).at_host(&name);
        events.host(&name, &format!("failed: {e}"));
        return Outcome::Failed { error: e, done: report.done };
    }
    if !report.complete {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let e = error::host(format!(
            "the apply script stopped early (exit {}){}",
            output.status,
            stderr.lines().last().map(|l| format!(": {}", redact(l))).unwrap_or_default()
        ))
        .at_host(&name);
        events.host(&name, &format!("failed: {e}"));
        return Outcome::Failed { error: e, done: report.done };
    }
    if report.done.is_empty() {
        // Only the applied record moved to the new commit.
        events.host(&name, "no changes");
        return Outcome::Unchanged;
    }
    let restarted: Vec<&str> = report
        .done
        .iter()
        .filter(|(_, what)| what == "restarted")
        .map(|(id, _)| id.as_str())
        .collect();
    let suffix = if restarted.is_empty() {
        String::new()
    } else {
        format!("; restarted {}", restarted.join(", "))
    };
    events.host(&name, &format!("done: {} change(s){suffix}", report.done.len()));
    Outcome::Changed(report.done)
}

//! The pipeline commands: `pipeline run`, `approve`, `status`, `rollback`. Stages are tied to
//! one commit; their results and the environments' commits live in git (`promotion`), so any
//! CI agent that fetches the refs sees the same state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::app::{CmdResult, Context, out};
use crate::catalog::{Compiler, Secrets};
use crate::checks::{CheckResult, run_checks};
use crate::cli::{
    ApproveArgs, Format, PipelineAction, PipelineArgs, PipelineRunArgs, RollbackArgs, StatusArgs,
};
use crate::converge::{lock_owner, prepare_hosts, run_id};
use crate::error::{self, Error};
use crate::facts::FactCache;
use crate::model::stages::{Stage, StageKind};
use crate::model::{Composition, Environment, Host, Pipeline};
use crate::progress::Progress;
use crate::promotion::{self, Outcome as Result_, StageResult};
use crate::run::{self, HostResult, Options, Outcome};
use crate::source::{Repo, short};

/// What one stage did, for the summary, JSON, JUnit and the git note.
#[derive(Debug, Clone, Serialize)]
struct StageReport {
    name: String,
    kind: StageKind,
    environment: Option<String>,
    passed: bool,
    duration_secs: f64,
    hosts: Vec<String>,
    detail: String,
    checks: Vec<CheckResult>,
}

fn options(forks: usize) -> Options {
    Options {
        forks: forks.max(1),
        trust_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
    }
}

fn load_at(repo: &Repo, commit: &str) -> Result<Composition, Vec<Error>> {
    let snapshot = repo.snapshot_at(commit).map_err(|e| vec![e])?;
    let mut comp = Composition::load(&snapshot)?;
    comp.keyring = crate::secret::keyring(false)?;
    Ok(comp)
}

fn summarize(errors: &[Error]) -> String {
    let mut lines: Vec<String> = errors.iter().take(5).map(|e| e.to_string()).collect();
    if errors.len() > 5 {
        lines.push(format!("... and {} more", errors.len() - 5));
    }
    lines.join("\n")
}

/// Applies `commit`'s catalogs to `hosts` in rollout order. Err: compile errors (nothing pushed).
fn apply_hosts(
    repo: &Repo,
    comp: &Composition,
    env: &Environment,
    hosts: &[&Host],
    options: &Options,
    run_id: &str,
) -> Result<Vec<HostResult>, Vec<Error>> {
    let prepared = prepare_hosts(repo, comp, env, hosts, options)?;
    let progress = Progress::new("applying", prepared.runs.len());
    Ok(run::apply(
        env,
        prepared.runs,
        &prepared.commit,
        run_id,
        &lock_owner(run_id),
        options,
        &progress,
    ))
}

fn failures(results: &[HostResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed { error, .. } => Some(format!("{}: {}", r.host, error.detail())),
            Outcome::Skipped => Some(format!("{}: skipped (rollout stopped)", r.host)),
            _ => None,
        })
        .collect()
}

pub fn pipeline(ctx: &Context, args: &PipelineArgs) -> CmdResult {
    match &args.action {
        PipelineAction::Run(a) => run_pipeline(ctx, a),
    }
}

fn run_pipeline(ctx: &Context, args: &PipelineRunArgs) -> CmdResult {
    if ctx.worktree {
        return Err(vec![error::usage(
            "pipeline stages run on commits only; commit your changes instead of --worktree",
        )]);
    }
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let oid = repo.resolve(ctx.rev.as_deref().unwrap_or("HEAD")).map_err(|e| vec![e])?;
    let commit = oid.to_string();
    let snapshot = repo.snapshot_at(&commit).map_err(|e| vec![e])?;
    // The stages come from pipeline.toml alone, so a commit whose profiles do not compile still
    // gets its precommit stage run (and failed) and recorded.
    let pipeline = crate::model::Pipeline::from_snapshot(&snapshot).map_err(|e| vec![e])?;
    if pipeline.stages.is_empty() {
        return Err(vec![
            error::usage("pipeline.toml declares no [[stages]]")
                .at_file(crate::model::PIPELINE_FILE, None),
        ]);
    }
    let index = |name: &Option<String>, default: usize| -> Result<usize, Vec<Error>> {
        match name {
            None => Ok(default),
            Some(n) => pipeline.stages.iter().position(|s| &s.name == n).ok_or_else(|| {
                let known: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
                vec![error::usage(format!("no stage '{n}' (stages: {})", known.join(", ")))]
            }),
        }
    };
    let (from, to) = (index(&args.from, 0)?, index(&args.to, pipeline.stages.len() - 1)?);
    if from > to {
        return Err(vec![error::usage("--from comes after --to")]);
    }
    let stages = &pipeline.stages[from..=to];
    let applies = stages.iter().any(|s| s.kind.applies());
    let question = format!(
        "Run stages {} for commit {}?",
        stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
        short(&commit)
    );
    if applies && !args.yes && !crate::app::confirm("pipeline run", &question)? {
        return Ok(1);
    }

    if args.lab {
        let envs: std::collections::BTreeSet<&str> =
            stages.iter().filter_map(|s| s.environment.as_deref()).collect();
        for name in envs {
            let env = pipeline.environment(name).map_err(|e| vec![e])?;
            let (_, up) = crate::converge::lab_up(repo.dir(), env)?;
            eprintln!("lab '{name}' is up: {} host(s)", up.len());
        }
    }
    let comp = load_at(&repo, &commit);
    let run_id = run_id();
    let options = options(args.forks);
    let summary = repo
        .git()
        .find_commit(oid)
        .ok()
        .and_then(|c| c.summary().ok().flatten().map(str::to_string))
        .unwrap_or_default();
    eprintln!("pipeline for commit {} ({summary}), run {run_id}", short(&commit));
    let mut reports: Vec<StageReport> = Vec::new();
    let mut code = 0;
    for stage in stages {
        let record = promotion::read(repo.git(), oid).map_err(|e| vec![e])?;
        let missing: Vec<String> = stage
            .requires
            .iter()
            .filter(|r| record.stages.get(*r).is_none_or(|s| s.result != Result_::Passed))
            .map(|r| match record.stages.get(r) {
                Some(_) => format!("'{r}' failed"),
                None => format!("'{r}' has not run"),
            })
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "refused: stage '{}' requires {} to have passed for commit {}: {}",
                stage.name,
                stage.requires.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", "),
                short(&commit),
                missing.join(", ")
            );
            code = 1;
            break;
        }
        if stage.approval && !record.approvals.contains_key(&stage.name) {
            eprintln!(
                "waiting: stage '{}' needs a manual approval: stackdeploy approve {} --stage {}",
                stage.name,
                short(&commit),
                stage.name
            );
            code = 3;
            break;
        }
        eprintln!(
            "==> stage {} ({:?}{})",
            stage.name,
            stage.kind,
            stage.environment.as_deref().map(|e| format!(", {e}")).unwrap_or_default()
        );
        let started = Instant::now();
        let mut report = run_stage(&repo, &snapshot, &comp, stage, &commit, &run_id, &options);
        report.duration_secs = started.elapsed().as_secs_f64();
        let result = StageResult {
            result: if report.passed { Result_::Passed } else { Result_::Failed },
            kind: format!("{:?}", stage.kind).to_lowercase(),
            environment: stage.environment.clone(),
            hosts: report.hosts.clone(),
            duration_secs: report.duration_secs,
            run_id: run_id.clone(),
            user: promotion::user(),
            time: promotion::now(),
            detail: report.detail.clone(),
        };
        promotion::record_stage(repo.git(), oid, &stage.name, result).map_err(|e| vec![e])?;
        if let Some(remote) = &pipeline.state_remote {
            // The stage's outcome stands either way; a failed push is said loudly, not hidden.
            match promotion::push(repo.dir(), remote) {
                Ok(()) => eprintln!("pushed the pipeline state to {remote}"),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
        eprintln!(
            "<== stage {} {} in {:.1} s",
            stage.name,
            if report.passed { "passed" } else { "FAILED" },
            report.duration_secs
        );
        let passed = report.passed;
        reports.push(report);
        if !passed {
            code = 1;
            break;
        }
    }

    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&reports, &commit)).map_err(|e| {
            vec![error::io(format!("cannot write {}", path.display())).with_source(e)]
        })?;
    }
    match args.format {
        Format::Text => out(&summary_text(&reports, &commit, code)),
        Format::Json => {
            let doc = json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "commit": commit,
                "run_id": run_id,
                "result": match code { 0 => "passed", 3 => "waiting_for_approval", _ => "failed" },
                "stages": reports,
            });
            out(&(serde_json::to_string_pretty(&doc).expect("json") + "\n"));
        }
    }
    Ok(code)
}

fn run_stage(
    repo: &Repo,
    snapshot: &crate::source::Snapshot,
    comp: &Result<Composition, Vec<Error>>,
    stage: &Stage,
    commit: &str,
    run_id: &str,
    options: &Options,
) -> StageReport {
    let mut report = StageReport {
        name: stage.name.clone(),
        kind: stage.kind,
        environment: stage.environment.clone(),
        passed: false,
        duration_secs: 0.0,
        hosts: Vec::new(),
        detail: String::new(),
        checks: Vec::new(),
    };
    if stage.kind == StageKind::Precommit {
        let result = match crate::secret::keyring(true) {
            Ok(keyring) => crate::check::check(snapshot, &FactCache::new(repo.dir()), keyring),
            Err(errors) => {
                report.detail = summarize(&errors);
                return report;
            }
        };
        report.passed = result.problems.is_empty();
        report.detail = if report.passed {
            format!("{} host(s) compiled", result.hosts)
        } else {
            result.problems.iter().take(5).map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
        };
        return report;
    }
    let comp = match comp {
        Ok(c) => c,
        Err(errors) => {
            report.detail = format!("the composition does not compile:\n{}", summarize(errors));
            return report;
        }
    };
    let env = match comp.pipeline.environment(stage.environment.as_deref().unwrap_or_default()) {
        Ok(e) => e,
        Err(e) => {
            report.detail = e.to_string();
            return report;
        }
    };
    let hosts = stage.select(env);
    report.hosts = hosts.iter().map(|h| h.name.clone()).collect();
    let git = repo.git();
    let env_name = env.name.as_str();

    if stage.kind.applies() {
        let results = match apply_hosts(repo, comp, env, &hosts, options, run_id) {
            Ok(r) => r,
            Err(errors) => {
                report.detail = format!("does not compile:\n{}", summarize(&errors));
                return report;
            }
        };
        let failed = failures(&results);
        if !failed.is_empty() {
            report.detail = format!("apply failed:\n{}", failed.join("\n"));
            if stage.kind == StageKind::Canary {
                report.detail.push_str(&rollback_canaries(repo, env, &hosts, options, run_id));
            }
            return report;
        }
        if stage.kind == StageKind::Deploy {
            // Idempotency: a second apply of the same commit must change nothing.
            match apply_hosts(repo, comp, env, &hosts, options, run_id) {
                Ok(second) => {
                    let changed: Vec<String> = second
                        .iter()
                        .filter_map(|r| match &r.outcome {
                            Outcome::Changed(done) => Some(format!(
                                "{}: {}",
                                r.host,
                                done.iter()
                                    .map(|(id, what)| format!("{id} {what}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                            _ => None,
                        })
                        .collect();
                    let failed = failures(&second);
                    if !changed.is_empty() || !failed.is_empty() {
                        report.detail = format!(
                            "not idempotent: the second apply changed things:\n{}",
                            [changed, failed].concat().join("\n")
                        );
                        return report;
                    }
                }
                Err(errors) => {
                    report.detail = summarize(&errors);
                    return report;
                }
            }
        }
    }

    let compiler = match Compiler::new(comp) {
        Ok(c) => c,
        Err(errors) => {
            report.detail = summarize(&errors);
            return report;
        }
    };
    let mut secrets = Secrets::default();
    for h in &env.hosts {
        if let Some(s) = crate::check::secrets_of(comp, h) {
            secrets.extend(&s);
        }
    }
    report.checks =
        run_checks(&stage.checks, env, &hosts, &compiler, &secrets, repo.dir(), options);
    let failed_checks: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("check '{}' on {} failed: {}", c.name, c.on, c.output))
        .collect();
    if !failed_checks.is_empty() {
        report.detail = failed_checks.join("\n");
        if stage.kind == StageKind::Canary {
            report.detail.push_str(&rollback_canaries(repo, env, &hosts, options, run_id));
        }
        return report;
    }

    // Passed: move the promotion refs.
    let moved = (|| -> Result<(), Error> {
        let oid =
            git2::Oid::from_str(commit).map_err(|e| error::git("bad commit id").with_source(e))?;
        match stage.kind {
            StageKind::Deploy | StageKind::Release => {
                promotion::set_env_commit(
                    git,
                    env_name,
                    oid,
                    &format!("stackdeploy: {} passed", stage.name),
                )?;
                let mut map = promotion::host_commits(git, env_name)?;
                map.retain(|h, _| !report.hosts.contains(h));
                promotion::set_host_commits(git, env_name, &map)?;
            }
            StageKind::Canary => {
                let mut map = promotion::host_commits(git, env_name)?;
                for h in &report.hosts {
                    map.insert(h.clone(), commit.to_string());
                }
                promotion::set_host_commits(git, env_name, &map)?;
            }
            _ => {}
        }
        Ok(())
    })();
    if let Err(e) = moved {
        report.detail = e.to_string();
        return report;
    }
    report.passed = true;
    report.detail = format!("{} host(s)", report.hosts.len());
    report
}

/// Returns canary hosts to the environment's released commit; says what happened.
fn rollback_canaries(
    repo: &Repo,
    env: &Environment,
    hosts: &[&Host],
    options: &Options,
    run_id: &str,
) -> String {
    let git = repo.git();
    let released = match promotion::env_commit(git, &env.name) {
        Ok(Some(c)) => c.to_string(),
        _ => {
            return format!(
                "\nno released commit of {} to roll the canary hosts back to",
                env.name
            );
        }
    };
    eprintln!("rolling the canary hosts back to {}", short(&released));
    let comp = match load_at(repo, &released) {
        Ok(c) => c,
        Err(errors) => {
            return format!(
                "\nrollback impossible, {} does not compile: {}",
                short(&released),
                summarize(&errors)
            );
        }
    };
    let Ok(old_env) = comp.pipeline.environment(&env.name) else {
        return format!(
            "\nrollback impossible: {} has no environment {}",
            short(&released),
            env.name
        );
    };
    let old_hosts: Vec<&Host> =
        old_env.hosts.iter().filter(|h| hosts.iter().any(|c| c.name == h.name)).collect();
    match apply_hosts(repo, &comp, old_env, &old_hosts, options, run_id) {
        Ok(results) => {
            let failed = failures(&results);
            if let Ok(mut map) = promotion::host_commits(git, &env.name) {
                map.retain(|h, _| !old_hosts.iter().any(|o| &o.name == h));
                let _ = promotion::set_host_commits(git, &env.name, &map);
            }
            if failed.is_empty() {
                format!("\ncanary hosts rolled back to {}", short(&released))
            } else {
                format!("\nrollback of the canary hosts FAILED:\n{}", failed.join("\n"))
            }
        }
        Err(errors) => format!("\nrollback impossible: {}", summarize(&errors)),
    }
}

fn summary_text(reports: &[StageReport], commit: &str, code: i32) -> String {
    let mut s = format!("pipeline for commit {}\n", short(commit));
    for r in reports {
        let first = r.detail.lines().next().unwrap_or("");
        s.push_str(&format!(
            "  {:<20} {:<7} {:>6.1} s  {}\n",
            r.name,
            if r.passed { "passed" } else { "FAILED" },
            r.duration_secs,
            first
        ));
        if !r.passed {
            for line in r.detail.lines().skip(1) {
                s.push_str(&format!("      {line}\n"));
            }
        }
    }
    s.push_str(match code {
        0 => "result: passed\n",
        3 => "result: waiting for approval\n",
        _ => "result: FAILED\n",
    });
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML: one test suite for the run, one test case per stage.
fn junit(reports: &[StageReport], commit: &str) -> String {
    let failures = reports.iter().filter(|r| !r.passed).count();
    let time: f64 = reports.iter().map(|r| r.duration_secs).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"stackdeploy pipeline {}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
        short(commit),
        reports.len()
    );
    for r in reports {
        let kind = format!("{:?}", r.kind).to_lowercase();
        s.push_str(&format!(
            "    <testcase classname=\"stackdeploy.{kind}\" name=\"{}\" time=\"{:.3}\"",
            xml(&r.name),
            r.duration_secs
        ));
        if r.passed {
            s.push_str("/>\n");
        } else {
            s.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(r.detail.lines().next().unwrap_or("failed")),
                xml(&r.detail)
            ));
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

pub fn approve(ctx: &Context, args: &ApproveArgs) -> CmdResult {
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let oid = repo.resolve(&args.commit).map_err(|e| vec![e])?;
    let snapshot = repo.snapshot_at(&oid.to_string()).map_err(|e| vec![e])?;
    let pipeline = Pipeline::from_snapshot(&snapshot).map_err(|e| vec![e])?;
    let Some(stage) = pipeline.stages.iter().find(|s| s.name == args.stage) else {
        let known: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        return Err(vec![error::usage(format!(
            "no stage '{}' (stages: {})",
            args.stage,
            known.join(", ")
        ))]);
    };
    if !stage.approval {
        eprintln!("note: stage '{}' does not need approval; recording it anyway", stage.name);
    }
    promotion::approve(repo.git(), oid, &stage.name).map_err(|e| vec![e])?;
    eprintln!(
        "approved stage '{}' for commit {} (as {})",
        stage.name,
        short(&oid.to_string()),
        promotion::user()
    );
    Ok(0)
}

pub fn status(ctx: &Context, args: &StatusArgs) -> CmdResult {
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let head = repo.resolve(ctx.rev.as_deref().unwrap_or("HEAD")).map_err(|e| vec![e])?;
    let git = repo.git();
    let snapshot = repo.snapshot_at(&head.to_string()).map_err(|e| vec![e])?;
    let pipeline = Pipeline::from_snapshot(&snapshot).map_err(|e| vec![e])?;
    let mut walk = git.revwalk().map_err(|e| vec![error::git("walking history").with_source(e)])?;
    walk.push(head).map_err(|e| vec![error::git("walking history").with_source(e)])?;
    walk.simplify_first_parent().ok();
    let mut rows = Vec::new();
    for oid in walk.take(args.count.max(1)).flatten() {
        let record = promotion::read(git, oid).map_err(|e| vec![e])?;
        let subject = git
            .find_commit(oid)
            .ok()
            .and_then(|c| c.summary().ok().flatten().map(str::to_string))
            .unwrap_or_default();
        let cells: Vec<(String, String)> = pipeline
            .stages
            .iter()
            .map(|s| {
                let cell =
                    match (record.stages.get(&s.name), record.approvals.contains_key(&s.name)) {
                        (Some(r), _) => {
                            if r.result == Result_::Passed {
                                "passed"
                            } else {
                                "failed"
                            }
                        }
                        (None, true) => "approved",
                        (None, false) => "pending",
                    };
                (s.name.clone(), cell.to_string())
            })
            .collect();
        rows.push((oid.to_string(), subject, cells));
    }
    let mut envs = BTreeMap::new();
    for name in pipeline.environments.keys() {
        let commit = promotion::env_commit(git, name).map_err(|e| vec![e])?.map(|c| c.to_string());
        let hosts = promotion::host_commits(git, name).map_err(|e| vec![e])?;
        envs.insert(name.clone(), (commit, hosts));
    }
    match args.format {
        Format::Json => {
            let doc = json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "stages": pipeline.stages.iter().map(|s| &s.name).collect::<Vec<_>>(),
                "commits": rows.iter().map(|(id, subject, cells)| json!({
                    "commit": id, "subject": subject,
                    "stages": cells.iter().cloned().collect::<BTreeMap<_, _>>(),
                })).collect::<Vec<_>>(),
                "environments": envs.iter().map(|(name, (commit, hosts))| {
                    let env = &pipeline.environments[name];
                    let per_host: BTreeMap<&str, Option<&String>> = env.hosts.iter().map(|h| (h.name.as_str(), hosts.get(&h.name).or(commit.as_ref()))).collect();
                    (name.clone(), json!({"commit": commit, "hosts": per_host}))
                }).collect::<BTreeMap<_, _>>(),
            });
            out(&(serde_json::to_string_pretty(&doc).expect("json") + "\n"));
        }
        Format::Text => {
            let width = pipeline.stages.iter().map(|s| s.name.len()).max().unwrap_or(8).max(8);
            let mut s = format!("{:<12}", "commit");
            for st in &pipeline.stages {
                s.push_str(&format!("  {:<width$}", st.name));
            }
            s.push_str("  subject\n");
            for (id, subject, cells) in &rows {
                s.push_str(&format!("{:<12}", short(id)));
                for (_, cell) in cells {
                    s.push_str(&format!("  {cell:<width$}"));
                }
                s.push_str(&format!("  {subject}\n"));
            }
            s.push('\n');
            for (name, (commit, hosts)) in &envs {
                s.push_str(&format!(
                    "{name}: {}\n",
                    commit.as_deref().map(short).unwrap_or("never deployed")
                ));
                for (host, c) in hosts {
                    s.push_str(&format!("  {host} runs {}\n", short(c)));
                }
            }
            out(&s);
        }
    }
    Ok(0)
}

pub fn rollback(ctx: &Context, args: &RollbackArgs) -> CmdResult {
    let repo = Repo::discover(&ctx.dir).map_err(|e| vec![e])?;
    let git = repo.git();
    let current = promotion::env_commit(git, &args.env).map_err(|e| vec![e])?;
    let target = match &args.to {
        Some(rev) => repo.resolve(rev).map_err(|e| vec![e])?,
        None => {
            let current = current.ok_or_else(|| {
                vec![error::usage(format!(
                    "environment '{}' was never deployed; name a commit with --to",
                    args.env
                ))]
            })?;
            previous_release(git, current, &args.env).map_err(|e| vec![e])?.ok_or_else(|| {
                vec![error::usage(format!(
                    "no release of '{}' before {}; name a commit with --to",
                    args.env,
                    short(&current.to_string())
                ))]
            })?
        }
    };
    let target_s = target.to_string();
    let question = format!("Roll {} back to {}?", args.env, short(&target_s));
    if !args.yes && !crate::app::confirm("rollback", &question)? {
        return Ok(1);
    }
    eprintln!("rolling {} back to {}", args.env, short(&target_s));
    let comp = load_at(&repo, &target_s)?;
    let env = comp.pipeline.environment(&args.env).map_err(|e| vec![e])?;
    let hosts: Vec<&Host> = env.hosts.iter().collect();
    let run_id = run_id();
    let results = apply_hosts(&repo, &comp, env, &hosts, &options(args.forks), &run_id)?;
    eprint!(
        "{}",
        crate::report::plan::results_text(&results, crate::report::plan::Style { color: false })
    );
    let failed = failures(&results);
    if !failed.is_empty() {
        return Ok(1);
    }
    promotion::set_env_commit(git, &args.env, target, "stackdeploy: rollback")
        .map_err(|e| vec![e])?;
    promotion::set_host_commits(git, &args.env, &BTreeMap::new()).map_err(|e| vec![e])?;
    eprintln!("{} now runs {}", args.env, short(&target_s));
    Ok(0)
}

/// The newest first-parent ancestor of `current` whose note records a passed release (or, for
/// an environment without a release stage, deploy) to `env`.
fn previous_release(
    git: &git2::Repository,
    current: git2::Oid,
    env: &str,
) -> Result<Option<git2::Oid>, Error> {
    let mut walk = git.revwalk().map_err(|e| error::git("walking history").with_source(e))?;
    walk.push(current).map_err(|e| error::git("walking history").with_source(e))?;
    walk.simplify_first_parent().ok();
    for oid in walk.flatten().skip(1) {
        let record = promotion::read(git, oid)?;
        let released = record.stages.values().any(|s| {
            s.result == Result_::Passed
                && s.environment.as_deref() == Some(env)
                && (s.kind == "release" || s.kind == "deploy")
        });
        if released {
            return Ok(Some(oid));
        }
    }
    Ok(None)
}

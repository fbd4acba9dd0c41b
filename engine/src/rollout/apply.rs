//! Converging prepared hosts: role order, then batches; the hosts of a batch at once; no new
//! batch once more hosts failed than the failure budget allows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{HostOutcome, HostResult, HostRun, Rollout};
use crate::error::{self, Error};
use crate::event::Event;
use crate::plan::Change;
use crate::pool::parallel;
use crate::remote::apply as script;
use crate::runinfo::{RunInfo, now};
use crate::source::short;
use crate::state::Applied;

pub(super) fn apply(rollout: &Rollout<'_>, runs: Vec<HostRun>, run: &RunInfo) -> Vec<HostResult> {
    let env = rollout.env;
    let events = rollout.events;
    events.emit(Event::StepStarted { step: "applying", hosts: runs.len() });
    let mut by_role: BTreeMap<usize, Vec<HostRun>> = BTreeMap::new();
    let rank = |role: &str| {
        env.rollout.order.iter().position(|r| r == role).unwrap_or(env.rollout.order.len())
    };
    for r in runs {
        by_role.entry(rank(&r.host.role)).or_default().push(r);
    }
    let failures = AtomicUsize::new(0);
    let mut results = Vec::new();
    let mut stopped = false;
    for (_, mut group) in by_role {
        group.sort_by(|a, b| a.host.name.cmp(&b.host.name));
        let total = group.len();
        let mut sizes =
            env.rollout.batches.iter().map(|b| b.size(total)).chain(std::iter::repeat(total));
        let mut queue = group.into_iter().peekable();
        while queue.peek().is_some() {
            let size = sizes.next().unwrap_or(total);
            let batch: Vec<HostRun> = queue.by_ref().take(size).collect();
            if stopped {
                for r in batch {
                    events.emit(Event::HostSkipped { host: &r.host.name });
                    events.emit(Event::HostFinished { host: &r.host.name });
                    let (host, role) = (r.host.name, r.host.role);
                    let outcome = HostOutcome::Skipped;
                    results.push(HostResult { host, role, outcome, time: r.prepare_time });
                }
                continue;
            }
            let outcomes = parallel(batch, rollout.forks, |r| {
                let host = r.host.name.clone();
                let role = r.host.role.clone();
                let started = Instant::now();
                let prepared = r.prepare_time;
                let outcome = apply_host(rollout, r, run);
                if let HostOutcome::Failed { .. } = &outcome {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                events.emit(Event::HostFinished { host: &host });
                HostResult { host, role, outcome, time: prepared + started.elapsed() }
            });
            results.extend(outcomes);
            if failures.load(Ordering::SeqCst) > env.rollout.failure_budget {
                stopped = true;
            }
        }
    }
    events.emit(Event::StepEnded);
    results
}

/// The error for a host whose connection broke during its apply: what was done, and what the
/// host owes the next run.
fn lost(
    host: &str,
    script: &crate::remote::Script,
    plan: &crate::plan::HostPlan,
    report: &script::Report,
    why: &str,
) -> Error {
    let staged = match &script.intent {
        crate::remote::Intent::Apply(steps) => {
            steps.iter().filter(|s| matches!(s, script::Step::StageFile { .. })).count()
        }
        _ => 0,
    };
    let written = report.done.iter().filter(|(_, what)| what == "written").count();
    let others = report.done.len() - written;
    let state = if report.done.is_empty() {
        "before anything was changed on it".to_string()
    } else {
        let mut s = format!("after {written} of {staged} files were replaced");
        if others > 0 {
            s.push_str(&format!(" and {others} other change(s) made"));
        }
        s
    };
    let done: Vec<&str> = report.done.iter().map(|(id, _)| id.as_str()).collect();
    let owed = plan.restarts.iter().filter(|r| !done.contains(&r.resource.as_str())).count();
    let next = if written > 0 && owed > 0 {
        format!("; {owed} restart(s) are owed and run next time")
    } else {
        String::new()
    };
    error::host(format!(
        "the connection broke {state}{next}; what is left of the plan runs next time ({why})"
    ))
    .at_host(host)
}

/// The error for a host that changed since it was planned: what its record says now.
fn stale(host: &str, now: &str, expected: Option<&str>) -> Error {
    let runs = match serde_json::from_str::<Applied>(now) {
        Ok(a) => format!("it now runs commit {} (applied by run {})", short(&a.commit), a.run_id),
        Err(_) => "its applied record is gone".to_string(),
    };
    let saw = expected.map_or("no applied record".to_string(), |r| format!("run {r}"));
    error::host(format!(
        "changed since it was planned: {runs}, but the plan was made against {saw}; nothing was \
         changed on it: plan again"
    ))
    .at_host(host)
}

/// Applies one host's plan. A plan that patches a file one of its packages brings
/// ([`Change::PatchFile`] `after_packages`) is followed by a second pass once the packages are
/// in: the host is probed and planned again, and that plan patches the file (and restarts what
/// the patch notifies).
fn apply_host(rollout: &Rollout<'_>, mut r: HostRun, run: &RunInfo) -> HostOutcome {
    let waiting = r.plan.as_ref().map_or(0, |p| {
        p.changes
            .iter()
            .filter(|c| matches!(c, Change::PatchFile { after_packages: true, .. }))
            .count()
    });
    let first = apply_once(rollout, &mut r, run);
    let HostOutcome::Changed(mut done) = first else { return first };
    if waiting == 0 {
        return HostOutcome::Changed(done);
    }
    rollout.events.emit(Event::HostPlannedAgain { host: &r.host.name, patches: waiting });
    if let Err(error) = super::prepare::prepare_host(rollout, &mut r) {
        rollout.events.emit(Event::HostFailed { host: &r.host.name, error: &error });
        return HostOutcome::Failed { error, done };
    }
    match apply_once(rollout, &mut r, run) {
        HostOutcome::Changed(more) => {
            done.extend(more);
            HostOutcome::Changed(done)
        }
        HostOutcome::Failed { error, done: more } => {
            done.extend(more);
            HostOutcome::Failed { error, done }
        }
        HostOutcome::Unchanged | HostOutcome::Skipped => HostOutcome::Changed(done),
    }
}

fn apply_once(rollout: &Rollout<'_>, r: &mut HostRun, run: &RunInfo) -> HostOutcome {
    let name = r.host.name.clone();
    let events = rollout.events;
    // A host that failed while it was prepared was reported then.
    if let Some(error) = r.error.take() {
        return HostOutcome::Failed { error, done: Vec::new() };
    }
    let failed = |error: Error, done: Vec<(String, String)>| {
        events.emit(Event::HostFailed { host: &name, error: &error });
        HostOutcome::Failed { error, done }
    };
    let needs_apply = r.needs_apply(&rollout.commit);
    let (Some(plan), Some(mut remote)) = (r.plan.take(), r.remote.take()) else {
        let error = error::host("not prepared").at_host(&name);
        return HostOutcome::Failed { error, done: Vec::new() };
    };
    // The run whose record the plan saw: under its lock the host must still have it.
    let expected = r.observed.as_ref().and_then(|o| o.applied.as_ref()).map(|a| a.run_id.as_str());
    let script = if needs_apply {
        events.emit(Event::HostApplying {
            host: &name,
            changes: plan.changes.len(),
            restarts: plan.restarts.len(),
        });
        let applied = Applied {
            commit: rollout.commit.clone(),
            run_id: run.id.clone(),
            time: now(),
            files: r.catalog.files().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
            patches: plan
                .patched
                .iter()
                .filter_map(|p| Some((p.path.clone(), p.record.clone()?)))
                .collect(),
        };
        let ctx = script::Run {
            applied: &applied,
            expected,
            lock_owner: &run.lock_owner,
            state_dir: rollout.state_dir,
            keep_backups: rollout.env.keep_backups,
        };
        script::script(&r.catalog, &plan, &ctx)
    } else {
        // Nothing to do, but "unchanged" must be true when it is said.
        script::verify(expected, &run.id, &run.lock_owner, rollout.state_dir)
    };
    let output = match remote.run(&script) {
        Ok(o) => o,
        Err(e) => return failed(e, Vec::new()),
    };
    let report = script::parse(&String::from_utf8_lossy(&output.stdout));
    let redact = |s: &str| r.catalog.secrets.redact(s).into_owned();
    if let Some(why) = &output.lost
        && report.failed.is_none()
        && report.stale.is_none()
        && report.locked_by.is_none()
    {
        let e = lost(&name, &script, &plan, &report, &redact(why));
        return failed(e, report.done);
    }
    if let Some(holder) = report.locked_by {
        let e = error::host(format!(
            "is locked by another run: {holder}. That process still runs on the host; a run \
             whose client is gone ends by itself within seconds, and every command it runs \
             within its timeout: wait, or stop that process"
        ))
        .at_host(&name);
        return failed(e, report.done);
    }
    if let Some(now) = report.stale {
        return failed(stale(&name, &now, expected), report.done);
    }
    if let Some((resource, why)) = report.failed {
        return failed(
            error::apply(format!("{resource}: {}", redact(&why))).at_host(&name),
            report.done,
        );
    }
    if !report.complete {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let e = error::host(format!(
            "the apply script stopped early (exit {}){}",
            output.status,
            stderr.lines().last().map(|l| format!(": {}", redact(l))).unwrap_or_default()
        ))
        .at_host(&name);
        return failed(e, report.done);
    }
    if report.done.is_empty() {
        // Only the applied record moved to the new commit.
        events.emit(Event::HostUnchanged { host: &name });
        return HostOutcome::Unchanged;
    }
    let restarted: Vec<&str> = report
        .done
        .iter()
        .filter(|(_, what)| what == "restarted")
        .map(|(id, _)| id.as_str())
        .collect();
    events.emit(Event::HostChanged {
        host: &name,
        changes: report.done.len(),
        restarted: &restarted,
    });
    HostOutcome::Changed(report.done)
}

//! Preparing hosts: compile, connect, probe (again if the host's facts change its catalog),
//! fetch the files that differ, plan.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{HostRun, Remote, Rollout};
use crate::catalog::Catalog;
use crate::error::{self, Error, Errors};
use crate::event::Event;
use crate::model::Host;
use crate::plan::{OldContent, plan_host};
use crate::pool::parallel;
use crate::remote::probe;
use crate::secrets::Secrets;
use crate::state::{Observed, PathState};

pub(super) fn prepare(rollout: &Rollout<'_>, hosts: &[&Host]) -> Result<Vec<HostRun>, Errors> {
    let mut catalogs = Vec::new();
    let mut errors = Errors::new();
    for host in hosts {
        match rollout.compiler.compile(&rollout.env_ctx, host, rollout.facts.facts(host)) {
            Ok(c) => catalogs.push(((*host).clone(), c)),
            Err(e) => errors.extend(e),
        }
    }
    errors.into_result()?;
    let events = rollout.events;
    events.emit(Event::StepStarted { step: "probing", hosts: catalogs.len() });
    let runs = parallel(catalogs, rollout.forks, |(host, catalog)| {
        let started = Instant::now();
        let mut run = HostRun {
            host,
            catalog,
            remote: None,
            observed: None,
            plan: None,
            error: None,
            prepare_time: Duration::ZERO,
        };
        if let Err(e) = prepare_host(rollout, &mut run) {
            events.emit(Event::HostFailed { host: &run.host.name, error: &e });
            run.error = Some(e);
        }
        run.prepare_time = started.elapsed();
        events.emit(Event::HostFinished { host: &run.host.name });
        run
    });
    events.emit(Event::StepEnded);
    Ok(runs)
}

pub(super) fn prepare_host(rollout: &Rollout<'_>, run: &mut HostRun) -> Result<(), Error> {
    let name = run.host.name.clone();
    let mut remote = rollout.connect.connect(&run.host)?;
    let mut observed = probe_once(rollout, remote.as_mut(), &run.catalog, &name)?;
    rollout.facts.store(&run.host, &observed.facts);

    // The catalog was compiled with cached facts; if the host's facts changed, compile again,
    // and probe again only if that changed what is managed.
    let mut facts = observed.facts.clone();
    facts.extend(run.host.facts.clone());
    let fresh =
        rollout.compiler.compile(&rollout.env_ctx, &run.host, facts.clone()).map_err(|errors| {
            let first =
                errors.into_iter().next().unwrap_or_else(|| error::invalid("compile failed"));
            first.at_host(&name)
        })?;
    if fresh.resources != run.catalog.resources {
        // New packages, services or exec guards must be probed too, not just new paths.
        run.catalog = fresh;
        observed = probe_once(rollout, remote.as_mut(), &run.catalog, &name)?;
    }

    let mut differing: Vec<&str> = run
        .catalog
        .files()
        .filter(|f| matches!(observed.paths.get(&f.path), Some(PathState::File { sha256, .. }) if *sha256 != f.sha256))
        .map(|f| f.path.as_str())
        .collect();
    // A patch is applied to the file's current content, here, before the plan is shown.
    differing.extend(crate::plan::patch::needs_content(&run.catalog, &observed));
    let old_files = if differing.is_empty() {
        BTreeMap::new()
    } else {
        let out = remote.run_whole(&probe::fetch_script(&differing), &name)?;
        probe::parse_fetch(&name, &out.stdout)?
    };
    let mut with_facts = run.host.clone();
    with_facts.facts = facts;
    let running = observed.applied.as_ref().map(|a| a.commit.as_str());
    let old = rollout.history.for_host(&with_facts, running, &rollout.commit, &run.catalog);
    let plan = plan_host(
        &run.catalog,
        &observed,
        &rollout.commit,
        &OldContent {
            files: &old_files,
            secrets: old.as_ref().map(|o| &o.secrets),
            label: "on host",
            withheld: old.as_ref().map_or(&BTreeSet::new(), |o| &o.secret_files),
        },
    )?;
    run.remote = Some(remote);
    run.observed = Some(observed);
    run.plan = Some(plan);
    Ok(())
}

fn probe_once(
    rollout: &Rollout<'_>,
    remote: &mut dyn Remote,
    catalog: &Catalog,
    host: &str,
) -> Result<Observed, Error> {
    // Paths the last run managed may have left the catalog; they are probed so their removal
    // can be planned. Their list comes from the host's own record, so it takes a first look.
    let run = |remote: &mut dyn Remote, extra: &[String]| -> Result<Observed, Error> {
        let script = probe::script(catalog, extra, rollout.state_dir);
        let out = remote.run_whole(&script, host)?;
        let request = script.intent.probe().expect("a probe script");
        probe::parse(host, &String::from_utf8_lossy(&out.stdout), request)
            .map_err(|e| with_stderr(e, &out.stderr, &catalog.secrets))
    };
    let mut observed = run(remote, &[])?;
    let extra: Vec<String> = observed
        .applied
        .as_ref()
        .map(|a| {
            a.files
                .keys()
                .chain(a.patches.keys())
                .filter(|p| !observed.paths.contains_key(*p))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !extra.is_empty() {
        observed = run(remote, &extra)?;
    }
    Ok(observed)
}

/// Adds the last line the probe wrote to stderr (redacted) to its error, which keeps its kind,
/// location and cause.
fn with_stderr(e: Error, stderr: &[u8], secrets: &Secrets) -> Error {
    let text = String::from_utf8_lossy(stderr);
    let text = secrets.redact(&text);
    match text.trim().lines().last() {
        Some(last) if !last.is_empty() => e.map_detail(|d| format!("{d} (stderr: {last})")),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_added_without_losing_kind_location_or_cause() {
        let cause = std::io::Error::other("boom");
        let e = error::invalid("the probe did not finish").at_host("db01").with_source(cause);
        let mut secrets = Secrets::default();
        secrets.add("k", &toml::Value::from("hunter22"));
        let e = with_stderr(e, b"warning\nsh: 3: bad hunter22 here\n", &secrets);
        assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
        assert!(std::error::Error::source(&e).is_some());
        let text = e.to_string();
        assert!(
            text.starts_with("db01: the probe did not finish (stderr: sh: 3: bad <secret:k#"),
            "{text}"
        );
        assert!(text.ends_with(": boom"), "{text}");
    }
}

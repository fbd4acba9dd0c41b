//! Rollout logic against fake hosts: order, batches, failure budget, locks, validate failures,
//! owed restarts after a cut connection, unreachable hosts, saved-plan drift, idempotency.

use std::sync::{Arc, Mutex};

use super::fake::{FakeFile, Fleet};
use super::*;
use crate::event::Event;
use crate::plan::planfile::SavedPlan;
use crate::secrets::Keyring;
use crate::testing;

/// Records what the rollout reports, one line an event.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Events for Recorder {
    fn emit(&self, event: Event<'_>) {
        let line = match event {
            Event::HostFailed { host, error } => format!("{host} failed: {}", error.detail()),
            Event::HostUnchanged { host } => format!("{host} unchanged"),
            Event::HostChanged { host, changes, .. } => format!("{host} changed {changes}"),
            Event::HostSkipped { host } => format!("{host} skipped"),
            Event::HostPlannedAgain { host, patches } => format!("{host} planned again {patches}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

struct Setup {
    comp: crate::composition::Composition,
    cache_dir: tempfile::TempDir,
    facts: FactCache,
    fleet: Fleet,
    events: Recorder,
}

impl Setup {
    fn new(batches: &str, budget: usize, extra: &[(&str, &str)]) -> Setup {
        Setup::on(Fleet::new(), "c1", batches, budget, extra)
    }

    fn on(
        fleet: Fleet,
        commit: &str,
        batches: &str,
        budget: usize,
        extra: &[(&str, &str)],
    ) -> Setup {
        let comp = testing::composition(commit, &testing::files(batches, budget, extra));
        let cache_dir = tempfile::tempdir().unwrap();
        let facts = FactCache::new(cache_dir.path());
        Setup { comp, cache_dir, facts, fleet, events: Recorder::default() }
    }

    fn run<R>(&self, f: impl FnOnce(&Rollout<'_>, Vec<&Host>) -> R) -> R {
        let load = |_: &str| None;
        let history = History::new(&load, Arc::new(Keyring::Missing));
        let env = self.comp.pipeline.environment("staging").unwrap();
        let hosts = Hosts {
            connect: &self.fleet,
            facts: &self.facts,
            history: &history,
            forks: 8,
            events: &self.events,
        };
        let rollout = Rollout::new(&self.comp, env, hosts).unwrap();
        f(&rollout, env.hosts.iter().collect())
    }

    fn converge(&self) -> Vec<HostResult> {
        self.run(|r, hosts| r.converge(&hosts, &run_info()).unwrap())
    }

    fn outcome(&self, results: &[HostResult], host: &str) -> String {
        let r = results.iter().find(|r| r.host == host).unwrap();
        match &r.outcome {
            HostOutcome::Unchanged => "unchanged".into(),
            HostOutcome::Changed(done) => format!("changed {}", done.len()),
            HostOutcome::Failed { error, .. } => format!("failed: {}", error.detail()),
            HostOutcome::Skipped => "skipped".into(),
        }
    }
}

fn run_info() -> RunInfo {
    RunInfo { id: "100-1".into(), user: "unit".into(), lock_owner: "run 100-1 by unit".into() }
}

/// The position of `entry` in the timeline.
fn at(timeline: &[String], entry: &str) -> usize {
    timeline
        .iter()
        .position(|e| e == entry)
        .unwrap_or_else(|| panic!("no {entry:?} in {timeline:?}"))
}

#[test]
fn hosts_converge_in_role_order_then_batch_by_batch() {
    let s = Setup::new("1, \"100%\"", 0, &[]);
    let results = s.converge();
    for r in &results {
        assert_eq!(s.outcome(&results, &r.host), "changed 3", "{}", r.host);
    }
    let t = s.fleet.timeline();
    // Roles in rollout order: every host of a role is done before the next role starts.
    assert!(at(&t, "applied db01") < at(&t, "apply controller01"), "{t:?}");
    assert!(at(&t, "applied controller02") < at(&t, "apply compute01"), "{t:?}");
    // Batches inside a role: the first batch is one host, done before the rest start.
    assert!(at(&t, "applied controller01") < at(&t, "apply controller02"), "{t:?}");
    assert!(at(&t, "applied compute01") < at(&t, "apply compute02"), "{t:?}");
    assert!(at(&t, "applied compute01") < at(&t, "apply compute03"), "{t:?}");
    // What the hosts have is what the catalogs say.
    s.fleet.with("compute02", |h| {
        let f = &h.files["/etc/app.conf"];
        assert_eq!(f.content, b"role=compute version=1 pw=unit-secret-pw\n");
        assert!(h.running.contains("app") && h.satisfied.contains("init"));
        assert_eq!(h.applied.as_ref().unwrap().commit, "c1");
    });
}

#[test]
fn a_second_apply_of_the_same_commit_changes_nothing() {
    let s = Setup::new("\"100%\"", 0, &[]);
    s.converge();
    let ran = s.fleet.with("db01", |h| h.ran.clone());
    let again = s.converge();
    assert!(again.iter().all(|r| matches!(r.outcome, HostOutcome::Unchanged)), "{again:?}");
    assert_eq!(s.fleet.with("db01", |h| h.ran.clone()), ran, "nothing ran again");
}

#[test]
fn past_the_failure_budget_later_batches_are_skipped() {
    for (budget, rest) in [(0, "skipped"), (1, "changed 3")] {
        let s = Setup::new("1, \"100%\"", budget, &[]);
        s.fleet.with("compute01", |h| {
            h.fail = Some(("file:/etc/app.conf".into(), "disk full".into()))
        });
        let results = s.converge();
        assert_eq!(s.outcome(&results, "compute01"), "failed: file:/etc/app.conf: disk full");
        for host in ["compute02", "compute03"] {
            assert_eq!(s.outcome(&results, host), rest, "budget {budget}: {host}");
        }
        if budget == 0 {
            assert!(s.fleet.with("compute02", |h| h.files.is_empty()), "nothing reached it");
            let events = s.events.0.lock().unwrap();
            assert!(events.contains(&"compute03 skipped".to_string()), "{events:?}");
        }
    }
}

#[test]
fn a_locked_host_fails_naming_the_holder_and_nothing_is_written() {
    let s = Setup::new("\"100%\"", 5, &[]);
    s.fleet.with("db01", |h| h.locked_by = Some("run 42 by alice@ops (pid 7)".into()));
    let results = s.converge();
    let outcome = s.outcome(&results, "db01");
    assert!(
        outcome.starts_with("failed: is locked by another run: run 42 by alice@ops (pid 7)"),
        "{outcome}"
    );
    assert!(s.fleet.with("db01", |h| h.files.is_empty() && h.applied.is_none()));
    assert_eq!(s.outcome(&results, "compute01"), "changed 3", "the others go on");
}

#[test]
fn a_failed_validate_reports_and_keeps_the_old_file() {
    let s = Setup::new("\"100%\"", 5, &[]);
    let old = FakeFile {
        content: b"old\n".to_vec(),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
    };
    s.fleet.with("controller01", |h| {
        h.files.insert("/etc/app.conf".into(), old.clone());
        h.fail = Some(("file:/etc/app.conf".into(), "validate".into()));
    });
    let results = s.converge();
    let outcome = s.outcome(&results, "controller01");
    assert!(
        outcome.starts_with("failed: file:/etc/app.conf: validate failed, the old file is kept"),
        "{outcome}"
    );
    assert_eq!(s.fleet.with("controller01", |h| h.files["/etc/app.conf"].clone()), old);
}

#[test]
fn an_unreachable_host_fails_alone() {
    let s = Setup::new("\"100%\"", 5, &[]);
    s.fleet.with("compute02", |h| h.unreachable = true);
    let results = s.converge();
    assert!(s.outcome(&results, "compute02").contains("cannot connect to 10.0.0.32:22"));
    assert_eq!(s.outcome(&results, "compute03"), "changed 3");
    let events = s.events.0.lock().unwrap();
    assert_eq!(
        events.iter().filter(|e| e.starts_with("compute02 failed")).count(),
        1,
        "{events:?}"
    );
}

/// Fake hosts that run commit c1, and the setup of commit c2, which changes their file.
fn converged_then_version_2() -> (Fleet, Setup) {
    let fleet = Fleet::new();
    Setup::on(fleet.clone(), "c1", "\"100%\"", 5, &[]).converge();
    let data = [("hieradata/common.toml", "\"app::version\" = 2\n")];
    (fleet.clone(), Setup::on(fleet, "c2", "\"100%\"", 5, &data))
}

#[test]
fn a_restart_cut_off_with_the_connection_is_owed_to_the_next_run() {
    let (fleet, next) = converged_then_version_2();
    // The next commit changes the file; the connection breaks after it is renamed into place
    // and before the service restarts.
    fleet.with("db01", |h| h.cut_before = Some("service:app".into()));
    let results = next.converge();
    assert_eq!(
        next.outcome(&results, "db01"),
        "failed: the connection broke after 1 of 1 files were replaced; 1 restart(s) are owed \
         and run next time; what is left of the plan runs next time (db01: the connection broke \
         (fake))"
    );
    fleet.with("db01", |h| {
        assert_eq!(
            h.files["/etc/app.conf"].content,
            b"role=database version=2 pw=unit-secret-pw\n"
        );
        assert_eq!(h.pending, ["service:app"]);
        assert_eq!(h.applied.as_ref().unwrap().commit, "c1", "the record is written last");
        assert!(!h.ran.contains(&"restart service:app".to_string()));
    });
    // The next run plans the owed restart, though the file is already new, and does it once.
    next.run(|r, hosts| {
        let db01: Vec<&Host> = hosts.into_iter().filter(|h| h.name == "db01").collect();
        let runs = r.prepare(&db01).unwrap();
        let plan = runs[0].plan.as_ref().unwrap();
        assert!(plan.changes.is_empty(), "{plan:?}");
        assert_eq!(plan.restarts.len(), 1);
        assert!(plan.restarts[0].pending && plan.restarts[0].because.is_empty());
        let results = r.apply(runs, &run_info());
        assert!(matches!(results[0].outcome, HostOutcome::Changed(_)), "{results:?}");
    });
    fleet.with("db01", |h| {
        assert!(h.pending.is_empty());
        assert_eq!(h.ran.iter().filter(|r| *r == "restart service:app").count(), 1);
        assert_eq!(h.applied.as_ref().unwrap().commit, "c2");
    });
}

#[test]
fn a_saved_plan_refuses_hosts_that_drifted_and_accepts_the_others() {
    let (fleet, next) = converged_then_version_2();
    let saved = next.run(|r, hosts| {
        let runs = r.prepare(&hosts).unwrap();
        let mut saved = SavedPlan::new("staging", "c2", "unit", 1);
        for run in &runs {
            saved.add(run.plan.clone().unwrap(), run.observed.as_ref().unwrap(), &run.catalog);
        }
        saved
    });
    // After the review: someone edits compute02 by hand, and db01 stops its service.
    fleet.with("compute02", |h| {
        h.files.get_mut("/etc/app.conf").unwrap().content = b"hand\n".to_vec()
    });
    fleet.with("db01", |h| h.running.clear());
    let gate = next.run(|r, hosts| gate(&saved, r.prepare(&hosts).unwrap()));
    let refused: Vec<&str> = gate.refused.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(refused, ["compute02", "db01"]);
    assert!(
        gate.refused[0].1.starts_with("/etc/app.conf changed since the plan"),
        "{:?}",
        gate.refused
    );
    assert_eq!(gate.refused[1].1, "service app is stopped now (the plan saw it running)");
    let accepted: Vec<&str> = gate.accepted.iter().map(|r| r.host.name.as_str()).collect();
    assert_eq!(accepted, ["compute01", "compute03", "controller01", "controller02"]);
}

#[test]
fn a_host_whose_catalog_does_not_compile_stops_everything_before_any_contact() {
    let s = Setup::new(
        "\"100%\"",
        5,
        &[("hieradata/nodes/compute03.toml", "\"app::version\" = \"two\"\n")],
    );
    let err = s.run(|r, hosts| r.prepare(&hosts).err().expect("a compile error"));
    assert!(
        err.first().unwrap().to_string().contains("parameter 'app::version' must be an integer"),
        "{err:?}"
    );
    assert!(s.fleet.timeline().is_empty(), "no host was contacted");
    drop(s.cache_dir);
}

/// Another run changes the hosts between this run's plan and its apply (while the operator
/// reads the plan, or between batches): every host is refused under its lock, the ones with
/// changes and the ones with none, and nothing this run planned is written.
#[test]
fn hosts_changed_since_the_plan_are_refused_under_their_lock() {
    let (fleet, next) = converged_then_version_2();
    next.run(|r, hosts| {
        let db01: Vec<&Host> = hosts.iter().copied().filter(|h| h.name.starts_with("db")).collect();
        let compute: Vec<&Host> = hosts.iter().copied().filter(|h| h.name == "compute01").collect();
        let runs = r.prepare(&db01).unwrap();
        // compute01 is planned after it already runs c2: nothing to do, at first.
        r.converge(&compute, &run_info()).unwrap();
        let idle = r.prepare(&compute).unwrap();
        assert!(idle[0].plan.as_ref().unwrap().is_empty());
        // Another run (commit c3) applies both hosts meanwhile.
        for host in ["db01", "compute01"] {
            fleet.with(host, |h| {
                let applied = h.applied.as_mut().unwrap();
                (applied.commit, applied.run_id) = ("c3".into(), "300-3".into());
            });
        }
        let before = fleet.with("db01", |h| h.files["/etc/app.conf"].clone());
        let mut results = r.apply(runs, &run_info());
        results.extend(r.apply(idle, &run_info()));
        for result in &results {
            let HostOutcome::Failed { error, .. } = &result.outcome else {
                panic!("{}: {:?}", result.host, result.outcome)
            };
            assert!(
                error.detail().starts_with("changed since it was planned: it now runs commit c3"),
                "{error}"
            );
        }
        assert_eq!(fleet.with("db01", |h| h.files["/etc/app.conf"].clone()), before);
    });
}

/// A profile that installs a package and patches a module the package brings, and restarts
/// the service the patch notifies.
const PACKAGED_PATCH: &str = "[[package]]\nname = \"pylib\"\n\n[[patch]]\npath = \"/usr/lib/pylib/mod.py\"\nsource = \"fix.patch\"\nnotify = [\"app\"]\n";
const FIX: &str = "--- a/mod.py\n+++ b/mod.py\n@@ -1,2 +1,2 @@\n def f():\n-    return None\n+    return \"no\"\n";

#[test]
fn a_patch_of_a_file_its_package_brings_in_the_same_apply_is_applied_in_a_second_pass() {
    let extra = [
        ("roles/compute.toml", "profiles = [\"app\", \"pylib\"]\n"),
        ("profiles/pylib/profile.toml", PACKAGED_PATCH),
        ("profiles/pylib/patches/fix.patch", FIX),
    ];
    let s = Setup::new("\"100%\"", 0, &extra);
    let module = b"def f():\n    return None\n".to_vec();
    s.fleet.with("compute01", |h| {
        h.package_files.insert("pylib".into(), vec![("/usr/lib/pylib/mod.py".into(), module)]);
    });
    // The plan, made before the package is in, says what happens and does not fail.
    let plans = s.run(|r, hosts| {
        let compute01: Vec<&Host> = hosts.into_iter().filter(|h| h.name == "compute01").collect();
        r.prepare(&compute01).unwrap()
    });
    let plan = plans[0].plan.as_ref().unwrap_or_else(|| panic!("{:?}", plans[0].error));
    assert!(
        plan.changes.iter().any(|c| matches!(
            c,
            crate::plan::Change::PatchFile { after_packages: true, path, .. } if path == "/usr/lib/pylib/mod.py"
        )),
        "{:?}",
        plan.changes
    );
    let results = s.converge();
    assert!(s.outcome(&results, "compute01").starts_with("changed"), "{results:?}");
    // The log says why the host is applied twice.
    let log: Vec<String> = s.events.0.lock().unwrap().clone();
    let compute01: Vec<String> = log
        .iter()
        .filter(|l| l.starts_with("compute01 "))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        compute01,
        ["compute01 changed", "compute01 planned", "compute01 changed"],
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "compute01 planned again 1"), "{log:?}");
    s.fleet.with("compute01", |h| {
        let f = &h.files["/usr/lib/pylib/mod.py"];
        assert_eq!(String::from_utf8_lossy(&f.content), "def f():\n    return \"no\"\n");
        assert!(h.ran.iter().any(|r| r == "restart service:app"), "{:?}", h.ran);
        let record = h.applied.as_ref().unwrap();
        assert!(record.patches.contains_key("/usr/lib/pylib/mod.py"), "{record:?}");
    });
    // Then the host is converged: a second apply changes nothing.
    let again = s.converge();
    assert_eq!(s.outcome(&again, "compute01"), "unchanged");
}

//! The pipeline's logic on real commits (a git repository in a temporary directory), an
//! in-memory promotion store and fake hosts: gating, approvals, idempotency, canary rollback,
//! promotion refs, state publication, checks on hosts.

use std::collections::BTreeMap;

use super::gate::Gate;
use super::runner::{ApplyResult, Ended, Outcome, Runner};
use super::store::{Approval, MemoryStore, Store};
use crate::error::ErrorKind;
use crate::event::Silent;
use crate::facts::FactCache;
use crate::model::{Environment, Pipeline, Shard};
use crate::rollout::Connect;
use crate::rollout::fake::Fleet;
use crate::runinfo::RunInfo;
use crate::secrets::Keys;
use crate::source::Repo;
use crate::testing::{self, GitRepo};

const STAGES: &str = include_str!("../testing/stages.toml");

struct World {
    git: GitRepo,
    repo: Repo,
    store: MemoryStore,
    fleet: Fleet,
    cache: tempfile::TempDir,
    keys: Keys,
}

impl World {
    fn new() -> World {
        let git = GitRepo::new();
        let repo = Repo::discover(git.path()).unwrap();
        World {
            git,
            repo,
            store: MemoryStore::default(),
            fleet: Fleet::new(),
            cache: tempfile::tempdir().unwrap(),
            keys: Keys::none(),
        }
    }

    /// A world with one commit of `data` (see [`World::commit`]).
    fn with_commit(data: &str, approval: bool) -> (World, String) {
        let w = World::new();
        let commit = w.commit(data, approval);
        (w, commit)
    }

    /// Commits the test composition with `data` as common.toml; returns the commit.
    fn commit(&self, data: &str, approval: bool) -> String {
        self.commit_with(data, approval, &[], "")
    }

    /// [`World::commit`], with `replace` (from, to) done on the stages and production
    /// inventory, and `extra` appended to pipeline.toml.
    fn commit_with(
        &self,
        data: &str,
        approval: bool,
        replace: &[(&str, &str)],
        extra: &str,
    ) -> String {
        let mut stages = STAGES.replace("APPROVAL", if approval { "approval = true" } else { "" });
        for (from, to) in replace {
            assert!(stages.contains(from), "{from}");
            stages = stages.replace(from, to);
        }
        stages.push_str(extra);
        let data = format!("\"app::password\" = \"unit-check-pw\"\n{data}");
        let files = testing::files(
            "\"100%\"",
            0,
            &[("pipeline.toml", stages.as_str()), ("hieradata/common.toml", &data)],
        );
        self.git.commit("commit", &files)
    }

    /// Runs the stages `from..=to` of the commit (all by default).
    fn run(&self, commit: &str, from: Option<&str>) -> Outcome {
        self.run_shard(commit, from, None, None)
    }

    /// Runs the stages `from..=to` (`to` default the last) as shard `shard` when given.
    fn run_shard(
        &self,
        commit: &str,
        from: Option<&str>,
        to: Option<&str>,
        shard: Option<&Shard>,
    ) -> Outcome {
        let snapshot = self.repo.snapshot_at(commit).unwrap();
        let pipeline = Pipeline::from_snapshot(&snapshot).unwrap();
        let stages = super::runner::select(&pipeline.stages, from, to).unwrap();
        self.with_runner(shard, |r| r.run(commit, &snapshot, stages).unwrap())
    }

    /// `pipeline gate --stage STAGE` for the commit.
    fn gate(&self, commit: &str, stage: &str) -> Gate {
        let snapshot = self.repo.snapshot_at(commit).unwrap();
        let pipeline = Pipeline::from_snapshot(&snapshot).unwrap();
        let stage = super::runner::select(&pipeline.stages, Some(stage), Some(stage)).unwrap();
        self.with_runner(None, |r| r.gate(commit, &stage[0]).unwrap())
    }

    fn with_runner<T>(&self, shard: Option<&Shard>, f: impl FnOnce(&Runner<'_>) -> T) -> T {
        let facts = FactCache::new(self.cache.path());
        let fleet = self.fleet.clone();
        let connect = move |_: &Environment| -> Box<dyn Connect> { Box::new(fleet.clone()) };
        let run = RunInfo { id: "200-1".into(), user: "unit".into(), lock_owner: "unit".into() };
        let runner = Runner {
            repo: &self.repo,
            store: &self.store,
            connect: &connect,
            keys: &self.keys,
            facts: &facts,
            forks: 4,
            events: &Silent,
            run: &run,
            state_remote: Some("origin"),
            shard,
        };
        f(&runner)
    }

    fn applied(&self, host: &str) -> Option<String> {
        self.fleet.with(host, |h| h.applied.as_ref().map(|a| a.commit.clone()))
    }

    fn results(&self, commit: &str) -> BTreeMap<String, String> {
        let record = self.store.read(commit).unwrap();
        record.stages.iter().map(|(k, v)| (k.clone(), format!("{:?}", v.status))).collect()
    }
}

fn names(outcome: &Outcome) -> Vec<(&str, bool)> {
    outcome.stages.iter().map(|s| (s.name.as_str(), s.passed)).collect()
}

/// Other agents go by the remote: a stage whose result could not be published failed, and the
/// pipeline stops there.
#[test]
fn a_stage_whose_state_cannot_be_published_fails() {
    let (mut w, c1) = World::with_commit("", false);
    w.store.push_error = Some("remote said no".into());
    let outcome = w.run(&c1, None);
    assert_eq!(outcome.ended, Ended::Failed);
    assert_eq!(names(&outcome), [("precommit", false)]);
    let detail = &outcome.stages[0].detail;
    assert!(detail.contains("its result could not be published: remote said no"), "{detail}");
    assert_eq!(w.results(&c1)["precommit"], "Failed");
    assert!(w.applied("db01").is_none(), "nothing deployed after the failed stage");
}

#[test]
fn a_good_commit_goes_through_every_stage_and_moves_the_refs() {
    let (w, c1) = World::with_commit("", false);
    let outcome = w.run(&c1, None);
    assert_eq!(outcome.ended, Ended::Passed);
    assert_eq!(
        names(&outcome),
        [
            ("precommit", true),
            ("deploy-staging", true),
            ("integration", true),
            ("canary", true),
            ("release", true)
        ]
    );
    assert!(w.results(&c1).values().all(|r| r == "Passed"), "{:?}", w.results(&c1));
    for env in ["staging", "production"] {
        assert_eq!(w.store.env_commit(env).unwrap().as_deref(), Some(c1.as_str()), "{env}");
    }
    assert!(w.store.host_commits("production").unwrap().is_empty(), "release clears canaries");
    for host in ["db01", "compute03", "p-db01", "p-compute02"] {
        assert_eq!(w.applied(host).as_deref(), Some(c1.as_str()), "{host}");
    }
    // The canary took one host per role; the release the rest.
    let canary = &outcome.stages[3];
    assert_eq!(canary.hosts, ["p-compute01", "p-db01"]);
    // State pulled once before the first stage, published after every stage run.
    assert_eq!(w.store.pulled.lock().unwrap().len(), 1);
    assert_eq!(w.store.published.lock().unwrap().len(), 5);
    // The checks ran on the hosts they name; the password they used is redacted in reports.
    let checks = &outcome.stages[2].checks;
    let on: Vec<&str> = checks.iter().map(|c| c.on.as_str()).collect();
    assert_eq!(on, ["controller01", "controller02"]);
    assert!(w.fleet.timeline().contains(&"check controller01".to_string()));
}

#[test]
fn a_stage_whose_requirements_did_not_pass_is_refused_and_nothing_is_recorded() {
    let (w, c1) = World::with_commit("", false);
    let outcome = w.run(&c1, Some("release"));
    assert_eq!(outcome.ended, Ended::Refused);
    assert!(outcome.stages.is_empty());
    assert!(w.results(&c1).is_empty());
    assert_eq!(w.applied("p-db01"), None, "no production host was touched");
}

#[test]
fn an_approval_gate_waits_until_the_stage_is_approved() {
    let (w, c1) = World::with_commit("", true);
    let outcome = w.run(&c1, None);
    assert_eq!(outcome.ended, Ended::AwaitingApproval);
    assert_eq!(outcome.stages.len(), 4, "up to the canary");
    // What did not run, for the JUnit report: the gated stage and the hosts it would apply to.
    let [release] = &outcome.not_run[..] else { panic!("{:?}", outcome.not_run) };
    assert_eq!(release.name, "release");
    assert_eq!(
        release.reason,
        format!(
            "not run: waiting for approval (stackdeploy approve {} --stage release)",
            &c1[..12]
        )
    );
    assert_eq!(release.hosts, ["p-compute01", "p-compute02", "p-db01"]);
    assert_eq!(w.applied("p-compute02"), None);
    w.store.approve(&c1, "release", Approval { user: "boss".into(), time: 1 }).unwrap();
    let outcome = w.run(&c1, Some("release"));
    assert_eq!(outcome.ended, Ended::Passed);
    assert_eq!(w.applied("p-compute02").as_deref(), Some(c1.as_str()));
}

/// The report (JUnit's `<error>` against `<failure>`) must tell a host nobody could test from
/// one whose change ran and failed: the kind of each host's failure is kept, with its time.
#[test]
fn an_unreachable_host_is_told_from_one_whose_change_failed() {
    let w = World::new();
    w.fleet.with("compute01", |h| h.unreachable = true);
    w.fleet.with("compute02", |h| h.fail = Some(("file:/etc/app.conf".into(), "disk full".into())));
    let c1 = w.commit("", false);
    let outcome = w.run(&c1, None);
    let deploy = &outcome.stages[1];
    assert!(!deploy.passed);
    let kinds: BTreeMap<&str, (Option<ErrorKind>, bool)> = deploy
        .applies
        .iter()
        .map(|a| {
            let kind = match &a.result {
                ApplyResult::Failed(f) => Some(f.kind),
                _ => None,
            };
            (a.host.as_str(), (kind, a.duration_secs > 0.0))
        })
        .collect();
    assert_eq!(kinds["compute01"], (Some(ErrorKind::Host), true), "{:?}", deploy.applies);
    assert_eq!(kinds["compute02"], (Some(ErrorKind::Apply), true), "{:?}", deploy.applies);
    assert_eq!(kinds["db01"], (None, true), "{:?}", deploy.applies);
    // JSON keeps the detail as the failure's text.
    let json = serde_json::to_value(&deploy.applies).unwrap();
    let compute02 = json.as_array().unwrap().iter().find(|a| a["host"] == "compute02").unwrap();
    assert_eq!(
        compute02["result"],
        serde_json::json!({"status": "failed", "detail": "file:/etc/app.conf: disk full"})
    );
}

#[test]
fn a_deploy_that_is_not_idempotent_fails_and_says_what_changed_again() {
    let w = World::new();
    w.fleet.with("compute02", |h| {
        h.always_needed.insert("init".into());
    });
    let c1 = w.commit("", false);
    let outcome = w.run(&c1, None);
    assert_eq!(outcome.ended, Ended::Failed);
    let deploy = &outcome.stages[1];
    assert!(!deploy.passed);
    assert_eq!(
        deploy.detail,
        "not idempotent: the second apply changed things:\ncompute02: exec:init ran"
    );
    // Per host: the one the second apply changed failed, the others passed.
    let compute02 = deploy.applies.iter().find(|a| a.host == "compute02").unwrap();
    assert!(
        matches!(&compute02.result, ApplyResult::Failed(why)
            if why.detail == "not idempotent: the second apply changed exec:init ran"
                && why.kind == ErrorKind::Apply),
        "{compute02:?}"
    );
    let failed = deploy.applies.iter().filter(|a| matches!(a.result, ApplyResult::Failed(_)));
    assert_eq!(failed.count(), 1, "{:?}", deploy.applies);
    // Its checks did not run; the stages after it neither.
    assert!(deploy.checks.is_empty() && deploy.checks_not_run.is_empty(), "deploy has none");
    let not_run: Vec<&str> = outcome.not_run.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(not_run, ["integration", "canary", "release"]);
    assert_eq!(outcome.not_run[0].reason, "not run: stage 'deploy-staging' failed");
    let planned: Vec<&str> = outcome.not_run[0].checks.iter().map(|c| c.on.as_str()).collect();
    assert_eq!(planned, ["controller01", "controller02"]);
    assert_eq!(w.store.env_commit("production").unwrap(), None);
}

#[test]
fn a_failing_canary_is_rolled_back_to_the_released_commit_and_goes_no_further() {
    let (w, c1) = World::with_commit("", false);
    assert_eq!(w.run(&c1, None).ended, Ended::Passed);
    let c2 = w.commit("\"app::version\" = 2\n", false);
    w.fleet.with("p-compute01", |h| h.checks.push(("health".into(), 1, "unhealthy".into())));
    let outcome = w.run(&c2, None);
    assert_eq!(outcome.ended, Ended::Failed);
    let canary = outcome.stages.last().unwrap();
    assert_eq!(canary.name, "canary");
    assert!(canary.detail.starts_with("check 'compute health' on p-compute01 failed: unhealthy"));
    let health = &canary.checks[0];
    assert_eq!((health.on.as_str(), health.passed, health.exit), ("p-compute01", false, Some(1)));
    assert_eq!(outcome.not_run.len(), 1, "release");
    assert!(canary.detail.ends_with(&format!("canary hosts rolled back to {}", &c1[..12])));
    // The canary hosts run the released commit again, content and record.
    for host in ["p-compute01", "p-db01"] {
        assert_eq!(w.applied(host).as_deref(), Some(c1.as_str()), "{host}");
        let content = w.fleet.with(host, |h| h.files["/etc/app.conf"].content.clone());
        assert!(String::from_utf8(content).unwrap().contains("version=1"), "{host}");
    }
    // The rest of production never saw the commit; the refs still name the release.
    assert_eq!(w.applied("p-compute02").as_deref(), Some(c1.as_str()));
    assert_eq!(w.fleet.with("p-compute02", |h| h.ran.len()), 2, "start and init, once");
    assert_eq!(w.store.env_commit("production").unwrap().as_deref(), Some(c1.as_str()));
    assert!(w.store.host_commits("production").unwrap().is_empty());
    assert_eq!(w.store.env_commit("staging").unwrap().as_deref(), Some(c2.as_str()));
}

#[test]
fn a_commit_that_does_not_compile_fails_precommit_and_is_recorded() {
    let (w, c1) = World::with_commit("\"app::version\" = \"two\"\n", false);
    let outcome = w.run(&c1, None);
    assert_eq!(outcome.ended, Ended::Failed);
    assert_eq!(names(&outcome), [("precommit", false)]);
    assert!(outcome.stages[0].detail.contains("parameter 'app::version' must be"));
    assert_eq!(w.results(&c1)["precommit"], "Failed");
    assert!(w.fleet.timeline().is_empty(), "no host contacted");
}

/// A stage run in two shards: each applies its part of the environment and records its own
/// result; the environment runs the commit, and later stages may run, only once the gate saw
/// every shard pass. Until then the shard's hosts are exceptions running the commit.
#[test]
fn a_sharded_stage_passes_at_the_gate_once_every_shard_has() {
    let (w, c1) = World::with_commit("", false);
    assert_eq!(w.run_shard(&c1, None, Some("canary"), None).ended, Ended::Passed);
    let shard = |k| Shard::parse(&format!("{k}/2"), None).unwrap();
    let first = w.run_shard(&c1, Some("release"), None, Some(&shard(1)));
    assert_eq!(first.ended, Ended::Passed, "{:?}", first.stages);
    // Each role's hosts dealt out in turn: the first database and compute hosts.
    assert_eq!(first.stages[0].hosts, ["p-compute01", "p-db01"]);
    assert_eq!(w.results(&c1)["release@1/2"], "Passed");
    assert!(!w.results(&c1).contains_key("release"));
    assert_eq!(w.applied("p-compute01").as_deref(), Some(c1.as_str()));
    assert_ne!(w.applied("p-compute02").as_deref(), Some(c1.as_str()));
    let released_before = w.store.env_commit("production").unwrap();
    assert_ne!(released_before.as_deref(), Some(c1.as_str()));

    let early = w.gate(&c1, "release");
    assert!(!early.open());
    assert_eq!((early.shards, early.passed.clone(), early.missing.clone()), (2, vec![1], vec![2]));
    assert!(early.result.detail.contains("shard(s) 2/2 have not run"), "{}", early.result.detail);
    assert_eq!(w.store.env_commit("production").unwrap(), released_before);
    assert_eq!(w.store.host_commits("production").unwrap()["p-compute01"], c1);

    let second = w.run_shard(&c1, Some("release"), None, Some(&shard(2)));
    assert_eq!(second.stages[0].hosts, ["p-compute02"]);
    let gate = w.gate(&c1, "release");
    assert!(gate.open(), "{gate:?}");
    assert_eq!(gate.result.hosts, ["p-compute01", "p-compute02", "p-db01"]);
    assert_eq!(w.results(&c1)["release"], "Passed");
    assert_eq!(w.store.env_commit("production").unwrap().as_deref(), Some(c1.as_str()));
    assert!(w.store.host_commits("production").unwrap().is_empty());
}

/// A shard that failed keeps the gate shut and is named.
#[test]
fn a_failed_shard_keeps_the_gate_shut() {
    let (w, c1) = World::with_commit("", false);
    assert_eq!(w.run_shard(&c1, None, Some("canary"), None).ended, Ended::Passed);
    let shard = |k| Shard::parse(&format!("{k}/2"), None).unwrap();
    w.run_shard(&c1, Some("release"), None, Some(&shard(1)));
    w.fleet
        .with("p-compute02", |h| h.fail = Some(("file:/etc/app.conf".into(), "disk full".into())));
    let second = w.run_shard(&c1, Some("release"), None, Some(&shard(2)));
    assert_eq!(second.ended, Ended::Failed);
    let gate = w.gate(&c1, "release");
    assert!(!gate.open());
    assert_eq!(gate.failed.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2]);
    assert!(gate.result.detail.contains("shard(s) 2/2 failed"), "{}", gate.result.detail);
    assert_eq!(w.results(&c1)["release"], "Failed");
    assert_ne!(w.store.env_commit("production").unwrap().as_deref(), Some(c1.as_str()));
}

/// Hooks: the pipeline's production release adds and removes hosts, one hook takes every
/// event, another with `on_failure = "fail"` is down during the first run. The release fails
/// there and production stays where it was; the rerun sends the down hook what it missed and
/// the other hook nothing twice; a run after that sends nothing at all. No payload holds the
/// secret parameter, though a fact of a host holds its value.
#[test]
fn hooks_fire_once_per_change_across_retried_runs() {
    let w = World::new();
    let log = |name: &str| w.git.path().join(name);
    let hooks = String::from(
        "\n[[hooks]]\nname = \"all\"\nevents = [\"host_added\", \"host_removed\", \"host_deployed\", \
         \"stage_passed\", \"stage_failed\", \"release_done\"]\nenvironments = [\"production\"]\n\
         command = [\"sh\", \"-c\", \"cat >> all.log; echo >> all.log\"]\n\
         \n[[hooks]]\nname = \"cmdb\"\nevents = [\"host_added\", \"host_removed\"]\nstages = [\"release\", \"rollback\"]\n\
         retries = 1\nbackoff = 0.1\n\
         command = [\"sh\", \"-c\", \"test -e cmdb.up || { echo cmdb is down >&2; exit 1; }; cat >> cmdb.log; echo >> cmdb.log\"]\n",
    );
    // The secret's value, by mistake, in a static fact.
    let fact = (
        "p-db01 = { address = \"10.1.0.11\", role = \"database\" }",
        "p-db01 = { address = \"10.1.0.11\", role = \"database\", facts = { note = \"pw unit-check-pw\" } }",
    );
    let c1 = w.commit_with("", false, &[fact], &hooks);
    let events_in = |name: &str| -> Vec<String> {
        std::fs::read_to_string(log(name))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                match v.get("host") {
                    Some(h) => format!(
                        "{} {} {}",
                        v["stage"].as_str().unwrap(),
                        v["event"].as_str().unwrap(),
                        h.as_str().unwrap()
                    ),
                    None => {
                        format!("{} {}", v["stage"].as_str().unwrap(), v["event"].as_str().unwrap())
                    }
                }
            })
            .collect()
    };
    let first = w.run(&c1, None);
    assert_eq!(first.ended, Ended::Failed);
    let release = first.stages.last().unwrap();
    assert_eq!(release.name, "release");
    assert!(
        release.detail.contains("hook 'cmdb' could not deliver host_added of p-compute01 (2 tries): sh exited with 1: cmdb is down"),
        "{}",
        release.detail
    );
    assert_eq!(w.store.env_commit("production").unwrap(), None, "production did not move");
    assert_eq!(
        events_in("all.log"),
        [
            "canary host_deployed p-compute01",
            "canary host_deployed p-db01",
            "canary stage_passed",
            "release host_added p-compute01",
            "release host_added p-compute02",
            "release host_added p-db01",
            "release host_deployed p-compute02",
            "release stage_passed",
            "release release_done",
        ]
    );

    std::fs::write(log("cmdb.up"), "").unwrap();
    let second = w.run(&c1, None);
    assert_eq!(second.ended, Ended::Passed);
    assert_eq!(w.store.env_commit("production").unwrap().as_deref(), Some(c1.as_str()));
    assert_eq!(events_in("all.log").len(), 9, "{:?}", events_in("all.log"));
    assert_eq!(
        events_in("cmdb.log"),
        [
            "release host_added p-compute01",
            "release host_added p-compute02",
            "release host_added p-db01"
        ]
    );

    // Next commit: p-compute03 joins, p-compute01 leaves.
    let c2 = w.commit_with(
        "",
        false,
        &[
            fact,
            (
                "p-compute01 = { address = \"10.1.0.31\", role = \"compute\" }",
                "p-compute03 = { address = \"10.1.0.33\", role = \"compute\" }",
            ),
        ],
        &hooks,
    );
    assert_eq!(w.run(&c2, None).ended, Ended::Passed);
    let all = events_in("all.log");
    assert_eq!(
        all[9..],
        [
            "canary host_deployed p-compute02",
            "canary host_deployed p-db01",
            "canary stage_passed",
            "release host_added p-compute03",
            "release host_removed p-compute01",
            "release host_deployed p-compute03",
            "release stage_passed",
            "release release_done",
        ]
    );
    assert_eq!(
        events_in("cmdb.log")[3..],
        ["release host_added p-compute03", "release host_removed p-compute01"]
    );
    // Retried after it passed: nothing is news.
    assert_eq!(w.run(&c2, None).ended, Ended::Passed);
    assert_eq!(events_in("all.log").len(), all.len());
    assert_eq!(events_in("cmdb.log").len(), 5);

    let text = std::fs::read_to_string(log("all.log")).unwrap();
    assert!(!text.contains("unit-check-pw"), "{text}");
    assert!(text.contains("\"note\":\"pw <secret:app::password#"), "{text}");
    let payload: serde_json::Value = serde_json::from_str(text.lines().nth(13).unwrap()).unwrap();
    assert_eq!(payload["host"], "p-compute01");
    assert_eq!(payload["event"], "host_removed");
    assert_eq!(payload["role"], "compute");
    assert_eq!(payload["address"], "10.1.0.31", "a removed host as the previous release had it");
    assert_eq!(payload["commit"], c2.as_str());
    assert_eq!(payload["previous_commit"], c1.as_str());
    assert_eq!(payload["environment"], "production");
    assert_eq!(payload["result"], "passed");

    // Rolled back to c1 while the CMDB is down: the hosts run c1 and the ref says so whatever
    // the hooks did (a hook cannot hold back what is done), and the undelivered events are
    // the caller's to report.
    std::fs::remove_file(log("cmdb.up")).unwrap();
    let done = w.with_runner(None, |r| r.rollback("production", &c1)).unwrap();
    assert!(done.results.iter().all(|r| !r.failed()), "{:?}", done.results);
    assert_eq!(w.store.env_commit("production").unwrap().as_deref(), Some(c1.as_str()));
    assert_eq!(
        events_in("all.log")[all.len()..],
        [
            "rollback host_added p-compute01",
            "rollback host_removed p-compute03",
            "rollback host_deployed p-compute01",
            "rollback host_deployed p-compute02",
            "rollback host_deployed p-db01",
            "rollback stage_passed",
            "rollback release_done",
        ]
    );
    let fired = done.hooks.unwrap().unwrap();
    let why = super::hooks::failure_detail(&fired).unwrap();
    assert!(why.starts_with("hook 'cmdb' could not deliver host_added of p-compute01"), "{why}");
    assert_eq!(events_in("cmdb.log").len(), 5, "nothing reached the CMDB");
}

/// A sharded release: each shard sends its hosts' `host_deployed`, the gate the rest once every
/// shard ran (nothing while one has not), and a second gate nothing.
#[test]
fn a_sharded_release_sends_its_stage_events_at_the_gate() {
    let w = World::new();
    let hooks = "\n[[hooks]]\nname = \"all\"\nevents = [\"host_added\", \"host_removed\", \
                 \"host_deployed\", \"stage_passed\", \"stage_failed\", \"release_done\"]\n\
                 stages = [\"release\"]\n\
                 command = [\"sh\", \"-c\", \"cat >> all.log; echo >> all.log\"]\n";
    let c1 = w.commit_with("", false, &[], hooks);
    let sent = || -> Vec<String> {
        std::fs::read_to_string(w.git.path().join("all.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let host = v.get("host").and_then(|h| h.as_str()).unwrap_or("");
                format!("{} {host}", v["event"].as_str().unwrap()).trim().to_string()
            })
            .collect()
    };
    assert_eq!(w.run_shard(&c1, None, Some("canary"), None).ended, Ended::Passed);
    let shard = |k| Shard::parse(&format!("{k}/2"), None).unwrap();
    w.run_shard(&c1, Some("release"), None, Some(&shard(1)));
    assert!(sent().is_empty(), "the canary put shard 1's hosts on the commit: {:?}", sent());
    assert!(!w.gate(&c1, "release").open());
    assert!(sent().is_empty(), "{:?}", sent());
    w.run_shard(&c1, Some("release"), None, Some(&shard(2)));
    assert_eq!(sent(), ["host_deployed p-compute02"]);
    assert!(w.gate(&c1, "release").open());
    assert_eq!(
        sent()[1..],
        [
            "host_added p-compute01",
            "host_added p-compute02",
            "host_added p-db01",
            "stage_passed",
            "release_done"
        ]
    );
    w.gate(&c1, "release");
    assert_eq!(sent().len(), 6, "{:?}", sent());
}

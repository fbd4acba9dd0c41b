//! `stackdeploy lookup`: merge behaviours, --explain, JSON, secrets.

use crate::util::TestRepo;

fn lookup(repo: &TestRepo, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["lookup"];
    args.extend_from_slice(extra);
    repo.run(&args)
}

#[test]
fn merge_behaviours_from_options_and_flag() {
    let repo = TestRepo::fixture("minimal");
    // lookup_options says unique for app::servers
    lookup(&repo, &["app::servers", "--env", "test", "--host", "web01"])
        .expect(0, &["[\"web.example\", \"common.example\"]"]);
    lookup(&repo, &["app::servers", "--env", "test", "--host", "db01"])
        .expect(0, &["[\"common.example\"]"]);
    lookup(&repo, &["app::servers", "--env", "test", "--host", "web01", "--merge", "first"])
        .expect(0, &["[\"web.example\", \"common.example\"]"]);
}

#[test]
fn deep_merge_with_knockout_over_the_cli() {
    let repo = TestRepo::fixture("minimal");
    repo.write(
        "hieradata/roles/web.toml",
        "[opts]\na = 1\n\"--b\" = true\nnested = { x = 1 }\nlist = [\"--old\", \"new\"]\n",
    );
    repo.write(
        "hieradata/common.toml",
        &(repo.read("hieradata/common.toml")
            + "\n[opts]\nb = 2\nc = 3\nnested = { y = 2 }\nlist = [\"old\", \"keep\"]\n"),
    );
    repo.commit("opts");
    let run = lookup(
        &repo,
        &["opts", "--env", "test", "--host", "web01", "--merge", "deep", "--format", "json"],
    );
    let v = &run.json()["value"];
    assert_eq!(v["a"], 1);
    assert_eq!(v["c"], 3);
    assert!(v.get("b").is_none(), "{v}");
    assert_eq!(v["nested"], serde_json::json!({"x": 1, "y": 2}));
    assert_eq!(v["list"], serde_json::json!(["new", "keep"]));
    let hash = lookup(
        &repo,
        &["opts", "--env", "test", "--host", "web01", "--merge", "hash", "--format", "json"],
    );
    assert_eq!(hash.json()["value"]["nested"], serde_json::json!({"x": 1}));
}

#[test]
fn explain_shows_every_level_and_file() {
    let repo = TestRepo::fixture("minimal");
    let run = lookup(&repo, &["app::servers", "--env", "test", "--host", "web01", "--explain"]);
    run.expect(
        0,
        &[
            "merge unique (lookup_options 'app::servers' in hieradata/common.toml)",
            "hieradata/nodes/web01.toml",
            "no such file",
            "hieradata/roles/web.toml",
            "found: [\"web.example\", \"common.example\"]",
            "hieradata/environments/test.toml",
            "key not found",
            "(level roles/%{host.role})",
        ],
    );
}

#[test]
fn missing_key_exits_1_and_says_where_it_looked() {
    let repo = TestRepo::fixture("minimal");
    lookup(&repo, &["nope::x", "--env", "test", "--host", "db01"])
        .expect(1, &["'nope::x' has no value for host db01", "hieradata/common.toml"]);
}

#[test]
fn secret_values_are_redacted_in_lookup() {
    let repo = TestRepo::fixture("minimal");
    repo.write("hieradata/roles/web.toml", "\"url\" = \"app://u:%{lookup('app::password')}@x\"\n");
    repo.commit("url with password");
    lookup(&repo, &["url", "--env", "test", "--host", "web01"])
        .expect(0, &["app://u:<secret:app::password#"])
        .lacks("hunter2");
    lookup(&repo, &["app::password", "--env", "test", "--host", "web01", "--explain"])
        .success()
        .lacks("hunter2");
    lookup(&repo, &["app::password", "--env", "test", "--host", "web01", "--show-secrets"])
        .expect(0, &["hunter2-secret"]);
}

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
        &[
            "opts",
            "--env",
            "test",
            "--host",
            "web01",
            "--merge",
            "deep",
            "--knockout-prefix",
            "--",
            "--format",
            "json",
        ],
    );
    let v = &run.json()["value"];
    assert_eq!(v["a"], 1);
    assert_eq!(v["c"], 3);
    assert!(v.get("b").is_none(), "{v}");
    assert_eq!(v["nested"], serde_json::json!({"y": 2, "x": 1}));
    // The lower level's items first, as Puppet orders them.
    assert_eq!(v["list"], serde_json::json!(["keep", "new"]));
    // `--merge` alone replaces lookup_options whole: a deep merge without knockouts, so the
    // strings are data (Puppet's behaviour; flags such as "--verbose" stay).
    let plain = lookup(
        &repo,
        &["opts", "--env", "test", "--host", "web01", "--merge", "deep", "--format", "json"],
    );
    let v = &plain.json()["value"];
    assert_eq!(v["b"], 2);
    assert_eq!(v["--b"], true);
    assert_eq!(v["list"], serde_json::json!(["old", "keep", "--old", "new"]));
    lookup(&repo, &["opts", "--env", "test", "--host", "web01", "--knockout-prefix", "--"])
        .expect(1, &["--knockout-prefix needs --merge deep"]);
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

#[test]
fn sub_keys_and_interpolated_hash_keys() {
    let repo = TestRepo::fixture("minimal");
    repo.write(
        "hieradata/roles/web.toml",
        "\"app::db\" = { port = 3306, hosts = [\"h1\", \"h2\"] }\n\
         \"app::vhosts\" = { \"%{host.name}.example.com\" = \"%{lookup('app::db.hosts.1')}\" }\n",
    );
    repo.commit("sub-keys");
    let base = ["--env", "test", "--host", "web01"];
    lookup(&repo, &[&["app::db.port"], &base[..]].concat()).expect(0, &["3306"]);
    lookup(&repo, &[&["app::db.hosts.0"], &base[..]].concat()).expect(0, &["h1"]);
    let run = lookup(&repo, &[&["app::vhosts", "--format", "json"], &base[..]].concat());
    assert_eq!(run.json()["value"], serde_json::json!({"web01.example.com": "h2"}));
    lookup(&repo, &[&["app::db.user"], &base[..]].concat())
        .expect(1, &["'app::db' has no key 'user' (its keys: port, hosts)"]);
}

#[test]
fn explain_shows_interpolations_and_the_levels_of_a_failure() {
    let repo = TestRepo::fixture("minimal");
    repo.write(
        "hieradata/roles/web.toml",
        "\"app::url\" = \"http://%{lookup('app::host')}/\"\n\"app::host\" = \"%{facts.region}.example\"\n\n\"app::broken\" = \"%{facts.rack}\"\n",
    );
    repo.commit("interpolations");
    let base = ["--env", "test", "--host", "web01", "--explain"];
    lookup(&repo, &[&["app::url"], &base[..]].concat()).expect(
        0,
        &[
            "interpolations:",
            "%{lookup('app::host')} in hieradata/roles/web.toml:1 <- hieradata/roles/web.toml:2",
            "result: \"http://r1.example/\"",
        ],
    );
    // The failure still shows where it looked, then the error with its file and line.
    lookup(&repo, &[&["app::broken"], &base[..]].concat()).expect(
        1,
        &[
            "hieradata/nodes/web01.toml  no such file",
            "hieradata/roles/web.toml",
            "error: hieradata/roles/web.toml:4: unknown fact 'rack'",
            "result: error (below)",
        ],
    );
}

#[test]
fn with_format_json_every_error_is_json_on_stdout() {
    let repo = TestRepo::fixture("minimal");
    repo.write("hieradata/roles/web.toml", "\n\"app::broken\" = \"%{facts.rack}\"\n");
    repo.commit("a broken value");
    let run = lookup(
        &repo,
        &["app::broken", "--env", "test", "--host", "web01", "--format", "json", "--explain"],
    );
    assert_eq!(run.code, 1);
    let doc = run.json();
    assert_eq!(doc["found"], false);
    let error = &doc["errors"][0];
    assert_eq!(error["path"], "hieradata/roles/web.toml");
    assert_eq!(error["line"], 2);
    assert!(error["message"].as_str().unwrap().contains("unknown fact 'rack'"), "{doc:#}");
    assert_eq!(doc["explain"]["levels"][1]["outcome"]["outcome"], "error");
    // Errors before any lookup (a host that does not exist) are JSON too.
    let run = lookup(&repo, &["app::x", "--env", "test", "--host", "nope01", "--format", "json"]);
    assert_eq!(run.code, 1);
    assert!(run.json()["errors"][0]["message"].as_str().unwrap().contains("nope01"));
}

//! The `--format json` documents of the commands that work on hosts and on the pipeline,
//! from one staging lab (net 26 of converge.rs's table): what CI scripts read of them. Each
//! document is also validated against its schema by `Run` (see schema.rs).

use crate::converge::Lab;
use crate::pipeline::{head, note};

#[test]
fn ci_reads_counts_statuses_and_commit_objects_from_every_json_document() {
    let lab = Lab::staging(26);
    let commit = head(&lab);

    let plan = lab.run(&["plan", "--env", "staging", "--format", "json"]);
    plan.expect(2, &[]);
    let doc = plan.json();
    assert!(doc["changes"].as_u64().unwrap() > 4, "{}", plan.stdout);
    assert_eq!(doc["commit"]["id"], commit.as_str());
    assert_eq!(doc["commit"]["summary"], "private lab addresses");
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 4);
    assert_eq!(doc["errors"], serde_json::json!([]));

    // One document on stdout (the plan asked about goes to stderr), so it parses.
    let apply = lab.run(&["apply", "--env", "staging", "--yes", "--format", "json"]);
    apply.success();
    let doc = apply.json();
    assert!(doc["hosts"].as_array().unwrap().iter().all(|h| h["status"] == "changed"), "{doc}");
    assert!(doc["changes"].as_u64().unwrap() > 4);
    assert_eq!(doc["commit"]["id"], commit.as_str());
    let again = lab.run(&["plan", "--env", "staging", "--format", "json"]);
    again.success();
    assert_eq!(again.json()["changes"], 0);

    // A stage whose requirements have not passed: refused, with the reason as an error.
    let refused = lab.run(&[
        "pipeline",
        "run",
        "--yes",
        "--from",
        "integration",
        "--to",
        "integration",
        "--format",
        "json",
    ]);
    refused.expect(1, &[]);
    let doc = refused.json();
    assert_eq!(doc["status"], "refused");
    assert_eq!(doc["stages"], serde_json::json!([]));
    assert_eq!(doc["not_run"][0]["status"], "refused");
    assert_eq!(doc["errors"][0]["kind"], "stage");

    let run = lab.run(&["pipeline", "run", "--yes", "--to", "integration", "--format", "json"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["commit"]["id"], commit.as_str());
    let statuses: Vec<&str> =
        doc["stages"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["passed", "passed", "passed"]);
    assert_eq!(doc["errors"], serde_json::json!([]));
    assert_eq!(note(&lab, &commit)["stages"]["integration"]["status"], "passed");

    let status = lab.run(&["status", "--format", "json"]);
    status.success();
    let doc = status.json();
    assert_eq!(doc["commits"][0]["commit"]["id"], commit.as_str());
    assert_eq!(doc["commits"][0]["stages"]["deploy-staging"], "passed");
    assert_eq!(doc["commits"][0]["stages"]["canary"], "pending");
    assert_eq!(doc["environments"]["staging"]["commit"]["id"], commit.as_str());
    assert_eq!(doc["environments"]["staging"]["hosts"]["db01"]["id"], commit.as_str());
    assert_eq!(doc["environments"]["production"]["commit"], serde_json::Value::Null);

    // A stage that never ran in shards: the gate fails and says why.
    let gate = lab.run(&["pipeline", "gate", "--stage", "canary", "--format", "json"]);
    gate.expect(1, &[]);
    let doc = gate.json();
    assert_eq!(doc["status"], "failed");
    assert!(!doc["errors"].as_array().unwrap().is_empty(), "{doc}");

    // diff from what staging runs to a new commit: both ends as commit objects.
    lab.repo.edit(
        "hieradata/common.toml",
        "\"base::organisation\" = \"Example Cloud\"",
        "\"base::organisation\" = \"Other Cloud\"",
    );
    let next = lab.repo.commit("rename the organisation");
    let diff = lab.run(&["diff", "--env", "staging", "--format", "json"]);
    diff.success();
    let doc = diff.json();
    assert_eq!(doc["from"]["id"], commit.as_str());
    assert_eq!(doc["to"], serde_json::json!({"id": next, "summary": "rename the organisation"}));
    assert!(doc["changes"].as_u64().unwrap() >= 4, "{}", diff.stdout);
}

//! A pipeline run's summary as text or JSON.

use std::fmt::Write;

use serde_json::json;

use super::{SCHEMA_VERSION, json_text};
use crate::pipeline::gate::Gate;
use crate::pipeline::{Ended, Outcome};
use crate::source::short;

fn result_word(ended: Ended) -> &'static str {
    match ended {
        Ended::Passed => "passed",
        Ended::AwaitingApproval => "waiting_for_approval",
        Ended::Failed | Ended::Refused => "failed",
    }
}

pub fn text(outcome: &Outcome) -> String {
    let mut s = format!("pipeline for commit {}\n", short(&outcome.commit));
    for r in &outcome.stages {
        let first = r.detail.lines().next().unwrap_or("");
        let _ = writeln!(
            s,
            "  {:<20} {:<7} {:>6.1} s  {}",
            r.name,
            if r.passed { "passed" } else { "FAILED" },
            r.duration_secs,
            first
        );
        if !r.passed {
            for line in r.detail.lines().skip(1) {
                let _ = writeln!(s, "      {line}");
            }
        }
    }
    s.push_str(match outcome.ended {
        Ended::Passed => "result: passed\n",
        Ended::AwaitingApproval => "result: waiting for approval\n",
        Ended::Failed | Ended::Refused => "result: FAILED\n",
    });
    s
}

pub fn json(outcome: &Outcome, run_id: &str) -> String {
    json_text(&json!({
        "schema_version": SCHEMA_VERSION,
        "commit": outcome.commit,
        "run_id": run_id,
        "result": result_word(outcome.ended),
        "stages": outcome.stages,
    }))
}

/// `pipeline gate`: the stage, each shard, the result.
pub fn gate_text(gate: &Gate, commit: &str) -> String {
    let mut s =
        format!("stage {} of commit {}: {}\n", gate.stage, short(commit), gate.result.detail);
    for k in &gate.passed {
        let _ = writeln!(s, "  shard {k}/{}: passed", gate.shards);
    }
    for (k, why) in &gate.failed {
        let why = why.lines().next().unwrap_or("");
        let _ = writeln!(s, "  shard {k}/{}: FAILED {why}", gate.shards);
    }
    for k in &gate.missing {
        let _ = writeln!(s, "  shard {k}/{}: has not run", gate.shards);
    }
    s.push_str(if gate.open() { "result: passed\n" } else { "result: FAILED\n" });
    s
}

pub fn gate_json(gate: &Gate, commit: &str) -> String {
    let failed: Vec<_> =
        gate.failed.iter().map(|(k, why)| json!({ "shard": k, "detail": why })).collect();
    json_text(&json!({
        "schema_version": SCHEMA_VERSION,
        "commit": commit,
        "stage": gate.stage,
        "shards": gate.shards,
        "passed": gate.passed,
        "failed": failed,
        "missing": gate.missing,
        "result": if gate.open() { "passed" } else { "failed" },
        "detail": gate.result.detail,
        "hosts": gate.result.hosts,
    }))
}

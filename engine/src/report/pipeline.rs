//! A pipeline run's summary as text or JSON.

use std::fmt::Write;

use serde_json::json;

use super::{SCHEMA_VERSION, json_text};
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

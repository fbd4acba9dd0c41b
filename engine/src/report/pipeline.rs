//! A pipeline run's summary as text or JSON.

use std::fmt::Write;

use crate::pipeline::gate::Gate;
use crate::pipeline::{Ended, Outcome};
use crate::source::short;

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

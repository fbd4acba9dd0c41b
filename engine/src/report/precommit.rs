//! Precommit results (`check`) as text or JSON.

use serde_json::json;

use super::{SCHEMA_VERSION, error_json, json_text, origin_json};
use crate::precommit::Precommit;
use crate::source::Origin;

/// Every problem as `path:line: message`, then the warnings.
pub fn text(result: &Precommit) -> String {
    let mut text = String::new();
    for e in &result.problems {
        text.push_str(&format!("{e}\n"));
    }
    for w in &result.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text
}

/// The one-line verdict for stderr.
pub fn verdict(result: &Precommit, origin: &Origin) -> String {
    if result.passed() {
        format!(
            "ok: {} environment(s), {} host(s), {} role(s), {} profile(s) compiled from {}",
            result.environments,
            result.hosts,
            result.roles,
            result.profiles,
            origin.label()
        )
    } else {
        format!("{} problem(s) in {}", result.problems.len(), origin.label())
    }
}

pub fn json(result: &Precommit, origin: &Origin) -> String {
    json_text(&json!({
        "schema_version": SCHEMA_VERSION,
        "origin": origin_json(origin),
        "ok": result.passed(),
        "problems": result.problems.iter().map(|p| {
            let mut v = error_json(&p.error);
            v["hosts"] = json!(p.hosts);
            v
        }).collect::<Vec<_>>(),
        "warnings": result.warnings.iter().map(error_json).collect::<Vec<_>>(),
        "environments": result.environments,
        "hosts": result.hosts,
    }))
}

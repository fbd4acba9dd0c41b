//! Hiera lookups as text, `--explain` included, or JSON.

use std::fmt::Write;

use serde_json::json;

use super::{SCHEMA_VERSION, json_text, origin_json};
use crate::hiera::{Explain, LevelOutcome as Outcome};
use crate::source::Origin;

/// A TOML value the way an operator writes it: strings bare at top level, the rest inline TOML.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn explain_text(
    explain: &Explain,
    host: &str,
    env: &str,
    result: &Option<toml::Value>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lookup '{}' for host {host} (environment {env}), merge {} ({})",
        explain.key, explain.merge, explain.merge_source
    );
    let width = explain.levels.iter().map(|l| l.path.len()).max().unwrap_or(0);
    for level in &explain.levels {
        let what = match &level.outcome {
            Outcome::NoFile => "no such file".to_string(),
            Outcome::NotFound => "key not found".to_string(),
            Outcome::NotSearched => "not searched (first value already found)".to_string(),
            Outcome::Found(v) => format!("found: {}", v),
        };
        let _ = writeln!(out, "  {:width$}  {what}    (level {})", level.path, level.level);
    }
    match result {
        Some(v) => {
            let _ = writeln!(out, "result: {v}");
        }
        None => {
            let _ = writeln!(out, "result: not found");
        }
    }
    out
}

/// A lookup's result as JSON, with every level searched when `explain` is given.
pub fn json(
    key: &str,
    host: &str,
    env: &str,
    origin: &Origin,
    value: &Option<toml::Value>,
    explain: Option<&Explain>,
) -> String {
    let mut doc = json!({
        "schema_version": SCHEMA_VERSION,
        "origin": origin_json(origin),
        "key": key,
        "host": host,
        "environment": env,
        "found": value.is_some(),
        "value": value,
    });
    if let Some(explain) = explain {
        doc["explain"] = serde_json::to_value(explain).expect("json");
    }
    json_text(&doc)
}

//! Hiera lookups as text, `--explain` included, or JSON.

use std::fmt::Write;

use crate::hiera::{Explain, LevelOutcome as Outcome};

/// A TOML value the way an operator writes it: strings bare at top level, the rest inline TOML.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `--explain`: the levels, the interpolations and the result; `result` is `None` when the
/// lookup failed with an error (printed after this).
pub fn explain_text(
    explain: &Explain,
    host: &str,
    env: &str,
    result: Option<&Option<toml::Value>>,
) -> String {
    let mut out = String::new();
    let knockout = match &explain.knockout_prefix {
        Some(p) => format!(", knockout prefix '{p}'"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "lookup '{}' for host {host} (environment {env}), merge {} ({}){knockout}",
        explain.key, explain.merge, explain.merge_source
    );
    let width = explain.levels.iter().map(|l| l.path.len()).max().unwrap_or(0);
    for level in &explain.levels {
        let what = match &level.outcome {
            Outcome::NoFile => "no such file".to_string(),
            Outcome::NotFound => "key not found".to_string(),
            Outcome::NotSearched => "not searched (first value already found)".to_string(),
            Outcome::Found(v) => format!("found: {}", v),
            Outcome::Error(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "  {:width$}  {what}    (level {})", level.path, level.level);
    }
    if !explain.interpolations.is_empty() {
        let _ = writeln!(out, "interpolations:");
        for i in &explain.interpolations {
            let from = if i.from.is_empty() { "not found".to_string() } else { i.from.join(", ") };
            let _ = writeln!(
                out,
                "  {}%{{{}('{}')}} in {} <- {from}",
                "  ".repeat(i.depth.saturating_sub(1)),
                i.function,
                i.key,
                i.r#in
            );
        }
    }
    match result {
        Some(Some(v)) => {
            let _ = writeln!(out, "result: {v}");
        }
        Some(None) => {
            let _ = writeln!(out, "result: not found");
        }
        None => {
            let _ = writeln!(out, "result: error (below)");
        }
    }
    out
}

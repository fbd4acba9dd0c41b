//! Turning engine results into text or JSON. Pure functions returning strings, so they can be
//! snapshot-tested; `app` decides where the strings go and whether to colour them.
//!
//! Callers pass already-redacted data: nothing here knows secret values.

pub mod plan;
pub mod review;

use std::fmt::Write;

use serde::Serialize;
use serde_json::json;

use crate::catalog::{Catalog, Resource};
use crate::error::{Error, Location};
use crate::hiera::{Explain, Outcome};
use crate::source::Origin;

/// Version of every JSON document the CLI prints; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

pub fn origin_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::Commit { id, summary } => json!({ "commit": id, "summary": summary }),
        Origin::Worktree { path } => json!({ "worktree": path }),
    }
}

/// One problem as JSON: `{ kind, message, path?, line?, host? }`.
pub fn error_json(e: &Error) -> serde_json::Value {
    let mut v = json!({ "kind": format!("{:?}", e.kind()).to_lowercase(), "message": e.to_string(), "detail": e.detail() });
    match e.location() {
        Some(Location::File { path, line }) => {
            v["path"] = json!(path);
            v["line"] = json!(line);
        }
        Some(Location::Host { host }) => v["host"] = json!(host),
        None => {}
    }
    v
}

pub fn catalog_text(catalog: &Catalog, origin: &Origin) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# host {} (role {}, environment {}, {}:{})\n# from {}",
        catalog.host,
        catalog.role,
        catalog.environment,
        catalog.address,
        catalog.port,
        origin.label()
    );
    for r in &catalog.resources {
        out.push('\n');
        match r {
            Resource::Package(p) => {
                let _ = writeln!(out, "package {} ensure={} [{}]", p.name, p.ensure, p.profile);
            }
            Resource::Directory(d) => {
                let _ = writeln!(
                    out,
                    "directory {} {}:{} {} [{}]",
                    d.path, d.owner, d.group, d.mode, d.profile
                );
            }
            Resource::File(f) => {
                let _ = writeln!(
                    out,
                    "file {} {}:{} {} sha256:{} [{}]",
                    f.path,
                    f.owner,
                    f.group,
                    f.mode,
                    &f.sha256[..12],
                    f.profile
                );
                if let Some(v) = &f.validate {
                    let _ = writeln!(out, "  validate: {v}");
                }
                if !f.notify.is_empty() {
                    let _ = writeln!(out, "  notify: {}", f.notify.join(", "));
                }
                for line in f.content.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
                if !f.content.is_empty() && !f.content.ends_with('\n') {
                    let _ = writeln!(out, "  \\ no newline at end of file");
                }
            }
            Resource::Exec(x) => {
                let _ = writeln!(out, "exec {} [{}]", x.name, x.profile);
                let _ = writeln!(out, "  command: {}", x.command);
                for (k, v) in [("creates", &x.creates), ("unless", &x.unless)] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "  {k}: {v}");
                    }
                }
                if x.refreshonly {
                    let _ = writeln!(out, "  refreshonly: true");
                }
                if !x.notify.is_empty() {
                    let _ = writeln!(out, "  notify: {}", x.notify.join(", "));
                }
            }
            Resource::Service(s) => {
                let _ = writeln!(
                    out,
                    "service {} ensure={} enable={} provider={} [{}]",
                    s.name, s.ensure, s.enable, s.provider, s.profile
                );
                for (k, v) in [
                    ("unit", &s.unit),
                    ("start", &s.start),
                    ("stop", &s.stop),
                    ("status", &s.status),
                    ("restart", &s.restart),
                    ("reload", &s.reload),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "  {k}: {v}");
                    }
                }
            }
        }
    }
    out
}

pub fn catalog_json(catalog: &Catalog, origin: &Origin) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        schema_version: u32,
        origin: serde_json::Value,
        #[serde(flatten)]
        catalog: &'a Catalog,
    }
    let doc = Doc { schema_version: SCHEMA_VERSION, origin: origin_json(origin), catalog };
    serde_json::to_string_pretty(&doc).expect("catalog serialises") + "\n"
}

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

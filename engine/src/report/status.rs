//! `status` as text (commits × stages, then environments) or JSON.

use std::collections::BTreeMap;

use serde_json::json;

use super::{SCHEMA_VERSION, json_text};
use crate::pipeline::status::Status;
use crate::source::short;

pub fn text(status: &Status) -> String {
    let width = status.stages.iter().map(|s| s.len()).max().unwrap_or(8).max(8);
    let mut s = format!("{:<12}", "commit");
    for st in &status.stages {
        s.push_str(&format!("  {st:<width$}"));
    }
    s.push_str("  subject\n");
    for c in &status.commits {
        s.push_str(&format!("{:<12}", short(&c.id)));
        for (_, cell) in &c.stages {
            s.push_str(&format!("  {:<width$}", cell.as_str()));
        }
        s.push_str(&format!("  {}\n", c.subject));
    }
    for c in status.commits.iter().filter(|c| c.error.is_some()) {
        s.push_str(&format!("\nwarning: {}\n", c.error.as_deref().unwrap_or_default()));
    }
    s.push('\n');
    for env in &status.environments {
        s.push_str(&format!(
            "{}: {}\n",
            env.name,
            env.commit.as_deref().map(short).unwrap_or("never deployed")
        ));
        for (host, c) in &env.exceptions {
            s.push_str(&format!("  {host} runs {}\n", short(c)));
        }
        if let Some(e) = &env.error {
            s.push_str(&format!("  warning: {e}\n"));
        }
    }
    s
}

pub fn json(status: &Status) -> String {
    json_text(&json!({
        "schema_version": SCHEMA_VERSION,
        "stages": status.stages,
        "commits": status.commits.iter().map(|c| json!({
            "commit": c.id,
            "subject": c.subject,
            "stages": c.stages.iter().map(|(n, cell)| (n.clone(), cell.as_str())).collect::<BTreeMap<_, _>>(),
            "error": c.error,
        })).collect::<Vec<_>>(),
        "environments": status.environments.iter().map(|e| {
            (e.name.clone(), json!({"commit": e.commit, "hosts": e.hosts, "error": e.error}))
        }).collect::<BTreeMap<_, _>>(),
    }))
}

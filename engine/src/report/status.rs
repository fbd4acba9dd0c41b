//! `status` as text (commits × stages, then environments) or JSON.

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
        let label = |facts: &[Option<String>]| {
            let pairs = status.by.iter().zip(facts);
            let pairs = pairs.map(|(f, v)| format!("{f}={}", v.as_deref().unwrap_or("(unset)")));
            pairs.collect::<Vec<_>>().join(" ")
        };
        let labels: Vec<String> = env.groups.iter().map(|g| label(&g.facts)).collect();
        let w = labels.iter().map(String::len).max().unwrap_or(0);
        for (g, l) in env.groups.iter().zip(&labels) {
            let commit = g.commit.as_deref().map(short).unwrap_or("never deployed");
            s.push_str(&format!("  {l:<w$}  {commit:<12}  {} host(s)\n", g.hosts.len()));
        }
        if let Some(e) = &env.error {
            s.push_str(&format!("  warning: {e}\n"));
        }
    }
    s
}

//! What reviewers read: a commit-to-commit diff or a plan, with identical changes on many
//! hosts grouped once, as text, JSON or an HTML page ([`html`]).

mod anchors;
mod html;
mod words;

use super::ansi;
use std::fmt::Write;

use super::Style;
use super::plan::{attrs_text, change_text, headline, restart_headline, restart_text};
use crate::plan::HostPlan;
use crate::plan::compare::{EnvDiff, HostDiff};
use crate::plan::group::{Group, Item, group};
use crate::source::{CommitSummary, short};

pub use html::{STYLESHEET, html};

/// A diff or plan, ready to show: its groups and, per host, which groups it is in.
pub struct Review {
    /// `diff` or `plan`.
    pub kind: &'static str,
    pub environment: String,
    /// What the changes start from: `commit 1a2b3c4d5e6f`, or `live hosts`.
    pub from: String,
    /// The commit the changes lead to.
    pub to: String,
    pub groups: Vec<Group>,
    /// Every host looked at, in order: name, role, and its groups (indices into `groups`).
    pub hosts: Vec<(String, String, Vec<usize>)>,
    pub unchanged: usize,
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    /// Hosts that could not be planned: name, error.
    pub errors: Vec<(String, String)>,
    /// The commits `to` brings in over `from`, newest first (subjects redacted), and how many
    /// there are in all; `None` when there are no two commits to compare (a plan, a worktree).
    pub commits: Option<(Vec<CommitSummary>, usize)>,
}

impl Review {
    pub fn of_diff(diff: &EnvDiff) -> Review {
        let groups = group(&diff.changed);
        Review {
            kind: "diff",
            environment: diff.environment.clone(),
            from: format!("commit {}", short(&diff.from)),
            to: diff.to.clone(),
            hosts: membership(&diff.changed, &groups),
            groups,
            unchanged: diff.compared - diff.changed.len(),
            added: diff.added.clone(),
            removed: diff.removed.clone(),
            errors: Vec::new(),
            commits: None,
        }
    }

    pub fn of_plans(
        environment: &str,
        commit: &str,
        plans: &[&HostPlan],
        errors: &[(String, String)],
    ) -> Review {
        let changed: Vec<HostDiff> = plans
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| HostDiff {
                host: p.host.clone(),
                role: p.role.clone(),
                changes: p.changes.clone(),
                restarts: p.restarts.clone(),
                redefined: Vec::new(),
            })
            .collect();
        let groups = group(&changed);
        Review {
            kind: "plan",
            environment: environment.to_string(),
            from: "live hosts".to_string(),
            to: commit.to_string(),
            hosts: membership(&changed, &groups),
            unchanged: plans.len() - changed.len(),
            groups,
            added: Vec::new(),
            removed: Vec::new(),
            errors: errors.to_vec(),
            commits: None,
        }
    }

    /// Drift as reviewers read it: per host, the changes a re-apply of the commit it runs
    /// would make to undo the drift, grouped as a plan's are; `to` lists those commits.
    pub fn of_drift(
        environment: &str,
        drifts: &[&crate::plan::drift::HostDrift],
        errors: &[(String, String)],
    ) -> Review {
        let plans: Vec<&HostPlan> = drifts.iter().map(|d| &d.repair).collect();
        let mut commits: Vec<&str> = drifts.iter().map(|d| short(&d.commit)).collect();
        commits.sort_unstable();
        commits.dedup();
        Review {
            kind: "drift",
            to: commits.join(", "),
            ..Review::of_plans(environment, "", &plans, errors)
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.groups.is_empty() || !self.added.is_empty() || !self.removed.is_empty()
    }

    fn title(&self) -> String {
        if self.kind == "drift" {
            return format!(
                "drift of environment {}: live hosts against the commit they run ({})",
                self.environment, self.to
            );
        }
        format!(
            "{} of environment {}: {} → commit {}",
            self.kind,
            self.environment,
            self.from,
            short(&self.to)
        )
    }

    fn summary(&self) -> String {
        if self.kind == "drift" {
            return format!(
                "{} host(s) drifted, {} without drift, {} failed; {} distinct drift(s)",
                self.hosts.len(),
                self.unchanged,
                self.errors.len(),
                self.groups.len()
            );
        }
        let mut s = format!("{} host(s) change, {} unchanged", self.hosts.len(), self.unchanged);
        if self.kind == "diff" {
            let _ = write!(s, ", {} added, {} removed", self.added.len(), self.removed.len());
        } else {
            let _ = write!(s, ", {} failed", self.errors.len());
        }
        let _ = write!(s, "; {} distinct change(s)", self.groups.len());
        s
    }
}

fn membership(changed: &[HostDiff], groups: &[Group]) -> Vec<(String, String, Vec<usize>)> {
    changed
        .iter()
        .map(|d| {
            let mine = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.hosts.contains(&d.host))
                .map(|(i, _)| i)
                .collect();
            (d.host.clone(), d.role.clone(), mine)
        })
        .collect()
}

/// `a, b, c` or, past `max` names, `a, b, … (+N more)`.
fn host_list(hosts: &[String], max: usize) -> String {
    if hosts.len() <= max {
        hosts.join(", ")
    } else {
        format!("{}, … (+{} more)", hosts[..max].join(", "), hosts.len() - max)
    }
}

fn item_headline(item: &Item) -> String {
    match item {
        Item::Change(c) => {
            let (sym, text, _) = headline(c);
            format!("{sym} {text}")
        }
        Item::Restart(r) => format!("! {}", restart_headline(r)),
        Item::Redefined(r) => format!("~ {}: {}", r.resource, attrs_text(&r.fields)),
    }
}

pub fn text(review: &Review, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint(ansi::BOLD, &review.title()));
    for (what, list) in [("added", &review.added), ("removed", &review.removed)] {
        if !list.is_empty() {
            let names: Vec<String> = list.iter().map(|(h, r)| format!("{h} ({r})")).collect();
            let _ = writeln!(out, "hosts {what}: {}", names.join(", "));
        }
    }
    for (host, e) in &review.errors {
        let _ = writeln!(out, "{}: error: {e}", style.paint(ansi::RED, host));
    }
    groups_text(&mut out, &review.groups, style);
    let verb = if review.kind == "diff" { "Diff" } else { "Plan" };
    let _ = writeln!(out, "\n{verb}: {}", review.summary());
    out
}

/// `-q`: the one-line summary alone.
pub fn summary_text(review: &Review) -> String {
    let verb = if review.kind == "diff" { "Diff" } else { "Plan" };
    format!("{verb}: {}\n", review.summary())
}

/// Each group once: `4 compute hosts: compute01, …`, then the change as on the first of them.
pub(crate) fn groups_text(out: &mut String, groups: &[Group], style: Style) {
    for g in groups {
        let _ =
            writeln!(out, "\n{}: {}", style.paint(ansi::BOLD, &g.label()), host_list(&g.hosts, 8));
        if g.varies {
            let _ = writeln!(out, "  (the same changed lines on each; shown as on {})", g.hosts[0]);
        }
        match &g.item {
            Item::Change(c) => change_text(out, c, style),
            Item::Restart(r) => restart_text(out, r, style),
            Item::Redefined(r) => {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    style.paint(ansi::YELLOW, "~"),
                    r.resource,
                    attrs_text(&r.fields)
                );
            }
        }
    }
}

//! Plans and apply results as text (optionally coloured) or JSON.

use super::ansi;
use std::fmt::Write;

use super::Style;
use crate::catalog::ownership;
use crate::plan::{Change, HostPlan, Restart};
use crate::rollout::{HostOutcome as Outcome, HostResult, HostRun};

pub(crate) fn diff_lines(out: &mut String, diff: &str, style: Style) {
    let mut in_hunks = false;
    for line in diff.lines() {
        in_hunks |= line.starts_with("@@");
        let painted = match line.chars().next() {
            _ if !in_hunks => style.paint(ansi::BOLD, line),
            Some('+') => style.paint(ansi::GREEN, line),
            Some('-') => style.paint(ansi::RED, line),
            Some('@') => style.paint(ansi::CYAN, line),
            _ => line.to_string(),
        };
        let _ = writeln!(out, "      {painted}");
    }
}

/// One host's plan; `None` plan means the host failed before planning (error given).
pub fn host_text(plan: &HostPlan, style: Style) -> String {
    let mut out = String::new();
    let head = format!("{} ({}, {})", plan.host, plan.role, plan.address);
    if plan.is_empty() {
        let _ = writeln!(out, "{}: no changes", style.paint(ansi::BOLD, &head));
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} change(s), {} restart(s)",
        style.paint(ansi::BOLD, &head),
        plan.changes.len(),
        plan.restarts.len()
    );
    for c in &plan.changes {
        change_text(&mut out, c, style);
    }
    for r in &plan.restarts {
        restart_text(&mut out, r, style);
    }
    out
}

pub(crate) fn restart_text(out: &mut String, r: &Restart, style: Style) {
    let _ = writeln!(out, "  {} {}", style.paint(ansi::MAGENTA, "!"), restart_headline(r));
}

pub(crate) fn restart_headline(r: &Restart) -> String {
    let why = if r.because.is_empty() {
        "owed by an interrupted run".to_string()
    } else {
        format!("after {}", r.because.join(", "))
    };
    format!("restart {} ({why})", r.resource)
}

/// One change as a `  ~ file /etc/x (…)` line, followed by its diff.
pub(crate) fn change_text(out: &mut String, c: &Change, style: Style) {
    let (sym, text, diff) = headline(c);
    let color = match sym {
        "+" => ansi::GREEN,
        "-" | "x" => ansi::RED,
        "~" => ansi::YELLOW,
        _ => ansi::CYAN,
    };
    let _ = writeln!(out, "  {} {text}", style.paint(color, sym));
    if let Some(d) = diff.filter(|d| !d.is_empty()) {
        diff_lines(out, d, style);
    }
}

/// ` -> TARGET` for a file written through a symlink.
fn through_text(through: &Option<String>) -> String {
    through.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default()
}

/// A change's symbol (`+ ~ - > x`), one-line description, and diff if it has one.
pub(crate) fn headline(c: &Change) -> (&'static str, String, Option<&String>) {
    match c {
        Change::CreateDirectory { path, owner, group, mode } => {
            let who = ownership(owner.as_deref(), group.as_deref());
            ("+", format!("directory {path} ({who} {mode})"), None)
        }
        Change::FixDirectory { path, attrs } => {
            ("~", format!("directory {path}: {}", attrs_text(attrs)), None)
        }
        Change::CreateFile { path, owner, group, mode, diff, through, replacing, .. } => {
            let who = ownership(owner.as_deref(), group.as_deref());
            let mut t = format!("file {path}{} ({who} {mode})", through_text(through));
            if let Some(what) = replacing {
                let _ = write!(t, ", replacing the {what}");
            }
            ("+", t, Some(diff))
        }
        Change::UpdateFile { path, diff, attrs, from_sha256, to_sha256, through } => {
            let mut t = format!("file {path}{}", through_text(through));
            if from_sha256 != to_sha256 {
                let _ = write!(
                    t,
                    " (sha256 {} -> {})",
                    &from_sha256[..12.min(from_sha256.len())],
                    &to_sha256[..12]
                );
            }
            if !attrs.is_empty() {
                let _ = write!(t, ": {}", attrs_text(attrs));
            }
            ("~", t, Some(diff))
        }
        Change::RemoveFile { path, .. } => {
            ("-", format!("file {path} (no longer managed; a backup is kept)"), None)
        }
        Change::InstallPackage { name, ensure, installed } => (
            "+",
            match installed {
                Some(v) => format!("package {name} {v} -> {ensure}"),
                None => format!("package {name} ({ensure})"),
            },
            None,
        ),
        Change::PatchFile {
            path,
            patch,
            from_sha256,
            to_sha256,
            diff,
            reverse,
            after_packages,
        } => {
            let what = if *reverse { "taken out of" } else { "applied to" };
            let mut t = format!("patch {patch} {what} {path}");
            if *after_packages {
                t.push_str(
                    " (once this apply's packages install it; the host is planned again then)",
                );
            }
            if !from_sha256.is_empty() && !to_sha256.is_empty() {
                let _ = write!(t, " (sha256 {} -> {})", &from_sha256[..12], &to_sha256[..12]);
            }
            (if *reverse { "-" } else { "~" }, t, Some(diff))
        }
        Change::RemovePackage { name } => ("-", format!("package {name}"), None),
        Change::RunExec { name } => (">", format!("exec {name}"), None),
        Change::StartService { name } => (">", format!("start service {name}"), None),
        Change::StopService { name } => ("x", format!("stop service {name}"), None),
    }
}

pub(crate) fn attrs_text(attrs: &[crate::plan::AttrChange]) -> String {
    attrs
        .iter()
        .map(|a| format!("{} {} -> {}", a.attr, a.from, a.to))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn results_text(results: &[HostResult], style: Style) -> String {
    let mut out = String::new();
    let (mut changed, mut unchanged, mut failed, mut skipped) = (0, 0, 0, 0);
    for r in results {
        match &r.outcome {
            Outcome::Unchanged => unchanged += 1,
            Outcome::Changed(_) => changed += 1,
            Outcome::Failed { error, done } => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{} {}: {}",
                    style.paint(ansi::RED, "FAILED"),
                    r.host,
                    error.detail()
                );
                if !done.is_empty() {
                    let _ = writeln!(
                        out,
                        "  before the failure: {}",
                        done.iter()
                            .map(|(id, what)| format!("{id} {what}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            Outcome::Skipped => skipped += 1,
        }
    }
    let _ = writeln!(
        out,
        "Apply: {changed} changed, {unchanged} unchanged, {failed} failed, {skipped} skipped"
    );
    out
}

/// Every prepared host on one line (its change count, or why it could not be planned), then
/// each distinct change once with the hosts it is planned on (as `diff` shows them: the same
/// file change on 20 hosts is one diff with 20 names), then a one-line summary.
pub fn plans_text(runs: &[HostRun], environment: &str, commit: &str, style: Style) -> String {
    let hosts: Vec<(&str, Result<&HostPlan, &str>)> = runs
        .iter()
        .filter_map(|r| match (&r.plan, &r.error) {
            (Some(p), _) => Some((r.host.name.as_str(), Ok(p))),
            (None, Some(e)) => Some((r.host.name.as_str(), Err(e.detail()))),
            _ => None,
        })
        .collect();
    grouped_text(&hosts, environment, commit, style)
}

/// [`plans_text`] of each host's plan or error.
fn grouped_text(
    hosts: &[(&str, Result<&HostPlan, &str>)],
    environment: &str,
    commit: &str,
    style: Style,
) -> String {
    let mut text = String::new();
    for (host, planned) in hosts {
        match planned {
            Ok(p) => {
                let head = format!("{} ({}, {})", p.host, p.role, p.address);
                let what = if p.is_empty() {
                    "no changes".to_string()
                } else {
                    format!("{} change(s), {} restart(s)", p.changes.len(), p.restarts.len())
                };
                let _ = writeln!(text, "{}: {what}", style.paint(ansi::BOLD, &head));
            }
            Err(e) => error_line(&mut text, host, e, style),
        }
    }
    let plans: Vec<&HostPlan> = hosts.iter().filter_map(|(_, p)| p.ok()).collect();
    let review = super::review::Review::of_plans(environment, commit, &plans, &[]);
    super::review::groups_text(&mut text, &review.groups, style);
    if !review.groups.is_empty() {
        text.push('\n');
    }
    let errors = hosts.len() - plans.len();
    text.push_str(&summary(&plans, errors, commit, Some(review.groups.len())));
    text
}

/// `-q`: the hosts that could not be planned, then the summary line.
pub fn plans_brief(runs: &[HostRun], commit: &str, style: Style) -> String {
    let mut text = String::new();
    for r in runs {
        if let Some(e) = &r.error {
            error_line(&mut text, &r.host.name, e.detail(), style);
        }
    }
    let plans: Vec<&HostPlan> = runs.iter().filter_map(|r| r.plan.as_ref()).collect();
    let errors = runs.iter().filter(|r| r.plan.is_none() && r.error.is_some()).count();
    text.push_str(&summary(&plans, errors, commit, None));
    text
}

fn error_line(text: &mut String, host: &str, error: &str, style: Style) {
    let _ = writeln!(text, "{}: error: {error}", style.paint(ansi::RED, host));
}

/// `Plan: 2 host(s) to change, 1 unchanged, 0 failed; 3 distinct change(s) (commit …)`.
fn summary(plans: &[&HostPlan], errors: usize, commit: &str, distinct: Option<usize>) -> String {
    let to_change = plans.iter().filter(|p| !p.is_empty()).count();
    format!(
        "Plan: {to_change} host(s) to change, {} unchanged, {errors} failed{} (commit {})\n",
        plans.len() - to_change,
        distinct.map(|n| format!("; {n} distinct change(s)")).unwrap_or_default(),
        crate::source::short(commit)
    )
}

/// The hosts of a saved plan that will be applied (their plans), then those refused.
pub fn gate_text(accepted: &[HostRun], refused: &[(String, String)], style: Style) -> String {
    let mut text = String::new();
    for r in accepted {
        if let Some(p) = &r.plan {
            text.push_str(&host_text(p, style));
        }
    }
    for (host, why) in refused {
        let _ = writeln!(text, "{}: REFUSED: {why}", style.paint(ansi::RED, host));
    }
    text
}

/// (host, error) of every host that could not be planned.
pub fn run_errors(runs: &[HostRun]) -> Vec<(String, String)> {
    runs.iter()
        .filter_map(|r| r.error.as_ref().map(|e| (r.host.name.clone(), e.detail().to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Restart;

    const SECRET: &str = "<secret:nova::rabbit_password#5f2c9a1e>";

    /// What planning compute NN against live hosts yields: the same transport_url change (with
    /// the password already redacted, as plans are) and a restart, the diff header naming the
    /// host, as real plans' headers do.
    fn compute(n: usize, rabbit: &str) -> HostPlan {
        let host = format!("compute{n:02}");
        let diff = format!(
            "--- /etc/nova/nova.conf ({host})\n+++ /etc/nova/nova.conf (commit 1a2b3c4d5e6f)\n\
             @@ -1,3 +1,3 @@\n [DEFAULT]\n-transport_url = rabbit://nova:{SECRET}@10.0.0.1:5672/\n\
             +transport_url = rabbit://nova:{SECRET}@{rabbit}:5672/\n host = {host}\n"
        );
        HostPlan {
            patched: Vec::new(),
            address: format!("127.0.28.{}", 30 + n),
            host,
            environment: "production".into(),
            role: "compute".into(),
            port: 2222,
            commit: "1a2b3c4d5e6f7a8b".into(),
            changes: vec![Change::UpdateFile {
                path: "/etc/nova/nova.conf".into(),
                from_sha256: format!("{n:02}{}", "a".repeat(62)),
                to_sha256: format!("{n:02}{}", "b".repeat(62)),
                diff,
                attrs: Vec::new(),
                through: None,
            }],
            restarts: vec![Restart {
                resource: "service:nova-compute".into(),
                because: vec!["/etc/nova/nova.conf".into()],
                pending: false,
            }],
        }
    }

    fn unchanged(host: &str, role: &str) -> HostPlan {
        HostPlan {
            patched: Vec::new(),
            host: host.into(),
            environment: "production".into(),
            role: role.into(),
            address: "127.0.28.11".into(),
            port: 2222,
            commit: "1a2b3c4d5e6f7a8b".into(),
            changes: Vec::new(),
            restarts: Vec::new(),
        }
    }

    #[test]
    fn the_same_change_on_twenty_hosts_is_shown_once_with_their_names() {
        let mut plans: Vec<HostPlan> = (1..=20).map(|n| compute(n, "10.0.0.2")).collect();
        plans.push(compute(21, "10.0.0.3"));
        plans.push(unchanged("db01", "database"));
        let mut hosts: Vec<(&str, Result<&HostPlan, &str>)> =
            plans.iter().map(|p| (p.host.as_str(), Ok(p))).collect();
        hosts.push(("compute22", Err("cannot connect to 127.0.28.52:2222: Connection refused")));
        let text = grouped_text(&hosts, "production", "1a2b3c4d5e6f7a8b", Style { color: false });

        let once =
            "+transport_url = rabbit://nova:<secret:nova::rabbit_password#5f2c9a1e>@10.0.0.2";
        assert_eq!(text.matches(once).count(), 1, "one diff for the twenty hosts:\n{text}");
        assert!(text.contains("\n20 compute hosts: compute01, compute02,"), "{text}");
        assert!(text.contains("\n21 compute hosts: compute01,"), "the restart of all 21:\n{text}");
        assert!(!text.contains("rabbit_password\""), "no secret value: {text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_summary_counts_hosts_failures_and_distinct_changes() {
        let plans = [compute(1, "10.0.0.2"), unchanged("db01", "database")];
        let hosts: Vec<(&str, Result<&HostPlan, &str>)> =
            plans.iter().map(|p| (p.host.as_str(), Ok(p))).collect();
        let text = grouped_text(&hosts, "production", "1a2b3c4d5e6f", Style { color: false });
        assert!(text.ends_with(
            "Plan: 1 host(s) to change, 1 unchanged, 0 failed; 2 distinct change(s) (commit 1a2b3c4d5e6f)\n"
        ), "{text}");
        let plans: Vec<&HostPlan> = plans.iter().collect();
        assert_eq!(
            summary(&plans, 1, "1a2b3c4d5e6f", None),
            "Plan: 1 host(s) to change, 1 unchanged, 1 failed (commit 1a2b3c4d5e6f)\n"
        );
    }
}

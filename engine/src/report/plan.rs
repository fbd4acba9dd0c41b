//! Plans and apply results as text (optionally coloured) or JSON.

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
            _ if !in_hunks => style.paint("1", line),
            Some('+') => style.paint("32", line),
            Some('-') => style.paint("31", line),
            Some('@') => style.paint("36", line),
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
        let _ = writeln!(out, "{}: no changes", style.paint("1", &head));
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} change(s), {} restart(s)",
        style.paint("1", &head),
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
    let _ = writeln!(out, "  {} {}", style.paint("35", "!"), restart_headline(r));
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
        "+" => "32",
        "-" | "x" => "31",
        "~" => "33",
        _ => "36",
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
                let _ =
                    writeln!(out, "{} {}: {}", style.paint("31", "FAILED"), r.host, error.detail());
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

/// Every prepared host's plan (or why it could not be planned), then a one-line summary.
pub fn plans_text(runs: &[HostRun], commit: &str, style: Style) -> String {
    let mut text = String::new();
    for r in runs {
        match (&r.plan, &r.error) {
            (Some(p), _) => text.push_str(&host_text(p, style)),
            (None, Some(e)) => text.push_str(&format!("{}: error: {}\n", r.host.name, e.detail())),
            _ => {}
        }
    }
    let to_change = runs.iter().filter(|r| r.plan.as_ref().is_some_and(|p| !p.is_empty())).count();
    let errors = runs.iter().filter(|r| r.error.is_some()).count();
    let _ = writeln!(
        text,
        "Plan: {to_change} host(s) to change, {} unchanged, {errors} failed (commit {})",
        runs.len() - to_change - errors,
        crate::source::short(commit)
    );
    text
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
        let _ = writeln!(text, "{}: REFUSED: {why}", style.paint("31", host));
    }
    text
}

/// (host, error) of every host that could not be planned.
pub fn run_errors(runs: &[HostRun]) -> Vec<(String, String)> {
    runs.iter()
        .filter_map(|r| r.error.as_ref().map(|e| (r.host.name.clone(), e.detail().to_string())))
        .collect()
}

//! `drift` as text (a block per host: what drifted, with the diffs); JSON is
//! [`super::json::drift`]. The HTML page is
//! the review's ([`super::review::Review::of_drift`]).

use std::fmt::Write;

use super::plan::diff_lines;
use super::{Style, ansi};
use crate::plan::drift::{Attr, Drift, HostDrift};
use crate::source::short;

/// One host's result: its drift, or the error that kept it from being compared.
pub type HostResult<'a> = (&'a str, Result<&'a HostDrift, &'a str>);

fn attrs_text(attrs: &[Attr]) -> String {
    attrs
        .iter()
        .map(|a| format!("{} {} on the host, {} in the commit", a.attr, a.found, a.wanted))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A drift's symbol and one-line description.
fn headline(d: &Drift) -> (&'static str, String) {
    match d {
        Drift::FileEdited { path, recorded_sha256, host_sha256, attrs, .. } => {
            let mut t = format!(
                "file {path}: edited on the host (sha256 {} written, {} now)",
                short(recorded_sha256),
                short(host_sha256)
            );
            if !attrs.is_empty() {
                let _ = write!(t, "; {}", attrs_text(attrs));
            }
            ("~", t)
        }
        Drift::FileAttributes { path, attrs } => {
            ("~", format!("file {path}: {}", attrs_text(attrs)))
        }
        Drift::FileMissing { path } => ("-", format!("file {path}: missing on the host")),
        Drift::FileReplaced { path, what } => {
            ("~", format!("file {path}: a {what} on the host, where a file was written"))
        }
        Drift::DirectoryMissing { path } => ("-", format!("directory {path}: missing on the host")),
        Drift::DirectoryAttributes { path, attrs } => {
            ("~", format!("directory {path}: {}", attrs_text(attrs)))
        }
        Drift::PatchUndone { path, patch, .. } => (
            "~",
            format!(
                "file {path}: no longer holds the patch {patch} (edited or upgraded on the host)"
            ),
        ),
        Drift::Service { name, wanted, found } => {
            ("x", format!("service {name}: {found}, the commit wants it {wanted}"))
        }
        Drift::Package { name, wanted, found } => {
            ("~", format!("package {name}: {found} on the host, the commit wants {wanted}"))
        }
    }
}

fn head_line(out: &mut String, d: &HostDrift, style: Style) {
    let head = format!("{} ({}, {})", d.host, d.role, d.address);
    let what = if d.drifted() {
        format!(
            "{} drifted from commit {} (applied {} UTC by run {})",
            d.drift.len(),
            short(&d.commit),
            crate::utc::iso(d.applied_time),
            d.run_id
        )
    } else {
        format!("no drift (commit {})", short(&d.commit))
    };
    let _ = writeln!(out, "{}: {what}", style.paint(ansi::BOLD, &head));
}

fn drift_line(out: &mut String, d: &Drift, style: Style) {
    let (sym, text) = headline(d);
    let color = if sym == "~" { ansi::YELLOW } else { ansi::RED };
    let _ = writeln!(out, "  {} {text}", style.paint(color, sym));
}

/// Every host: a line, then (when it drifted) each drifted resource with its diff, the way a
/// re-apply would put it back.
pub fn text(hosts: &[HostResult<'_>], style: Style) -> String {
    let mut out = String::new();
    for (host, result) in hosts {
        match result {
            Ok(d) => {
                head_line(&mut out, d, style);
                for item in &d.drift {
                    drift_line(&mut out, item, style);
                    if let Drift::FileEdited { diff, .. } | Drift::PatchUndone { diff, .. } = item
                        && !diff.is_empty()
                    {
                        let _ = writeln!(out, "      (a re-apply of the commit restores it:)");
                        diff_lines(&mut out, diff, style);
                    }
                }
            }
            Err(e) => error_line(&mut out, host, e, style),
        }
    }
    out.push_str(&summary(hosts));
    out
}

/// `-q`: the hosts that could not be compared, each drifted resource on one line (no diffs),
/// and the summary.
pub fn brief(hosts: &[HostResult<'_>], style: Style) -> String {
    let mut out = String::new();
    for (host, result) in hosts {
        match result {
            Ok(d) if d.drifted() => {
                head_line(&mut out, d, style);
                d.drift.iter().for_each(|item| drift_line(&mut out, item, style));
            }
            Ok(_) => {}
            Err(e) => error_line(&mut out, host, e, style),
        }
    }
    out.push_str(&summary(hosts));
    out
}

fn error_line(out: &mut String, host: &str, error: &str, style: Style) {
    let _ = writeln!(out, "{}: error: {error}", style.paint(ansi::RED, host));
}

/// `Drift: 1 host(s) drifted, 3 without drift, 0 failed; 2 drifted resource(s)`.
fn summary(hosts: &[HostResult<'_>]) -> String {
    let ok: Vec<&HostDrift> = hosts.iter().filter_map(|(_, r)| r.ok()).collect();
    let drifted = ok.iter().filter(|d| d.drifted()).count();
    format!(
        "\nDrift: {drifted} host(s) drifted, {} without drift, {} failed; {} drifted resource(s)\n",
        ok.len() - drifted,
        hosts.len() - ok.len(),
        ok.iter().map(|d| d.drift.len()).sum::<usize>()
    )
}

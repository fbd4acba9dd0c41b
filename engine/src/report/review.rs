//! What reviewers read: a commit-to-commit diff or a plan, with identical changes on many
//! hosts grouped once, as text, JSON or a self-contained HTML page.

use std::fmt::Write;

use super::Style;
use super::plan::{attrs_text, change_text, headline, restart_headline, restart_text};
use crate::plan::HostPlan;
use crate::plan::compare::{EnvDiff, HostDiff};
use crate::plan::group::{Group, Item, group};
use crate::source::short;

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
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.groups.is_empty() || !self.added.is_empty() || !self.removed.is_empty()
    }

    fn title(&self) -> String {
        format!(
            "{} of environment {}: {} → commit {}",
            self.kind,
            self.environment,
            self.from,
            short(&self.to)
        )
    }

    fn summary(&self) -> String {
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
    let _ = writeln!(out, "{}", style.paint("1", &review.title()));
    for (what, list) in [("added", &review.added), ("removed", &review.removed)] {
        if !list.is_empty() {
            let names: Vec<String> = list.iter().map(|(h, r)| format!("{h} ({r})")).collect();
            let _ = writeln!(out, "hosts {what}: {}", names.join(", "));
        }
    }
    for (host, e) in &review.errors {
        let _ = writeln!(out, "{}: error: {e}", style.paint("31", host));
    }
    for g in &review.groups {
        let _ = writeln!(out, "\n{}: {}", style.paint("1", &g.label()), host_list(&g.hosts, 8));
        if g.varies {
            let _ = writeln!(out, "  (the same changed lines on each; shown as on {})", g.hosts[0]);
        }
        match &g.item {
            Item::Change(c) => change_text(&mut out, c, style),
            Item::Restart(r) => restart_text(&mut out, r, style),
            Item::Redefined(r) => {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    style.paint("33", "~"),
                    r.resource,
                    attrs_text(&r.fields)
                );
            }
        }
    }
    let verb = if review.kind == "diff" { "Diff" } else { "Plan" };
    let _ = writeln!(out, "\n{verb}: {}", review.summary());
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id usable in `href="#…"` for any host name.
fn anchor(prefix: &str, name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{prefix}-{safe}")
}

const CSS: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #1f2328; background: #fff; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
p.summary { color: #555; margin-top: 0; }
section { margin: 1.5em 0; }
h2 { font-size: 1.1em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
details.change { border: 1px solid #d0d7de; border-radius: 6px; margin: .6em 0; }
details.change > summary { padding: .45em .7em; background: #f6f8fa; cursor: pointer; font-family: ui-monospace, monospace; }
details.change > summary .label { font-family: system-ui, sans-serif; font-weight: 600; margin-right: .6em; }
details.change .body { padding: .3em .8em .6em; }
details.hosts > summary, details.host > summary { cursor: pointer; }
pre.diff { background: #fbfbfb; border: 1px solid #eee; padding: .4em 0; overflow-x: auto; margin: .4em 0; }
pre.diff span { display: block; padding: 0 .6em; white-space: pre; }
pre.diff .add { background: #dafbe1; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { background: #ddf4ff; color: #0550ae; }
pre.diff .meta { color: #57606a; font-weight: 600; }
.sym-add { color: #1a7f37; } .sym-del { color: #cf222e; } .sym-mod { color: #9a6700; } .sym-run { color: #8250df; }
ul.hostnames { columns: 4 12em; margin: .3em 0; }
table { border-collapse: collapse; } td, th { border: 1px solid #d0d7de; padding: .2em .6em; text-align: left; }
.error { color: #cf222e; }
"#;

fn sym_class(headline: &str) -> &'static str {
    match headline.chars().next() {
        Some('+') => "sym-add",
        Some('-' | 'x') => "sym-del",
        Some('~') => "sym-mod",
        _ => "sym-run",
    }
}

fn diff_html(out: &mut String, diff: &str) {
    out.push_str("<pre class=\"diff\">");
    let mut in_hunks = false;
    for line in diff.lines() {
        in_hunks |= line.starts_with("@@");
        let class = if !in_hunks {
            "meta"
        } else {
            match line.chars().next() {
                Some('+') => "add",
                Some('-') => "del",
                Some('@') => "hunk",
                _ => "ctx",
            }
        };
        let _ = write!(out, "<span class=\"{class}\">{}</span>", esc(line));
    }
    out.push_str("</pre>\n");
}

/// A self-contained page (inline CSS, no scripts, no external resources): changes grouped
/// once with their hosts collapsible, then every host with the changes it gets.
pub fn html(review: &Review) -> String {
    let mut out = String::new();
    let title = review.title();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"stackdeploy {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<header><h1>{}</h1>\n<p class=\"summary\" id=\"summary\">{}</p>\n\
         <p>From <b>{}</b> to <b>commit <code>{}</code></b>.</p></header>",
        esc(&title),
        esc(&review.summary()),
        esc(&review.from),
        esc(&review.to)
    );
    if !review.added.is_empty() || !review.removed.is_empty() || !review.errors.is_empty() {
        out.push_str("<section id=\"inventory\"><h2>Hosts added, removed, failed</h2><table>\n<tr><th>host</th><th>role</th><th></th></tr>\n");
        for (class, sym, hosts) in
            [("added", "sym-add", &review.added), ("removed", "sym-del", &review.removed)]
        {
            for (h, r) in hosts {
                let _ = writeln!(
                    out,
                    "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"{sym}\">{class}</td></tr>",
                    esc(h),
                    esc(r)
                );
            }
        }
        for (h, e) in &review.errors {
            let _ = writeln!(
                out,
                "<tr class=\"failed\"><td>{}</td><td></td><td class=\"error\">{}</td></tr>",
                esc(h),
                esc(e)
            );
        }
        out.push_str("</table></section>\n");
    }
    out.push_str("<section id=\"changes\"><h2>Changes</h2>\n");
    if review.groups.is_empty() {
        out.push_str("<p class=\"none\">No changes.</p>\n");
    }
    for (i, g) in review.groups.iter().enumerate() {
        let head = item_headline(&g.item);
        let kind = match &g.item {
            Item::Change(_) => "change",
            Item::Restart(_) => "restart",
            Item::Redefined(_) => "redefined",
        };
        let _ = write!(
            out,
            "<details class=\"change\" id=\"change-{i}\" data-kind=\"{kind}\" data-hosts=\"{}\" open>\n\
             <summary><span class=\"label\">{}</span><span class=\"{}\">{}</span></summary>\n<div class=\"body\">\n",
            g.hosts.len(),
            esc(&g.label()),
            sym_class(&head),
            esc(&head)
        );
        if let Item::Change(c) = &g.item
            && let (_, _, Some(d)) = headline(c)
            && !d.is_empty()
        {
            if g.varies {
                let _ = writeln!(
                    out,
                    "<p class=\"varies\">The same changed lines on each host; context and hashes \
                     as on {}.</p>",
                    esc(&g.hosts[0])
                );
            }
            diff_html(&mut out, d);
        }
        let _ = write!(
            out,
            "<details class=\"hosts\"><summary>{}</summary>\n<ul class=\"hostnames\">",
            esc(&g.label())
        );
        for h in &g.hosts {
            let _ = write!(out, "<li><a href=\"#{}\">{}</a></li>", anchor("host", h), esc(h));
        }
        out.push_str("</ul></details>\n</div></details>\n");
    }
    out.push_str("</section>\n<section id=\"hosts\"><h2>Hosts</h2>\n");
    for (host, role, mine) in &review.hosts {
        let _ = write!(
            out,
            "<details class=\"host\" id=\"{}\"><summary>{} <small>({})</small>: {} change(s)</summary>\n<ul>",
            anchor("host", host),
            esc(host),
            esc(role),
            mine.len()
        );
        for i in mine {
            let head = item_headline(&review.groups[*i].item);
            let _ = write!(
                out,
                "<li><a href=\"#change-{i}\" class=\"{}\">{}</a></li>",
                sym_class(&head),
                esc(&head)
            );
        }
        out.push_str("</ul></details>\n");
    }
    if review.unchanged > 0 {
        let _ = writeln!(out, "<p class=\"unchanged\">{} host(s) unchanged.</p>", review.unchanged);
    }
    out.push_str("</section>\n</body>\n</html>\n");
    out
}

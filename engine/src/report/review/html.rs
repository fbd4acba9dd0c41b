//! The review as an HTML page for reviewers and CI artifact viewers: an index of the files
//! and resources that change (each with its host groups), every change once with its diff and
//! changed words marked, the commits between the two sides, and every host with the changes
//! it gets.
//!
//! CI servers serve artifacts under a Content-Security-Policy (Jenkins: `sandbox;
//! default-src 'none'; img-src 'self'; style-src 'self'`), so the page has no script and no
//! inline style: it reads as plain HTML (diff lines are lines of a `<pre>`, changed words are
//! `<ins>`/`<del>`), and its look comes from [`STYLESHEET`], which the caller writes next to
//! the page under the name it passes to [`html`].

use std::collections::BTreeMap;
use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use v_htmlescape::escape as esc;

use super::anchors::Anchors;
use super::words::{self, Kind};
use super::{Review, item_headline};
use crate::plan::Change;
use crate::plan::group::{Group, Item};
use crate::report::plan::headline;
use crate::source::short;

/// The report's look, linked from the page by relative name.
pub const STYLESHEET: &str = include_str!("review.css");

/// What a relative URL may hold unencoded besides letters and digits.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a group changes: a file, by path, or another resource, by id (`service:chrony`).
/// Files sort first, then resources, each by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    File(String),
    Resource(String),
}

impl Subject {
    fn of(item: &Item) -> Subject {
        let resource = |kind: &str, name: &str| Subject::Resource(format!("{kind}:{name}"));
        match item {
            Item::Change(c) => match c {
                Change::CreateFile { path, .. }
                | Change::UpdateFile { path, .. }
                | Change::RemoveFile { path, .. }
                | Change::PatchFile { path, .. } => Subject::File(path.clone()),
                Change::CreateDirectory { path, .. } | Change::FixDirectory { path, .. } => {
                    resource("directory", path)
                }
                Change::InstallPackage { name, .. } | Change::RemovePackage { name } => {
                    resource("package", name)
                }
                Change::RunExec { name } => resource("exec", name),
                Change::StartService { name } | Change::StopService { name } => {
                    resource("service", name)
                }
            },
            Item::Restart(r) => Subject::Resource(r.resource.clone()),
            Item::Redefined(r) => match r.resource.strip_prefix("file:") {
                Some(path) => Subject::File(path.to_string()),
                None => Subject::Resource(r.resource.clone()),
            },
        }
    }

    fn name(&self) -> &str {
        match self {
            Subject::File(p) | Subject::Resource(p) => p,
        }
    }
}

/// Every id of the page, allocated in a fixed order so they are the same on every run.
struct Ids {
    hosts: BTreeMap<String, String>,
    subjects: BTreeMap<Subject, String>,
    groups: Vec<String>,
}

impl Ids {
    fn new(review: &Review, subjects: &BTreeMap<Subject, Vec<usize>>) -> Ids {
        let mut anchors = Anchors::default();
        for fixed in ["summary", "commits", "inventory", "index", "changes", "hosts"] {
            anchors.id(fixed, &[]);
        }
        let hosts =
            review.hosts.iter().map(|(h, _, _)| (h.clone(), anchors.id("host", &[h]))).collect();
        let prefix = |s: &Subject| if matches!(s, Subject::File(_)) { "file" } else { "resource" };
        let subject_ids =
            subjects.keys().map(|s| (s.clone(), anchors.id(prefix(s), &[s.name()]))).collect();
        // A change is named by what it changes and the first of its hosts (the same change
        // on other hosts is another group, with another first host).
        let mut groups = vec![String::new(); review.groups.len()];
        for (subject, members) in subjects {
            for &i in members {
                let g = &review.groups[i];
                groups[i] = match item_kind(&g.item) {
                    "change" => anchors.id(prefix(subject), &[subject.name(), &g.hosts[0]]),
                    kind => anchors.id(prefix(subject), &[subject.name(), kind, &g.hosts[0]]),
                };
            }
        }
        Ids { hosts, subjects: subject_ids, groups }
    }
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Change(_) => "change",
        Item::Restart(_) => "restart",
        Item::Redefined(_) => "redefined",
    }
}

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
    for line in words::lines(diff) {
        let class = match line.kind {
            Kind::Meta => "meta",
            Kind::Hunk => "hunk",
            Kind::Context => "ctx",
            Kind::Added => "add",
            Kind::Removed => "del",
        };
        let _ = write!(out, "<span class=\"{class}\">");
        for (changed, text) in &line.pieces {
            let _ = match (changed, line.kind) {
                (true, Kind::Added) => write!(out, "<ins>{}</ins>", esc(text)),
                (true, Kind::Removed) => write!(out, "<del>{}</del>", esc(text)),
                _ => write!(out, "{}", esc(text)),
            };
        }
        // The newline is what makes it a line when no stylesheet applies.
        out.push_str("\n</span>");
    }
    out.push_str("</pre>\n");
}

/// The page. `stylesheet` is the file name of [`STYLESHEET`] next to the page.
pub fn html(review: &Review, stylesheet: &str) -> String {
    let mut subjects: BTreeMap<Subject, Vec<usize>> = BTreeMap::new();
    for (i, g) in review.groups.iter().enumerate() {
        subjects.entry(Subject::of(&g.item)).or_default().push(i);
    }
    let ids = Ids::new(review, &subjects);
    let mut out = String::new();
    let title = review.title();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"stackdeploy {}\">\n<title>{}</title>\n\
         <link rel=\"stylesheet\" href=\"{}\">\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title),
        esc(&utf8_percent_encode(stylesheet, URL_SAFE).to_string())
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
    commits_html(&mut out, review);
    inventory_html(&mut out, review);
    index_html(&mut out, review, &subjects, &ids);
    out.push_str("<section id=\"changes\"><h2>Changes</h2>\n");
    if review.groups.is_empty() {
        out.push_str("<p class=\"none\">No changes.</p>\n");
    }
    for (subject, members) in &subjects {
        let _ = writeln!(
            out,
            "<section class=\"subject\" id=\"{}\"><h3>{}</h3>",
            ids.subjects[subject],
            esc(subject.name())
        );
        for &i in members {
            group_html(&mut out, &review.groups[i], &ids.groups[i], &ids);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</section>\n<section id=\"hosts\"><h2>Hosts</h2>\n");
    for (host, role, mine) in &review.hosts {
        let _ = write!(
            out,
            "<details class=\"host\" id=\"{}\"><summary>{} <small>({})</small>: {} change(s)</summary>\n<ul>",
            ids.hosts[host],
            esc(host),
            esc(role),
            mine.len()
        );
        for &i in mine {
            let head = item_headline(&review.groups[i].item);
            let _ = write!(
                out,
                "<li><a href=\"#{}\" class=\"{}\">{}</a></li>",
                ids.groups[i],
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

fn commits_html(out: &mut String, review: &Review) {
    let Some((commits, total)) = &review.commits else { return };
    let _ = writeln!(out, "<section id=\"commits\"><h2>Commits ({total})</h2>");
    if commits.is_empty() {
        out.push_str(
            "<p class=\"none\">None: the newer side brings in no commit the older one lacks.</p>\n",
        );
    } else {
        out.push_str("<ol class=\"commits\">\n");
        for c in commits {
            let _ = writeln!(
                out,
                "<li id=\"commit-{}\"><code>{}</code> {} <span class=\"author\">— {}</span></li>",
                esc(short(&c.id)),
                esc(short(&c.id)),
                esc(&c.subject),
                esc(&c.author)
            );
        }
        out.push_str("</ol>\n");
        if *total > commits.len() {
            let _ = writeln!(out, "<p>… and {} older.</p>", total - commits.len());
        }
    }
    out.push_str("</section>\n");
}

fn inventory_html(out: &mut String, review: &Review) {
    if review.added.is_empty() && review.removed.is_empty() && review.errors.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"inventory\"><h2>Hosts added, removed, failed</h2><table>\n\
         <tr><th>host</th><th>role</th><th></th></tr>\n",
    );
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

/// Each file and resource that changes, linking to its section, with its host groups linking
/// to theirs.
fn index_html(
    out: &mut String,
    review: &Review,
    subjects: &BTreeMap<Subject, Vec<usize>>,
    ids: &Ids,
) {
    if subjects.is_empty() {
        return;
    }
    let files = subjects.keys().filter(|s| matches!(s, Subject::File(_))).count();
    let _ = write!(
        out,
        "<nav id=\"index\"><h2>{files} file(s), {} other resource(s)</h2>\n<ul>\n",
        subjects.len() - files
    );
    for (subject, members) in subjects {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}</a> <span class=\"groups\">—",
            ids.subjects[subject],
            esc(subject.name())
        );
        for (n, &i) in members.iter().enumerate() {
            let g = &review.groups[i];
            let head = item_headline(&g.item);
            let _ = write!(
                out,
                "{} <a href=\"#{}\" class=\"{}\" title=\"{}\">{}</a>",
                if n == 0 { "" } else { "," },
                ids.groups[i],
                sym_class(&head),
                esc(&head),
                esc(&g.label())
            );
        }
        out.push_str("</span></li>\n");
    }
    out.push_str("</ul></nav>\n");
}

fn group_html(out: &mut String, g: &Group, id: &str, ids: &Ids) {
    let head = item_headline(&g.item);
    let _ = write!(
        out,
        "<details class=\"change\" id=\"{id}\" data-kind=\"{}\" data-hosts=\"{}\" open>\n\
         <summary><span class=\"label\">{}</span>: <span class=\"{}\">{}</span></summary>\n<div class=\"body\">\n",
        item_kind(&g.item),
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
        diff_html(out, d);
    }
    let _ = write!(
        out,
        "<details class=\"hosts\"><summary>{}</summary>\n<ul class=\"hostnames\">",
        esc(&g.label())
    );
    for h in &g.hosts {
        match ids.hosts.get(h) {
            Some(anchor) => {
                let _ = write!(out, "<li><a href=\"#{anchor}\">{}</a></li>", esc(h));
            }
            None => {
                let _ = write!(out, "<li>{}</li>", esc(h));
            }
        }
    }
    out.push_str("</ul></details>\n</div></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{catalog, file};
    use crate::plan::compare::{EnvDiff, diff_host};
    use crate::source::CommitSummary;

    /// A host whose name and file need escaping everywhere they appear, in text and in
    /// attributes.
    fn review() -> Review {
        let host = "web\"><script>x</script>";
        let from = catalog(host, "r'ole", vec![file("/etc/a&b.conf", "v = 1\nkeep\n")]);
        let to = catalog(host, "r'ole", vec![file("/etc/a&b.conf", "v = 2\nkeep\n")]);
        let changed = vec![diff_host(&from, &to, &"a".repeat(40), &"b".repeat(40)).unwrap()];
        let diff = EnvDiff {
            environment: "prod".into(),
            from: "a".repeat(40),
            to: "b".repeat(40),
            compared: 1,
            changed,
            added: Vec::new(),
            removed: Vec::new(),
            secrets: Vec::new(),
        };
        let mut review = Review::of_diff(&diff);
        review.commits = Some((
            vec![CommitSummary {
                id: "b".repeat(40),
                subject: "<b>bold</b> & \"quoted\"".into(),
                author: "O'Brien".into(),
            }],
            3,
        ));
        review
    }

    #[test]
    fn names_are_escaped_in_text_and_attributes_and_ids_stay_safe() {
        let page = html(&review(), "my report.css");
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<b>bold"), "{page}");
        assert!(page.contains("web&quot;&gt;&lt;script&gt;x&lt;&#x2f;script&gt;"), "{page}");
        assert!(page.contains("&lt;b&gt;bold&lt;&#x2f;b&gt; &amp; &quot;quoted&quot;"));
        assert!(page.contains("— O&#x27;Brien"));
        assert!(page.contains("<link rel=\"stylesheet\" href=\"my%20report.css\">"), "{page}");
        // Ids come from the names but hold only safe characters.
        assert!(page.contains("id=\"host-web-script-x-script\""), "{page}");
        assert!(page.contains("id=\"file-etc-a-b-conf\""), "{page}");
        assert!(page.contains("href=\"#file-etc-a-b-conf--web-script-x-script\""), "{page}");
        assert!(page.contains("<p>… and 2 older.</p>"));
    }

    #[test]
    fn the_page_has_no_inline_style_or_script_and_diff_lines_end_in_newlines() {
        let page = html(&review(), "r.css");
        for banned in ["<style", "style=", "<script", "javascript:"] {
            assert!(!page.contains(banned), "{banned} in {page}");
        }
        assert!(page.contains(
            "<span class=\"del\">-v = <del>1</del>\n</span><span class=\"add\">+v = <ins>2</ins>\n</span>"
        ), "{page}");
        assert!(STYLESHEET.contains("pre.diff > span { display: block"));
    }
}

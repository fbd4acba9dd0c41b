//! JUnit XML of a pipeline run, in the form Jenkins' junit and xunit plugins, GitLab, junitparser
//! and junit2html read (checked against Jenkins' `junit-10.xsd` in the tests).
//!
//! One `<testsuite>` per stage, the stages that did not run included (every case skipped); in
//! it one `<testcase>` per host's apply and per check and host, `classname` `stackdeploy.STAGE`
//! so that a test tree reads *stackdeploy › STAGE › CHECK on HOST*. A check's output is its
//! case's `<system-out>`; a stage's summary the suite's. What ran and did not do what it should
//! is a `<failure>`; what could not be run at all (a host that could not be reached) an
//! `<error>`. quick-xml writes the elements and escapes; what it cannot do is make arbitrary
//! text into XML 1.0, which [`clean`] does first (docs/design.md says why ANSI sequences are
//! dropped and other control characters shown as `\xNN`).
//!
//! It renders what the pipeline recorded ([`Outcome`]); it runs nothing.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::error::ErrorKind;
use crate::model::stages::StageKind;
use crate::pipeline::{ApplyResult, NotRun, Outcome, PlannedCheck, StageReport};
use crate::source::short;

/// What went wrong in a case: its `type` attribute (`apply`, `check`, `stage`, or the error's
/// kind: `host`), a one-line message and the whole text.
struct Problem {
    kind: String,
    message: String,
    body: String,
}

/// How a test case ended.
enum Verdict {
    Passed,
    /// It ran and did not do what it should: `<failure>`.
    Failed(Problem),
    /// It could not be run (the host could not be reached, the engine failed): `<error>`.
    Errored(Problem),
    Skipped(String),
}

struct Case {
    name: String,
    /// Seconds, measured; 0 for what did not run.
    time: f64,
    result: Verdict,
    out: String,
}

struct Suite<'a> {
    name: &'a str,
    kind: StageKind,
    environment: Option<&'a str>,
    /// Seconds since the epoch; `None` for a stage that did not run.
    started: Option<u64>,
    time: f64,
    cases: Vec<Case>,
    out: &'a str,
}

/// A suite's or the document's counts, which are their cases' (readers check that they match).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn of(cases: &[Case]) -> Counts {
        let count = |f: fn(&Verdict) -> bool| cases.iter().filter(|c| f(&c.result)).count();
        Counts {
            tests: cases.len(),
            failures: count(|r| matches!(r, Verdict::Failed(_))),
            errors: count(|r| matches!(r, Verdict::Errored(_))),
            skipped: count(|r| matches!(r, Verdict::Skipped(_))),
        }
    }

    fn add(self, o: Counts) -> Counts {
        Counts {
            tests: self.tests + o.tests,
            failures: self.failures + o.failures,
            errors: self.errors + o.errors,
            skipped: self.skipped + o.skipped,
        }
    }
}

/// The JUnit document of `outcome`, written on the machine `hostname`.
pub fn junit(outcome: &Outcome, hostname: &str) -> String {
    let mut suites: Vec<Suite<'_>> = outcome.stages.iter().map(ran).collect();
    suites.extend(outcome.not_run.iter().map(not_run));
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    document(&mut w, &suites, &outcome.commit, hostname).expect("writing to memory");
    let mut xml = String::from_utf8(w.into_inner()).expect("only strings are written");
    xml.push('\n');
    xml
}

fn seconds(t: f64) -> String {
    format!("{t:.3}")
}

fn document(
    w: &mut Writer<Vec<u8>>,
    suites: &[Suite<'_>],
    commit: &str,
    hostname: &str,
) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let total = suites.iter().map(|s| Counts::of(&s.cases)).fold(Counts::default(), Counts::add);
    let time: f64 = suites.iter().map(|s| s.time).sum();
    let name = format!("stackdeploy pipeline {}", short(commit));
    // junit-10.xsd has no `skipped` on <testsuites>.
    w.create_element("testsuites")
        .with_attribute(("name", clean(&name).as_ref()))
        .with_attribute(("tests", total.tests.to_string().as_str()))
        .with_attribute(("failures", total.failures.to_string().as_str()))
        .with_attribute(("errors", total.errors.to_string().as_str()))
        .with_attribute(("time", seconds(time).as_str()))
        .write_inner_content(|w| {
            for suite in suites {
                write_suite(w, suite, commit, hostname)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_suite(
    w: &mut Writer<Vec<u8>>,
    suite: &Suite<'_>,
    commit: &str,
    hostname: &str,
) -> io::Result<()> {
    let counts = Counts::of(&suite.cases);
    let started = suite.started.map(timestamp);
    let mut element = w
        .create_element("testsuite")
        .with_attribute(("name", clean(suite.name).as_ref()))
        .with_attribute(("tests", counts.tests.to_string().as_str()))
        .with_attribute(("failures", counts.failures.to_string().as_str()))
        .with_attribute(("errors", counts.errors.to_string().as_str()))
        .with_attribute(("skipped", counts.skipped.to_string().as_str()))
        .with_attribute(("time", seconds(suite.time).as_str()));
    if let Some(t) = &started {
        element = element.with_attribute(("timestamp", t.as_str()));
    }
    element.with_attribute(("hostname", clean(hostname).as_ref())).write_inner_content(|w| {
        w.create_element("properties").write_inner_content(|w| {
            let mut properties = vec![("commit", commit.to_string()), ("kind", kind(suite.kind))];
            if let Some(env) = suite.environment {
                properties.push(("environment", env.to_string()));
            }
            for (name, value) in properties {
                w.create_element("property")
                    .with_attribute(("name", name))
                    .with_attribute(("value", clean(&value).as_ref()))
                    .write_empty()?;
            }
            Ok(())
        })?;
        let classname = format!("stackdeploy.{}", suite.name.replace('.', "_"));
        for case in &suite.cases {
            write_case(w, &classname, case)?;
        }
        if !suite.out.is_empty() {
            text_element(w, "system-out", suite.out)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, classname: &str, case: &Case) -> io::Result<()> {
    let element = w
        .create_element("testcase")
        .with_attribute(("classname", clean(classname).as_ref()))
        .with_attribute(("name", clean(&case.name).as_ref()))
        .with_attribute(("time", seconds(case.time).as_str()));
    if matches!(case.result, Verdict::Passed) && case.out.is_empty() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        match &case.result {
            Verdict::Passed => {}
            Verdict::Failed(p) => problem(w, "failure", p)?,
            Verdict::Errored(p) => problem(w, "error", p)?,
            Verdict::Skipped(why) => {
                w.create_element("skipped")
                    .with_attribute(("message", clean(why).as_ref()))
                    .write_empty()?;
            }
        }
        if !case.out.is_empty() {
            text_element(w, "system-out", &case.out)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn problem(w: &mut Writer<Vec<u8>>, element: &str, p: &Problem) -> io::Result<()> {
    w.create_element(element)
        .with_attribute(("type", clean(&p.kind).as_ref()))
        .with_attribute(("message", clean(&p.message).as_ref()))
        .write_text_content(BytesText::new(&clean(&p.body)))?;
    Ok(())
}

fn text_element(w: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(&clean(text)))?;
    Ok(())
}

fn kind(k: StageKind) -> String {
    format!("{k:?}").to_lowercase()
}

/// A check's case name: `CHECK on HOST`, or `CHECK (local)`.
fn check_name(name: &str, on: &str) -> String {
    if on == "local" { format!("{name} (local)") } else { format!("{name} on {on}") }
}

/// The first line of `s` with text in it, trimmed and at most 200 characters.
fn first_line(s: &str) -> String {
    let line =
        strip_ansi(s).lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// `what: first line`, or `what` when `detail` is empty.
fn with_first_line(what: String, detail: &str) -> String {
    match first_line(detail) {
        l if l.is_empty() => what,
        l => format!("{what}: {l}"),
    }
}

/// Is a failed apply of this kind the commit's doing, a `<failure>` (a change that ran and
/// failed, a catalog that does not compile with the host's facts), or could the host not be
/// worked on, an `<error>`? No wildcard: a new kind must be sorted here.
fn the_commits_fault(kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::Apply
        | ErrorKind::Syntax
        | ErrorKind::Invalid
        | ErrorKind::Lookup
        | ErrorKind::Render => true,
        ErrorKind::Host | ErrorKind::Git | ErrorKind::Usage | ErrorKind::Lab | ErrorKind::Io => {
            false
        }
    }
}

const PRECOMMIT_CASE: &str = "every host compiles";

fn ran(r: &StageReport) -> Suite<'_> {
    let mut cases = Vec::new();
    if r.kind == StageKind::Precommit {
        cases.push(Case {
            name: PRECOMMIT_CASE.into(),
            time: r.duration_secs,
            result: if r.passed {
                Verdict::Passed
            } else {
                Verdict::Failed(Problem {
                    kind: "precommit".into(),
                    message: with_first_line("precommit failed".into(), &r.detail),
                    body: r.detail.clone(),
                })
            },
            out: String::new(),
        });
    }
    for a in &r.applies {
        let name = format!("apply on {}", a.host);
        let (result, out) = match &a.result {
            ApplyResult::Unchanged => (Verdict::Passed, "unchanged".to_string()),
            ApplyResult::Changed(n) => (Verdict::Passed, format!("{n} change(s)")),
            ApplyResult::Failed(f) if the_commits_fault(f.kind) => (
                Verdict::Failed(Problem {
                    kind: "apply".into(),
                    message: with_first_line(format!("apply failed on {}", a.host), &f.detail),
                    body: f.detail.clone(),
                }),
                String::new(),
            ),
            ApplyResult::Failed(f) => (
                Verdict::Errored(Problem {
                    kind: format!("{:?}", f.kind).to_lowercase(),
                    message: with_first_line(format!("could not apply on {}", a.host), &f.detail),
                    body: f.detail.clone(),
                }),
                String::new(),
            ),
            ApplyResult::NotAttempted => (
                Verdict::Skipped(
                    "not attempted: the rollout stopped before this host's batch".into(),
                ),
                String::new(),
            ),
        };
        cases.push(Case { name, time: a.duration_secs, result, out });
    }
    for c in &r.checks {
        let place = if c.on == "local" { "locally".into() } else { format!("on {}", c.on) };
        let result = if c.passed {
            Verdict::Passed
        } else if let Some(kind) = c.error.filter(|k| !the_commits_fault(*k)) {
            // It never asked the cloud (the host was unreachable): an error, as for an apply.
            Verdict::Errored(Problem {
                kind: format!("{kind:?}").to_lowercase(),
                message: with_first_line(
                    format!("check '{}' could not run {place}", c.name),
                    &c.output,
                ),
                body: c.output.clone(),
            })
        } else {
            let exit = c.exit.map(|e| format!(" (exit {e})")).unwrap_or_default();
            Verdict::Failed(Problem {
                kind: "check".into(),
                message: with_first_line(
                    format!("check '{}' failed {place}{exit}", c.name),
                    &c.output,
                ),
                body: c.output.clone(),
            })
        };
        cases.push(Case {
            name: check_name(&c.name, &c.on),
            time: c.duration_secs,
            result,
            out: c.output.clone(),
        });
    }
    let why = with_first_line("not run: the stage failed before its checks".into(), &r.detail);
    cases.extend(skipped_checks(&r.checks_not_run, &why));
    // A stage that failed with no case to blame (the composition does not compile, the
    // environment is unknown), or that has nothing to show: one case for the stage itself.
    let blamed = cases.iter().any(|c| matches!(c.result, Verdict::Failed(_) | Verdict::Errored(_)));
    if cases.is_empty() || (!r.passed && !blamed) {
        let result = if r.passed {
            Verdict::Passed
        } else {
            Verdict::Failed(Problem {
                kind: "stage".into(),
                message: with_first_line(format!("stage '{}' failed", r.name), &r.detail),
                body: r.detail.clone(),
            })
        };
        cases.push(Case {
            name: r.name.clone(),
            time: r.duration_secs,
            result,
            out: String::new(),
        });
    }
    Suite {
        name: &r.name,
        kind: r.kind,
        environment: r.environment.as_deref(),
        started: Some(r.started),
        time: r.duration_secs,
        cases,
        out: &r.detail,
    }
}

fn skipped_checks<'a>(checks: &'a [PlannedCheck], why: &'a str) -> impl Iterator<Item = Case> + 'a {
    checks.iter().map(move |c| Case {
        name: check_name(&c.name, &c.on),
        time: 0.0,
        result: Verdict::Skipped(why.to_string()),
        out: String::new(),
    })
}

fn not_run(n: &NotRun) -> Suite<'_> {
    let skipped = |name: String| Case {
        name,
        time: 0.0,
        result: Verdict::Skipped(n.reason.clone()),
        out: String::new(),
    };
    let mut cases = Vec::new();
    if n.kind == StageKind::Precommit {
        cases.push(skipped(PRECOMMIT_CASE.into()));
    }
    if n.kind.applies() {
        cases.extend(n.hosts.iter().map(|h| skipped(format!("apply on {h}"))));
    }
    cases.extend(skipped_checks(&n.checks, &n.reason));
    if cases.is_empty() {
        cases.push(skipped(n.name.clone()));
    }
    Suite {
        name: &n.name,
        kind: n.kind,
        environment: n.environment.as_deref(),
        started: None,
        time: 0.0,
        cases,
        out: "",
    }
}

/// `2024-03-01T12:30:05`: UTC, without a zone, as Ant's JUnit schema has it (junit-10.xsd
/// takes any string; Ant's `ISO8601_DATETIME_PATTERN` allows no zone).
fn timestamp(epoch: u64) -> String {
    crate::utc::iso(epoch)
}

/// May XML 1.0 hold `c` at all (its `Char` production)?
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` without its ANSI escape sequences (colours, cursor movement, window titles): CSI
/// (`ESC [` ... final byte), OSC (`ESC ]` ... BEL or `ESC \`) and the two-or-three byte
/// `ESC` sequences. A lone or unfinished `ESC` is kept, for [`clean`] to show.
fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !s.contains('\u{1b}') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\u{1b}') {
        out.push_str(&rest[..i]);
        let seq = &rest[i + 1..];
        match ansi_len(seq) {
            Some(n) => rest = &seq[n..],
            None => {
                out.push('\u{1b}');
                rest = seq;
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// The length of the escape sequence after an `ESC`, if `seq` starts with a whole one.
fn ansi_len(seq: &str) -> Option<usize> {
    let b = seq.as_bytes();
    match b.first()? {
        b'[' => {
            // Parameter bytes 0x30–0x3F, intermediate bytes 0x20–0x2F, one final 0x40–0x7E.
            let end = b[1..].iter().position(|c| !(0x20..=0x3f).contains(c))? + 1;
            (0x40..=0x7e).contains(&b[end]).then_some(end + 1)
        }
        b']' => {
            let bel = seq.find('\u{7}').map(|i| i + 1);
            let st = seq.find("\u{1b}\\").map(|i| i + 2);
            match (bel, st) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        _ => {
            // nF (ESC, intermediates 0x20–0x2F, final 0x30–0x7E) and Fp/Fe/Fs (ESC, 0x30–0x7E).
            let end = b.iter().position(|c| !(0x20..=0x2f).contains(c))?;
            (0x30..=0x7e).contains(&b[end]).then_some(end + 1)
        }
    }
}

/// `s` as text XML 1.0 can hold, before quick-xml escapes it: ANSI escape sequences removed,
/// and every character XML cannot hold even as a reference (C0 controls but TAB, LF and CR;
/// U+FFFE, U+FFFF) written as visible text, `\x00` or `\u{fffe}`.
fn clean(s: &str) -> Cow<'_, str> {
    let s = strip_ansi(s);
    if s.chars().all(xml_char) {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if xml_char(c) => out.push(c),
            c if u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::pipeline::Ended;
    use crate::pipeline::checks::CheckResult;
    use crate::pipeline::runner::{ApplyFailure, HostApply};

    /// An element as an XML parser gives it back: what a reader of the file sees, rather than
    /// how the writer happened to lay it out.
    #[derive(Debug, Default)]
    struct Node {
        name: String,
        attrs: BTreeMap<String, String>,
        text: String,
        children: Vec<Node>,
    }

    impl Node {
        fn attr(&self, name: &str) -> &str {
            self.attrs
                .get(name)
                .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name))
        }

        fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
            self.children.iter().filter(move |c| c.name == name)
        }

        fn child<'a>(&'a self, name: &'a str) -> Option<&'a Node> {
            self.all(name).next()
        }

        fn named<'a>(&'a self, element: &'a str, name: &str) -> &'a Node {
            self.all(element)
                .find(|c| c.attrs.get("name").is_some_and(|n| n == name))
                .unwrap_or_else(|| panic!("no <{element} name=\"{name}\"> in {self:#?}"))
        }

        fn count(&self, name: &str) -> String {
            self.attr(name).to_string()
        }
    }

    /// The `<testsuites>` element of `xml`, parsed by quick-xml's reader.
    fn parse(xml: &str) -> Node {
        let mut reader = Reader::from_str(xml);
        let mut stack = vec![Node::default()];
        let open = |e: &quick_xml::events::BytesStart<'_>| Node {
            name: e.name().as_ref().to_string(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let key = a.key.as_ref().to_string();
                    (key, a.normalized_value(XmlVersion::Implicit1_0).unwrap().into_owned())
                })
                .collect(),
            ..Node::default()
        };
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => stack.push(open(&e)),
                Event::Empty(e) => stack.last_mut().unwrap().children.push(open(&e)),
                Event::End(_) => {
                    let done = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(done);
                }
                Event::Text(t) => {
                    stack.last_mut().unwrap().text.push_str(&t.xml_content(XmlVersion::Implicit1_0))
                }
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().unwrap() {
                        Some(c) => c.to_string(),
                        None => resolve_predefined_entity(&r).unwrap().into(),
                    };
                    stack.last_mut().unwrap().text.push_str(&c);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut root = stack.pop().unwrap();
        assert!(stack.is_empty(), "unclosed elements");
        root.children.retain(|c| c.name == "testsuites");
        root.children.pop().expect("a <testsuites> element")
    }

    #[test]
    fn control_characters_and_ansi_sequences_never_reach_the_xml() {
        let colour = "\u{1b}[31mred\u{1b}[0m \u{1b}[1;32;40mbold\u{1b}[K";
        assert_eq!(clean(colour), "red bold");
        assert_eq!(clean("\u{1b}]0;title\u{7}after \u{1b}(Bx"), "after x");
        assert_eq!(
            clean("nul\0 bell\u{7} bs\u{8} esc\u{1b}"),
            "nul\\x00 bell\\x07 bs\\x08 esc\\x1b"
        );
        assert_eq!(clean("unfinished \u{1b}[31"), "unfinished \\x1b[31");
        assert_eq!(clean("\u{fffe}\u{ffff}\u{fffd}"), "\\u{fffe}\\u{ffff}\u{fffd}");
        // Everything else XML allows passes: DEL, C1, astral planes.
        assert_eq!(clean("\u{7f}\u{85}é😀"), "\u{7f}\u{85}é😀");
        for c in (0u32..0x20).filter_map(char::from_u32) {
            assert!(clean(&c.to_string()).chars().all(xml_char), "{c:?}");
        }

        // In a document: markup characters escaped, CR and (in attributes) TAB and LF kept as
        // references, so that a parser gives back exactly the cleaned text.
        let output = "\u{1b}[31mred\u{1b}[0m\0 a<b>&c \"q\" 'a'\ttab\nline\r\n";
        let mut integration = stage("integration", StageKind::Integration, false, "failed");
        integration.checks = vec![check("odd\tname \"q\"", "db01", 1, output)];
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::Failed,
            stages: vec![integration],
            not_run: vec![],
        };
        let xml = junit(&outcome, "agent\n1");
        assert!(xml.chars().all(xml_char), "{xml:?}");
        assert!(!xml.contains('\r'), "{xml:?}");
        let doc = parse(&xml);
        let suite = doc.named("testsuite", "integration");
        assert_eq!(suite.attr("hostname"), "agent\n1");
        let case = suite.named("testcase", "odd\tname \"q\" on db01");
        let cleaned = "red\\x00 a<b>&c \"q\" 'a'\ttab\nline\r\n";
        assert_eq!(case.child("system-out").unwrap().text, cleaned);
        let failure = case.child("failure").unwrap();
        assert_eq!(failure.text, cleaned);
        assert_eq!(
            failure.attr("message"),
            "check 'odd\tname \"q\"' failed on db01 (exit 1): red\\x00 a<b>&c \"q\" 'a'\ttab"
        );
    }

    #[test]
    fn timestamps_are_iso_8601_utc_without_a_zone() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(timestamp(1_709_296_205), "2024-03-01T12:30:05");
        assert_eq!(timestamp(4_102_444_799), "2099-12-31T23:59:59");
    }

    fn stage(name: &str, kind: StageKind, passed: bool, detail: &str) -> StageReport {
        StageReport {
            name: name.into(),
            kind,
            environment: Some("staging".into()),
            passed,
            started: 1_709_296_205,
            duration_secs: 2.5,
            hosts: vec!["db01".into(), "ctl01".into()],
            detail: detail.into(),
            applies: Vec::new(),
            checks: Vec::new(),
            checks_not_run: Vec::new(),
            hooks: Vec::new(),
        }
    }

    fn check(name: &str, on: &str, exit: i32, output: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            on: on.into(),
            passed: exit == 0,
            exit: Some(exit),
            duration_secs: 0.25,
            output: output.into(),
            error: None,
        }
    }

    fn planned(name: &str, on: &str) -> PlannedCheck {
        PlannedCheck { name: name.into(), on: on.into() }
    }

    fn apply(host: &str, result: ApplyResult) -> HostApply {
        HostApply { host: host.into(), result, duration_secs: 1.5 }
    }

    fn failed(kind: ErrorKind, detail: &str) -> ApplyResult {
        ApplyResult::Failed(ApplyFailure { kind, detail: detail.into() })
    }

    /// A run whose integration stage fails one check; canary then does not run.
    fn failed_run() -> Outcome {
        let mut deploy = stage("deploy-staging", StageKind::Deploy, true, "2 host(s)");
        deploy.applies =
            vec![apply("db01", ApplyResult::Changed(3)), apply("ctl01", ApplyResult::Unchanged)];
        let mut integration = stage("integration", StageKind::Integration, false, "failed");
        integration.checks = vec![
            check("colour", "db01", 0, "\u{1b}[31mred\u{1b}[0m\u{1}"),
            check("keystone-token", "ctl01", 1, "\n  401 Unauthorized\nmore"),
            check("frontends", "local", 0, "ok"),
        ];
        Outcome {
            commit: "0123456789abcdef".into(),
            ended: Ended::Failed,
            stages: vec![
                stage("precommit", StageKind::Precommit, true, "2 host(s) compiled"),
                deploy,
                integration,
            ],
            not_run: vec![NotRun {
                name: "canary".into(),
                kind: StageKind::Canary,
                environment: Some("production".into()),
                reason: "not run: stage 'integration' failed".into(),
                hosts: vec!["p-db01".into()],
                checks: vec![planned("token", "p-db01")],
            }],
        }
    }

    /// (tests, failures, errors, skipped) as the element claims them.
    fn claimed(n: &Node) -> [String; 4] {
        let skipped = n.attrs.get("skipped").cloned().unwrap_or_default();
        [n.count("tests"), n.count("failures"), n.count("errors"), skipped]
    }

    /// Every suite's counts are its cases', and the document's the sum of its suites'.
    fn assert_counts_add_up(doc: &Node) {
        let mut sum = [0usize; 3];
        for suite in doc.all("testsuite") {
            let cases: Vec<&Node> = suite.all("testcase").collect();
            let with = |e: &str| cases.iter().filter(|c| c.child(e).is_some()).count();
            let counted = [cases.len(), with("failure"), with("error"), with("skipped")];
            let counted = counted.map(|n| n.to_string());
            assert_eq!(claimed(suite), counted, "{}", suite.attr("name"));
            for (s, n) in sum.iter_mut().zip(&counted) {
                *s += n.parse::<usize>().unwrap();
            }
        }
        let totals = [doc.count("tests"), doc.count("failures"), doc.count("errors")];
        assert_eq!(totals, sum.map(|n| n.to_string()), "<testsuites>");
    }

    #[test]
    fn one_case_per_apply_and_check_and_host_with_what_failed() {
        let xml = junit(&failed_run(), "agent-1");
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "),
            "{xml}"
        );
        let doc = parse(&xml);
        assert_eq!(doc.attr("name"), "stackdeploy pipeline 0123456789ab");
        assert_eq!(doc.attr("time"), "7.500");
        assert_eq!(
            [doc.count("tests"), doc.count("failures"), doc.count("errors")],
            ["8", "1", "0"]
        );
        assert_counts_add_up(&doc);

        let integration = doc.named("testsuite", "integration");
        assert_eq!(claimed(integration), ["3", "1", "0", "0"]);
        assert_eq!(integration.attr("time"), "2.500");
        assert_eq!(integration.attr("timestamp"), "2024-03-01T12:30:05");
        assert_eq!(integration.attr("hostname"), "agent-1");
        let colour = integration.named("testcase", "colour on db01");
        assert_eq!(colour.attr("classname"), "stackdeploy.integration");
        assert_eq!(colour.attr("time"), "0.250");
        assert_eq!(colour.child("system-out").unwrap().text, "red\\x01");
        let token = integration.named("testcase", "keystone-token on ctl01");
        let failure = token.child("failure").unwrap();
        assert_eq!(failure.attr("type"), "check");
        assert_eq!(
            failure.attr("message"),
            "check 'keystone-token' failed on ctl01 (exit 1): 401 Unauthorized"
        );
        assert_eq!(failure.text, "\n  401 Unauthorized\nmore");
        integration.named("testcase", "frontends (local)");

        let deploy = doc.named("testsuite", "deploy-staging");
        let db01 = deploy.named("testcase", "apply on db01");
        assert_eq!(db01.child("system-out").unwrap().text, "3 change(s)");
        assert_eq!(db01.attr("time"), "1.500");

        let canary = doc.named("testsuite", "canary");
        assert_eq!(claimed(canary), ["2", "0", "0", "2"]);
        assert_eq!(canary.attr("time"), "0.000");
        assert!(!canary.attrs.contains_key("timestamp"), "{canary:?}");
        let skipped = canary.named("testcase", "apply on p-db01");
        assert_eq!(skipped.attr("time"), "0.000");
        assert_eq!(
            skipped.child("skipped").unwrap().attr("message"),
            "not run: stage 'integration' failed"
        );
        assert!(canary.named("testcase", "token on p-db01").child("skipped").is_some());
        let properties = canary.child("properties").unwrap();
        assert_eq!(properties.named("property", "environment").attr("value"), "production");
        assert!(!xml.contains("apply failed:"), "{xml}");
    }

    /// A host that could not be reached is JUnit's "could not run the test", `<error>`; a
    /// change that ran and failed is a `<failure>`; both say what happened where.
    #[test]
    fn an_unreachable_host_is_an_error_and_a_failed_change_a_failure() {
        let mut deploy = stage("deploy-staging", StageKind::Deploy, false, "apply failed");
        let refused = "cannot connect to 127.0.0.32:2222 (no SSH server listens there)";
        deploy.applies = vec![
            apply("db01", ApplyResult::Unchanged),
            apply("ctl01", failed(ErrorKind::Apply, "file:/etc/x: validate failed\nexit 2")),
            apply("cmp02", failed(ErrorKind::Host, refused)),
            apply("cmp03", failed(ErrorKind::Lookup, "missing key nova::password")),
            apply("cmp04", ApplyResult::NotAttempted),
        ];
        deploy.checks_not_run = vec![planned("token", "ctl01")];
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::Failed,
            stages: vec![deploy],
            not_run: vec![NotRun {
                name: "release".into(),
                kind: StageKind::Release,
                environment: Some("production".into()),
                reason: "not run: stage 'deploy-staging' failed".into(),
                hosts: vec!["p-db01".into()],
                checks: vec![],
            }],
        };
        let xml = junit(&outcome, "h");
        let doc = parse(&xml);
        assert_counts_add_up(&doc);
        let suite = doc.named("testsuite", "deploy-staging");
        assert_eq!(claimed(suite), ["6", "2", "1", "2"]);
        assert_eq!(
            [doc.count("tests"), doc.count("failures"), doc.count("errors")],
            ["7", "2", "1"]
        );

        let error = suite.named("testcase", "apply on cmp02");
        assert!(error.child("failure").is_none(), "{error:?}");
        let error = error.child("error").unwrap();
        assert_eq!(error.attr("type"), "host");
        assert_eq!(error.attr("message"), format!("could not apply on cmp02: {refused}"));
        assert_eq!(error.text, refused);
        let failure = suite.named("testcase", "apply on ctl01").child("failure").unwrap();
        assert_eq!(failure.attr("type"), "apply");
        assert_eq!(failure.attr("message"), "apply failed on ctl01: file:/etc/x: validate failed");
        // A catalog that does not compile with the host's facts is the commit's fault.
        assert!(suite.named("testcase", "apply on cmp03").child("failure").is_some());
        // Every case has a time: the measured one, 0 for what did not run.
        let times: Vec<&str> = suite.all("testcase").map(|c| c.attr("time")).collect();
        assert_eq!(times, ["1.500", "1.500", "1.500", "1.500", "1.500", "0.000"]);
    }

    /// A check whose host could not be reached never asked the cloud: `<error>`, as for an
    /// apply; a check that ran and exited non-zero, or whose template is broken (the commit's
    /// fault), is a `<failure>`.
    #[test]
    fn a_check_that_could_not_reach_its_host_is_an_error() {
        let mut integration = stage("integration", StageKind::Integration, false, "check failed");
        let refused = "cmp02: cannot connect to 127.0.0.32:2222 (no SSH server listens there)";
        let unreachable = CheckResult {
            exit: None,
            error: Some(ErrorKind::Host),
            ..check("nova-compute up", "cmp02", 1, refused)
        };
        let broken = CheckResult {
            exit: None,
            error: Some(ErrorKind::Render),
            ..check("token", "ctl01", 1, "checks/token.sh.j2:3: undefined value")
        };
        integration.checks = vec![unreachable, broken, check("ok", "db01", 0, "")];
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::Failed,
            stages: vec![integration],
            not_run: vec![],
        };
        let doc = parse(&junit(&outcome, "h"));
        assert_counts_add_up(&doc);
        let suite = doc.named("testsuite", "integration");
        assert_eq!(claimed(suite), ["3", "1", "1", "0"]);
        let case = suite.named("testcase", "nova-compute up on cmp02");
        assert!(case.child("failure").is_none(), "{case:?}");
        let error = case.child("error").unwrap();
        assert_eq!(error.attr("type"), "host");
        assert_eq!(
            error.attr("message"),
            format!("check 'nova-compute up' could not run on cmp02: {refused}")
        );
        let failure = suite.named("testcase", "token on ctl01").child("failure").unwrap();
        assert_eq!(failure.attr("type"), "check");
    }

    #[test]
    fn an_apply_failure_is_its_hosts_case_and_the_checks_are_skipped() {
        let mut canary = stage(
            "canary",
            StageKind::Canary,
            false,
            "apply failed on ctl01, cmp01:\nctl01: file /etc/x: validate failed\ncmp01: skipped",
        );
        canary.applies = vec![
            apply("db01", ApplyResult::Unchanged),
            apply("ctl01", failed(ErrorKind::Apply, "file /etc/x: validate failed\nexit 2")),
            apply("cmp01", ApplyResult::NotAttempted),
        ];
        canary.checks_not_run = vec![planned("token", "ctl01")];
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::Failed,
            stages: vec![canary],
            not_run: vec![],
        };
        let doc = parse(&junit(&outcome, "h"));
        let suite = doc.named("testsuite", "canary");
        assert_eq!(claimed(suite), ["4", "1", "0", "2"]);
        let failure = suite.named("testcase", "apply on ctl01").child("failure").unwrap();
        assert_eq!(failure.attr("message"), "apply failed on ctl01: file /etc/x: validate failed");
        assert_eq!(failure.text, "file /etc/x: validate failed\nexit 2");
        let cmp01 = suite.named("testcase", "apply on cmp01").child("skipped").unwrap();
        assert!(cmp01.attr("message").starts_with("not attempted"), "{cmp01:?}");
        assert_eq!(
            suite.named("testcase", "token on ctl01").child("skipped").unwrap().attr("message"),
            "not run: the stage failed before its checks: apply failed on ctl01, cmp01:"
        );
    }

    /// A stage that failed before any host (nothing compiles) is one failed case of its own;
    /// a stage awaiting approval without checks or hosts is one skipped case.
    #[test]
    fn a_stage_with_nothing_to_blame_is_its_own_case() {
        let broken = stage(
            "deploy-staging",
            StageKind::Deploy,
            false,
            "does not compile:\nroles/x.toml:1: bad",
        );
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::AwaitingApproval,
            stages: vec![broken],
            not_run: vec![NotRun {
                name: "release".into(),
                kind: StageKind::Integration,
                environment: None,
                reason: "not run: waiting for approval (stackdeploy approve c --stage release)"
                    .into(),
                hosts: vec![],
                checks: vec![],
            }],
        };
        let doc = parse(&junit(&outcome, "h"));
        let deploy = doc.named("testsuite", "deploy-staging");
        let case = deploy.named("testcase", "deploy-staging");
        assert_eq!(case.attr("time"), "2.500");
        let failure = case.child("failure").unwrap();
        assert_eq!(failure.attr("type"), "stage");
        assert_eq!(failure.attr("message"), "stage 'deploy-staging' failed: does not compile:");
        assert_eq!(
            deploy.child("system-out").unwrap().text,
            "does not compile:\nroles/x.toml:1: bad"
        );
        let release = doc.named("testsuite", "release").named("testcase", "release");
        assert_eq!(release.attr("classname"), "stackdeploy.release");
        let why = release.child("skipped").unwrap().attr("message");
        assert!(why.starts_with("not run: waiting for approval"), "{why}");
    }
}

//! JUnit XML of a pipeline run, in the form Jenkins' junit and xunit plugins, GitLab, junitparser
//! and junit2html read (checked against Jenkins' `junit-10.xsd` in the tests).
//!
//! One `<testsuite>` per stage, the stages that did not run included (every case skipped); in
//! it one `<testcase>` per host's apply and per check and host, `classname` `stackdeploy.STAGE`
//! so that a test tree reads *stackdeploy › STAGE › CHECK on HOST*. A check's output is its
//! case's `<system-out>`; a stage's summary the suite's. Whatever text the run carries (check
//! output can hold anything) is made into XML 1.0 by [`text`] and [`attr`]; see docs/design.md
//! for why ANSI sequences are dropped and other control characters shown as `\xNN`.
//!
//! It renders what the pipeline recorded ([`Outcome`]); it runs nothing.

use std::fmt::Write;

use crate::model::stages::StageKind;
use crate::pipeline::{ApplyResult, NotRun, Outcome, PlannedCheck, StageReport};
use crate::source::short;

/// How a test case ended.
enum Verdict {
    Passed,
    /// `kind` is the failure's `type` attribute: `apply`, `check`, `stage`.
    Failed {
        kind: &'static str,
        message: String,
        body: String,
    },
    Skipped(String),
}

struct Case {
    name: String,
    time: Option<f64>,
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

impl Suite<'_> {
    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.result)).count()
    }

    fn failures(&self) -> usize {
        self.count(|r| matches!(r, Verdict::Failed { .. }))
    }

    fn skipped(&self) -> usize {
        self.count(|r| matches!(r, Verdict::Skipped(_)))
    }
}

/// The JUnit document of `outcome`, written on the machine `hostname`.
pub fn junit(outcome: &Outcome, hostname: &str) -> String {
    let mut suites: Vec<Suite<'_>> = outcome.stages.iter().map(ran).collect();
    suites.extend(outcome.not_run.iter().map(not_run));
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(Suite::failures).sum();
    let time: f64 = suites.iter().map(|s| s.time).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">",
        attr(&format!("stackdeploy pipeline {}", short(&outcome.commit)))
    );
    for suite in &suites {
        write_suite(&mut s, suite, &outcome.commit, hostname);
    }
    s.push_str("</testsuites>\n");
    s
}

fn write_suite(s: &mut String, suite: &Suite<'_>, commit: &str, hostname: &str) {
    let _ = write!(
        s,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        attr(suite.name),
        suite.cases.len(),
        suite.failures(),
        suite.skipped(),
        suite.time
    );
    if let Some(t) = suite.started {
        let _ = write!(s, " timestamp=\"{}\"", timestamp(t));
    }
    let _ = writeln!(s, " hostname=\"{}\">", attr(hostname));
    s.push_str("    <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(s, "      <property name=\"{name}\" value=\"{}\"/>", attr(value));
    };
    property("commit", commit);
    property("kind", &kind(suite.kind));
    if let Some(env) = suite.environment {
        property("environment", env);
    }
    s.push_str("    </properties>\n");
    let classname = attr(&format!("stackdeploy.{}", suite.name.replace('.', "_")));
    for case in &suite.cases {
        let _ = write!(s, "    <testcase classname=\"{classname}\" name=\"{}\"", attr(&case.name));
        if let Some(t) = case.time {
            let _ = write!(s, " time=\"{t:.3}\"");
        }
        if matches!(case.result, Verdict::Passed) && case.out.is_empty() {
            s.push_str("/>\n");
            continue;
        }
        s.push_str(">\n");
        match &case.result {
            Verdict::Passed => {}
            Verdict::Failed { kind, message, body } => {
                let _ = writeln!(
                    s,
                    "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                    attr(message),
                    text(body)
                );
            }
            Verdict::Skipped(why) => {
                let _ = writeln!(s, "      <skipped message=\"{}\"/>", attr(why));
            }
        }
        if !case.out.is_empty() {
            let _ = writeln!(s, "      <system-out>{}</system-out>", text(&case.out));
        }
        s.push_str("    </testcase>\n");
    }
    if !suite.out.is_empty() {
        let _ = writeln!(s, "    <system-out>{}</system-out>", text(suite.out));
    }
    s.push_str("  </testsuite>\n");
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

const PRECOMMIT_CASE: &str = "every host compiles";

fn ran(r: &StageReport) -> Suite<'_> {
    let mut cases = Vec::new();
    if r.kind == StageKind::Precommit {
        cases.push(Case {
            name: PRECOMMIT_CASE.into(),
            time: Some(r.duration_secs),
            result: if r.passed {
                Verdict::Passed
            } else {
                Verdict::Failed {
                    kind: "precommit",
                    message: with_first_line("precommit failed".into(), &r.detail),
                    body: r.detail.clone(),
                }
            },
            out: String::new(),
        });
    }
    for a in &r.applies {
        let name = format!("apply on {}", a.host);
        let (result, out) = match &a.result {
            ApplyResult::Unchanged => (Verdict::Passed, "unchanged".to_string()),
            ApplyResult::Changed(n) => (Verdict::Passed, format!("{n} change(s)")),
            ApplyResult::Failed(why) => (
                Verdict::Failed {
                    kind: "apply",
                    message: with_first_line(format!("apply failed on {}", a.host), why),
                    body: why.clone(),
                },
                String::new(),
            ),
            ApplyResult::NotAttempted => (
                Verdict::Skipped(
                    "not attempted: the rollout stopped before this host's batch".into(),
                ),
                String::new(),
            ),
        };
        cases.push(Case { name, time: None, result, out });
    }
    for c in &r.checks {
        let result = if c.passed {
            Verdict::Passed
        } else {
            let place = if c.on == "local" { "locally".into() } else { format!("on {}", c.on) };
            let exit = c.exit.map(|e| format!(" (exit {e})")).unwrap_or_default();
            Verdict::Failed {
                kind: "check",
                message: with_first_line(
                    format!("check '{}' failed {place}{exit}", c.name),
                    &c.output,
                ),
                body: c.output.clone(),
            }
        };
        cases.push(Case {
            name: check_name(&c.name, &c.on),
            time: Some(c.duration_secs),
            result,
            out: c.output.clone(),
        });
    }
    let why = with_first_line("not run: the stage failed before its checks".into(), &r.detail);
    cases.extend(skipped_checks(&r.checks_not_run, &why));
    // A stage that failed with no case to blame (the composition does not compile, the
    // environment is unknown), or that has nothing to show: one case for the stage itself.
    let blamed = cases.iter().any(|c| matches!(c.result, Verdict::Failed { .. }));
    if cases.is_empty() || (!r.passed && !blamed) {
        let result = if r.passed {
            Verdict::Passed
        } else {
            Verdict::Failed {
                kind: "stage",
                message: with_first_line(format!("stage '{}' failed", r.name), &r.detail),
                body: r.detail.clone(),
            }
        };
        cases.push(Case {
            name: r.name.clone(),
            time: Some(r.duration_secs),
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
        time: None,
        result: Verdict::Skipped(why.to_string()),
        out: String::new(),
    })
}

fn not_run(n: &NotRun) -> Suite<'_> {
    let skipped = |name: String| Case {
        name,
        time: None,
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
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// May XML 1.0 hold `c` at all (its `Char` production)?
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` without its ANSI escape sequences (colours, cursor movement, window titles): CSI
/// (`ESC [` ... final byte), OSC (`ESC ]` ... BEL or `ESC \`) and the two-or-three byte
/// `ESC` sequences. A lone or unfinished `ESC` is kept, for [`escape`] to show.
fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
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

/// `s` as XML character data: `&`, `<`, `>` escaped, CR kept as `&#13;` (parsers would turn
/// it into LF), ANSI escape sequences removed and every character XML cannot hold (other C0
/// controls, U+FFFE, U+FFFF) written as visible text, `\x00` or `\u{fffe}`.
pub(crate) fn text(s: &str) -> String {
    escape(s, false)
}

/// `s` as an attribute value: as [`text`], plus `"` escaped and LF and TAB as character
/// references, which attribute normalisation would otherwise turn into spaces.
pub(crate) fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let s = strip_ansi(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c if xml_char(c) => out.push(c),
            c if u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Ended;
    use crate::pipeline::checks::CheckResult;
    use crate::pipeline::runner::HostApply;

    #[test]
    fn control_characters_and_ansi_sequences_never_reach_the_xml() {
        let colour = "\u{1b}[31mred\u{1b}[0m \u{1b}[1;32;40mbold\u{1b}[K";
        assert_eq!(text(colour), "red bold");
        assert_eq!(text("\u{1b}]0;title\u{7}after \u{1b}(Bx"), "after x");
        assert_eq!(
            text("nul\0 bell\u{7} bs\u{8} esc\u{1b}"),
            "nul\\x00 bell\\x07 bs\\x08 esc\\x1b"
        );
        assert_eq!(text("unfinished \u{1b}[31"), "unfinished \\x1b[31");
        assert_eq!(text("\u{fffe}\u{ffff}\u{fffd}"), "\\u{fffe}\\u{ffff}\u{fffd}");
        assert_eq!(text("a<b>&c \"q\"\ttab\nline\r\n"), "a&lt;b&gt;&amp;c \"q\"\ttab\nline&#13;\n");
        assert_eq!(attr("a\"b\tc\nd\re"), "a&quot;b&#9;c&#10;d&#13;e");
        // Everything else XML allows passes: DEL, C1, astral planes.
        assert_eq!(text("\u{7f}\u{85}é😀"), "\u{7f}\u{85}é😀");
        for c in (0u32..0x20).filter_map(char::from_u32) {
            assert!(escape(&c.to_string(), true).chars().all(xml_char), "{c:?}");
        }
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
        }
    }

    fn planned(name: &str, on: &str) -> PlannedCheck {
        PlannedCheck { name: name.into(), on: on.into() }
    }

    /// A run whose integration stage fails one check; canary then does not run.
    fn failed_run() -> Outcome {
        let mut deploy = stage("deploy-staging", StageKind::Deploy, true, "2 host(s)");
        deploy.applies = vec![
            HostApply { host: "db01".into(), result: ApplyResult::Changed(3) },
            HostApply { host: "ctl01".into(), result: ApplyResult::Unchanged },
        ];
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

    #[test]
    fn one_case_per_apply_and_check_and_host_with_what_failed() {
        let xml = junit(&failed_run(), "agent-1");
        assert!(xml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stackdeploy pipeline 0123456789ab\" tests=\"8\" failures=\"1\" errors=\"0\" time=\"7.500\">\n"
        ), "{xml}");
        assert!(xml.contains("<testsuite name=\"integration\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"2.500\" timestamp=\"2024-03-01T12:30:05\" hostname=\"agent-1\">"), "{xml}");
        assert!(xml.contains("<testcase classname=\"stackdeploy.deploy-staging\" name=\"apply on db01\">\n      <system-out>3 change(s)</system-out>"), "{xml}");
        assert!(xml.contains("<testcase classname=\"stackdeploy.integration\" name=\"colour on db01\" time=\"0.250\">\n      <system-out>red\\x01</system-out>"), "{xml}");
        assert!(xml.contains(
            "name=\"keystone-token on ctl01\" time=\"0.250\">\n      <failure type=\"check\" message=\"check 'keystone-token' failed on ctl01 (exit 1): 401 Unauthorized\">\n  401 Unauthorized\nmore</failure>"
        ), "{xml}");
        assert!(xml.contains("name=\"frontends (local)\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"canary\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"2\" time=\"0.000\" hostname=\"agent-1\">"), "{xml}");
        assert!(xml.contains("name=\"apply on p-db01\">\n      <skipped message=\"not run: stage 'integration' failed\"/>"), "{xml}");
        assert!(xml.contains("name=\"token on p-db01\">\n      <skipped"), "{xml}");
        assert!(xml.contains("<property name=\"environment\" value=\"production\"/>"), "{xml}");
        assert!(!xml.contains("apply failed:"), "{xml}");
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
            HostApply { host: "db01".into(), result: ApplyResult::Unchanged },
            HostApply {
                host: "ctl01".into(),
                result: ApplyResult::Failed("file /etc/x: validate failed\nexit 2".into()),
            },
            HostApply { host: "cmp01".into(), result: ApplyResult::NotAttempted },
        ];
        canary.checks_not_run = vec![planned("token", "ctl01")];
        let outcome = Outcome {
            commit: "c".into(),
            ended: Ended::Failed,
            stages: vec![canary],
            not_run: vec![],
        };
        let xml = junit(&outcome, "h");
        assert!(xml.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""), "{xml}");
        assert!(xml.contains(
            "name=\"apply on ctl01\">\n      <failure type=\"apply\" message=\"apply failed on ctl01: file /etc/x: validate failed\">file /etc/x: validate failed\nexit 2</failure>"
        ), "{xml}");
        assert!(
            xml.contains("name=\"apply on cmp01\">\n      <skipped message=\"not attempted"),
            "{xml}"
        );
        assert!(xml.contains(
            "name=\"token on ctl01\">\n      <skipped message=\"not run: the stage failed before its checks: apply failed on ctl01, cmp01:\"/>"
        ), "{xml}");
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
        let xml = junit(&outcome, "h");
        assert!(xml.contains(
            "name=\"deploy-staging\" time=\"2.500\">\n      <failure type=\"stage\" message=\"stage 'deploy-staging' failed: does not compile:\">"
        ), "{xml}");
        assert!(xml.contains(
            "<testcase classname=\"stackdeploy.release\" name=\"release\">\n      <skipped message=\"not run: waiting for approval"
        ), "{xml}");
        assert!(xml.contains("    <system-out>does not compile:\nroles/x.toml:1: bad</system-out>\n  </testsuite>"), "{xml}");
    }
}

//! Pipeline checks: commands rendered from templates with inventory data, run locally or on
//! hosts, each with a timeout, tried again for `retry_for` seconds while they fail. Exit 0
//! passes. Output shown to people is redacted.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::value::Value;
use minijinja::{Environment as Jinja, UndefinedBehavior};
use serde::Serialize;

use crate::catalog::Compiler;
use crate::error::{self, Error, ErrorKind};
use crate::hiera::HostHiera;
use crate::model::stages::{Check, CheckOn, RETRY_PAUSE, matches};
use crate::model::{Environment, Host};
use crate::remote::Script;
use crate::rollout::Connect;
use crate::secrets::Secrets;

/// How one check went on one host (or locally).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckResult {
    pub name: String,
    /// `local` or the host it ran on.
    pub on: String,
    pub passed: bool,
    /// The command's exit status; `None` when it did not finish (timed out, could not run).
    pub exit: Option<i32>,
    pub duration_secs: f64,
    /// The end of its output (redacted), for failures.
    pub output: String,
    /// Why it could not run at all (its host unreachable, its template broken): the error's
    /// kind, which tells a check that found the cloud wrong from one that never asked it.
    #[serde(skip)]
    pub error: Option<ErrorKind>,
}

/// A check that a stage would run, and where (`local` or a host name): what JUnit reports as
/// skipped when the stage stopped before its checks or did not run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedCheck {
    pub name: String,
    pub on: String,
}

/// Every check of `checks` paired with the host it runs on, in run order: local checks once,
/// on the first selected host, checks `on` hosts on each selected host that matches.
fn expand<'c, 'h>(checks: &'c [Check], selected: &[&'h Host]) -> Vec<(&'c Check, &'h Host)> {
    let mut out = Vec::new();
    for check in checks {
        match &check.on {
            CheckOn::Local => out.extend(selected.first().map(|h| (check, *h))),
            CheckOn::Hosts(pattern) => {
                out.extend(selected.iter().filter(|h| matches(pattern, h)).map(|h| (check, *h)))
            }
        }
    }
    out
}

/// What [`run_checks`] would run for `checks` on `selected`.
pub fn planned(checks: &[Check], selected: &[&Host]) -> Vec<PlannedCheck> {
    expand(checks, selected)
        .into_iter()
        .map(|(check, host)| PlannedCheck { name: check.name.clone(), on: where_runs(check, host) })
        .collect()
}

/// `local` for a local check, else the host's name.
fn where_runs(check: &Check, host: &Host) -> String {
    match check.on {
        CheckOn::Local => "local".to_string(),
        CheckOn::Hosts(_) => host.name.clone(),
    }
}

fn host_value(h: &Host) -> Value {
    let map: std::collections::BTreeMap<&str, Value> = [
        ("name", Value::from(h.name.clone())),
        ("role", Value::from(h.role.clone())),
        ("address", Value::from(h.address.clone())),
        ("port", Value::from(h.port)),
    ]
    .into_iter()
    .collect();
    Value::from(map)
}

/// Renders a check command. Context: `environment`, `hosts`, `roles` (as in templates), `host`
/// (the host it runs on, or the first selected host for local checks), `stage_hosts` (the hosts
/// the stage deployed, e.g. only the canaries) and `lookup(key)` for that host. A command may
/// `{% include "checks/NAME" %}` a script of the composition's `checks/` directory (rendered
/// with the same context and quoting), so that stages share one script.
fn render(
    check: &Check,
    at: &Where<'_>,
    host: &Host,
    hiera: Arc<HostHiera>,
) -> Result<String, Error> {
    let Where { env, selected, scripts, .. } = at;
    let mut jinja = Jinja::new();
    jinja.set_undefined_behavior(UndefinedBehavior::Strict);
    // A check is a shell command: what it interpolates (hiera values, inventory data) is
    // quoted as one word each, unless marked `| safe`.
    jinja.set_auto_escape_callback(|_| crate::shell::shell_escape());
    jinja.set_formatter(crate::shell::jinja_formatter);
    crate::template::register(&mut jinja);
    let scripts = scripts.clone();
    jinja.set_loader(move |name| Ok(scripts.get(name).cloned()));
    let hosts: Vec<Value> = env.hosts.iter().map(host_value).collect();
    let mut roles: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for h in &env.hosts {
        roles.entry(h.role.clone()).or_default().push(host_value(h));
    }
    let lookup = Value::from_function(move |key: String| -> Result<Value, minijinja::Error> {
        match hiera.lookup(&key, None) {
            Ok(Some(v)) => Ok(Value::from(minijinja::value::Serde(v))),
            Ok(None) => Err(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("lookup('{key}'): no value"),
            )),
            Err(e) => {
                Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
            }
        }
    });
    let ctx = minijinja::context! {
        environment => env.name.clone(),
        hosts => hosts,
        roles => roles,
        host => host_value(host),
        stage_hosts => selected.iter().map(|h| host_value(h)).collect::<Vec<_>>(),
        lookup => lookup,
    };
    jinja.render_str(&check.command, ctx).map_err(|e| {
        error::render(format!("check '{}': {e}", check.name))
            .at_file(crate::model::PIPELINE_FILE, None)
    })
}

/// The composition's `checks/` scripts by path.
type Scripts = Arc<std::collections::BTreeMap<String, String>>;

/// What every check of one stage runs against.
struct Where<'a> {
    env: &'a Environment,
    selected: &'a [&'a Host],
    compiler: &'a Compiler<'a>,
    secrets: &'a Secrets,
    scripts: Scripts,
}

/// Runs the checks of a stage against `selected` hosts of `env`, in order; checks on hosts go
/// through `connect`.
pub fn run_checks(
    checks: &[Check],
    env: &Environment,
    selected: &[&Host],
    compiler: &Compiler<'_>,
    secrets: &Secrets,
    connect: &dyn Connect,
) -> Vec<CheckResult> {
    let scripts: Scripts = Arc::new(
        compiler
            .composition()
            .templates
            .iter()
            .filter(|(path, _)| path.starts_with("checks/"))
            .map(|(path, source)| (path.clone(), source.clone()))
            .collect(),
    );
    let at = Where { env, selected, compiler, secrets, scripts };
    let mut results = Vec::new();
    for (check, host) in expand(checks, selected) {
        // Once a check failed the stage has failed: later checks run once, for the report,
        // instead of each waiting out its retry time against a cloud already known broken.
        let retry_for_secs =
            if results.iter().any(|r: &CheckResult| !r.passed) { 0 } else { check.retry_for_secs };
        let result = match &check.on {
            CheckOn::Local => {
                run_one(check, &at, host, retry_for_secs, |cmd| local(cmd, check.timeout_secs))
            }
            CheckOn::Hosts(_) => run_one(check, &at, host, retry_for_secs, |cmd| {
                let mut remote = connect.connect(host)?;
                let timeout = Duration::from_secs(check.timeout_secs);
                let out = remote.run_whole(&Script::check(cmd, timeout), &host.name)?;
                let mut text = out.stdout;
                text.extend_from_slice(&out.stderr);
                Ok((Some(out.status), String::from_utf8_lossy(&text).into_owned()))
            }),
        };
        results.push(result);
    }
    results
}

fn run_one(
    check: &Check,
    at: &Where<'_>,
    host: &Host,
    retry_for_secs: u64,
    exec: impl Fn(&str) -> Result<(Option<i32>, String), Error>,
) -> CheckResult {
    let started = Instant::now();
    let on = where_runs(check, host);
    // Values the command's lookups decrypt are redacted from its output like other secrets.
    let mut secrets = at.secrets.clone();
    let outcome = at
        .compiler
        .host_hiera(host, host.facts.clone())
        .and_then(|h| {
            let h = Arc::new(h);
            let rendered = render(check, at, host, h.clone());
            secrets.extend(&h.revealed());
            rendered
        })
        .map(|cmd| tries(retry_for_secs, started, || exec(&cmd)));
    let (exit, output, error) = match outcome {
        Ok((tries, Ok((exit, output)))) if tries > 1 => {
            let waited = format!("({tries} tries in {:.0} s)", started.elapsed().as_secs_f64());
            (exit, format!("{}\n{waited}", output.trim_end()), None)
        }
        Ok((_, Ok((exit, output)))) => (exit, output, None),
        Ok((_, Err(e))) | Err(e) => (None, e.to_string(), Some(e.kind())),
    };
    let tail: String = output
        .lines()
        .rev()
        .take(10)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    CheckResult {
        name: check.name.clone(),
        on,
        passed: exit == Some(0),
        exit,
        duration_secs: started.elapsed().as_secs_f64(),
        output: secrets.redact(&tail).into_owned(),
        error,
    }
}

/// Runs `once` until it passes or `retry_for_secs` have passed since `started` (a try that
/// cannot run at all, such as an unreachable host, ends it); returns how many tries it took and
/// the last outcome.
fn tries(
    retry_for_secs: u64,
    started: Instant,
    once: impl Fn() -> Result<(Option<i32>, String), Error>,
) -> (u32, Result<(Option<i32>, String), Error>) {
    let deadline = started + Duration::from_secs(retry_for_secs);
    let mut n = 1;
    loop {
        let outcome = once();
        match outcome {
            Ok((exit, _)) if exit != Some(0) && Instant::now() + RETRY_PAUSE < deadline => {
                std::thread::sleep(RETRY_PAUSE);
                n += 1;
            }
            _ => return (n, outcome),
        }
    }
}

/// Runs `cmd` with `sh` on this machine, killing its whole process group after
/// `timeout_secs`. The command travels on stdin, so nothing it holds (a password it looked up)
/// shows in this machine's process list.
fn local(cmd: &str, timeout_secs: u64) -> Result<(Option<i32>, String), Error> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    // One stream: the tail of both is what a failure shows, and one pipe cannot fill up while
    // the other is read.
    let script = format!("exec 2>&1\n{cmd}");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(crate::shell::read_and_eval(script.len(), true))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| error::io("cannot run sh").with_source(e))?;
    let written = child.stdin.take().expect("piped").write_all(script.as_bytes());
    written.map_err(|e| error::io("cannot hand the check to sh").with_source(e))?;
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    loop {
        if let Some(status) =
            child.try_wait().map_err(|e| error::io("waiting for a check").with_source(e))?
        {
            let out = reader.join().unwrap_or_default();
            // Killed by a signal: 128 + N, as shells (and the SSH side) report it.
            let code = status.code().or_else(|| {
                std::os::unix::process::ExitStatusExt::signal(&status).map(|n| 128 + n)
            });
            return Ok((code, String::from_utf8_lossy(&out).into_owned()));
        }
        if Instant::now() > deadline {
            // The group: sh and everything it started, which would otherwise live on (and
            // keep the output pipe open).
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            let _ = reader.join();
            return Ok((None, format!("timed out after {timeout_secs} s")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composition::Composition;
    use crate::rollout::fake::Fleet;
    use crate::testing;

    fn check(command: &str, on: CheckOn, timeout_secs: u64) -> Check {
        Check { name: "c".into(), command: command.into(), on, timeout_secs, retry_for_secs: 0 }
    }

    fn run(comp: &Composition, checks: &[Check], fleet: &Fleet) -> Vec<CheckResult> {
        let env = comp.pipeline.environment("staging").unwrap();
        let hosts: Vec<&Host> = env.hosts.iter().collect();
        let compiler = Compiler::new(comp).unwrap();
        run_checks(checks, env, &hosts, &compiler, &Secrets::default(), fleet)
    }

    /// A hiera value holding shell syntax is one word of the command, never code: the check
    /// prints it, and the command it holds does not run. (The value used to run.)
    #[test]
    fn interpolated_values_are_quoted_and_safe_opts_out() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let value = format!("pw$(touch${{IFS}}{})x'\"", marker.display());
        let data = format!("\"app::password\" = {}\n", toml::Value::from(value.clone()));
        let files = testing::files("\"100%\"", 0, &[("hieradata/common.toml", &data)]);
        let comp = testing::composition("c1", &files);
        let checks = [
            check("printf '%s' {{ lookup('app::password') }}", CheckOn::Local, 10),
            check("printf '%s' {{ ('a' ~ ' b') | safe }}", CheckOn::Local, 10),
        ];
        let results = run(&comp, &checks, &Fleet::new());
        assert!(results[0].passed, "{results:?}");
        assert_eq!(results[0].output, value);
        assert!(!marker.exists(), "the value ran as code");
        // Two words: `| safe` inserts a trusted fragment as it is.
        assert_eq!(results[1].output, "ab");
    }

    /// A check that outlives its timeout is killed with everything it started.
    #[test]
    fn a_timed_out_check_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let comp = testing::composition("c1", &testing::files("\"100%\"", 0, &[]));
        let command = format!("(sleep 3; touch {}) & sleep 30", late.display());
        let started = Instant::now();
        let results = run(&comp, &[check(&command, CheckOn::Local, 1)], &Fleet::new());
        assert!(!results[0].passed);
        assert_eq!(results[0].output, "timed out after 1 s");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        std::thread::sleep(Duration::from_millis(3500));
        assert!(!late.exists(), "a child of the check lived on");
    }

    /// A check with `retry_for` runs again while it fails: here it passes on its third try
    /// (the file it counts with says so), and one that never passes gives up after its time.
    #[test]
    fn a_failing_check_is_tried_again_for_its_retry_time() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let comp = testing::composition("c1", &testing::files("\"100%\"", 0, &[]));
        let flaky =
            format!("echo x >> {0}; [ $(wc -l < {0}) -ge 3 ] && echo ready", count.display());
        let mut retried = check(&flaky, CheckOn::Local, 5);
        retried.retry_for_secs = 30;
        let mut never = check("echo not yet; false", CheckOn::Local, 5);
        never.retry_for_secs = 4;
        let once = check(&flaky.replace("count", "once"), CheckOn::Local, 5);
        let results = run(&comp, &[retried, never, once], &Fleet::new());
        assert!(results[0].passed, "{results:?}");
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
        assert!(results[0].output.starts_with("ready\n(3 tries in "), "{}", results[0].output);
        assert!(!results[1].passed);
        assert!(results[1].output.starts_with("not yet\n(2 tries in "), "{}", results[1].output);
        // Without retry_for: one try.
        assert!(!results[2].passed);
        assert_eq!(std::fs::read_to_string(dir.path().join("once")).unwrap(), "x\n");
    }

    /// After a failed check, a later check with `retry_for` is tried once: the stage has
    /// failed already, and waiting would only delay the report.
    #[test]
    fn after_a_failure_later_checks_are_not_retried() {
        let comp = testing::composition("c1", &testing::files("\"100%\"", 0, &[]));
        let mut later = check("echo not yet; false", CheckOn::Local, 5);
        later.retry_for_secs = 30;
        let started = Instant::now();
        let results = run(&comp, &[check("false", CheckOn::Local, 5), later], &Fleet::new());
        assert!(!results[0].passed && !results[1].passed);
        assert_eq!(results[1].output, "not yet");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    /// `stage_hosts` names the hosts the stage deployed, `roles` the whole environment's.
    #[test]
    fn stage_hosts_are_the_hosts_of_the_stage() {
        let comp = testing::composition("c1", &testing::files("\"100%\"", 0, &[]));
        let env = comp.pipeline.environment("staging").unwrap();
        let some: Vec<&Host> = env.hosts.iter().filter(|h| h.name != "compute02").collect();
        let compiler = Compiler::new(&comp).unwrap();
        let command = "echo {{ stage_hosts | map(attribute='name') | join(',') | safe }} {{ roles.compute | length }}";
        let results = run_checks(
            &[check(command, CheckOn::Local, 5)],
            env,
            &some,
            &compiler,
            &Secrets::default(),
            &Fleet::new(),
        );
        let names: Vec<&str> = some.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(results[0].output.trim(), format!("{} 3", names.join(",")));
    }

    /// A command includes a script of the composition's `checks/`, rendered in the check's
    /// context with the same quoting.
    #[test]
    fn a_check_includes_a_shared_script() {
        let script = "printf '%s:%s' {{ host.name }} {{ lookup('app::word') }}";
        let files = testing::files(
            "\"100%\"",
            0,
            &[("checks/hello.sh", script), ("hieradata/common.toml", "\"app::word\" = \"a b\"\n")],
        );
        let comp = testing::composition("c1", &files);
        let command = "{% include 'checks/hello.sh' %}";
        let results = run(&comp, &[check(command, CheckOn::Local, 5)], &Fleet::new());
        assert!(results[0].passed, "{results:?}");
        let first = &comp.pipeline.environment("staging").unwrap().hosts[0].name;
        assert_eq!(results[0].output, format!("{first}:a b"));
    }

    /// Checks on hosts run through the connection, on the hosts their pattern selects.
    #[test]
    fn checks_on_hosts_run_there() {
        let comp = testing::composition("c1", &testing::files("\"100%\"", 0, &[]));
        let fleet = Fleet::new();
        fleet.with("compute02", |h| h.checks.push(("health".into(), 3, "sick".into())));
        let results = run(
            &comp,
            &[check("health {{ host.name }}", CheckOn::Hosts("role:compute".into()), 5)],
            &fleet,
        );
        let summary: Vec<(String, bool)> =
            results.iter().map(|r| (r.on.clone(), r.passed)).collect();
        assert_eq!(
            summary,
            [("compute01".into(), true), ("compute02".into(), false), ("compute03".into(), true)]
        );
        assert_eq!(results[1].output, "sick");
    }
}

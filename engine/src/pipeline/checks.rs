//! Pipeline checks: commands rendered from templates with inventory data, run locally or on
//! hosts, each with a timeout. Exit 0 passes. Output shown to people is redacted.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::value::Value;
use minijinja::{Environment as Jinja, UndefinedBehavior};
use serde::Serialize;

use crate::catalog::Compiler;
use crate::error::{self, Error};
use crate::hiera::HostHiera;
use crate::model::stages::{Check, CheckOn, matches};
use crate::model::{Environment, Host};
use crate::remote::Script;
use crate::rollout::Connect;
use crate::secrets::Secrets;

/// How one check went on one host (or locally).
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    /// `local` or the host it ran on.
    pub on: String,
    pub passed: bool,
    pub duration_secs: f64,
    /// The end of its output (redacted), for failures.
    pub output: String,
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
/// (the host it runs on, or the first selected host for local checks) and `lookup(key)` for that
/// host.
fn render(
    check: &Check,
    env: &Environment,
    host: &Host,
    hiera: Arc<HostHiera>,
) -> Result<String, Error> {
    let mut jinja = Jinja::new();
    jinja.set_undefined_behavior(UndefinedBehavior::Strict);
    // A check is a shell command: what it interpolates (hiera values, inventory data) is
    // quoted as one word each, unless marked `| safe`.
    jinja.set_auto_escape_callback(|_| crate::shell::shell_escape());
    jinja.set_formatter(crate::shell::jinja_formatter);
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
        lookup => lookup,
    };
    jinja.render_str(&check.command, ctx).map_err(|e| {
        error::render(format!("check '{}': {e}", check.name))
            .at_file(crate::model::PIPELINE_FILE, None)
    })
}

/// Runs the checks of a stage against `selected` hosts of `env`; checks on hosts go through
/// `connect`.
pub fn run_checks(
    checks: &[Check],
    env: &Environment,
    selected: &[&Host],
    compiler: &Compiler<'_>,
    secrets: &Secrets,
    connect: &dyn Connect,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for check in checks {
        match &check.on {
            CheckOn::Local => {
                let Some(host) = selected.first() else { continue };
                results.push(run_one(check, env, host, compiler, secrets, |cmd| {
                    local(cmd, check.timeout_secs)
                }));
            }
            CheckOn::Hosts(pattern) => {
                for host in selected.iter().filter(|h| matches(pattern, h)) {
                    results.push(run_one(check, env, host, compiler, secrets, |cmd| {
                        let mut remote = connect.connect(host)?;
                        let timeout = Duration::from_secs(check.timeout_secs);
                        let out = remote.run_whole(&Script::check(cmd, timeout), &host.name)?;
                        let mut text = out.stdout;
                        text.extend_from_slice(&out.stderr);
                        Ok((out.status == 0, String::from_utf8_lossy(&text).into_owned()))
                    }));
                }
            }
        }
    }
    results
}

fn run_one(
    check: &Check,
    env: &Environment,
    host: &Host,
    compiler: &Compiler<'_>,
    secrets: &Secrets,
    exec: impl FnOnce(&str) -> Result<(bool, String), Error>,
) -> CheckResult {
    let started = Instant::now();
    let on = match check.on {
        CheckOn::Local => "local".to_string(),
        CheckOn::Hosts(_) => host.name.clone(),
    };
    // Values the command's lookups decrypt are redacted from its output like other secrets.
    let mut secrets = secrets.clone();
    let outcome = compiler
        .host_hiera(host, host.facts.clone())
        .and_then(|h| {
            let h = Arc::new(h);
            let rendered = render(check, env, host, h.clone());
            secrets.extend(&h.revealed());
            rendered
        })
        .and_then(|cmd| exec(&cmd));
    let (passed, output) = match outcome {
        Ok((passed, output)) => (passed, output),
        Err(e) => (false, e.to_string()),
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
        passed,
        duration_secs: started.elapsed().as_secs_f64(),
        output: secrets.redact(&tail).into_owned(),
    }
}

/// Runs `cmd` with `sh` on this machine, killing its whole process group after
/// `timeout_secs`. The command travels on stdin, so nothing it holds (a password it looked up)
/// shows in this machine's process list.
fn local(cmd: &str, timeout_secs: u64) -> Result<(bool, String), Error> {
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
            return Ok((status.success(), String::from_utf8_lossy(&out).into_owned()));
        }
        if Instant::now() > deadline {
            // The group: sh and everything it started, which would otherwise live on (and
            // keep the output pipe open).
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            let _ = reader.join();
            return Ok((false, format!("timed out after {timeout_secs} s")));
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
        Check { name: "c".into(), command: command.into(), on, timeout_secs }
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

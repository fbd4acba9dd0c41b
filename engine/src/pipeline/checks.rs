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
                        let out = remote.run(&Script::check(cmd, timeout))?;
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

/// Runs `sh -c cmd` on this machine, killing it after `timeout_secs`.
fn local(cmd: &str, timeout_secs: u64) -> Result<(bool, String), Error> {
    // One stream: the tail of both is what a failure shows, and one pipe cannot fill up while
    // the other is read.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{cmd}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| error::io("cannot run sh").with_source(e))?;
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
            let _ = child.kill();
            let _ = child.wait();
            return Ok((false, format!("timed out after {timeout_secs} s")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

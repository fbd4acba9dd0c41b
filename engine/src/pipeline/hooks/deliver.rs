//! Sending one event to one hook: its command or its HTTP POST, each try within the hook's
//! timeout, tried again after a pause that doubles, up to its `retries`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::http;
use crate::model::hooks::{Hook, HookAction};

/// How a delivery went.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub delivered: bool,
    pub tries: u32,
    /// Why the last try failed (not redacted yet); empty when delivered.
    pub detail: String,
}

/// What a hook is sent: the JSON payload, and for commands its fields as variables.
pub struct Message<'a> {
    pub payload: &'a [u8],
    pub vars: &'a [(String, String)],
}

/// Delivers `message` with `hook`, trying again while it fails. A command runs in `dir`.
pub fn deliver(hook: &Hook, message: &Message<'_>, dir: &Path, vars: &http::Vars<'_>) -> Attempt {
    let timeout = Duration::from_secs(hook.timeout_secs);
    let mut tries = 0;
    loop {
        tries += 1;
        let outcome = match &hook.action {
            HookAction::Command(argv) => run(argv, message, dir, timeout),
            HookAction::Http(target) => {
                http::post(target, message.payload, timeout, vars).map(|_| ())
            }
        };
        match outcome {
            Ok(()) => return Attempt { delivered: true, tries, detail: String::new() },
            Err(detail) if tries > hook.retries => {
                return Attempt { delivered: false, tries, detail };
            }
            Err(_) => std::thread::sleep(hook.pause_before(tries + 1)),
        }
    }
}

/// Runs `argv` (no shell), the payload on stdin, killing its process group after `timeout`.
/// Err: why it failed, with the end of what it printed.
fn run(
    argv: &[String],
    message: &Message<'_>,
    dir: &Path,
    timeout: Duration,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let program = &argv[0];
    let mut child = Command::new(program)
        .args(&argv[1..])
        .current_dir(dir)
        .envs(message.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Writing and reading in threads: a command that prints much before it reads stdin, or
    // never reads it, cannot block the pipeline.
    let mut stdin = child.stdin.take().expect("piped");
    let payload = message.payload.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&payload);
    });
    let readers = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .map(|stream| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_end(&mut out);
            }
            out
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                // The group: the command and whatever it started, which would keep the pipes open.
                let group = format!("-{}", child.id());
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = child.wait();
                break None;
            }
        }
    };
    let _ = writer.join();
    let output: Vec<u8> = readers.into_iter().flat_map(|r| r.join().unwrap_or_default()).collect();
    let tail = tail(&String::from_utf8_lossy(&output));
    let said = if tail.is_empty() { String::new() } else { format!(": {tail}") };
    match status {
        None => Err(format!("{program} timed out after {} s{said}", timeout.as_secs())),
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(match s.code() {
            Some(code) => format!("{program} exited with {code}{said}"),
            None => format!("{program} was killed by a signal{said}"),
        }),
    }
}

/// The last 3 lines of a command's output, for a message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hooks::OnFailure;

    fn hook(argv: &[&str], retries: u32, timeout_secs: u64) -> Hook {
        Hook {
            name: "h".into(),
            events: vec![],
            environments: vec![],
            stages: vec![],
            action: HookAction::Command(argv.iter().map(|a| a.to_string()).collect()),
            timeout_secs,
            retries,
            backoff_secs: 0.1,
            on_failure: OnFailure::Fail,
            line: 1,
        }
    }

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    /// The argv reaches the program as it is (no shell: a `;` is an argument), the payload on
    /// stdin, the fields in variables.
    #[test]
    fn a_command_gets_argv_stdin_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script =
            "printf '%s|' \"$@\" > out; cat >> out; printf '|%s' \"$STACKDEPLOY_EVENT\" >> out";
        let h = hook(&["sh", "-c", script, "sh", "a b", "; rm -rf /"], 0, 5);
        let vars = [("STACKDEPLOY_EVENT".to_string(), "host_added".to_string())];
        let message = Message { payload: b"{\"x\":1}", vars: &vars };
        let attempt = deliver(&h, &message, dir.path(), &no_vars);
        assert_eq!(attempt, Attempt { delivered: true, tries: 1, detail: String::new() });
        let got = std::fs::read_to_string(out).unwrap();
        assert_eq!(got, "a b|; rm -rf /|{\"x\":1}|host_added");
    }

    #[test]
    fn a_failing_command_is_tried_retries_times_more_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let h = hook(&["sh", "-c", "echo try >> tries; echo cmdb said no >&2; exit 3"], 2, 5);
        let message = Message { payload: b"{}", vars: &[] };
        let started = Instant::now();
        let attempt = deliver(&h, &message, dir.path(), &no_vars);
        assert!(!attempt.delivered);
        assert_eq!(attempt.tries, 3);
        assert_eq!(attempt.detail, "sh exited with 3: cmdb said no");
        assert_eq!(std::fs::read_to_string(dir.path().join("tries")).unwrap(), "try\ntry\ntry\n");
        // Backoff 0.1 s, then 0.2 s.
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
        let missing = hook(&["/nonexistent/cmdb-register"], 0, 5);
        let e = deliver(&missing, &message, dir.path(), &no_vars).detail;
        assert!(e.starts_with("cannot run /nonexistent/cmdb-register: "), "{e}");
    }

    #[test]
    fn a_command_that_outlives_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let h = hook(&["sh", "-c", "sleep 30 & echo $! > child; wait"], 0, 1);
        let started = Instant::now();
        let attempt = deliver(&h, &Message { payload: b"{}", vars: &[] }, dir.path(), &no_vars);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(attempt.detail, "sh timed out after 1 s");
        let child = std::fs::read_to_string(dir.path().join("child")).unwrap();
        let alive = Path::new("/proc").join(child.trim()).join("cmdline");
        std::thread::sleep(Duration::from_millis(100));
        let cmdline = std::fs::read_to_string(alive).unwrap_or_default();
        assert!(!cmdline.contains("sleep"), "the child lives on: {cmdline}");
    }
}

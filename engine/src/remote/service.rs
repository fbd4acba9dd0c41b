//! Services on hosts: the command that tells whether one runs, and those that start, stop and
//! restart it, for the systemd and the `command` provider. With `provider = "auto"` the host
//! decides at run time (`$SD_INIT`, set by both preludes).
//!
//! The commands built here are shell code to be `eval`ed (the composition's own commands are
//! code too); they are handed to the preludes as one quoted word each.

use super::script::Sh;
use crate::catalog::Service;

fn unit(sv: &Service) -> String {
    sv.unit.clone().unwrap_or_else(|| format!("{}.service", sv.name))
}

fn systemctl(args: &'static str, sv: &Service) -> String {
    let mut sh = Sh::new();
    sh.code("systemctl ").code(args).arg(&unit(sv));
    sh.finish()
}

/// Chooses between the systemd and the command form, from the provider and, for `auto`, the
/// host's init system.
fn either(sv: &Service, systemd: String, command: Option<String>) -> String {
    match (sv.provider.as_str(), command) {
        ("systemd", _) | (_, None) => systemd,
        ("command", Some(c)) => c,
        (_, Some(c)) => format!("if [ \"$SD_INIT\" = systemd ]; then {systemd}; else {c}; fi"),
    }
}

/// Exit 0 when the service runs.
pub(super) fn status_command(sv: &Service) -> String {
    either(sv, systemctl("is-active --quiet", sv), sv.status.clone())
}

pub(super) fn start_command(sv: &Service) -> String {
    let start = systemctl("start", sv);
    let systemd =
        if sv.enable { format!("{} && {start}", systemctl("enable --quiet", sv)) } else { start };
    either(sv, systemd, sv.start.clone())
}

pub(super) fn stop_command(sv: &Service) -> String {
    let command = sv.stop.clone().or_else(|| {
        sv.start.as_ref().map(|_| "echo 'no stop command declared' >&2; false".to_string())
    });
    either(sv, systemctl("stop", sv), command)
}

pub(super) fn restart_command(sv: &Service) -> String {
    let command = match (&sv.restart, &sv.stop, &sv.start) {
        (Some(r), _, _) => Some(r.clone()),
        (None, Some(stop), Some(start)) => Some(format!("{{ {stop}; }}; {start}")),
        (None, None, Some(_)) => {
            Some("echo 'no restart or stop command declared' >&2; false".to_string())
        }
        _ => None,
    };
    either(sv, systemctl("restart", sv), command)
}

/// `probe_service NAME STATUS`
pub(super) fn probe(sh: &mut Sh, sv: &Service) {
    sh.code("probe_service").arg(&sv.name).command(&status_command(sv)).nl();
}

/// How long a started service may take to pass its `ready` check, unless it says otherwise.
pub const DEFAULT_READY_TIMEOUT: u64 = 60;

/// A check that passes once a started service does its job, and how long it may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub command: String,
    pub timeout: u64,
}

pub(super) fn ready(sv: &Service) -> Option<Ready> {
    let timeout = sv.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT).max(1);
    sv.ready.as_ref().map(|command| Ready { command: command.clone(), timeout })
}

/// Prints the last lines of the service's log: its journal under systemd, its `log` file
/// with the command provider (`None`: neither is known).
pub(super) fn log_command(sv: &Service) -> Option<String> {
    let mut journal = Sh::new();
    journal.code("journalctl --no-pager -q -n 20 -u").arg(&unit(sv));
    let journal = journal.finish();
    let file = sv.log.as_ref().map(|path| {
        let mut sh = Sh::new();
        sh.code("tail -n 20 --").arg(path);
        sh.finish()
    });
    match (sv.provider.as_str(), file) {
        ("systemd", _) => Some(journal),
        ("command", file) => file,
        (_, file) => Some(format!(
            "if [ \"$SD_INIT\" = systemd ]; then {journal}; else {}; fi",
            file.as_deref().unwrap_or(":")
        )),
    }
}

/// What starting a service takes: the command that starts (or restarts) it, the check that it
/// runs, the one that it is ready, and where its log is.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub command: String,
    pub status: String,
    /// Seconds the command may run.
    pub timeout: u64,
    pub ready: Option<Ready>,
    /// Prints the last lines of its log.
    pub log: Option<String>,
}

impl Start {
    pub(super) fn new(sv: &Service, command: String, timeout: u64) -> Start {
        Start {
            command,
            status: status_command(sv),
            timeout,
            ready: ready(sv),
            log: log_command(sv),
        }
    }
}

/// Runs the start (or restart) command, waits for the status command to say the service runs
/// and then for its ready check to pass, and strikes the restart it may owe off the pending
/// list. A failure shows the command's output and the last lines of the service's log.
pub(super) fn render_start(sh: &mut Sh, id: &str, what: Starting, start: &Start) {
    let (failed, not_running, not_ready, died, done) = match what {
        Starting::Restart => (
            "restart failed",
            "not running after restart",
            "not ready after restart",
            "stopped running after restart, before it was ready",
            " restarted",
        ),
        Starting::Start => (
            "start failed",
            "not running after start",
            "not ready after start",
            "stopped running after start, before it was ready",
            " started",
        ),
    };
    let log_tail = |sh: &mut Sh| {
        if let Some(log) = &start.log {
            sh.code("$(log_tail").command(log).code(")");
        }
    };
    sh.code("run_cmd").command(&start.command).int(start.timeout).code(" || fail").arg(id);
    sh.code(" \"").code(failed).code(": $(tail_out)");
    log_tail(sh);
    sh.code("\"").nl();
    sh.code("wait_status").command(&start.status).code(" || fail").arg(id).code(" \"");
    sh.code(not_running).code(": $(tail_out)");
    log_tail(sh);
    sh.code("\"").nl();
    if let Some(ready) = &start.ready {
        sh.code("wait_ready").command(&ready.command).int(ready.timeout).command(&start.status);
        sh.code(" || { [ $? = 2 ] && fail").arg(id).code(" \"").code(died).code(": $(tail_out)");
        log_tail(sh);
        sh.code("\"; fail").arg(id);
        sh.code(" \"").code(not_ready).code(" (").int(ready.timeout).code(" s): $(tail_out)");
        log_tail(sh);
        sh.code("\"; }").nl();
    }
    sh.code("done_restart").arg(id).nl();
    sh.code("say OK").arg(id).code(done).nl();
}

#[derive(Clone, Copy)]
pub(super) enum Starting {
    Restart,
    Start,
}

pub(super) fn render_stop(sh: &mut Sh, id: &str, stop: &str, timeout: u64) {
    sh.code("run_cmd").command(stop).int(timeout).code(" || fail").arg(id);
    sh.code(" \"stop failed: $(tail_out)\"").nl();
    sh.code("say OK").arg(id).code(" stopped").nl();
}

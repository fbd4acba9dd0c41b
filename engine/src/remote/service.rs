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

/// Runs `command` (a restart or a start), waits for `status` to say the service runs, and
/// strikes the restart it may owe off the pending list. `what` is `restart` or `start`.
pub(super) fn render_start(
    sh: &mut Sh,
    id: &str,
    what: Starting,
    command: &str,
    status: &str,
    timeout: u64,
) {
    let (failed, not_running, done) = match what {
        Starting::Restart => ("restart failed", "not running after restart", " restarted"),
        Starting::Start => ("start failed", "not running after start", " started"),
    };
    sh.code("run_cmd").command(command).int(timeout).code(" || fail").arg(id).code(" \"");
    sh.code(failed);
    sh.code(": $(tail_out)\"").nl();
    sh.code("wait_status").command(status).code(" || fail").arg(id).code(" \"").code(not_running);
    sh.code(": $(tail_out)\"").nl();
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

//! Execs on hosts: their `creates`/`unless` guards probed, their commands run.

use super::script::Sh;
use crate::catalog::Exec;

/// `probe_exec NAME CREATES UNLESS`: whether the guards say the exec must run.
pub(super) fn probe(sh: &mut Sh, x: &Exec) {
    sh.code("probe_exec").arg(&x.name);
    sh.arg(x.creates.as_deref().unwrap_or("")).command(x.unless.as_deref().unwrap_or("")).nl();
}

pub(super) fn render_run(sh: &mut Sh, id: &str, command: &str, timeout: u64) {
    sh.code("run_cmd").command(command).int(timeout).code(" || fail").arg(id);
    sh.code(" \"command failed: $(tail_out)\"").nl();
    sh.code("say OK").arg(id).code(" ran").nl();
}

/// A refresh-only exec run because something it is notified by changed: done once it ran, so
/// the owed refresh is struck off.
pub(super) fn render_refresh(sh: &mut Sh, id: &str, command: &str, timeout: u64) {
    sh.code("run_cmd").command(command).int(timeout).code(" || fail").arg(id);
    sh.code(" \"command failed: $(tail_out)\"").nl();
    sh.code("done_restart").arg(id).nl();
    sh.code("say OK").arg(id).code(" ran").nl();
}

//! The apply script: converges one host to its plan in one SSH exec, with file contents
//! streamed on stdin.
//!
//! Order on the host: take the lock → packages → directories → stage every changed file next to
//! its target (write, owner/mode, `validate`, fsync) → record the restarts the changes owe →
//! back up and rename into place → remove dropped files → execs → restarts → service states →
//! record the applied state. Nothing is renamed before every file has been staged and
//! validated, so a failed validate or a lost connection leaves every managed file old; a run
//! interrupted after the renames leaves its restarts in `pending-restarts` for the next run.

use std::fmt::Write;

use serde::Serialize;

use super::probe::service_status_cmd;
use super::q;
use crate::catalog::{Catalog, File, Resource, Service};
use crate::plan::{Change, HostPlan};
use crate::state::{Applied, STATE_DIR};

/// The script and the bytes to feed it on stdin.
pub struct Script {
    pub command: String,
    pub stdin: Vec<u8>,
}

/// The temporary name a file is staged under: same directory (so the rename is atomic),
/// hidden, and recognisable so a later run can clear what a killed run left behind.
fn staging_path(path: &str, run_id: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.stackdeploy-tmp.{run_id}")
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// Builds the apply script for `plan` (which must have been computed from `catalog`).
pub fn script(catalog: &Catalog, plan: &HostPlan, applied: &Applied, lock_owner: &str) -> Script {
    let run = &applied.run_id;
    let mut s = String::new();
    let mut stdin = Vec::new();
    let file = |path: &str| catalog.files().find(|f| f.path == path);

    let staged: Vec<&File> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::CreateFile { path, .. } => file(path),
            Change::UpdateFile { path, from_sha256, to_sha256, .. } if from_sha256 != to_sha256 => {
                file(path)
            }
            _ => None,
        })
        .collect();

    let _ = writeln!(s, "set -u\numask 022\nexport LC_ALL=C\nSD={STATE_DIR}\nRUN={}", q(run));
    s.push_str(PRELUDE);
    let _ = writeln!(s, "printf '%s\\n' {} > \"$SD/lock.owner\"", q(lock_owner));
    // A run killed before its renames leaves staged files behind; they are never managed
    // content, so clear them (only ours: the name pattern is specific).
    let mut dirs: Vec<&str> = catalog.files().map(|f| parent(&f.path)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in &dirs {
        let _ = writeln!(s, "rm -f {}/.*.stackdeploy-tmp.* 2>/dev/null", q(d));
    }
    let _ = write!(s, "cleanup() {{ rm -f");
    for f in &staged {
        let _ = write!(s, " {}", q(&staging_path(&f.path, run)));
    }
    s.push_str(" 2>/dev/null; }\ntrap cleanup EXIT\ntrap 'exit 129' HUP\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n");

    // Packages first: a package may create the directories and users the files need.
    for c in &plan.changes {
        match c {
            Change::InstallPackage { name, ensure, .. } => {
                let spec = match ensure.as_str() {
                    "present" | "installed" | "latest" => name.clone(),
                    version => format!("{name}={version}"),
                };
                let _ = writeln!(
                    s,
                    "pkg_install {} {} || fail {} \"install failed: $(tail_out)\"",
                    q(name),
                    q(&spec),
                    q(&c.id())
                );
                let _ = writeln!(s, "say OK {} installed", q(&c.id()));
            }
            Change::RemovePackage { name } => {
                let _ = writeln!(
                    s,
                    "pkg_remove {} || fail {} \"removal failed: $(tail_out)\"",
                    q(name),
                    q(&c.id())
                );
                let _ = writeln!(s, "say OK {} removed", q(&c.id()));
            }
            _ => {}
        }
    }

    for c in &plan.changes {
        match c {
            Change::CreateDirectory { path, owner, group, mode } => {
                let _ = writeln!(
                    s,
                    "mkdir -p -- {p} && chown {o}:{g} {p} && chmod {m} {p} || fail {id} \"cannot create directory\"\nsay OK {id} created",
                    p = q(path),
                    o = q(owner),
                    g = q(group),
                    m = mode,
                    id = q(&c.id())
                );
            }
            Change::FixDirectory { path, .. } => {
                let d = catalog.resources.iter().find_map(|r| match r {
                    Resource::Directory(d) if &d.path == path => Some(d),
                    _ => None,
                });
                if let Some(d) = d {
                    fix_attrs(&mut s, path, &d.owner, &d.group, d.mode, &c.id());
                }
            }
            _ => {}
        }
    }

    // Stage: nothing visible changes until every file is written and validated.
    for f in &staged {
        let tmp = staging_path(&f.path, run);
        let id = format!("file:{}", f.path);
        let len = f.content.len();
        let _ = writeln!(
            s,
            "mkdir -p -- {dir} || fail {id} \"cannot create its directory\"\n\
             ( umask 077; head -c {len} > {t} ) || fail {id} \"cannot write a temporary file next to it\"\n\
             [ \"$(wc -c < {t})\" -eq {len} ] || fail {id} \"short write (connection lost?)\"\n\
             chown {o}:{g} {t} && chmod {m} {t} || fail {id} \"cannot set owner/mode (does user {o} / group {g} exist?)\"",
            dir = q(parent(&f.path)),
            id = q(&id),
            t = q(&tmp),
            o = q(&f.owner),
            g = q(&f.group),
            m = f.mode,
        );
        if let Some(v) = &f.validate {
            let cmd = v.replace('%', &q(&tmp));
            let _ = writeln!(
                s,
                "if ! ( set +u; {cmd} ) >\"$SD/out\" 2>&1 </dev/null 9>&-; then say VALIDATE {id} \"$(tail_out)\"; exit 1; fi",
                id = q(&id)
            );
        }
        let _ = writeln!(s, "sync {} 2>/dev/null || true", q(&tmp));
        stdin.extend_from_slice(f.content.as_bytes());
    }

    // Commit point. Restarts are recorded before the first rename, so a run interrupted from
    // here on still owes them to the next run.
    if !plan.restarts.is_empty() {
        let _ = write!(s, "printf '%s\\n'");
        for r in &plan.restarts {
            let _ = write!(s, " {}", q(&r.resource));
        }
        s.push_str(" >> \"$SD/pending-restarts\" && sync \"$SD/pending-restarts\" 2>/dev/null\n");
    }
    for f in &staged {
        let _ = writeln!(
            s,
            "backup {p} && mv -f {t} {p} || fail {id} \"cannot move the new file into place\"\nsay OK {id} written",
            p = q(&f.path),
            t = q(&staging_path(&f.path, run)),
            id = q(&format!("file:{}", f.path))
        );
    }
    for c in &plan.changes {
        match c {
            Change::UpdateFile { path, from_sha256, to_sha256, .. } if from_sha256 == to_sha256 => {
                if let Some(f) = file(path) {
                    fix_attrs(&mut s, path, &f.owner, &f.group, f.mode, &c.id());
                }
            }
            Change::RemoveFile { path, .. } => {
                let _ = writeln!(
                    s,
                    "backup {p} && rm -f -- {p} || fail {id} \"cannot remove\"\nsay OK {id} removed",
                    p = q(path),
                    id = q(&c.id())
                );
            }
            _ => {}
        }
    }
    for d in &dirs {
        let _ = writeln!(s, "sync {} 2>/dev/null || true", q(d));
    }

    for c in &plan.changes {
        if let Change::RunExec { name } = c {
            if let Some(x) = catalog.resources.iter().find_map(|r| match r {
                Resource::Exec(x) if &x.name == name => Some(x),
                _ => None,
            }) {
                let _ = writeln!(
                    s,
                    "run_cmd {} {} || fail {id} \"command failed: $(tail_out)\"\nsay OK {id} ran",
                    q(&x.command),
                    q(&c.id()),
                    id = q(&c.id())
                );
            }
        }
    }

    let service = |name: &str| -> Option<&Service> {
        catalog.resources.iter().find_map(|r| match r {
            Resource::Service(sv) if sv.name == name => Some(sv),
            _ => None,
        })
    };
    for r in &plan.restarts {
        let id = q(&r.resource);
        if let Some(name) = r.resource.strip_prefix("service:") {
            let Some(sv) = service(name) else { continue };
            let restart = restart_cmd(sv);
            let _ = writeln!(
                s,
                "run_cmd {} || fail {id} \"restart failed: $(tail_out)\"\nwait_status {} || fail {id} \"not running after restart: $(tail_out)\"\ndone_restart {id}\nsay OK {id} restarted",
                q(&restart),
                q(&service_status_cmd(sv)),
            );
        } else if let Some(name) = r.resource.strip_prefix("exec:") {
            if let Some(x) = catalog.resources.iter().find_map(|res| match res {
                Resource::Exec(x) if x.name == name => Some(x),
                _ => None,
            }) {
                let _ = writeln!(
                    s,
                    "run_cmd {} || fail {id} \"command failed: $(tail_out)\"\ndone_restart {id}\nsay OK {id} ran",
                    q(&x.command)
                );
            }
        }
    }
    for c in &plan.changes {
        match c {
            Change::StartService { name } => {
                let Some(sv) = service(name) else { continue };
                let _ = writeln!(
                    s,
                    "run_cmd {} || fail {id} \"start failed: $(tail_out)\"\nwait_status {} || fail {id} \"not running after start: $(tail_out)\"\ndone_restart {id}\nsay OK {id} started",
                    q(&start_cmd(sv)),
                    q(&service_status_cmd(sv)),
                    id = q(&c.id())
                );
            }
            Change::StopService { name } => {
                let Some(sv) = service(name) else { continue };
                let _ = writeln!(
                    s,
                    "run_cmd {} || fail {id} \"stop failed: $(tail_out)\"\nsay OK {id} stopped",
                    q(&stop_cmd(sv)),
                    id = q(&c.id())
                );
            }
            _ => {}
        }
    }

    let record = serde_json::to_string(applied).expect("applied record serialises");
    let _ = writeln!(
        s,
        "{{ printf '%s\\n' {} > \"$SD/applied.json.tmp\" && sync \"$SD/applied.json.tmp\" && mv -f \"$SD/applied.json.tmp\" \"$SD/applied.json\"; }} || fail state \"cannot record the applied state (disk full?)\"",
        q(&record)
    );
    s.push_str("[ -s \"$SD/pending-restarts\" ] || rm -f \"$SD/pending-restarts\"\nsay DONE - -\n");
    Script { command: s, stdin }
}

/// Owner, group and mode of an existing path whose content stays.
fn fix_attrs(
    s: &mut String,
    path: &str,
    owner: &str,
    group: &str,
    mode: crate::catalog::Mode,
    id: &str,
) {
    let _ = writeln!(
        s,
        "chown {o}:{g} {p} && chmod {mode} {p} || fail {id} \"cannot set owner/mode\"\nsay OK {id} fixed",
        p = q(path),
        o = q(owner),
        g = q(group),
        id = q(id)
    );
}

fn unit(sv: &Service) -> String {
    q(&sv.unit.clone().unwrap_or_else(|| format!("{}.service", sv.name)))
}

/// Chooses between the systemd and command forms on the host, from its init system.
fn either(sv: &Service, systemd: String, command: Option<String>) -> String {
    match (sv.provider.as_str(), command) {
        ("systemd", _) | (_, None) => systemd,
        ("command", Some(c)) => c,
        (_, Some(c)) => format!("if [ \"$SD_INIT\" = systemd ]; then {systemd}; else {c}; fi"),
    }
}

fn start_cmd(sv: &Service) -> String {
    let enable = if sv.enable {
        format!("systemctl enable --quiet {} && ", unit(sv))
    } else {
        String::new()
    };
    either(sv, format!("{enable}systemctl start {}", unit(sv)), sv.start.clone())
}

fn stop_cmd(sv: &Service) -> String {
    let command = sv.stop.clone().or_else(|| {
        sv.start.as_ref().map(|_| "echo 'no stop command declared' >&2; false".to_string())
    });
    either(sv, format!("systemctl stop {}", unit(sv)), command)
}

fn restart_cmd(sv: &Service) -> String {
    let command = match (&sv.restart, &sv.stop, &sv.start) {
        (Some(r), _, _) => Some(r.clone()),
        (None, Some(stop), Some(start)) => Some(format!("{{ {stop}; }}; {start}")),
        (None, None, Some(_)) => {
            Some("echo 'no restart or stop command declared' >&2; false".to_string())
        }
        _ => None,
    };
    either(sv, format!("systemctl restart {}", unit(sv)), command)
}

/// Shell functions every apply script uses. Output is one record per line:
/// `OK|FAIL|VALIDATE|LOCKED|DONE <tab> resource <tab> detail`, with newlines in the detail
/// sent as `\x1e`.
const PRELUDE: &str = r#"say() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
fail() { say FAIL "$1" "$2"; exit 1; }
tail_out() { tail -c 2000 "$SD/out" 2>/dev/null | tr '\n' '\036'; }
if [ -d /run/systemd/system ]; then SD_INIT=systemd; else SD_INIT=other; fi
mkdir -p "$SD/backup" && chmod 0700 "$SD" || fail state "cannot create $SD"
exec 9>>"$SD/lock" || fail state "cannot open $SD/lock"
if ! flock -n 9; then say LOCKED - "$(cat "$SD/lock.owner" 2>/dev/null || echo unknown)"; exit 75; fi
# fd 9 holds the lock: children must not inherit it, or a daemon started here would keep
# the host locked after the run.
run_cmd() { ( set +u; eval "$1" ) >"$SD/out" 2>&1 </dev/null 9>&-; }
wait_status() { i=0; while [ $i -lt 50 ]; do if ( set +u; eval "$1" ) >/dev/null 2>&1 </dev/null 9>&-; then return 0; fi; sleep 0.2; i=$((i+1)); done; return 1; }
# grep exits 1 when nothing is left, 2 on a write error: only a complete file replaces the old.
done_restart() {
  [ -f "$SD/pending-restarts" ] || return 0
  grep -vxF -- "$1" "$SD/pending-restarts" > "$SD/pending-restarts.tmp"
  [ $? -le 1 ] && mv -f "$SD/pending-restarts.tmp" "$SD/pending-restarts" || fail state "cannot update $SD/pending-restarts (disk full?)"
}
backup() { if [ -e "$1" ]; then mkdir -p "$SD/backup/$RUN$(dirname "$1")" && cp -p "$1" "$SD/backup/$RUN$1"; fi; }
# pkg_install NAME APT_SPEC DNF_SPEC. Package scripts may start daemons: no lock fd for them.
pkg_install() {
  if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold "$2" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then dnf install -y --allowerasing "$3" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host" >"$SD/out"; return 1; fi
}
pkg_remove() {
  if command -v apt-get >/dev/null 2>&1; then DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  elif command -v dnf >/dev/null 2>&1; then dnf remove -y "$1" >"$SD/out" 2>&1 </dev/null 9>&-
  else echo "no apt-get or dnf on this host" >"$SD/out"; return 1; fi
}
"#;

/// What the apply script reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Resources changed, with what happened (`written`, `restarted`, ...).
    pub done: Vec<(String, String)>,
    /// The resource that failed and why, when the run failed.
    pub failed: Option<(String, String)>,
    /// Set when another run holds the host's lock: who.
    pub locked_by: Option<String>,
    /// The script reached its end.
    pub complete: bool,
}

pub fn parse(stdout: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let mut f = line.splitn(3, '\t');
        let (kind, id, detail) =
            (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let detail = detail.replace('\u{1e}', "\n").trim_end().to_string();
        match kind {
            "OK" => r.done.push((id.to_string(), detail)),
            "FAIL" => r.failed = Some((id.to_string(), detail)),
            "VALIDATE" => {
                r.failed = Some((
                    id.to_string(),
                    format!("validate failed, the old file is kept:\n{detail}"),
                ))
            }
            "LOCKED" => r.locked_by = Some(detail),
            "DONE" => r.complete = true,
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_path_is_in_the_same_directory() {
        assert_eq!(
            staging_path("/etc/haproxy/haproxy.cfg", "r1"),
            "/etc/haproxy/.haproxy.cfg.stackdeploy-tmp.r1"
        );
        assert_eq!(parent("/motd"), "/");
    }

    #[test]
    fn parses_a_report() {
        let r =
            parse("OK\tfile:/etc/a\twritten\nVALIDATE\tfile:/etc/b\tline 1\u{1e}line 2\u{1e}\n");
        assert_eq!(r.done, vec![("file:/etc/a".to_string(), "written".to_string())]);
        assert_eq!(
            r.failed,
            Some((
                "file:/etc/b".to_string(),
                "validate failed, the old file is kept:\nline 1\nline 2".to_string()
            ))
        );
        assert!(!r.complete);
        assert!(parse("LOCKED\t-\trun x by y\n").locked_by.is_some());
    }
}

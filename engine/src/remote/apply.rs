//! The apply script: converges one host to its plan in one SSH exec, with file contents
//! streamed on stdin.
//!
//! Order on the host: take the lock → packages → directories → stage every changed file next to
//! its target (write, owner/mode, `validate`, fsync) → record the restarts the changes owe →
//! back up and rename into place → remove dropped files → execs → restarts → service states →
//! record the applied state. Nothing is renamed before every file has been staged and
//! validated, so a failed validate or a lost connection leaves every managed file old; a run
//! interrupted after the renames leaves its restarts in `pending-restarts` for the next run.
//!
//! [`steps`] decides what to do, as data; [`script`] renders the steps (each kind's module
//! renders its own) behind the fixed prelude `apply.sh`.

use serde::Serialize;

use super::file::{parent, staging_path};
use super::script::Sh;
use super::{DEFAULT_TIMEOUT, Intent, Script, directory, exec, file, package, service};
use crate::catalog::{Catalog, File, Mode, Resource, Service};
use crate::plan::{Change, HostPlan};
use crate::state::Applied;

const PRELUDE: &str = include_str!("apply.sh");

/// One thing the apply script does, in order. `id` is the resource id its output line names.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The host is as the plan saw it: its applied record is still the one of run `run`
    /// (`None`: it had none). Checked under the lock, before anything changes, so a plan made
    /// before another run changed the host (while its operator read it, or between batches) is
    /// refused, not applied over what that run did.
    Expect {
        run: Option<String>,
    },
    /// `apt` and `dnf` are the package as each manager pins it.
    InstallPackage {
        id: String,
        name: String,
        apt: String,
        dnf: String,
        /// Seconds its command may run.
        timeout: u64,
    },
    RemovePackage {
        id: String,
        name: String,
        /// Seconds its command may run.
        timeout: u64,
    },
    CreateDirectory {
        id: String,
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Mode,
    },
    /// Owner, group and mode of a directory or file whose content stays.
    FixAttributes {
        id: String,
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Mode,
    },
    /// The next `len` bytes of stdin become `staged`, validated and synced.
    StageFile {
        id: String,
        path: String,
        staged: String,
        len: usize,
        owner: Option<String>,
        group: Option<String>,
        mode: Mode,
        validate: Option<String>,
        /// Seconds its command may run.
        timeout: u64,
    },
    /// Room for the backups of these files, checked before anything is written.
    CheckSpace(Vec<String>),
    /// A copy of the file as it is, taken before the first rename (of any file).
    Backup(String),
    /// The restarts (and refreshes) the staged changes owe, recorded before the first rename.
    OweRestarts(Vec<String>),
    PlaceFile {
        id: String,
        path: String,
        staged: String,
    },
    RemoveFile {
        id: String,
        path: String,
    },
    SyncDirectory(String),
    RunExec {
        id: String,
        command: String,
        /// Seconds its command may run.
        timeout: u64,
    },
    RefreshExec {
        id: String,
        command: String,
        /// Seconds its command may run.
        timeout: u64,
    },
    RestartService {
        id: String,
        restart: service::Start,
    },
    StartService {
        id: String,
        start: service::Start,
    },
    StopService {
        id: String,
        stop: String,
        /// Seconds its command may run.
        timeout: u64,
    },
    /// The applied record (JSON), written atomically: the last change.
    RecordApplied(String),
    /// Only the backups of the newest this many runs stay.
    Prune(usize),
}

/// What an apply script runs as, besides its plan.
pub struct Run<'a> {
    /// The record the host gets (commit, this run's id, file hashes).
    pub applied: &'a Applied,
    /// The run whose record the plan saw on the host (`None`: it had none).
    pub expected: Option<&'a str>,
    /// Who holds the host's lock, as a second run shows it.
    pub lock_owner: &'a str,
    /// Where the engine keeps its state on the host.
    pub state_dir: &'a str,
    /// How many runs' backups stay.
    pub keep_backups: usize,
}

/// The files `plan` writes new content to (created, or updated with other content), each with
/// the path it is written at: its own, or where a symlink it follows resolves to.
fn staged_files<'c>(catalog: &'c Catalog, plan: &HostPlan) -> Vec<(&'c File, String)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::CreateFile { path, through, .. } => Some((path, through)),
            Change::UpdateFile { path, from_sha256, to_sha256, through, .. }
                if from_sha256 != to_sha256 =>
            {
                Some((path, through))
            }
            _ => None,
        })
        .filter_map(|(path, through)| {
            catalog.file(path).map(|f| (f, through.clone().unwrap_or_else(|| path.clone())))
        })
        .collect()
}

/// The patched files `plan` writes: (resource id, path, content, mode).
fn patched_files(plan: &HostPlan) -> Vec<(String, &str, &str, Mode)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::PatchFile { path, .. } => plan.patched.iter().find(|p| &p.path == path),
            _ => None,
        })
        .filter_map(|p| {
            let content = p.content.as_deref()?;
            Some((format!("patch:{}", p.path), p.path.as_str(), content, Mode(p.mode & 0o7777)))
        })
        .collect()
}

fn service<'c>(catalog: &'c Catalog, name: &str) -> Option<&'c Service> {
    catalog.resources.iter().find_map(|r| match r {
        Resource::Service(sv) if sv.name == name => Some(sv),
        _ => None,
    })
}

/// An exec's command and the seconds it may run.
fn exec_command<'c>(catalog: &'c Catalog, name: &str) -> Option<(&'c str, u64)> {
    catalog.resources.iter().find_map(|r| match r {
        Resource::Exec(x) if x.name == name => Some((x.command.as_str(), limit(x.timeout))),
        _ => None,
    })
}

fn package_timeout(catalog: &Catalog, name: &str) -> u64 {
    let timeout = catalog.resources.iter().find_map(|r| match r {
        Resource::Package(p) if p.name == name => p.timeout,
        _ => None,
    });
    limit(timeout)
}

/// A resource's `timeout`, or the default.
fn limit(timeout: Option<u64>) -> u64 {
    timeout.unwrap_or(DEFAULT_TIMEOUT).max(1)
}

/// The steps converging a host to `plan` (which must have been computed from `catalog` against
/// a host whose applied record was the one of run `ctx.expected`).
pub fn steps(catalog: &Catalog, plan: &HostPlan, ctx: &Run<'_>) -> Vec<Step> {
    let run = &ctx.applied.run_id;
    let mut steps = vec![Step::Expect { run: ctx.expected.map(str::to_string) }];
    // Packages first: a package may create the directories and users the files need.
    for c in &plan.changes {
        match c {
            Change::InstallPackage { name, ensure, .. } => {
                steps.push(package::install(c.id(), name, ensure, package_timeout(catalog, name)))
            }
            Change::RemovePackage { name } => {
                let timeout = package_timeout(catalog, name);
                steps.push(Step::RemovePackage { id: c.id(), name: name.clone(), timeout })
            }
            _ => {}
        }
    }
    for c in &plan.changes {
        match c {
            Change::CreateDirectory { path, owner, group, mode } => {
                steps.push(Step::CreateDirectory {
                    id: c.id(),
                    path: path.clone(),
                    owner: owner.clone(),
                    group: group.clone(),
                    mode: *mode,
                })
            }
            Change::FixDirectory { path, .. } => {
                if let Some(d) = catalog.resources.iter().find_map(|r| match r {
                    Resource::Directory(d) if &d.path == path => Some(d),
                    _ => None,
                }) {
                    steps.push(Step::FixAttributes {
                        id: c.id(),
                        path: path.clone(),
                        owner: d.owner.clone(),
                        group: d.group.clone(),
                        mode: d.mode,
                    });
                }
            }
            _ => {}
        }
    }
    // What will be backed up: old files whose content changes, and files that go.
    let replaced: Vec<String> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::UpdateFile { path, from_sha256, to_sha256, through, .. }
                if from_sha256 != to_sha256 =>
            {
                Some(through.clone().unwrap_or_else(|| path.clone()))
            }
            // The symlink itself (`links = "replace"`).
            Change::CreateFile { path, replacing: Some(_), .. } => Some(path.clone()),
            Change::RemoveFile { path, .. } => Some(path.clone()),
            _ => None,
        })
        .chain(patched_files(plan).into_iter().map(|(_, path, _, _)| path.to_string()))
        .collect();
    if !replaced.is_empty() {
        steps.push(Step::CheckSpace(replaced.clone()));
    }
    // Stage: nothing visible changes until every file is written and validated.
    let staged = staged_files(catalog, plan);
    for (f, at) in &staged {
        steps.push(Step::StageFile {
            id: format!("file:{}", f.path),
            path: at.clone(),
            staged: staging_path(at, run),
            len: f.content.len(),
            owner: f.owner.clone(),
            group: f.group.clone(),
            mode: f.mode,
            validate: f.validate.clone(),
            timeout: limit(f.timeout),
        });
    }
    // A patched file is the package's: it keeps the owner, group and mode it has.
    let patched = patched_files(plan);
    for (id, path, content, mode) in &patched {
        steps.push(Step::StageFile {
            id: id.clone(),
            path: path.to_string(),
            staged: staging_path(path, run),
            len: content.len(),
            owner: None,
            group: None,
            mode: *mode,
            validate: None,
            timeout: DEFAULT_TIMEOUT,
        });
    }
    // Every backup before the first rename: one that fails leaves every file as it was.
    steps.extend(replaced.into_iter().map(Step::Backup));
    // Commit point. Restarts are recorded before the first rename, so a run interrupted from
    // here on still owes them to the next run.
    if !plan.restarts.is_empty() {
        steps.push(Step::OweRestarts(plan.restarts.iter().map(|r| r.resource.clone()).collect()));
    }
    for (f, at) in &staged {
        steps.push(Step::PlaceFile {
            id: format!("file:{}", f.path),
            path: at.clone(),
            staged: staging_path(at, run),
        });
    }
    for (id, path, _, _) in &patched {
        let staged = staging_path(path, run);
        steps.push(Step::PlaceFile { id: id.clone(), path: path.to_string(), staged });
    }
    for c in &plan.changes {
        match c {
            Change::UpdateFile { path, from_sha256, to_sha256, .. } if from_sha256 == to_sha256 => {
                if let Some(f) = catalog.file(path) {
                    steps.push(Step::FixAttributes {
                        id: c.id(),
                        path: path.clone(),
                        owner: f.owner.clone(),
                        group: f.group.clone(),
                        mode: f.mode,
                    });
                }
            }
            Change::RemoveFile { path, .. } => {
                steps.push(Step::RemoveFile { id: c.id(), path: path.clone() })
            }
            _ => {}
        }
    }
    let mut dirs = managed_dirs(catalog);
    dirs.extend(staged.iter().map(|(_, at)| parent(at)));
    dirs.extend(patched.iter().map(|(_, path, _, _)| parent(path)));
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        steps.push(Step::SyncDirectory(d.to_string()));
    }
    // Runs, refreshes, restarts, starts and stops: in the catalog's action order (profile by
    // profile), not grouped by kind, so an exec can rely on the services before it.
    let mut actions: Vec<Step> = Vec::new();
    for c in &plan.changes {
        if let Change::RunExec { name } = c
            && let Some(command) = exec_command(catalog, name)
        {
            actions.push(Step::RunExec {
                id: c.id(),
                command: command.0.to_string(),
                timeout: command.1,
            });
        }
    }
    for r in &plan.restarts {
        if let Some(name) = r.resource.strip_prefix("service:") {
            let Some(sv) = service(catalog, name) else { continue };
            let restart = service::Start::new(sv, service::restart_command(sv), limit(sv.timeout));
            actions.push(Step::RestartService { id: r.resource.clone(), restart });
        } else if let Some(name) = r.resource.strip_prefix("exec:")
            && let Some(command) = exec_command(catalog, name)
        {
            let (command, timeout) = (command.0.to_string(), command.1);
            actions.push(Step::RefreshExec { id: r.resource.clone(), command, timeout });
        }
    }
    for c in &plan.changes {
        match c {
            Change::StartService { name } => {
                let Some(sv) = service(catalog, name) else { continue };
                let start = service::Start::new(sv, service::start_command(sv), limit(sv.timeout));
                actions.push(Step::StartService { id: c.id(), start });
            }
            Change::StopService { name } => {
                let Some(sv) = service(catalog, name) else { continue };
                let (stop, timeout) = (service::stop_command(sv), limit(sv.timeout));
                actions.push(Step::StopService { id: c.id(), stop, timeout });
            }
            _ => {}
        }
    }
    let order = catalog.action_order();
    let position = |step: &Step| {
        let id = match step {
            Step::RunExec { id, .. }
            | Step::RefreshExec { id, .. }
            | Step::RestartService { id, .. }
            | Step::StartService { id, .. }
            | Step::StopService { id, .. } => id.as_str(),
            _ => "",
        };
        order.iter().position(|o| o == id).unwrap_or(order.len())
    };
    actions.sort_by_key(position);
    steps.extend(actions);
    let record = serde_json::to_string(ctx.applied).expect("applied record serialises");
    steps.push(Step::RecordApplied(record));
    steps.push(Step::Prune(ctx.keep_backups));
    steps
}

/// The directories holding managed and patched files, sorted, once each.
fn managed_dirs(catalog: &Catalog) -> Vec<&str> {
    let files = catalog.files().map(|f| parent(&f.path));
    let mut dirs: Vec<&str> = files.chain(catalog.patches().map(|p| parent(&p.path))).collect();
    dirs.sort_unstable();
    dirs.dedup();
    dirs
}

/// The apply script for `plan` (computed from `catalog`), holding the host's lock as
/// `lock_owner`, with the engine's state in `state_dir` on the host.
pub fn script(catalog: &Catalog, plan: &HostPlan, ctx: &Run<'_>) -> Script {
    let steps = steps(catalog, plan, ctx);
    let run_id = &ctx.applied.run_id;
    let mut sh = header(run_id, ctx.lock_owner, ctx.state_dir);
    // A run killed before its renames leaves staged files behind; they are never managed
    // content, so clear them (only ours: the name pattern is specific).
    let dirs = managed_dirs(catalog);
    if !dirs.is_empty() {
        sh.code("rm -f --");
        for d in dirs {
            sh.path(d).code("/.*.stackdeploy-tmp.*");
        }
        sh.code(" 2>/dev/null").nl();
    }
    sh.code("cleanup() { rm -f");
    for step in &steps {
        if let Step::StageFile { staged, .. } = step {
            sh.path(staged);
        }
    }
    sh.code(" 2>/dev/null; }").nl();
    let mut stdin = Vec::new();
    // Steps of one kind that follow each other run as one batch: the programs they launch
    // are what a first apply costs on the host.
    let mut rest = &steps[..];
    while let Some(step) = rest.first() {
        let same = rest
            .iter()
            .take_while(|s| std::mem::discriminant(*s) == std::mem::discriminant(step))
            .count();
        let (batch, after) = rest.split_at(same);
        rest = after;
        match step {
            Step::StageFile { .. } => {
                let files: Vec<file::Staging<'_>> = batch.iter().filter_map(staging).collect();
                let patched = patched_files(plan);
                for f in &files {
                    let content = match f.id.strip_prefix("file:") {
                        Some(p) => catalog.file(p).map(|f| &*f.content),
                        None => patched.iter().find(|p| p.0 == f.id).map(|p| p.2),
                    };
                    stdin.extend_from_slice(content.unwrap_or_default().as_bytes());
                }
                stdin.extend_from_slice(file::end_marker(run_id).as_bytes());
                file::render_stage_all(&mut sh, &files);
            }
            Step::Backup(_) => {
                let paths: Vec<&str> = batch
                    .iter()
                    .filter_map(|s| match s {
                        Step::Backup(p) => Some(p.as_str()),
                        _ => None,
                    })
                    .collect();
                sh.call("backup", &paths);
            }
            Step::SyncDirectory(_) => {
                sh.code("sync --");
                for s in batch {
                    if let Step::SyncDirectory(dir) = s {
                        sh.path(dir);
                    }
                }
                sh.code(" 2>/dev/null || true").nl();
            }
            _ => batch.iter().for_each(|s| render(&mut sh, s)),
        }
    }
    sh.code("[ -s \"$SD/pending-restarts\" ] || rm -f \"$SD/pending-restarts\"\nsay DONE - -").nl();
    Script { command: sh.finish(), stdin, timeout: None, intent: Intent::Apply(steps) }
}

/// The script's start: the state directory, the run, the prelude (which takes the lock), who
/// holds the lock.
fn header(run_id: &str, lock_owner: &str, state_dir: &str) -> Sh {
    let mut sh = Sh::new();
    sh.code("set -u\numask 022").nl();
    sh.assign("SD", state_dir).nl().assign("RUN", run_id).nl();
    sh.prelude(PRELUDE);
    // Who holds the lock, as a second run shows it: the run, and the shell on the host that
    // holds it, since when.
    sh.code("printf '%s (pid %s on the host, since %s)\\n'").arg(lock_owner);
    sh.code(" \"$$\" \"$(date -u '+%Y-%m-%d %H:%M:%S UTC')\" > \"$SD/lock.owner\"").nl();
    sh
}

/// For a host with nothing to do: checks under its lock that it is still as the plan saw it
/// (so "unchanged" is true when it is said), and changes nothing.
pub fn verify(expected: Option<&str>, run_id: &str, lock_owner: &str, state_dir: &str) -> Script {
    let steps = vec![Step::Expect { run: expected.map(str::to_string) }];
    let mut sh = header(run_id, lock_owner, state_dir);
    for step in &steps {
        render(&mut sh, step);
    }
    sh.code("say DONE - -").nl();
    Script { command: sh.finish(), stdin: Vec::new(), timeout: None, intent: Intent::Apply(steps) }
}

/// A StageFile step as the batch that stages it takes it.
fn staging(step: &Step) -> Option<file::Staging<'_>> {
    match step {
        Step::StageFile { id, path, staged, len, owner, group, mode, validate, timeout } => {
            Some(file::Staging {
                id,
                path,
                staged,
                len: *len,
                owner: owner.as_deref(),
                group: group.as_deref(),
                mode: *mode,
                validate: validate.as_deref().map(|v| (v, *timeout)),
            })
        }
        _ => None,
    }
}

/// A step that runs on its own (stages, backups and directory syncs run in batches).
fn render(sh: &mut Sh, step: &Step) {
    match step {
        Step::Expect { run } => {
            sh.code("expect_state").arg(run.as_deref().unwrap_or("-")).nl();
        }
        Step::InstallPackage { id, name, apt, dnf, timeout } => {
            package::render_install(sh, id, name, apt, dnf, *timeout)
        }
        Step::RemovePackage { id, name, timeout } => package::render_remove(sh, id, name, *timeout),
        Step::CreateDirectory { id, path, owner, group, mode } => {
            directory::render_create(sh, id, path, owner.as_deref(), group.as_deref(), *mode)
        }
        Step::FixAttributes { id, path, owner, group, mode } => {
            file::render_fix(sh, id, path, owner.as_deref(), group.as_deref(), *mode)
        }
        Step::CheckSpace(paths) => {
            sh.call("need_space", &paths.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Step::Prune(keep) => {
            sh.code("prune_backups").int(keep).nl();
        }
        Step::OweRestarts(ids) => {
            sh.code("printf '%s\\n'");
            for id in ids {
                sh.arg(id);
            }
            sh.code(" >> \"$SD/pending-restarts\" && sync \"$SD/pending-restarts\" 2>/dev/null")
                .nl();
        }
        Step::PlaceFile { id, path, staged } => file::render_place(sh, id, path, staged),
        Step::RemoveFile { id, path } => file::render_remove(sh, id, path),
        Step::RunExec { id, command, timeout } => exec::render_run(sh, id, command, *timeout),
        Step::RefreshExec { id, command, timeout } => {
            exec::render_refresh(sh, id, command, *timeout)
        }
        Step::RestartService { id, restart } => {
            service::render_start(sh, id, service::Starting::Restart, restart)
        }
        Step::StartService { id, start } => {
            service::render_start(sh, id, service::Starting::Start, start)
        }
        Step::StopService { id, stop, timeout } => service::render_stop(sh, id, stop, *timeout),
        Step::StageFile { .. } | Step::Backup(_) | Step::SyncDirectory(_) => {
            unreachable!("rendered in batches by `script`")
        }
        Step::RecordApplied(record) => {
            sh.code("{ printf '%s\\n'").arg(record);
            sh.code(" > \"$SD/applied.json.tmp\" && sync \"$SD/applied.json.tmp\" && mv -f \"$SD/applied.json.tmp\" \"$SD/applied.json\"; } || fail state \"cannot record the applied state (disk full?)\"").nl();
        }
    }
}

/// What the apply script reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Resources changed, with what happened (`written`, `restarted`, ...).
    pub done: Vec<(String, String)>,
    /// The resource that failed and why, when the run failed.
    pub failed: Option<(String, String)>,
    /// Set when another run holds the host's lock: who.
    pub locked_by: Option<String>,
    /// Set when the host changed since it was planned: its applied record now (JSON).
    pub stale: Option<String>,
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
            "STALE" => r.stale = Some(detail),
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

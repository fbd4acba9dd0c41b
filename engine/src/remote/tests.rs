//! The scripts as the hosts get them: snapshots of the generated text for a representative
//! catalog, shellcheck on the preludes and the generated scripts, and the scripts run for real
//! by this machine's `sh` on files under a temporary directory (the lab tests run them on
//! real hosts over SSH).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::fixtures::{rep_applied, rep_catalog, rep_plan};
use super::{Script, apply, probe};
use crate::catalog::{Catalog, Directory, Exec, File, Mode, Package, Resource};
use crate::digest::sha256_hex;
use crate::plan::{HostPlan, OldContent, plan_host};
use crate::state::{Applied, Observed, PathState, STATE_DIR};

const OWNER: &str = "run 1700000000-42 by ci@box (pid 7)";
/// The run whose applied record the representative plan saw.
const SEEN: Option<&str> = Some("1699999999-7");

#[test]
fn probe_script_snapshot() {
    let script = probe::script(&rep_catalog(), &["/etc/app/gone.conf".to_string()], STATE_DIR);
    insta::assert_snapshot!("probe", script.command);
    let fetch = probe::fetch_script(&["/etc/app/app.conf", "/etc/a b"]);
    insta::assert_snapshot!("fetch", fetch.command);
}

#[test]
fn apply_script_snapshot() {
    let script =
        apply::script(&rep_catalog(), &rep_plan(), &run(&rep_applied(), SEEN, OWNER, STATE_DIR));
    insta::assert_snapshot!("apply", script.command);
    // File contents follow on stdin in the order the files are staged, then the end marker.
    assert_eq!(script.stdin, b"port = 80\nk3y\nx\nEND 1700000000-42\n");
}

/// How the tests' apply scripts run: keeping three runs' backups.
fn run<'a>(
    applied: &'a Applied,
    expected: Option<&'a str>,
    owner: &'a str,
    state_dir: &'a str,
) -> apply::Run<'a> {
    apply::Run { applied, expected, lock_owner: owner, state_dir, keep_backups: 3 }
}

fn shellcheck(name: &str, text: &str) {
    let mut child = Command::new("shellcheck")
        .args(["--shell=sh", "--severity=warning", "--format=gcc", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run shellcheck ({e}); install it: `bash .ci/install-deps` (as root)")
        });
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "shellcheck finds problems in {name}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn preludes_and_generated_scripts_pass_shellcheck() {
    shellcheck("probe.sh", include_str!("probe.sh"));
    shellcheck("apply.sh", include_str!("apply.sh"));
    let catalog = rep_catalog();
    shellcheck("the probe script", &probe::script(&catalog, &[], STATE_DIR).command);
    shellcheck("the fetch script", &probe::fetch_script(&["/a b", "/c"]).command);
    let apply = apply::script(&catalog, &rep_plan(), &run(&rep_applied(), SEEN, OWNER, STATE_DIR));
    shellcheck("the apply script", &apply.command);
}

/// A scratch host: files under a temporary directory, the engine's state in `state/` there.
struct Scratch {
    dir: tempfile::TempDir,
    user: String,
    group: String,
}

impl Scratch {
    fn new() -> Scratch {
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        Scratch { dir: tempfile::tempdir().unwrap(), user: id("-un"), group: id("-gn") }
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.dir.path().display())
    }

    fn state_dir(&self) -> String {
        self.path("state")
    }

    fn file(&self, rel: &str, content: &str, validate: Option<&str>) -> Resource {
        Resource::File(File {
            profile: "p".into(),
            path: self.path(rel),
            content: content.into(),
            sha256: sha256_hex(content.as_bytes()),
            owner: Some(self.user.clone()),
            group: Some(self.group.clone()),
            mode: Mode(0o640),
            validate: validate.map(str::to_string),
            notify: vec![],
            secret: false,
            timeout: None,
            links: Default::default(),
        })
    }

    fn catalog(&self, resources: Vec<Resource>) -> Catalog {
        crate::catalog::fixtures::catalog("scratch", "r", resources)
    }

    /// Runs a script with this machine's `sh`; `path` replaces `PATH` when given.
    fn run(&self, script: &Script, path: Option<&str>) -> (i32, String, String) {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(&script.command).stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&script.stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    fn probe(&self, catalog: &Catalog) -> Observed {
        self.probe_with(catalog, &[])
    }

    fn probe_with(&self, catalog: &Catalog, extra: &[String]) -> Observed {
        let script = probe::script(catalog, extra, &self.state_dir());
        let (code, out, err) = self.run(&script, None);
        assert_eq!(code, 0, "probe failed: {err}");
        let request = script.intent.probe().unwrap();
        probe::parse("scratch", &out, request).unwrap_or_else(|e| panic!("{e}\n{out}\n{err}"))
    }

    /// Probes as a rollout does: a first look, then again with the paths the host's record
    /// lists that the catalog no longer has.
    fn plan(&self, catalog: &Catalog) -> (HostPlan, Observed) {
        let mut observed = self.probe(catalog);
        let extra: Vec<String> = observed
            .applied
            .iter()
            .flat_map(|a| a.files.keys())
            .filter(|p| !observed.paths.contains_key(*p))
            .cloned()
            .collect();
        if !extra.is_empty() {
            observed = self.probe_with(catalog, &extra);
        }
        let none = BTreeMap::new();
        let old = OldContent {
            files: &none,
            secrets: None,
            label: "on host",
            withheld: &Default::default(),
        };
        (plan_host(catalog, &observed, "c1", &old).unwrap(), observed)
    }

    fn applied(&self, catalog: &Catalog) -> Applied {
        Applied {
            patches: Default::default(),
            commit: "c1".into(),
            run_id: "r1".into(),
            time: 1,
            files: catalog.files().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
        }
    }

    /// Plans `catalog` against the scratch host and applies it; returns the script's report.
    fn apply(&self, catalog: &Catalog, path: Option<&str>) -> (i32, apply::Report, String) {
        let (plan, observed) = self.plan(catalog);
        self.apply_plan(catalog, &plan, &observed, path)
    }

    fn apply_plan(
        &self,
        catalog: &Catalog,
        plan: &HostPlan,
        observed: &Observed,
        path: Option<&str>,
    ) -> (i32, apply::Report, String) {
        let applied = self.applied(catalog);
        let seen = observed.applied.as_ref().map(|a| a.run_id.as_str());
        let script = apply::script(catalog, plan, &run(&applied, seen, OWNER, &self.state_dir()));
        let (code, out, err) = self.run(&script, path);
        (code, apply::parse(&out), err)
    }
}

#[test]
fn a_local_apply_converges_and_a_second_plan_is_empty() {
    let s = Scratch::new();
    let catalog = s.catalog(vec![
        Resource::Directory(Directory {
            profile: "p".into(),
            path: s.path("etc"),
            owner: Some(s.user.clone()),
            group: Some(s.group.clone()),
            mode: Mode(0o750),
        }),
        s.file("etc/app.conf", "port = 80\n", Some("grep -q port %")),
        s.file("etc/it's a file.conf", "x\n", None),
        Resource::Exec(Exec {
            profile: "p".into(),
            name: "init".into(),
            command: format!("touch {}", crate::shell::quote(&s.path("initialised"))),
            creates: Some(s.path("initialised")),
            unless: None,
            refreshonly: false,
            notify: vec![],
            timeout: None,
        }),
    ]);
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(report.done.len(), 4, "{report:?}");
    assert_eq!(std::fs::read_to_string(s.path("etc/app.conf")).unwrap(), "port = 80\n");
    assert!(Path::new(&s.path("initialised")).exists());
    let (plan, observed) = s.plan(&catalog);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(observed.applied.unwrap().commit, "c1");
}

/// A path with a backslash: GNU sha256sum escapes it in its output, and the probe used to
/// read the escaped name and report "no hash" for the file, on every probe.
#[test]
fn a_path_with_a_backslash_is_probed_with_its_hash() {
    let s = Scratch::new();
    let content = "hello\n";
    std::fs::write(s.path("back\\slash.conf"), content).unwrap();
    std::fs::write(s.path("plain.conf"), content).unwrap();
    let catalog = s.catalog(vec![
        s.file("back\\slash.conf", content, None),
        s.file("plain.conf", content, None),
    ]);
    let observed = s.probe(&catalog);
    for rel in ["back\\slash.conf", "plain.conf"] {
        match &observed.paths[&s.path(rel)] {
            crate::state::PathState::File { sha256, .. } => {
                assert_eq!(sha256, &sha256_hex(content.as_bytes()), "{rel}")
            }
            other => panic!("{rel}: {other:?}"),
        }
    }
}

/// `%` elsewhere in a validate command (`date +%s`) is the command's own: only the placeholder
/// becomes the staged file. Every `%` used to be replaced, so this validate never passed.
#[test]
fn validate_replaces_only_its_placeholder() {
    let s = Scratch::new();
    let validate = "[ \"$(date +%Y)\" -gt 2000 ] && printf '%s' x >/dev/null && grep -q hello %";
    let catalog = s.catalog(vec![s.file("v.conf", "hello\n", Some(validate))]);
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.failed.is_none(), "{report:?} {err}");
    assert_eq!(std::fs::read_to_string(s.path("v.conf")).unwrap(), "hello\n");

    // And a validate that fails keeps the old file.
    std::fs::write(s.path("v.conf"), "old\n").unwrap();
    let catalog = s.catalog(vec![s.file("v.conf", "bye\n", Some("grep -q hello %"))]);
    let (code, report, _) = s.apply(&catalog, None);
    assert_eq!(code, 1);
    assert!(report.failed.unwrap().1.starts_with("validate failed, the old file is kept"));
    assert_eq!(std::fs::read_to_string(s.path("v.conf")).unwrap(), "old\n");
}

/// On a host with dnf (and no apt-get), a pinned package is installed as `name-version`. The
/// dnf branch used to read an argument it was never given and aborted under `set -u`.
#[test]
fn a_dnf_host_installs_the_pinned_version() {
    let s = Scratch::new();
    let bin = s.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = s.path("dnf.log");
    let dnf = format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n", crate::shell::quote(&log));
    std::fs::write(format!("{bin}/dnf"), dnf).unwrap();
    std::process::Command::new("chmod").args(["+x", &format!("{bin}/dnf")]).status().unwrap();
    // What the script needs besides the package manager, and no apt-get.
    for tool in [
        "mkdir", "chmod", "flock", "tail", "tr", "cat", "mv", "rm", "sync", "grep", "timeout",
        "sleep", "date", "env", "sh",
    ] {
        let found =
            Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap();
        let target = String::from_utf8(found.stdout).unwrap().trim().to_string();
        std::os::unix::fs::symlink(target, format!("{bin}/{tool}")).unwrap();
    }
    let catalog = s.catalog(vec![
        Resource::Package(Package {
            profile: "p".into(),
            name: "app-tools".into(),
            ensure: "1.2-3".into(),
            provider: None,
            timeout: None,
        }),
        Resource::Package(Package {
            profile: "p".into(),
            name: "app-server".into(),
            ensure: "present".into(),
            provider: None,
            timeout: None,
        }),
    ]);
    let (plan, _) = s.plan(&catalog);
    let script =
        apply::script(&catalog, &plan, &run(&s.applied(&catalog), None, OWNER, &s.state_dir()));
    let (code, out, err) = s.run(&script, Some(&bin));
    let report = apply::parse(&out);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "install -y --allowerasing -- app-tools-1.2-3\ninstall -y --allowerasing -- app-server\n"
    );
}

#[test]
fn a_second_run_waits_for_nobody_and_names_the_holder() {
    let s = Scratch::new();
    let catalog = s.catalog(vec![s.file("a.conf", "a\n", None)]);
    std::fs::create_dir_all(s.state_dir()).unwrap();
    std::fs::write(format!("{}/lock.owner", s.state_dir()), "run 9 by bob\n").unwrap();
    let lock = format!("{}/lock", s.state_dir());
    // One process holding the lock (fd 9), so killing it releases the lock.
    let hold = format!("exec 9>>{}; flock 9; exec sleep 20", crate::shell::quote(&lock));
    let mut holder = Command::new("sh")
        .args(["-c", &hold])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, report, _) = s.apply(&catalog, None);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 75);
    assert_eq!(report.locked_by.as_deref(), Some("run 9 by bob"));
    assert!(!Path::new(&s.path("a.conf")).exists(), "nothing written while locked");
}

/// Paths the compiler refuses today may still be in a host's applied record, from a time it
/// did not: the probe reports them (by position, and through sha256sum's escapes), and they are
/// removed like any file that left the catalog. Such a host used to fail every probe.
#[test]
fn odd_paths_in_the_applied_record_are_probed_and_removed() {
    let s = Scratch::new();
    let odd = ["new\nline.conf", "trailing.conf ", "back\\slash.conf", "tab\there.conf"];
    let paths: Vec<String> = odd.iter().map(|n| s.path(n)).collect();
    for p in &paths {
        std::fs::write(p, "old\n").unwrap();
    }
    std::fs::create_dir_all(s.state_dir()).unwrap();
    let record = Applied {
        patches: Default::default(),
        commit: "c0".into(),
        run_id: "r0".into(),
        time: 1,
        files: paths.iter().map(|p| (p.clone(), sha256_hex(b"old\n"))).collect(),
    };
    let json = serde_json::to_string(&record).unwrap();
    std::fs::write(format!("{}/applied.json", s.state_dir()), json).unwrap();
    let catalog = s.catalog(vec![]);
    let observed = s.probe_with(&catalog, &paths);
    for p in &paths {
        let state = observed.paths.get(p);
        assert!(
            matches!(state, Some(crate::state::PathState::File { sha256, .. }) if *sha256 == sha256_hex(b"old\n")),
            "{p:?}: {state:?}"
        );
    }
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(report.done.len(), 4, "{report:?}");
    for p in &paths {
        assert!(!Path::new(p).exists(), "{p:?} left");
    }
}

/// A plan made before another run changed the host is refused under the lock, and nothing is
/// changed: the other run's files stay.
#[test]
fn a_plan_the_host_moved_away_from_is_refused_under_the_lock() {
    let s = Scratch::new();
    let catalog = s.catalog(vec![s.file("a.conf", "mine\n", None)]);
    let (plan, observed) = s.plan(&catalog);
    // Meanwhile another run writes the file and its record.
    std::fs::write(s.path("a.conf"), "theirs\n").unwrap();
    std::fs::create_dir_all(s.state_dir()).unwrap();
    let theirs = Applied {
        commit: "c9".into(),
        run_id: "999-9".into(),
        time: 2,
        files: Default::default(),
        patches: Default::default(),
    };
    std::fs::write(
        format!("{}/applied.json", s.state_dir()),
        serde_json::to_string(&theirs).unwrap(),
    )
    .unwrap();
    let (code, report, _) = s.apply_plan(&catalog, &plan, &observed, None);
    assert_eq!(code, 76);
    assert!(report.stale.unwrap().contains("\"run_id\":\"999-9\""));
    assert!(report.done.is_empty());
    assert_eq!(std::fs::read_to_string(s.path("a.conf")).unwrap(), "theirs\n");
    // Planned again, it goes through.
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(std::fs::read_to_string(s.path("a.conf")).unwrap(), "mine\n");
}

fn exec(s: &Scratch, name: &str, command: &str, timeout: Option<u64>) -> Resource {
    let _ = s;
    Resource::Exec(Exec {
        profile: "p".into(),
        name: name.into(),
        command: command.into(),
        creates: None,
        unless: None,
        refreshonly: false,
        notify: vec![],
        timeout,
    })
}

/// Processes of this machine whose command line is `needle` (NUL-separated arguments).
fn processes(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == needle.as_bytes())
        })
        .collect()
}

/// A command that hangs is killed at its resource's timeout, and the run fails saying so.
#[test]
fn a_hung_command_is_killed_at_its_timeout() {
    let s = Scratch::new();
    let catalog = s.catalog(vec![exec(&s, "hang", "sleep 71; echo never", Some(2))]);
    let started = std::time::Instant::now();
    let (code, report, _) = s.apply(&catalog, None);
    assert_eq!(code, 1);
    let (id, why) = report.failed.unwrap();
    assert_eq!(id, "exec:hang");
    assert!(why.contains("timed out after 2 s"), "{why}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(processes("sleep\u{0}71\u{0}").is_empty(), "the command lives on");
}

/// The client goes away in the middle of a long command (its SSH session ends): the run stops
/// within seconds, with the command it runs, and the host is not left locked.
#[test]
fn a_run_whose_client_is_gone_stops_and_frees_the_lock() {
    use std::io::Read;
    let s = Scratch::new();
    let catalog = s.catalog(vec![exec(&s, "long", "sleep 72", None)]);
    let (plan, observed) = s.plan(&catalog);
    let seen = observed.applied.as_ref().map(|a| a.run_id.as_str());
    let script =
        apply::script(&catalog, &plan, &run(&s.applied(&catalog), seen, OWNER, &s.state_dir()));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&script.stdin).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes("sleep\u{0}72\u{0}").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the command never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The lock is held meanwhile, and says by whom.
    let lock = format!("{}/lock", s.state_dir());
    let free = || Command::new("flock").args(["-n", &lock, "true"]).status().unwrap().success();
    assert!(!free());
    let owner = std::fs::read_to_string(format!("{}/lock.owner", s.state_dir())).unwrap();
    assert!(
        owner.starts_with(&format!("{OWNER} (pid {} on the host, since ", child.id())),
        "{owner}"
    );
    // The client is gone: nobody reads what the run writes any more.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let _ = stdout.read(&mut first);
    drop(stdout);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the run outlived its client");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(!status.success());
    assert!(free(), "the host is still locked");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(processes("sleep\u{0}72\u{0}").is_empty(), "the command outlived the run");
}

/// `PATH` with `fakes` (name, shell body) in front of the machine's own tools.
fn with_fakes(s: &Scratch, fakes: &[(&str, &str)]) -> String {
    let bin = s.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in fakes {
        let path = format!("{bin}/{name}");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        Command::new("chmod").args(["+x", &path]).status().unwrap();
    }
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// Old files and new ones, all with content, for the backup tests: `n` files the catalog
/// changes from `old` to `new`.
fn changing(s: &Scratch, n: usize, old: &str, new: &str) -> Catalog {
    for i in 0..n {
        std::fs::write(s.path(&format!("f{i}.conf")), old).unwrap();
    }
    s.catalog((0..n).map(|i| s.file(&format!("f{i}.conf"), new, None)).collect())
}

/// Not enough room for the backups is found before anything is written, and said as such.
#[test]
fn no_room_for_backups_is_found_before_anything_changes() {
    let s = Scratch::new();
    let catalog = changing(&s, 3, "old\n", "new\n");
    let df = "echo 'Filesystem 1024-blocks Used Available Capacity Mounted on'; echo 'tiny 100 96 4 96% /var/lib/stackdeploy'";
    let path = with_fakes(&s, &[("df", df)]);
    let (code, report, _) = s.apply(&catalog, Some(&path));
    assert_eq!(code, 1);
    let (id, why) = report.failed.unwrap();
    assert_eq!(id, "state");
    assert!(why.starts_with("no space left on /var/lib/stackdeploy for the backups"), "{why}");
    assert!(why.contains("KB needed, 4 KB free), so nothing was changed"), "{why}");
    for i in 0..3 {
        assert_eq!(std::fs::read_to_string(s.path(&format!("f{i}.conf"))).unwrap(), "old\n");
    }
}

/// A backup that fails (its disk filled up meanwhile) stops the run before the first rename,
/// naming the file and the cause: no file is half-way between old and new commits.
#[test]
fn a_failed_backup_replaces_nothing_and_names_the_cause() {
    let s = Scratch::new();
    let catalog = changing(&s, 3, "old\n", "new\n");
    let cp = r#"for a; do case "$a" in *f1.conf) echo "cp: error writing '$a': No space left on device" >&2; exit 1;; esac; done; exec /bin/cp "$@""#;
    let path = with_fakes(&s, &[("cp", cp)]);
    let (code, report, _) = s.apply(&catalog, Some(&path));
    assert_eq!(code, 1, "{report:?}");
    let (id, why) = report.failed.unwrap();
    assert_eq!(id, format!("file:{}", s.path("f1.conf")));
    assert!(why.contains("cannot back it up into"), "{why}");
    assert!(why.ends_with("No space left on device"), "{why}");
    assert!(report.done.is_empty(), "{:?}", report.done);
    for i in 0..3 {
        assert_eq!(std::fs::read_to_string(s.path(&format!("f{i}.conf"))).unwrap(), "old\n");
    }
}

/// Backups are kept for the newest runs only (three here), so old secrets do not live on.
#[test]
fn backups_are_pruned_to_the_newest_runs() {
    let s = Scratch::new();
    std::fs::write(s.path("a.conf"), "v0\n").unwrap();
    for v in 1..=6 {
        let catalog = s.catalog(vec![s.file("a.conf", &format!("v{v}\n"), None)]);
        let (plan, observed) = s.plan(&catalog);
        let mut applied = s.applied(&catalog);
        applied.run_id = format!("r{v}");
        let seen = observed.applied.as_ref().map(|a| a.run_id.as_str());
        let script = apply::script(&catalog, &plan, &run(&applied, seen, OWNER, &s.state_dir()));
        let (code, out, err) = s.run(&script, None);
        assert_eq!(code, 0, "{out}{err}");
        // Distinct modification times, so the newest are told apart.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut kept: Vec<String> = std::fs::read_dir(format!("{}/backup", s.state_dir()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["r4", "r5", "r6"]);
    let backup = format!("{}/backup/r6{}", s.state_dir(), s.path("a.conf"));
    assert_eq!(std::fs::read_to_string(backup).unwrap(), "v5\n");
}

/// A command-provider service of profile `profile` whose state is the file `state` (present:
/// running); every start and restart appends its name to `log`.
fn marker_service(s: &Scratch, profile: &str, name: &str) -> Resource {
    let state = crate::shell::quote(&s.path(&format!("{name}.running")));
    let log = crate::shell::quote(&s.path("log"));
    Resource::Service(crate::catalog::Service {
        profile: profile.into(),
        name: name.into(),
        ensure: "running".into(),
        enable: true,
        provider: "command".into(),
        unit: None,
        start: Some(format!("touch {state} && echo start-{name} >> {log}")),
        stop: Some(format!("rm -f {state}")),
        status: Some(format!("test -f {state}")),
        restart: Some(format!("touch {state} && echo restart-{name} >> {log}")),
        reload: None,
        timeout: None,
        ready: None,
        ready_timeout: None,
        log: None,
    })
}

/// A profile's one-off command runs after the services of the profiles before it: the
/// databases exec of a later profile needs the database server of an earlier one running. (All
/// execs used to run before any service started.)
#[test]
fn an_exec_runs_after_the_services_of_earlier_profiles() {
    let s = Scratch::new();
    let running = crate::shell::quote(&s.path("db.running"));
    let log = crate::shell::quote(&s.path("log"));
    let mut create = exec(&s, "create-databases", "", None);
    if let Resource::Exec(x) = &mut create {
        x.profile = "databases".into();
        x.command = format!("test -f {running} && echo create >> {log}");
    }
    let catalog = s.catalog(vec![marker_service(&s, "db", "db"), create]);
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(std::fs::read_to_string(s.path("log")).unwrap(), "start-db\ncreate\n");
}

/// What an exec notifies is refreshed after the exec, wherever it sits in the catalog: a
/// schema migration of a later profile restarts the server of an earlier one once it is done.
#[test]
fn what_an_exec_notifies_restarts_after_it() {
    let s = Scratch::new();
    let log = crate::shell::quote(&s.path("log"));
    let mut migrate = exec(&s, "migrate", &format!("echo migrate >> {log}"), None);
    if let Resource::Exec(x) = &mut migrate {
        x.profile = "app".into();
        x.refreshonly = true;
        x.notify = vec!["service:db".into()];
    }
    let mut conf = s.file("app.conf", "v1\n", None);
    if let Resource::File(f) = &mut conf {
        f.profile = "app".into();
        f.notify = vec!["exec:migrate".into()];
    }
    let first = s.catalog(vec![marker_service(&s, "db", "db"), conf.clone(), migrate.clone()]);
    let (code, report, err) = s.apply(&first, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    std::fs::remove_file(s.path("log")).unwrap();
    if let Resource::File(f) = &mut conf {
        f.content = "v2\n".into();
        f.sha256 = sha256_hex(b"v2\n");
    }
    let second = s.catalog(vec![marker_service(&s, "db", "db"), conf, migrate]);
    let (code, report, err) = s.apply(&second, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(std::fs::read_to_string(s.path("log")).unwrap(), "migrate\nrestart-db\n");
}

/// A service whose start command returns at once and which answers a moment later (uWSGI,
/// nova-api): with a `ready` check its start is done only once it answers, so what comes after
/// it in the run finds it working.
#[test]
fn a_start_is_done_when_the_service_is_ready() {
    let s = Scratch::new();
    let (running, answers) = (s.path("svc.running"), s.path("svc.answers"));
    let q = crate::shell::quote;
    let mut svc = marker_service(&s, "api", "svc");
    if let Resource::Service(sv) = &mut svc {
        sv.start = Some(format!(
            "touch {} && (sleep 2; touch {}) >/dev/null 2>&1 &",
            q(&running),
            q(&answers)
        ));
        sv.ready = Some(format!("test -f {}", q(&answers)));
    }
    let mut user = exec(&s, "register", &format!("test -f {}", q(&answers)), None);
    if let Resource::Exec(x) = &mut user {
        x.profile = "client".into();
    }
    let catalog = s.catalog(vec![svc, user]);
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert!(
        report.done.iter().any(|(id, what)| id == "exec:register" && what == "ran"),
        "{report:?}"
    );
}

/// A service that dies while it starts (a bad driver name in its config) fails the host as soon
/// as its status says it stopped, not after the whole `ready_timeout`, and says so. (It used to
/// wait the full timeout and report "not ready".)
#[test]
fn a_service_that_dies_before_it_is_ready_fails_at_once() {
    let s = Scratch::new();
    let log = s.path("svc.log");
    std::fs::write(&log, "CRITICAL nova: ImportError: fake.NoSuchDriver\n").unwrap();
    let state = crate::shell::quote(&s.path("svc.running"));
    let mut svc = marker_service(&s, "api", "svc");
    if let Resource::Service(sv) = &mut svc {
        // Runs for a second, then exits; never ready.
        sv.start = Some(format!("touch {state} && (sleep 1; rm -f {state}) >/dev/null 2>&1 &"));
        sv.ready = Some("echo 'no resource report yet'; false".into());
        sv.ready_timeout = Some(60);
        sv.log = Some(log.clone());
    }
    let (why, took) = start_failure(&s, svc);
    assert!(
        why.starts_with("stopped running after start, before it was ready: no resource report yet"),
        "{why}"
    );
    assert!(why.contains("last lines of its log:\nCRITICAL nova: ImportError"), "{why}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

/// A service that never gets ready fails the host after its `ready_timeout`, and the error
/// shows the check's output and the last lines of the service's log, where the reason is.
#[test]
fn a_service_that_never_gets_ready_fails_with_its_log() {
    let s = Scratch::new();
    let log = s.path("svc.log");
    std::fs::write(&log, "starting\nERROR (1045, \"Access denied for user 'keystone'\")\n")
        .unwrap();
    let mut svc = marker_service(&s, "api", "svc");
    if let Resource::Service(sv) = &mut svc {
        sv.ready = Some("echo 'HTTP 500 from /v3'; false".into());
        sv.ready_timeout = Some(2);
        sv.log = Some(log.clone());
    }
    let (why, took) = start_failure(&s, svc);
    assert!(why.starts_with("not ready after start (2 s): HTTP 500 from /v3"), "{why}");
    assert!(why.contains("last lines of its log:\nstarting\nERROR (1045"), "{why}");
    assert!(took >= std::time::Duration::from_secs(2));
}

/// Applies a catalog of the one service `svc`, which must fail the host; returns why, and how
/// long the apply took.
fn start_failure(s: &Scratch, svc: Resource) -> (String, std::time::Duration) {
    let started = std::time::Instant::now();
    let (code, report, _) = s.apply(&s.catalog(vec![svc]), None);
    assert_eq!(code, 1);
    let (id, why) = report.failed.unwrap();
    assert_eq!(id, "service:svc");
    (why, started.elapsed())
}

/// Commands of the composition never read the run's own input: an SSH session's stdin stays
/// open after the script and its files, and `rabbitmqctl` (like `cat`) reads whatever is there,
/// so it used to swallow the rest of the script or hang. Here stdin stays open, as over SSH.
#[test]
fn commands_read_nothing_from_the_runs_input() {
    let s = Scratch::new();
    let seen = crate::shell::quote(&s.path("seen"));
    let mut svc = marker_service(&s, "p", "svc");
    if let Resource::Service(sv) = &mut svc {
        let start = sv.start.take().unwrap();
        sv.start = Some(format!("cat >> {seen} && {start}"));
    }
    let reads = exec(&s, "reads", &format!("cat > {seen}"), Some(20));
    let catalog = s.catalog(vec![s.file("a.conf", "content\n", None), reads, svc]);
    let (plan, observed) = s.plan(&catalog);
    let seen_run = observed.applied.as_ref().map(|a| a.run_id.as_str());
    let applied = s.applied(&catalog);
    let script = apply::script(&catalog, &plan, &run(&applied, seen_run, OWNER, &s.state_dir()));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&script.stdin).unwrap();
    stdin.write_all(b"what the client sends next\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let report = apply::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(report.complete && report.failed.is_none(), "{report:?}");
    assert_eq!(std::fs::read(s.path("seen")).unwrap(), b"", "a command read the run's input");
}

/// A file whose profile gives no owner or group leaves them as they are, as Puppet and Ansible
/// do: a package ships `/etc/nova/nova.conf` as root:nova so that nova can read it, and a
/// rewrite must not make it root:root. A group given is set; a new file is root's.
#[test]
fn an_unmanaged_owner_and_group_are_kept_when_a_file_is_replaced() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    assert_eq!(s.user, "root", "this test changes owners: run it as root (as CI does)");
    let (kept, half, new) = (s.path("kept.conf"), s.path("half.conf"), s.path("new.conf"));
    for p in [&kept, &half] {
        std::fs::write(p, "old\n").unwrap();
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let unmanaged = |rel: &str, group: Option<&str>| {
        let mut r = s.file(rel, "new\n", None);
        if let Resource::File(f) = &mut r {
            f.owner = None;
            f.group = group.map(str::to_string);
        }
        r
    };
    let catalog = s.catalog(vec![
        unmanaged("kept.conf", None),
        unmanaged("half.conf", Some("root")),
        unmanaged("new.conf", None),
    ]);
    let (plan, _) = s.plan(&catalog);
    let text = crate::report::plan::host_text(&plan, crate::report::Style { color: false });
    assert!(text.contains("(unmanaged):(unmanaged)"), "{text}");
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    let owner = |p: &str| {
        let m = std::fs::metadata(p).unwrap();
        (std::fs::read_to_string(p).unwrap(), m.uid(), m.gid())
    };
    assert_eq!(owner(&kept), ("new\n".into(), 65534, 65534));
    assert_eq!(owner(&half), ("new\n".into(), 65534, 0));
    assert_eq!(owner(&new), ("new\n".into(), 0, 0));
    let (again, _) = s.plan(&catalog);
    assert!(again.is_empty(), "an unmanaged owner is no change: {again:?}");
}

/// A file resource at a path that is a symlink on the host (Debian's `/etc/mysql/my.cnf` is
/// an alternatives link): `s.file` with its `links` policy, over `link.conf -> alt -> real.conf`.
fn linked(s: &Scratch, links: crate::catalog::Links) -> Catalog {
    std::fs::write(s.path("real.conf"), "old\n").unwrap();
    std::os::unix::fs::symlink(s.path("real.conf"), s.path("alt")).unwrap();
    std::os::unix::fs::symlink(s.path("alt"), s.path("link.conf")).unwrap();
    let mut file = s.file("link.conf", "new\n", Some("grep -q new %"));
    if let Resource::File(f) = &mut file {
        f.links = links;
    }
    s.catalog(vec![file])
}

#[test]
fn a_symlink_is_refused_unless_the_file_says_what_to_do() {
    let s = Scratch::new();
    let catalog = linked(&s, crate::catalog::Links::Refuse);
    let observed = s.probe(&catalog);
    let none = BTreeMap::new();
    let old =
        OldContent { files: &none, secrets: None, label: "on host", withheld: &Default::default() };
    let e = plan_host(&catalog, &observed, "c1", &old).unwrap_err().to_string();
    assert!(e.contains(&format!("is a symlink to {} on the host", s.path("alt"))), "{e}");
    assert!(e.contains("links = \"follow\"") && e.contains("links = \"replace\""), "{e}");
}

/// `links = "follow"` writes the file at the end of the chain of links, atomically next to it,
/// and leaves the links as they are; a second plan finds nothing to do.
#[test]
fn a_file_that_follows_links_is_written_where_they_point() {
    let s = Scratch::new();
    let catalog = linked(&s, crate::catalog::Links::Follow);
    let (plan, _) = s.plan(&catalog);
    let text = crate::report::plan::host_text(&plan, crate::report::Style { color: false });
    assert!(text.contains(&format!("link.conf -> {}", s.path("real.conf"))), "{text}");
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    assert_eq!(std::fs::read_link(s.path("link.conf")).unwrap(), Path::new(&s.path("alt")));
    assert_eq!(std::fs::read_link(s.path("alt")).unwrap(), Path::new(&s.path("real.conf")));
    assert_eq!(std::fs::read_to_string(s.path("real.conf")).unwrap(), "new\n");
    let (again, _) = s.plan(&catalog);
    assert!(again.is_empty(), "{again:?}");
    let backup = format!("{}/backup/r1{}", s.state_dir(), s.path("real.conf"));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "old\n", "the old content is kept");
}

/// `links = "replace"` puts a regular file where the link was; the link is kept as a backup
/// and what it pointed to is untouched.
#[test]
fn a_file_that_replaces_a_link_leaves_its_target_alone() {
    let s = Scratch::new();
    let catalog = linked(&s, crate::catalog::Links::Replace);
    let (plan, _) = s.plan(&catalog);
    let text = crate::report::plan::host_text(&plan, crate::report::Style { color: false });
    assert!(text.contains(&format!("replacing the symlink to {}", s.path("alt"))), "{text}");
    let (code, report, err) = s.apply(&catalog, None);
    assert!(code == 0 && report.complete, "{report:?} {err}");
    let meta = std::fs::symlink_metadata(s.path("link.conf")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(std::fs::read_to_string(s.path("link.conf")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(s.path("real.conf")).unwrap(), "old\n");
    let backup = format!("{}/backup/r1{}", s.state_dir(), s.path("link.conf"));
    assert_eq!(std::fs::read_link(&backup).unwrap(), Path::new(&s.path("alt")));
    let (again, _) = s.plan(&catalog);
    assert!(again.is_empty(), "{again:?}");
}

/// `PATH` in which every program of this machine is a wrapper that appends a line to `log`
/// before running the real one: a count of the programs a script launches itself.
fn counting_path(s: &Scratch, log: &str) -> String {
    let bin = s.path("countbin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = s.path("count.sh");
    let real = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let body = format!(
        "#!/bin/sh\necho \"${{0##*/}}\" >> {}\nPATH={real}\nexec \"${{0##*/}}\" \"$@\"\n",
        crate::shell::quote(log)
    );
    std::fs::write(&wrapper, body).unwrap();
    Command::new("chmod").args(["+x", &wrapper]).status().unwrap();
    for dir in real.split(':') {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let _ =
                std::os::unix::fs::symlink(&wrapper, format!("{bin}/{}", e.file_name().display()));
        }
    }
    bin
}

/// A first apply launches a handful of programs per host and two per file (`head` to take its
/// bytes off the input, `mv` to rename it into place); it used to be about twelve per file
/// (mkdir, head, wc, chown, chmod, sync, a backup's mkdir and cp, mv …), which is what a first
/// apply of dozens of files cost on a busy host.
#[test]
fn a_first_apply_launches_two_programs_per_file() {
    let launches = |n: usize| {
        let s = Scratch::new();
        let log = s.path("launches.log");
        let path = counting_path(&s, &log);
        let files =
            (0..n).map(|i| s.file(&format!("d{}/f{i}.conf", i % 3), &format!("{i}\n"), None));
        let (code, report, err) = s.apply(&s.catalog(files.collect()), Some(&path));
        assert_eq!(code, 0, "{report:?} {err}");
        assert_eq!(report.done.len(), n, "{report:?}");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        (log.lines().count(), log)
    };
    let ((few, _), (many, log)) = (launches(5), launches(35));
    let per_file = (many - few) as f64 / 30.0;
    assert!(per_file <= 2.0, "{per_file} programs per file; the 35-file run launched:\n{log}");
}

/// Input that ends early (the connection broke while the contents were sent) leaves every file
/// as it was and no staged file behind, and says so: a short file is never renamed into place.
#[test]
fn contents_that_arrive_short_replace_nothing() {
    let s = Scratch::new();
    let catalog = changing(&s, 3, "old\n", "a new and longer content\n");
    let (plan, observed) = s.plan(&catalog);
    let applied = s.applied(&catalog);
    let seen = observed.applied.as_ref().map(|a| a.run_id.as_str());
    let script = apply::script(&catalog, &plan, &run(&applied, seen, OWNER, &s.state_dir()));
    for cut in [script.stdin.len() - 3, 30] {
        let mut short = script.clone();
        short.stdin.truncate(cut);
        let (code, out, err) = s.run(&short, None);
        assert_eq!(code, 1, "{out}{err}");
        let (id, why) = apply::parse(&out).failed.unwrap();
        assert_eq!(id, "state");
        assert!(
            why.contains("arrived incomplete (connection lost?), so nothing was replaced"),
            "{why}"
        );
        for i in 0..3 {
            assert_eq!(std::fs::read_to_string(s.path(&format!("f{i}.conf"))).unwrap(), "old\n");
        }
        let left: Vec<_> = std::fs::read_dir(s.path(""))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("stackdeploy-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // The whole input applies.
    let (code, out, err) = s.run(&script, None);
    assert_eq!(code, 0, "{out}{err}");
}

/// A no-change probe launches the same few programs however many paths it looks at (one
/// `stat` and one `sha256sum` for them all); it used to launch a `stat` per path.
#[test]
fn a_probe_launches_the_same_programs_for_five_paths_or_thirty_five() {
    let launches = |n: usize| {
        let s = Scratch::new();
        let files: Vec<Resource> = (0..n)
            .map(|i| {
                let rel = format!("d{}/f{i}.conf", i % 3);
                std::fs::create_dir_all(s.path(&format!("d{}", i % 3))).unwrap();
                std::fs::write(s.path(&rel), format!("{i}\n")).unwrap();
                s.file(&rel, &format!("{i}\n"), None)
            })
            .collect();
        let catalog = s.catalog(files);
        let log = s.path("launches.log");
        let script = probe::script(&catalog, &[], &s.state_dir());
        let (code, out, err) = s.run(&script, Some(&counting_path(&s, &log)));
        assert_eq!(code, 0, "{err}");
        let observed = probe::parse("scratch", &out, script.intent.probe().unwrap()).unwrap();
        // What it reports is still every path with its own mode, owner, group and hash.
        assert_eq!(observed.paths.len(), n);
        for (i, f) in catalog.files().enumerate() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o7777;
            let want = PathState::File {
                sha256: sha256_hex(format!("{i}\n").as_bytes()),
                mode,
                owner: s.user.clone(),
                group: s.group.clone(),
            };
            assert_eq!(observed.paths[&f.path], want, "{}", f.path);
        }
        std::fs::read_to_string(&log).unwrap_or_default().lines().count()
    };
    let (few, many) = (launches(5), launches(35));
    assert_eq!(few, many, "{few} programs for 5 paths, {many} for 35");
}

/// When the one `stat` for all paths reports fewer than it was given (a path went away after
/// the shell saw it), the probe asks path by path rather than give one path another's mode.
#[test]
fn a_stat_that_leaves_a_path_out_does_not_shift_the_others() {
    let s = Scratch::new();
    let modes = [0o600, 0o644, 0o640, 0o755];
    let files: Vec<Resource> = modes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            use std::os::unix::fs::PermissionsExt;
            let rel = format!("f{i}.conf");
            std::fs::write(s.path(&rel), "x\n").unwrap();
            std::fs::set_permissions(s.path(&rel), std::fs::Permissions::from_mode(*m)).unwrap();
            s.file(&rel, "x\n", None)
        })
        .collect();
    let catalog = s.catalog(files);
    // Drops the first line of any stat of several paths, as a vanished path would.
    let stat = r#"if [ $# -gt 5 ]; then /usr/bin/stat "$@" | tail -n +2; else exec /usr/bin/stat "$@"; fi"#;
    let script = probe::script(&catalog, &[], &s.state_dir());
    let (code, out, err) = s.run(&script, Some(&with_fakes(&s, &[("stat", stat)])));
    assert_eq!(code, 0, "{err}");
    let observed = probe::parse("scratch", &out, script.intent.probe().unwrap()).unwrap();
    for (f, want) in catalog.files().zip(modes) {
        match &observed.paths[&f.path] {
            PathState::File { mode, .. } => assert_eq!(*mode, want, "{}", f.path),
            other => panic!("{}: {other:?}", f.path),
        }
    }
}

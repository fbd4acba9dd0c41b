use std::collections::BTreeMap;

use super::*;
use crate::catalog::fixtures::{file, service};
use crate::digest::sha256_hex;
use crate::state::Applied;

fn catalog(resources: Vec<Resource>, secrets: Secrets) -> Catalog {
    let mut all = resources;
    all.push(service("start"));
    Catalog {
        host: "h".into(),
        environment: "e".into(),
        role: "r".into(),
        address: "a".into(),
        port: 22,
        resources: all,
        secrets,
    }
}

fn on_host(files: &[(&str, &str)]) -> Observed {
    let mut o = Observed::default();
    for (p, c) in files {
        o.paths.insert(
            p.to_string(),
            PathState::File {
                sha256: sha256_hex(c.as_bytes()),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
            },
        );
    }
    o.services.insert("app".into(), true);
    o
}

fn plan(
    c: &Catalog,
    o: &Observed,
    old_files: &[(&str, &str)],
    old_secrets: Option<&Secrets>,
) -> HostPlan {
    let files: BTreeMap<String, Vec<u8>> =
        old_files.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect();
    plan_host(
        c,
        o,
        "0123456789abcdef",
        &OldContent {
            files: &files,
            secrets: old_secrets,
            label: "on host",
            withheld: &Default::default(),
        },
    )
    .unwrap()
}

#[test]
fn converged_host_has_an_empty_plan() {
    let c = catalog(vec![file("/etc/a", "x\n")], Secrets::default());
    assert!(plan(&c, &on_host(&[("/etc/a", "x\n")]), &[], None).is_empty());
}

#[test]
fn changed_content_gives_a_diff_and_a_restart() {
    let c = catalog(vec![file("/etc/a", "port = 2\nkeep\n")], Secrets::default());
    let p = plan(
        &c,
        &on_host(&[("/etc/a", "port = 1\nkeep\n")]),
        &[("/etc/a", "port = 1\nkeep\n")],
        None,
    );
    let Change::UpdateFile { diff, attrs, .. } = &p.changes[0] else { panic!("{p:?}") };
    assert!(attrs.is_empty());
    assert!(diff.contains("-port = 1\n+port = 2\n keep\n"), "{diff}");
    assert!(diff.contains("+++ /etc/a (commit 0123456789ab)"), "{diff}");
    assert_eq!(
        p.restarts,
        vec![Restart {
            resource: "service:app".into(),
            because: vec!["/etc/a".into()],
            pending: false
        }]
    );
}

#[test]
fn mode_only_change_does_not_restart() {
    let c = catalog(vec![file("/etc/a", "x\n")], Secrets::default());
    let mut o = on_host(&[("/etc/a", "x\n")]);
    o.paths.insert(
        "/etc/a".into(),
        PathState::File {
            sha256: sha256_hex(b"x\n"),
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
        },
    );
    let p = plan(&c, &o, &[], None);
    assert_eq!(
        p.changes,
        vec![Change::UpdateFile {
            path: "/etc/a".into(),
            from_sha256: sha256_hex(b"x\n"),
            to_sha256: sha256_hex(b"x\n"),
            diff: String::new(),
            attrs: vec![AttrChange { attr: "mode".into(), from: "0600".into(), to: "0644".into() }],
            through: None,
        }]
    );
    assert!(p.restarts.is_empty());
}

#[test]
fn stopped_service_is_started_not_restarted() {
    let c = catalog(vec![file("/etc/a", "new\n")], Secrets::default());
    let mut o = on_host(&[("/etc/a", "old\n")]);
    o.services.insert("app".into(), false);
    let p = plan(&c, &o, &[("/etc/a", "old\n")], None);
    assert!(p.changes.contains(&Change::StartService { name: "app".into() }));
    assert!(p.restarts.is_empty());
}

#[test]
fn pending_restart_from_an_interrupted_run_is_kept() {
    let c = catalog(vec![file("/etc/a", "x\n")], Secrets::default());
    let mut o = on_host(&[("/etc/a", "x\n")]);
    o.pending_restarts = vec!["service:app".into()];
    let p = plan(&c, &o, &[], None);
    assert_eq!(
        p.restarts,
        vec![Restart { resource: "service:app".into(), because: vec![], pending: true }]
    );
}

#[test]
fn rotated_secret_never_shows_old_or_new_value() {
    let mut new = Secrets::default();
    new.add("k::pw", &toml::Value::from("new-password"));
    let mut old = Secrets::default();
    old.add("k::pw", &toml::Value::from("old-password"));
    let c = catalog(vec![file("/etc/a", "pw = new-password\n")], new);
    let o = on_host(&[("/etc/a", "pw = old-password\n")]);
    let p = plan(&c, &o, &[("/etc/a", "pw = old-password\n")], Some(&old));
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("old-password") && !json.contains("new-password"), "{json}");
    assert!(
        json.contains("-pw = <secret:k::pw#") && json.contains("+pw = <secret:k::pw#"),
        "{json}"
    );
    // Without the old commit's secrets the diff is withheld rather than risk a leak.
    let hidden = plan(&c, &o, &[("/etc/a", "pw = old-password\n")], None);
    let json = serde_json::to_string(&hidden).unwrap();
    assert!(!json.contains("old-password") && json.contains("diff hidden"), "{json}");
}

#[test]
fn file_dropped_from_the_catalog_is_removed() {
    let c = catalog(vec![file("/etc/a", "x\n")], Secrets::default());
    let mut o = on_host(&[("/etc/a", "x\n"), ("/etc/old", "y\n")]);
    o.applied = Some(Applied {
        patches: Default::default(),
        commit: "c".into(),
        run_id: "r".into(),
        time: 0,
        files: [("/etc/a".to_string(), String::new()), ("/etc/old".to_string(), String::new())]
            .into(),
    });
    let p = plan(&c, &o, &[], None);
    assert_eq!(
        p.changes,
        vec![Change::RemoveFile { path: "/etc/old".into(), sha256: sha256_hex(b"y\n") }]
    );
}

#[test]
fn symlink_where_a_file_is_managed_is_refused() {
    let c = catalog(vec![file("/etc/a", "x\n")], Secrets::default());
    let mut o = on_host(&[]);
    o.paths.insert("/etc/a".into(), PathState::Other { what: "symlink".into() });
    let files = BTreeMap::new();
    let e = plan_host(
        &c,
        &o,
        "c",
        &OldContent {
            files: &files,
            secrets: None,
            label: "on host",
            withheld: &Default::default(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("h: /etc/a is a symlink on the host"), "{e}");
}

#[test]
fn refresh_only_exec_passes_the_refresh_on() {
    use crate::catalog::Exec;
    let mut f = file("/etc/a", "new\n");
    if let Resource::File(f) = &mut f {
        f.notify = vec!["exec:db_sync".into()];
    }
    let exec = Resource::Exec(Exec {
        profile: "p".into(),
        name: "db_sync".into(),
        command: "sync-it".into(),
        creates: None,
        unless: None,
        refreshonly: true,
        notify: vec!["service:app".into()],
        timeout: None,
    });
    let c = catalog(vec![f, exec], Secrets::default());
    let p = plan(&c, &on_host(&[("/etc/a", "old\n")]), &[("/etc/a", "old\n")], None);
    let ids: Vec<&str> = p.restarts.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(ids, ["exec:db_sync", "service:app"]);
    assert_eq!(p.restarts[1].because, vec!["exec:db_sync".to_string()]);
}

#[test]
fn inherited_setgid_on_a_directory_is_not_a_change() {
    use crate::catalog::Directory;
    let dir = Resource::Directory(Directory {
        profile: "p".into(),
        path: "/srv/x".into(),
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: Mode(0o755),
    });
    let c = catalog(vec![dir], Secrets::default());
    let mut o = on_host(&[]);
    o.paths.insert(
        "/srv/x".into(),
        PathState::Directory { mode: 0o2755, owner: "root".into(), group: "root".into() },
    );
    assert!(plan(&c, &o, &[], None).is_empty());
    o.paths.insert(
        "/srv/x".into(),
        PathState::Directory { mode: 0o2775, owner: "root".into(), group: "root".into() },
    );
    assert!(!plan(&c, &o, &[], None).is_empty());
}

#[test]
fn a_new_secret_containing_the_old_one_is_redacted_whole() {
    let mut new = Secrets::default();
    new.add("k::pw", &toml::Value::from("s3cret-2"));
    let mut old = Secrets::default();
    old.add("k::pw", &toml::Value::from("s3cret"));
    let c = catalog(vec![file("/etc/a", "pw = s3cret-2\n")], new);
    let p = plan(
        &c,
        &on_host(&[("/etc/a", "pw = s3cret\n")]),
        &[("/etc/a", "pw = s3cret\n")],
        Some(&old),
    );
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
}

/// Someone typed a password on the host where the commit has a secret: no secret the engine
/// knows matches it, so only the masking keeps it out of the plan.
#[test]
fn a_password_typed_on_the_host_does_not_show_in_the_plan() {
    let mut new = Secrets::default();
    new.add("k::pw", &toml::Value::from("s3cret"));
    let c = catalog(vec![file("/etc/a", "user = nova\npw = s3cret\n")], new);
    let p = plan(
        &c,
        &on_host(&[("/etc/a", "user = nova\npw = typed-by-hand\n")]),
        &[("/etc/a", "user = nova\npw = typed-by-hand\n")],
        Some(&Secrets::default()),
    );
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("typed-by-hand"), "{json}");
    let Change::UpdateFile { diff, .. } = &p.changes[0] else { panic!("{:?}", p.changes) };
    assert!(
        diff.contains("-(1 line(s) on the host where the commit has a secret: not shown)"),
        "{diff}"
    );
}

/// A very large file is not diffed (its size and hashes are shown), a binary one neither, and
/// a very long diff is cut at a line. (A 43 MB file used to print a 47 MB diff.)
#[test]
fn diffs_are_bounded() {
    let big = "x\n".repeat(MAX_DIFF_INPUT / 2 + 1);
    let d = unified("", &big, "/big", "on host", "c");
    assert!(d.len() < 300, "{}", d.len());
    assert!(d.contains("(not diffed, larger than 1024 KiB: 0 bytes -> 1048578 bytes)"), "{d}");

    let c = catalog(vec![file("/bin.dat", "new\n")], Secrets::default());
    let o = on_host(&[("/bin.dat", "old\0\x01\n")]);
    let p = plan(&c, &o, &[("/bin.dat", "old\0\x01\n")], Some(&Secrets::default()));
    let Change::UpdateFile { diff, .. } = &p.changes[0] else { panic!("{:?}", p.changes) };
    assert!(diff.contains("(not diffed, binary: 6 bytes -> 4 bytes)"), "{diff}");

    let from: String = (0..12_000).map(|i| format!("line {i}\n")).collect();
    let to: String = (0..12_000).map(|i| format!("changed {i}\n")).collect();
    let d = unified(&from, &to, "/long", "on host", "c");
    assert!(d.len() <= MAX_DIFF_OUTPUT + 100, "{}", d.len());
    assert!(d.ends_with(" more lines)\n"), "{}", &d[d.len() - 80..]);
    assert!(d.contains("-line 0\n") && d.starts_with("--- /long (on host)\n"));

    // Masked before it is cut: a cut between a hand-typed value and the secret line that
    // replaces it does not leave the host's line in clear.
    // Thousands of small hunks, then the secret's; the first line's length puts the cut
    // exactly after the host's line.
    let blocks = |side: &str| -> String {
        // Long lines, few of them: the diff stays well inside its time budget.
        (0..100).map(|i| format!("a\nb\nc\nd\ne\nf\ng\n{side}{i}{}\n", "z".repeat(1000))).collect()
    };
    let texts = |pad: usize| {
        let host = format!("{}\n{}password = HandTyped\n", "x".repeat(pad + 1), blocks("h"));
        let commit = format!("y\n{}password = <secret:k::pw#1>\n", blocks("c"));
        (host, commit)
    };
    let after_host_line = |pad: usize| {
        let (host, commit) = texts(pad);
        let whole = super::unified_whole(&host, &commit, "/etc/x", "on host", "c");
        whole.find("-password = HandTyped\n").unwrap() + 22
    };
    let mut pad = 0;
    for _ in 0..5 {
        pad += MAX_DIFF_OUTPUT - after_host_line(pad);
    }
    assert_eq!(after_host_line(pad), MAX_DIFF_OUTPUT);
    let (host, commit) = texts(pad);
    let plain = super::unified(&host, &commit, "/etc/x", "on host", "c");
    assert!(
        plain.ends_with("-password = HandTyped\n(diff cut here: 2 more lines)\n"),
        "{}",
        &plain[plain.len() - 300..]
    );
    let d = super::masked_diff(&host, &commit, "/etc/x", "on host", "c");
    assert!(d.ends_with(" more lines)\n") && !d.contains("HandTyped"), "{}", &d[d.len() - 200..]);
}

use super::*;
use crate::catalog::Package;
use crate::catalog::fixtures::{catalog, file, service};

fn package(ensure: &str) -> Resource {
    Resource::Package(Package {
        profile: "p".into(),
        name: "app".into(),
        ensure: ensure.into(),
        provider: None,
        timeout: None,
    })
}

const A: &str = "aaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbb";

#[test]
fn same_catalog_is_no_change() {
    let c =
        catalog("h1", "r", vec![package("present"), file("/etc/app.conf", "x\n"), service("go")]);
    assert!(diff_host(&c, &c, A, B).unwrap().is_empty());
}

#[test]
fn changed_file_gives_its_diff_and_the_restart_it_notifies() {
    let from = catalog("h1", "r", vec![file("/etc/app.conf", "a\nb\n"), service("go")]);
    let to = catalog("h1", "r", vec![file("/etc/app.conf", "a\nc\n"), service("go")]);
    let d = diff_host(&from, &to, A, B).unwrap();
    assert_eq!(d.changes.len(), 1, "{d:?}");
    let Change::UpdateFile { diff, .. } = &d.changes[0] else { panic!("{d:?}") };
    assert!(diff.contains("-b\n") && diff.contains("+c\n"), "{diff}");
    assert!(diff.contains("/etc/app.conf (commit aaaaaaaaaaaa)"), "{diff}");
    assert_eq!(d.restarts.len(), 1);
    assert_eq!(d.restarts[0].resource, "service:app");
    assert_eq!(d.restarts[0].because, vec!["/etc/app.conf".to_string()]);
}

#[test]
fn added_and_removed_files_and_package_versions() {
    let from = catalog("h1", "r", vec![package("1.0"), file("/etc/old", "x\n")]);
    let to = catalog("h1", "r", vec![package("1.1"), file("/etc/new", "y\n")]);
    let d = diff_host(&from, &to, A, B).unwrap();
    let ids: Vec<String> = d.changes.iter().map(Change::id).collect();
    assert_eq!(ids, ["package:app", "file:/etc/new", "file:/etc/old"]);
    assert!(
        matches!(&d.changes[0], Change::InstallPackage { installed: Some(v), ensure, .. } if v == "1.0" && ensure == "1.1")
    );
    assert!(matches!(&d.changes[2], Change::RemoveFile { .. }));
}

#[test]
fn secrets_of_both_commits_are_redacted() {
    let mut from = catalog("h1", "r", vec![file("/etc/app.conf", "pw = old-s3cret\n")]);
    from.secrets.add("app::pw", &toml::Value::from("old-s3cret"));
    let mut to = catalog("h1", "r", vec![file("/etc/app.conf", "pw = new-s3cret\n")]);
    to.secrets.add("app::pw", &toml::Value::from("new-s3cret"));
    let d = diff_host(&from, &to, A, B).unwrap();
    let json = serde_json::to_string(&d).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    let Change::UpdateFile { diff, .. } = &d.changes[0] else { panic!("{d:?}") };
    let minus = diff.lines().find(|l| l.starts_with("-pw")).unwrap();
    let plus = diff.lines().find(|l| l.starts_with("+pw")).unwrap();
    assert!(minus.contains("<secret:app::pw#") && plus.contains("<secret:app::pw#"), "{diff}");
    assert_ne!(minus[1..], plus[1..], "a changed secret shows as a changed hash");
}

#[test]
fn definition_changes_without_effect_on_the_host_are_listed() {
    let from = catalog("h1", "r", vec![service("start-v1")]);
    let to = catalog("h1", "s", vec![service("start-v2")]);
    let d = diff_host(&from, &to, A, B).unwrap();
    assert!(d.changes.is_empty() && d.restarts.is_empty(), "{d:?}");
    let shown: Vec<(String, String, String, String)> = d
        .redefined
        .iter()
        .flat_map(|r| {
            r.fields
                .iter()
                .map(|f| (r.resource.clone(), f.attr.clone(), f.from.clone(), f.to.clone()))
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("host".into(), "role".into(), "r".into(), "s".into()),
            ("service:app".into(), "start".into(), "start-v1".into(), "start-v2".into()),
        ]
    );
}

#[test]
fn the_old_content_of_a_secret_file_is_never_shown() {
    let mut old = file("/etc/app.key", "PRIVATE-KEY-MATERIAL\n");
    if let Resource::File(f) = &mut old {
        f.secret = true;
    }
    let from = catalog("h1", "r", vec![old]);
    let to = catalog("h1", "r", vec![file("/etc/app.key", "now public\n")]);
    let d = diff_host(&from, &to, A, B).unwrap();
    assert_eq!(d.changes.len(), 1);
    assert!(!serde_json::to_string(&d).unwrap().contains("PRIVATE-KEY"), "{d:?}");
    // The new content, no longer secret, is shown against nothing, and the header says why.
    let Change::UpdateFile { diff, .. } = &d.changes[0] else { panic!("{d:?}") };
    assert!(diff.contains("secret there, not shown") && diff.contains("+now public"), "{diff}");
}

//! A representative catalog and plan for the script snapshots and the shell tests: one of every
//! resource kind and change, names with spaces and quotes, a validate command with other `%`
//! signs than its placeholder, a pinned package version, an owed restart.

use crate::catalog::{Catalog, Directory, Exec, File, Mode, Package, Resource, Service};
use crate::digest::sha256_hex;
use crate::plan::{Change, HostPlan, Restart};
use crate::state::Applied;

fn sha(s: &str) -> String {
    sha256_hex(s.as_bytes())
}

pub(crate) fn rep_catalog() -> Catalog {
    let file =
        |path: &str, content: &str, validate: Option<&str>, notify: Vec<&str>, secret: bool| {
            Resource::File(File {
                profile: "app".into(),
                path: path.into(),
                content: content.into(),
                sha256: sha(content),
                owner: Some("root".into()),
                group: Some("app".into()),
                mode: Mode(0o640),
                validate: validate.map(str::to_string),
                notify: notify.into_iter().map(str::to_string).collect(),
                secret,
                timeout: None,
                links: Default::default(),
            })
        };
    Catalog {
        host: "db01".into(),
        environment: "staging".into(),
        role: "database".into(),
        address: "127.0.0.1".into(),
        port: 22,
        resources: vec![
            Resource::Package(Package {
                profile: "app".into(),
                name: "app-server".into(),
                ensure: "present".into(),
                provider: None,
                timeout: None,
            }),
            Resource::Package(Package {
                profile: "app".into(),
                name: "app-tools".into(),
                ensure: "1.2-3".into(),
                provider: None,
                timeout: None,
            }),
            Resource::Package(Package {
                profile: "app".into(),
                name: "old-thing".into(),
                ensure: "absent".into(),
                provider: None,
                timeout: None,
            }),
            Resource::Directory(Directory {
                profile: "app".into(),
                path: "/etc/app".into(),
                owner: Some("root".into()),
                group: Some("app".into()),
                mode: Mode(0o750),
            }),
            Resource::Directory(Directory {
                profile: "app".into(),
                path: "/srv/app data".into(),
                owner: Some("app".into()),
                group: Some("app".into()),
                mode: Mode(0o700),
            }),
            file(
                "/etc/app/app.conf",
                "port = 80\n",
                Some("app-check --config % --stamp \"$(date +%s)\""),
                vec!["service:app", "exec:reindex"],
                false,
            ),
            file("/etc/app/secret.key", "k3y\n", None, vec![], true),
            file("/etc/app/it's here.conf", "x\n", None, vec![], false),
            file("/etc/app/same.conf", "same\n", None, vec![], false),
            Resource::Exec(Exec {
                profile: "app".into(),
                name: "db-sync".into(),
                command: "app-manage db_sync --password 'p w'".into(),
                creates: Some("/var/lib/app/synced".into()),
                unless: Some("app-manage db_version | grep -q 42".into()),
                refreshonly: false,
                notify: vec!["service:app".into()],
                timeout: None,
            }),
            Resource::Exec(Exec {
                profile: "app".into(),
                name: "reindex".into(),
                command: "app-manage reindex".into(),
                creates: None,
                unless: None,
                refreshonly: true,
                notify: vec![],
                timeout: None,
            }),
            Resource::Service(Service {
                profile: "app".into(),
                name: "app".into(),
                ensure: "running".into(),
                enable: true,
                provider: "auto".into(),
                unit: None,
                start: Some("start-stop-daemon --start --exec /usr/bin/app".into()),
                stop: Some("start-stop-daemon --stop --exec /usr/bin/app".into()),
                status: Some("pidof app".into()),
                restart: None,
                reload: None,
                timeout: None,
                ready: None,
                ready_timeout: None,
                log: None,
            }),
            Resource::Service(Service {
                profile: "app".into(),
                name: "worker".into(),
                ensure: "running".into(),
                enable: true,
                provider: "command".into(),
                unit: None,
                start: Some("worker --daemon".into()),
                stop: None,
                status: Some("pidof worker".into()),
                restart: Some("pkill -HUP worker".into()),
                reload: None,
                timeout: None,
                ready: None,
                ready_timeout: None,
                log: None,
            }),
            Resource::Service(Service {
                profile: "app".into(),
                name: "legacy".into(),
                ensure: "stopped".into(),
                enable: false,
                provider: "systemd".into(),
                unit: Some("legacy-app.service".into()),
                start: None,
                stop: None,
                status: None,
                restart: None,
                reload: None,
                timeout: None,
                ready: None,
                ready_timeout: None,
                log: None,
            }),
        ],
        secrets: Default::default(),
    }
}

pub(crate) fn rep_plan() -> HostPlan {
    HostPlan {
        patched: Vec::new(),
        host: "db01".into(),
        environment: "staging".into(),
        role: "database".into(),
        address: "127.0.0.1".into(),
        port: 22,
        commit: "c0ffee".into(),
        changes: vec![
            Change::InstallPackage {
                name: "app-server".into(),
                ensure: "present".into(),
                installed: None,
            },
            Change::InstallPackage {
                name: "app-tools".into(),
                ensure: "1.2-3".into(),
                installed: Some("1.1-1".into()),
            },
            Change::RemovePackage { name: "old-thing".into() },
            Change::CreateDirectory {
                path: "/srv/app data".into(),
                owner: Some("app".into()),
                group: Some("app".into()),
                mode: Mode(0o700),
            },
            Change::FixDirectory { path: "/etc/app".into(), attrs: vec![] },
            Change::CreateFile {
                path: "/etc/app/app.conf".into(),
                owner: Some("root".into()),
                group: Some("app".into()),
                mode: Mode(0o640),
                sha256: sha("port = 80\n"),
                diff: String::new(),
                through: None,
                replacing: None,
            },
            Change::UpdateFile {
                path: "/etc/app/secret.key".into(),
                from_sha256: "0".repeat(64),
                to_sha256: sha("k3y\n"),
                diff: String::new(),
                attrs: vec![],
                through: None,
            },
            Change::CreateFile {
                path: "/etc/app/it's here.conf".into(),
                owner: Some("root".into()),
                group: Some("app".into()),
                mode: Mode(0o640),
                sha256: sha("x\n"),
                diff: String::new(),
                through: None,
                replacing: None,
            },
            Change::UpdateFile {
                path: "/etc/app/same.conf".into(),
                from_sha256: sha("same\n"),
                to_sha256: sha("same\n"),
                diff: String::new(),
                attrs: vec![],
                through: None,
            },
            Change::RemoveFile { path: "/etc/app/gone.conf".into(), sha256: "1".repeat(64) },
            Change::RunExec { name: "db-sync".into() },
            Change::StartService { name: "worker".into() },
            Change::StopService { name: "legacy".into() },
        ],
        restarts: vec![
            Restart {
                resource: "exec:reindex".into(),
                because: vec!["/etc/app/app.conf".into()],
                pending: false,
            },
            Restart {
                resource: "service:app".into(),
                because: vec!["/etc/app/app.conf".into(), "exec:db-sync".into()],
                pending: true,
            },
        ],
    }
}

pub(crate) fn rep_applied() -> Applied {
    Applied {
        patches: Default::default(),
        commit: "c0ffee".into(),
        run_id: "1700000000-42".into(),
        time: 1700000000,
        files: rep_catalog().files().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
    }
}

//! Drift: what differs on a host from what its last run left there, though no commit asked
//! for it (someone edited a file by hand, chmod-ed it, stopped a service). Computed from the
//! host's plan against the catalog of the commit it runs (its applied record), so the
//! comparison is the plan's own; this module only says which planned changes are drift and in
//! what words. Reaching hosts and finding the commit they run is `rollout::drift`'s job.
//!
//! What counts: a managed file whose content is not the hash the applied record says was
//! written, or that is missing or replaced; a managed file's or directory's mode, owner or
//! group that is not the catalog's; a service not in the state the catalog wants; a package
//! not as the catalog wants it. What does not: execs a guard says need to run (an exec
//! without guards always does), restarts an interrupted run owes, and a file whose content
//! is still what the record says although the catalog now renders it otherwise (facts moved
//! since the apply: that is a change for `plan`, not a hand edit).

use serde::Serialize;

use super::{AttrChange, Change, HostPlan};
use crate::state::{Observed, PackageState};

/// One thing that drifted on a host.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "drift", rename_all = "snake_case")]
pub enum Drift {
    /// The content is not what the host's last run wrote. `diff` is the plan's (from the host
    /// to the commit: what a re-apply puts back), redacted.
    FileEdited {
        path: String,
        recorded_sha256: String,
        host_sha256: String,
        diff: String,
        attrs: Vec<Attr>,
    },
    FileAttributes {
        path: String,
        attrs: Vec<Attr>,
    },
    FileMissing {
        path: String,
    },
    /// Something else stands where the file was (`links = "replace"`: a symlink).
    FileReplaced {
        path: String,
        what: String,
    },
    DirectoryMissing {
        path: String,
    },
    DirectoryAttributes {
        path: String,
        attrs: Vec<Attr>,
    },
    /// A file the host's run patched no longer holds the patch (edited by hand, or a package
    /// upgrade replaced it). `diff` is what a re-apply writes, redacted.
    PatchUndone {
        path: String,
        patch: String,
        diff: String,
    },
    /// `wanted` and `found`: `running` or `stopped`.
    Service {
        name: String,
        wanted: String,
        found: String,
    },
    /// `wanted`: the catalog's `ensure`; `found`: the installed version, or `absent`.
    Package {
        name: String,
        wanted: String,
        found: String,
    },
}

impl Drift {
    /// The resource it is about (`file:/etc/x`, `service:haproxy`).
    pub fn resource(&self) -> String {
        match self {
            Drift::FileEdited { path, .. }
            | Drift::FileAttributes { path, .. }
            | Drift::FileMissing { path }
            | Drift::FileReplaced { path, .. } => format!("file:{path}"),
            Drift::DirectoryMissing { path } | Drift::DirectoryAttributes { path, .. } => {
                format!("directory:{path}")
            }
            Drift::PatchUndone { path, .. } => format!("patch:{path}"),
            Drift::Service { name, .. } => format!("service:{name}"),
            Drift::Package { name, .. } => format!("package:{name}"),
        }
    }
}

/// A mode, owner or group that differs: what the commit wants and what the host has.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Attr {
    pub attr: String,
    pub wanted: String,
    pub found: String,
}

fn attrs(changes: &[AttrChange]) -> Vec<Attr> {
    changes
        .iter()
        .map(|a| Attr { attr: a.attr.clone(), wanted: a.to.clone(), found: a.from.clone() })
        .collect()
}

/// One host's drift against the commit it runs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostDrift {
    pub host: String,
    pub role: String,
    pub address: String,
    /// The commit the host runs (its applied record), which it was compared with.
    pub commit: String,
    /// The run that applied it, and when (seconds since the epoch).
    pub run_id: String,
    pub applied_time: u64,
    pub drift: Vec<Drift>,
    /// The changes a re-apply of `commit` would make to undo the drift, and nothing else
    /// (no restarts): what the HTML review shows, grouped across hosts.
    #[serde(skip)]
    pub repair: HostPlan,
}

impl HostDrift {
    pub fn drifted(&self) -> bool {
        !self.drift.is_empty()
    }
}

/// The drift in `plan`, a plan of the catalog of the commit the host runs against what the
/// probe found (`observed`, which holds the applied record). `None` when the host has no
/// applied record: nothing says what was written.
pub fn host_drift(plan: &HostPlan, observed: &Observed) -> Option<HostDrift> {
    let applied = observed.applied.as_ref()?;
    let mut drift = Vec::new();
    let mut repair = Vec::new();
    for change in &plan.changes {
        let found = match change {
            Change::UpdateFile { path, from_sha256, to_sha256, diff, attrs: a, .. } => {
                let recorded = applied.files.get(path).unwrap_or(to_sha256);
                if from_sha256 != recorded {
                    Some(Drift::FileEdited {
                        path: path.clone(),
                        recorded_sha256: recorded.clone(),
                        host_sha256: from_sha256.clone(),
                        diff: diff.clone(),
                        attrs: attrs(a),
                    })
                } else if !a.is_empty() {
                    Some(Drift::FileAttributes { path: path.clone(), attrs: attrs(a) })
                } else {
                    None
                }
            }
            Change::CreateFile { path, replacing: None, .. } => {
                Some(Drift::FileMissing { path: path.clone() })
            }
            Change::CreateFile { path, replacing: Some(what), .. } => {
                Some(Drift::FileReplaced { path: path.clone(), what: what.clone() })
            }
            Change::CreateDirectory { path, .. } => {
                Some(Drift::DirectoryMissing { path: path.clone() })
            }
            Change::FixDirectory { path, attrs: a } => {
                Some(Drift::DirectoryAttributes { path: path.clone(), attrs: attrs(a) })
            }
            Change::StartService { name } => Some(Drift::Service {
                name: name.clone(),
                wanted: "running".into(),
                found: "stopped".into(),
            }),
            Change::StopService { name } => Some(Drift::Service {
                name: name.clone(),
                wanted: "stopped".into(),
                found: "running".into(),
            }),
            Change::InstallPackage { name, ensure, installed } => Some(Drift::Package {
                name: name.clone(),
                wanted: ensure.clone(),
                found: installed.clone().unwrap_or_else(|| "absent".into()),
            }),
            Change::RemovePackage { name } => Some(Drift::Package {
                name: name.clone(),
                wanted: "absent".into(),
                found: match observed.packages.get(name) {
                    Some(PackageState::Installed(v)) => v.clone(),
                    _ => "installed".into(),
                },
            }),
            Change::PatchFile { path, patch, diff, reverse: false, .. } => {
                Some(Drift::PatchUndone {
                    path: path.clone(),
                    patch: patch.clone(),
                    diff: diff.clone(),
                })
            }
            Change::RunExec { .. } | Change::RemoveFile { .. } | Change::PatchFile { .. } => None,
        };
        if let Some(d) = found {
            let undo = change.clone();
            repair.push(undo);
            drift.push(d);
        }
    }
    Some(HostDrift {
        host: plan.host.clone(),
        role: plan.role.clone(),
        address: plan.address.clone(),
        commit: applied.commit.clone(),
        run_id: applied.run_id.clone(),
        applied_time: applied.time,
        drift,
        repair: HostPlan { changes: repair, restarts: Vec::new(), ..plan.clone() },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::Restart;
    use crate::state::Applied;

    fn observed(files: &[(&str, &str)]) -> Observed {
        Observed {
            applied: Some(Applied {
                commit: "c0ffee".repeat(6) + "abcd",
                run_id: "run-1".into(),
                time: 1_700_000_000,
                files: files.iter().map(|(p, h)| (p.to_string(), h.to_string())).collect(),
                patches: BTreeMap::new(),
            }),
            packages: BTreeMap::from([("ntp".into(), PackageState::Installed("4.2".into()))]),
            ..Default::default()
        }
    }

    fn plan(changes: Vec<Change>) -> HostPlan {
        HostPlan {
            host: "db01".into(),
            environment: "staging".into(),
            role: "database".into(),
            address: "127.0.0.1".into(),
            port: 22,
            commit: "c0ffee".repeat(6) + "abcd",
            changes,
            restarts: vec![Restart {
                resource: "service:memcached".into(),
                because: vec!["/etc/memcached.conf".into()],
                pending: false,
            }],
            patched: Vec::new(),
        }
    }

    fn update(path: &str, host: &str, catalog: &str, attrs: Vec<AttrChange>) -> Change {
        Change::UpdateFile {
            path: path.into(),
            from_sha256: host.into(),
            to_sha256: catalog.into(),
            diff: String::new(),
            attrs,
            through: None,
        }
    }

    #[test]
    fn hand_edits_chmods_and_stopped_services_are_drift_and_nothing_else_is() {
        let mode = AttrChange { attr: "mode".into(), from: "0600".into(), to: "0644".into() };
        let p = plan(vec![
            update("/etc/edited", "bbbb", "aaaa", vec![]),
            update("/etc/chmodded", "aaaa", "aaaa", vec![mode.clone()]),
            // Facts changed the render since the apply; the host still has what was written.
            update("/etc/rerendered", "aaaa", "cccc", vec![]),
            Change::StartService { name: "memcached".into() },
            Change::RunExec { name: "db-sync".into() },
            Change::RemovePackage { name: "ntp".into() },
        ]);
        let o = observed(&[
            ("/etc/edited", "aaaa"),
            ("/etc/chmodded", "aaaa"),
            ("/etc/rerendered", "aaaa"),
        ]);
        let d = host_drift(&p, &o).unwrap();
        assert_eq!(
            d.drift,
            vec![
                Drift::FileEdited {
                    path: "/etc/edited".into(),
                    recorded_sha256: "aaaa".into(),
                    host_sha256: "bbbb".into(),
                    diff: String::new(),
                    attrs: vec![],
                },
                Drift::FileAttributes {
                    path: "/etc/chmodded".into(),
                    attrs: vec![Attr {
                        attr: "mode".into(),
                        wanted: "0644".into(),
                        found: "0600".into()
                    }],
                },
                Drift::Service {
                    name: "memcached".into(),
                    wanted: "running".into(),
                    found: "stopped".into()
                },
                Drift::Package { name: "ntp".into(), wanted: "absent".into(), found: "4.2".into() },
            ]
        );
        assert_eq!(d.commit, o.applied.as_ref().unwrap().commit);
        // The repair is the drift's changes alone: no exec, no re-render, no restart.
        assert_eq!(d.repair.changes.len(), 4);
        assert!(d.repair.restarts.is_empty());
    }

    /// A patched file that lost its patch (edited, or replaced by a package upgrade) is drift;
    /// a patch the commit takes out is not something the host did.
    #[test]
    fn a_patched_file_without_its_patch_is_drift() {
        let patch = |reverse| Change::PatchFile {
            path: "/usr/lib/python3/dist-packages/nova/x.py".into(),
            patch: "profiles/nova/patches/x.patch".into(),
            from_sha256: "aaaa".into(),
            to_sha256: "bbbb".into(),
            diff: "-old\n+new\n".into(),
            reverse,
            after_packages: false,
        };
        let d = host_drift(&plan(vec![patch(false)]), &observed(&[])).unwrap();
        assert_eq!(d.drift.len(), 1);
        assert_eq!(d.drift[0].resource(), "patch:/usr/lib/python3/dist-packages/nova/x.py");
        assert_eq!(d.repair.changes.len(), 1, "a re-apply puts the patch back");
        let d = host_drift(&plan(vec![patch(true)]), &observed(&[])).unwrap();
        assert!(!d.drifted());
    }

    #[test]
    fn a_host_never_applied_has_no_drift_to_tell() {
        let p = plan(vec![Change::StartService { name: "memcached".into() }]);
        assert!(host_drift(&p, &Observed::default()).is_none());
    }
}

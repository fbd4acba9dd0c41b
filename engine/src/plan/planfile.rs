//! Saved plans: what `plan --out` writes and `apply PLANFILE` applies. A saved plan records the
//! commit and, per host, the plan and the probed state it was computed against, so apply can
//! refuse a host whose state moved since the review. It holds hashes, never secret values
//! (diffs in plans are redacted, and probes only report hashes).

use serde::{Deserialize, Serialize};

use super::{Change, HostPlan};
use crate::catalog::Catalog;
use crate::digest::sha256_hex;
use crate::error::{self, Result};
use crate::state::{Observed, PathState};

/// Marks the file as a stackdeploy plan, so `apply some.json` refuses anything else.
pub const FORMAT: &str = "stackdeploy-plan";
/// Bumped when an older engine could misread a newer plan.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub version: u32,
    pub environment: String,
    /// The commit every host's plan converges to.
    pub commit: String,
    /// Seconds since the epoch, and who planned.
    pub created: u64,
    pub by: String,
    pub hosts: Vec<SavedHost>,
    /// Hosts that could not be planned (not applied from this plan): host, error.
    #[serde(default)]
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedHost {
    pub plan: HostPlan,
    /// SHA-256 of the host's whole catalog (every resource's definition and content): what
    /// apply will execute, including what a plan does not show (exec commands, validate).
    pub catalog_sha256: String,
    /// The state the plan was computed against (facts left out: they only matter through
    /// the catalog, and a changed catalog shows as a changed plan).
    pub observed: Observed,
}

impl SavedPlan {
    pub fn new(environment: &str, commit: &str, by: &str, created: u64) -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            version: VERSION,
            environment: environment.into(),
            commit: commit.into(),
            created,
            by: by.into(),
            hosts: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub fn add(&mut self, plan: HostPlan, observed: &Observed, catalog: &Catalog) {
        let observed = Observed { facts: toml::Table::new(), ..observed.clone() };
        self.hosts.push(SavedHost { plan, catalog_sha256: catalog_hash(catalog), observed });
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("json") + "\n"
    }

    /// Parses a plan file; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<SavedPlan> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            error::syntax(format!("not a JSON plan file: {e}")).at_file(path, Some(e.line()))
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(error::usage(
                "not a stackdeploy plan (write one with `stackdeploy plan --env ENV --out FILE`)",
            )
            .at_file(path, None));
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(error::usage(format!(
                "plan format version {version}, but this stackdeploy reads version {VERSION}; \
                 plan again with this version"
            ))
            .at_file(path, None));
        }
        serde_json::from_value(value)
            .map_err(|e| error::syntax(format!("malformed plan file: {e}")).at_file(path, None))
    }

    pub fn host(&self, name: &str) -> Option<&SavedHost> {
        self.hosts.iter().find(|h| h.plan.host == name)
    }
}

/// Why a host may not be applied from its saved plan: what changed between the state the plan
/// saw and the state probed now, or, if the state is the same, how the plan computed now
/// differs. Empty when the host is exactly as reviewed.
pub fn catalog_hash(catalog: &Catalog) -> String {
    sha256_hex(serde_json::to_string(&catalog.resources).expect("json").as_bytes())
}

pub fn drift(
    saved: &SavedHost,
    observed: &Observed,
    fresh: &HostPlan,
    catalog: &Catalog,
) -> Vec<String> {
    let was = &saved.observed;
    let mut why = Vec::new();
    let commit =
        |o: &Observed| o.applied.as_ref().map(|a| crate::source::short(&a.commit).to_string());
    match (commit(was), commit(observed)) {
        (a, b) if a == b => {}
        (a, b) => why.push(format!(
            "it now runs {} (the plan saw {})",
            b.map_or("no recorded commit".to_string(), |c| format!("commit {c}")),
            a.map_or("no recorded commit".to_string(), |c| format!("commit {c}"))
        )),
    }
    for path in keys(&was.paths, &observed.paths) {
        let (a, b) = (was.paths.get(path), observed.paths.get(path));
        if a == b {
            continue;
        }
        let describe = |s: Option<&PathState>| match s {
            None | Some(PathState::Missing) => "missing".to_string(),
            Some(PathState::File { sha256, mode, owner, group }) => {
                format!(
                    "file sha256 {} {mode:04o} {owner}:{group}",
                    &sha256[..sha256.len().min(12)]
                )
            }
            Some(PathState::Directory { mode, owner, group }) => {
                format!("directory {mode:04o} {owner}:{group}")
            }
            Some(PathState::Other { what }) => what.clone(),
        };
        why.push(format!("{path} changed since the plan ({} -> {})", describe(a), describe(b)));
    }
    for name in keys(&was.packages, &observed.packages) {
        if was.packages.get(name) != observed.packages.get(name) {
            why.push(format!(
                "package {name} changed since the plan ({:?} -> {:?})",
                was.packages.get(name),
                observed.packages.get(name)
            ));
        }
    }
    for name in keys(&was.services, &observed.services) {
        let state = |o: &Observed| match o.services.get(name) {
            Some(true) => "running",
            Some(false) => "stopped",
            None => "unknown",
        };
        if state(was) != state(observed) {
            why.push(format!(
                "service {name} is {} now (the plan saw it {})",
                state(observed),
                state(was)
            ));
        }
    }
    if was.execs != observed.execs {
        why.push("the guards of an exec give a different answer than at plan time".into());
    }
    if was.pending_restarts != observed.pending_restarts {
        why.push(format!(
            "restarts owed by an interrupted run changed ({:?} -> {:?})",
            was.pending_restarts, observed.pending_restarts
        ));
    }
    // Diff text is left out: it depends on what this clone can redact (old commits), not on
    // what will be done; hashes in the changes cover the content.
    let without_diffs = |changes: &[Change]| -> Vec<Change> {
        changes
            .iter()
            .cloned()
            .map(|mut c| {
                if let Change::CreateFile { diff, .. }
                | Change::UpdateFile { diff, .. }
                | Change::PatchFile { diff, .. } = &mut c
                {
                    diff.clear();
                }
                c
            })
            .collect()
    };
    if why.is_empty()
        && (without_diffs(&fresh.changes) != without_diffs(&saved.plan.changes)
            || fresh.restarts != saved.plan.restarts
            || catalog_hash(catalog) != saved.catalog_sha256)
    {
        why.push(
            "its state is as planned, but the catalog compiled now differs from the reviewed \
             one (its gathered facts changed?)"
                .into(),
        );
    }
    why
}

fn keys<'a, V>(
    a: &'a std::collections::BTreeMap<String, V>,
    b: &'a std::collections::BTreeMap<String, V>,
) -> std::collections::BTreeSet<&'a String> {
    a.keys().chain(b.keys()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Exec, Resource};
    use crate::secrets::Secrets;
    use crate::state::Applied;

    fn catalog(command: &str) -> Catalog {
        Catalog {
            host: "h1".into(),
            environment: "e".into(),
            role: "r".into(),
            address: "127.0.0.1".into(),
            port: 22,
            resources: vec![Resource::Exec(Exec {
                profile: "p".into(),
                name: "x".into(),
                command: command.into(),
                creates: None,
                unless: None,
                refreshonly: false,
                notify: vec![],
                timeout: None,
            })],
            secrets: Secrets::default(),
        }
    }

    fn host(sha: &str, commit: &str) -> (HostPlan, Observed) {
        let mut o = Observed::default();
        o.paths.insert(
            "/etc/app.conf".into(),
            PathState::File {
                sha256: sha.into(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
            },
        );
        o.services.insert("app".into(), true);
        o.applied = Some(Applied {
            commit: commit.into(),
            run_id: "r".into(),
            time: 1,
            files: Default::default(),
            patches: Default::default(),
        });
        let plan = HostPlan {
            patched: Vec::new(),
            host: "h1".into(),
            environment: "e".into(),
            role: "r".into(),
            address: "127.0.0.1".into(),
            port: 22,
            commit: "c2".into(),
            changes: vec![Change::RunExec { name: "x".into() }],
            restarts: vec![],
        };
        (plan, o)
    }

    fn saved(plan: HostPlan, o: &Observed) -> SavedPlan {
        let mut s = SavedPlan::new("e", "c2", "me", 1);
        s.add(plan, o, &catalog("run-x"));
        s
    }

    #[test]
    fn round_trips_and_an_unchanged_host_has_no_drift() {
        let (plan, o) = host("aaaa", "c1");
        let s = saved(plan.clone(), &o);
        let back = SavedPlan::parse("plan.json", &s.to_json()).unwrap();
        assert!(drift(back.host("h1").unwrap(), &o, &plan, &catalog("run-x")).is_empty());
    }

    #[test]
    fn a_changed_file_or_commit_is_drift_with_its_reason() {
        let (plan, o) = host("aaaa", "c1");
        let s = saved(plan.clone(), &o);
        let (_, now) = host("bbbb", "c9");
        let why = drift(s.host("h1").unwrap(), &now, &plan, &catalog("run-x"));
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("commit c9") && why[0].contains("commit c1"), "{why:?}");
        assert!(why[1].starts_with("/etc/app.conf changed since the plan"), "{why:?}");
        assert!(why[1].contains("aaaa") && why[1].contains("bbbb"), "{why:?}");
    }

    #[test]
    fn same_state_but_a_different_plan_is_drift() {
        let (plan, o) = host("aaaa", "c1");
        let s = saved(plan.clone(), &o);
        let fresh = HostPlan { changes: vec![], ..plan.clone() };
        assert_eq!(drift(s.host("h1").unwrap(), &o, &fresh, &catalog("run-x")).len(), 1);
        // The same plan, but the exec would run another command than reviewed.
        let why = drift(s.host("h1").unwrap(), &o, &plan, &catalog("rm -rf /srv"));
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("catalog compiled now differs"), "{why:?}");
    }

    #[test]
    fn diff_text_alone_is_not_drift() {
        let (mut plan, o) = host("aaaa", "c1");
        plan.changes = vec![Change::UpdateFile {
            path: "/etc/app.conf".into(),
            from_sha256: "aaaa".into(),
            to_sha256: "bbbb".into(),
            diff: "-old\n+new\n".into(),
            attrs: vec![],
            through: None,
        }];
        let s = saved(plan.clone(), &o);
        let mut fresh = plan;
        if let Change::UpdateFile { diff, .. } = &mut fresh.changes[0] {
            *diff = "(diff hidden: ...)\n".into();
        }
        assert!(drift(s.host("h1").unwrap(), &o, &fresh, &catalog("run-x")).is_empty());
    }

    #[test]
    fn other_files_are_refused_with_the_path() {
        let e = SavedPlan::parse("x.json", "{\"hosts\": []}").unwrap_err();
        assert!(e.to_string().starts_with("x.json: not a stackdeploy plan"), "{e}");
        let e = SavedPlan::parse("x.json", "{\n\"format\": ").unwrap_err();
        assert!(e.to_string().starts_with("x.json:2:"), "{e}");
    }
}

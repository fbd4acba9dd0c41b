//! Commit-to-commit comparison (`diff`): what moving an environment from one commit to another
//! would change, computed from the two commits' catalogs alone (no host is contacted).
//!
//! A host's catalog at the old commit stands in for the host's state: it becomes the
//! [`Observed`] that [`plan_host`] plans the new catalog against, so a diff shows exactly the
//! changes and restarts a plan would on a host that faithfully runs the old commit. Changes to
//! a resource's definition that touch nothing on the host (a service's restart command, a
//! file's notify list) are listed as well: a reviewer wants to see them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AttrChange, Change, HostPlan, OldContent, Restart, plan_host};
use crate::catalog::{Catalog, Compiler, EnvContext, Resource};
use crate::error::{Error, Errors, Result};
use crate::model::{Environment, Host};
use crate::secrets::Secrets;
use crate::state::{Applied, AppliedPatch, Observed, PackageState, PathState};

/// One side of an environment diff: a commit's compiled view of the environment.
pub struct Side<'a> {
    pub commit: &'a str,
    pub compiler: &'a Compiler<'a>,
    /// The environment and its template context; `None` when the environment does not exist
    /// at this commit (every host of the other side is then added or removed).
    pub env: Option<(&'a Environment, &'a EnvContext)>,
    /// Each host's facts (static facts plus cached gathered ones).
    pub facts: &'a (dyn Fn(&Host) -> toml::Table + Sync),
}

/// What moving an environment from one commit to another changes.
#[derive(Debug, Clone, Serialize)]
pub struct EnvDiff {
    pub environment: String,
    pub from: String,
    pub to: String,
    /// Hosts compared (present at both commits and selected).
    pub compared: usize,
    /// Hosts whose diff is not empty, in inventory order.
    pub changed: Vec<HostDiff>,
    /// Hosts only in the newer commit's inventory (name, role).
    pub added: Vec<(String, String)>,
    /// Hosts only in the older commit's inventory.
    pub removed: Vec<(String, String)>,
    /// The secrets of each compared host at either commit, to redact text the catalogs did
    /// not produce (commit subjects in a review). Kept per host, not merged: merging re-sorts
    /// the redaction needles on every new value, quadratic with per-host passwords.
    #[serde(skip)]
    pub secrets: Vec<Secrets>,
}

impl EnvDiff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }

    /// `text` with every secret of every compared host replaced by its marker.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, s| s.redact(&t).into_owned())
    }
}

/// Compiles every selected host at both commits (on all cores) and diffs them. Every compile
/// error of either commit is returned, naming its host.
pub fn diff_env(
    name: &str,
    from: &Side<'_>,
    to: &Side<'_>,
    selected: &(dyn Fn(&Host) -> bool + Sync),
) -> std::result::Result<EnvDiff, Errors> {
    fn hosts_of<'s>(side: &Side<'s>, selected: &dyn Fn(&Host) -> bool) -> Vec<&'s Host> {
        side.env.map(|(e, _)| e.hosts.iter().filter(|h| selected(h)).collect()).unwrap_or_default()
    }
    let (old_hosts, new_hosts) = (hosts_of(from, selected), hosts_of(to, selected));
    let find_old = |name: &str| old_hosts.iter().copied().find(|h| h.name == name);
    let pairs: Vec<(&Host, &Host)> =
        new_hosts.iter().filter_map(|h| find_old(&h.name).map(|o| (o, *h))).collect();
    let added = new_hosts
        .iter()
        .filter(|h| find_old(&h.name).is_none())
        .map(|h| (h.name.clone(), h.role.clone()))
        .collect();
    let removed = old_hosts
        .iter()
        .filter(|o| !new_hosts.iter().any(|h| h.name == o.name))
        .map(|h| (h.name.clone(), h.role.clone()))
        .collect();
    let compile = |side: &Side<'_>, h: &Host| {
        let (_, env_ctx) = side.env.expect("a host of this side comes from its environment");
        side.compiler.compile(env_ctx, h, (side.facts)(h)).map_err(|errors| {
            let commit = crate::source::short(side.commit);
            errors.map(|e| e.map_detail(|d| format!("{d} (commit {commit})")).at_host(&h.name))
        })
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = pairs.len();
    let results = crate::pool::parallel(pairs, workers, |(old, new)| {
        let (a, b) = (compile(from, old), compile(to, new));
        match (a, b) {
            (Ok(mut a), Ok(b)) => {
                from.compiler.add_newly_secret(
                    old,
                    || (from.facts)(old),
                    &mut a.secrets,
                    &b.secrets,
                );
                let diff = diff_host(&a, &b, from.commit, to.commit).map_err(Errors::from)?;
                a.secrets.extend(&b.secrets);
                Ok((diff, a.secrets))
            }
            (a, b) => Err(a.err().into_iter().chain(b.err()).flatten().collect::<Errors>()),
        }
    });
    let mut changed = Vec::new();
    let mut errors: Vec<Error> = Vec::new();
    let mut secrets = Vec::new();
    for r in results {
        let r = r.map(|(d, s)| {
            secrets.push(s);
            d
        });
        match r {
            Ok(d) if d.is_empty() => {}
            Ok(d) => changed.push(d),
            // The same template error on 500 hosts is one problem.
            Err(e) => {
                for e in e {
                    if !errors.iter().any(|x: &Error| x.to_string() == e.to_string()) {
                        errors.push(e);
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(EnvDiff {
        environment: name.to_string(),
        from: from.commit.to_string(),
        to: to.commit.to_string(),
        compared: count,
        changed,
        added,
        removed,
        secrets,
    })
}

/// How one host's catalog changes between two commits.
#[derive(Debug, Clone, Serialize)]
pub struct HostDiff {
    pub host: String,
    pub role: String,
    /// In apply order; file diffs are redacted.
    pub changes: Vec<Change>,
    pub restarts: Vec<Restart>,
    pub redefined: Vec<Redefined>,
}

impl HostDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.restarts.is_empty() && self.redefined.is_empty()
    }
}

/// A resource whose definition changed in ways the host's state does not show.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Redefined {
    /// `service:haproxy`, or `host` for the host's own entry (its role).
    pub resource: String,
    pub fields: Vec<AttrChange>,
}

/// Diffs one host's catalog at `from` (commit `from_commit`) against `to` (`to_commit`).
pub fn diff_host(
    from: &Catalog,
    to: &Catalog,
    from_commit: &str,
    to_commit: &str,
) -> Result<HostDiff> {
    let (observed, contents) = as_observed(from, from_commit);
    let label = format!("commit {}", crate::source::short(from_commit));
    // A secret file's old content is never shown, also when the newer commit no longer marks
    // the file secret.
    let withheld = from.files().filter(|f| f.secret).map(|f| f.path.clone()).collect();
    let old = OldContent {
        files: &contents,
        secrets: Some(&from.secrets),
        label: &label,
        withheld: &withheld,
    };
    let HostPlan { changes, restarts, .. } = plan_host(to, &observed, to_commit, &old)?;
    let mut secrets = to.secrets.clone();
    secrets.extend(&from.secrets);
    let mut redefined = Vec::new();
    if from.role != to.role {
        redefined.push(Redefined {
            resource: "host".into(),
            fields: vec![AttrChange {
                attr: "role".into(),
                from: from.role.clone(),
                to: to.role.clone(),
            }],
        });
    }
    for new in &to.resources {
        let id = new.id();
        let Some(old) = from.resources.iter().find(|r| r.id() == id) else { continue };
        let fields = definition_changes(old, new, &secrets);
        if !fields.is_empty() {
            redefined.push(Redefined { resource: id, fields });
        }
    }
    Ok(HostDiff { host: to.host.clone(), role: to.role.clone(), changes, restarts, redefined })
}

/// The owner (or group) a host running a catalog has: the catalog's, or `(unmanaged)` when
/// it leaves it as it is (then any value the newer catalog sets shows as a change).
fn as_set(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "(unmanaged)".into())
}

/// A host that runs `catalog` exactly, as a probe would see it, plus its files' contents.
fn as_observed(catalog: &Catalog, commit: &str) -> (Observed, BTreeMap<String, Vec<u8>>) {
    let mut observed = Observed::default();
    let mut contents = BTreeMap::new();
    for r in &catalog.resources {
        match r {
            Resource::Package(p) if p.ensure != "absent" => {
                observed.packages.insert(p.name.clone(), PackageState::Installed(p.ensure.clone()));
            }
            Resource::Package(_) => {}
            Resource::Directory(d) => {
                observed.paths.insert(
                    d.path.clone(),
                    PathState::Directory {
                        mode: d.mode.0,
                        owner: as_set(&d.owner),
                        group: as_set(&d.group),
                    },
                );
            }
            Resource::File(f) => {
                observed.paths.insert(
                    f.path.clone(),
                    PathState::File {
                        sha256: f.sha256.clone(),
                        mode: f.mode.0,
                        owner: as_set(&f.owner),
                        group: as_set(&f.group),
                    },
                );
                if !f.secret {
                    contents.insert(f.path.clone(), f.content.as_bytes().to_vec());
                }
            }
            // Its guards were satisfied when the old commit was applied.
            Resource::Exec(x) => {
                observed.execs.insert(x.name.clone(), false);
            }
            Resource::Service(s) => {
                observed.services.insert(s.name.clone(), s.ensure == "running");
            }
            // The patched file's content is the host's, unknown here: its path stays out of
            // `paths`, so the plan shows the patch file's own change.
            Resource::Patch(_) => {}
        }
    }
    observed.applied = Some(Applied {
        commit: commit.to_string(),
        run_id: String::new(),
        time: 0,
        files: catalog.files().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
        patches: catalog
            .patches()
            .map(|p| {
                let record = AppliedPatch {
                    source: p.source.clone(),
                    sha256: p.sha256.clone(),
                    original: String::new(),
                    patched: String::new(),
                    patch: p.patch.to_string(),
                    notify: p.notify.clone(),
                };
                (p.path.clone(), record)
            })
            .collect(),
    });
    (observed, contents)
}

/// Fields of a resource's definition that differ, except those the plan already shows
/// (content, ensure, mode, owner, group). Values are redacted.
fn definition_changes(old: &Resource, new: &Resource, secrets: &Secrets) -> Vec<AttrChange> {
    const SHOWN_BY_PLAN: &[&str] =
        &["content", "patch", "sha256", "ensure", "mode", "owner", "group"];
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let text = |v: Option<&serde_json::Value>| match v {
        None => "(none)".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !SHOWN_BY_PLAN.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| AttrChange {
            attr: k.clone(),
            from: secrets.redact(&text(a.get(k))).into_owned(),
            to: secrets.redact(&text(b.get(k))).into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! The plan: what apply would change on one host, computed purely from its catalog and the
//! observed state. Plain serialisable data (saved plans, JSON output); contents of files are
//! not in it — apply takes them from the catalog of the same commit — and diffs in it are
//! already redacted.
//!
//! Around it: [`planfile`] (plans saved for review and applied later), [`compare`] (the
//! commit-to-commit comparison, which plans one commit's catalog against another's), [`drift`]
//! (which of a plan against the commit a host runs is drift), [`group`]
//! (the same change across hosts, shown once) and [`history`] (the commits hosts run, whose
//! secrets the old side of a diff must not show).

pub mod compare;
pub mod drift;
pub mod group;
pub mod history;
pub mod masking;
pub mod patch;
pub mod planfile;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Links, Mode, Resource};
use crate::error::{self, Result};
use crate::secrets::Secrets;
use crate::state::{Observed, PackageState, PathState};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostPlan {
    pub host: String,
    pub environment: String,
    pub role: String,
    pub address: String,
    pub port: u16,
    /// The commit whose catalog this plan converges to.
    pub commit: String,
    /// In apply order.
    pub changes: Vec<Change>,
    /// Services (and refresh-only execs) to restart after the changes, in catalog order.
    pub restarts: Vec<Restart>,
    /// Every patched file: what its record becomes and the content it gets. Not serialised
    /// (it is the host's content); see [`patch::Patched`].
    #[serde(skip)]
    pub patched: Vec<patch::Patched>,
}

impl HostPlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.restarts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// `owner`, `group`: `None` unmanaged (created root's).
    CreateDirectory {
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Mode,
    },
    FixDirectory {
        path: String,
        attrs: Vec<AttrChange>,
    },
    /// `owner`, `group`: `None` unmanaged (created root's).
    CreateFile {
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Mode,
        sha256: String,
        diff: String,
        /// Where it is written: the path a symlink there resolves to (`links = "follow"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<String>,
        /// What is at the path now and goes (`links = "replace"`: "symlink to ...").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacing: Option<String>,
    },
    /// Content and/or attributes differ. `diff` is empty when only attributes change.
    UpdateFile {
        path: String,
        from_sha256: String,
        to_sha256: String,
        diff: String,
        attrs: Vec<AttrChange>,
        /// Where it is written: the path a symlink there resolves to (`links = "follow"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<String>,
    },
    /// Managed by the last run, no longer in the catalog.
    RemoveFile {
        path: String,
        sha256: String,
    },
    InstallPackage {
        name: String,
        ensure: String,
        installed: Option<String>,
    },
    RemovePackage {
        name: String,
    },
    /// A patch applied to a file something else installed, or (`reverse`) taken out of it
    /// because the catalog no longer has it. `patch` is the patch file. Comparing two commits
    /// without a host, the hashes are empty and `diff` is the patch file's own change.
    PatchFile {
        path: String,
        patch: String,
        from_sha256: String,
        to_sha256: String,
        diff: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reverse: bool,
        /// The file is not there yet: a package this apply installs brings it. Nothing is
        /// written by this apply; the host is planned again once it is done, and that plan
        /// patches the file (`diff` is the patch file).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        after_packages: bool,
    },
    RunExec {
        name: String,
    },
    StartService {
        name: String,
    },
    StopService {
        name: String,
    },
}

impl Change {
    /// The resource id this change is about (`file:/etc/x`, `service:haproxy`).
    pub fn id(&self) -> String {
        match self {
            Change::CreateDirectory { path, .. } | Change::FixDirectory { path, .. } => {
                format!("directory:{path}")
            }
            Change::CreateFile { path, .. }
            | Change::UpdateFile { path, .. }
            | Change::RemoveFile { path, .. } => {
                format!("file:{path}")
            }
            Change::InstallPackage { name, .. } | Change::RemovePackage { name } => {
                format!("package:{name}")
            }
            Change::PatchFile { path, .. } => format!("patch:{path}"),
            Change::RunExec { name } => format!("exec:{name}"),
            Change::StartService { name } | Change::StopService { name } => {
                format!("service:{name}")
            }
        }
    }

    /// Does this change write new content to a file (and so trigger its notify edges)?
    fn changes_content(&self) -> Option<&str> {
        match self {
            Change::CreateFile { path, .. } => Some(path),
            Change::UpdateFile { path, from_sha256, to_sha256, .. } if from_sha256 != to_sha256 => {
                Some(path)
            }
            Change::PatchFile { path, after_packages: false, .. } => Some(path),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttrChange {
    pub attr: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Restart {
    /// `service:NAME` or `exec:NAME`.
    pub resource: String,
    /// Paths whose change triggers it; empty when it is owed by an interrupted run.
    pub because: Vec<String>,
    pub pending: bool,
}

/// What the host's files looked like, for diffs: their content (fetched only for files whose
/// hash differs) and the secrets of the commit that wrote them, when known.
pub struct OldContent<'a> {
    pub files: &'a BTreeMap<String, Vec<u8>>,
    /// `None` when the commit the host runs is unknown: diffs of files holding secrets are then
    /// hidden, since the old text may hold old secret values nothing could redact.
    pub secrets: Option<&'a Secrets>,
    /// What the old side of a diff is called in its header: `on host`, `commit 1a2b3c`.
    pub label: &'a str,
    /// Files whose old content is never shown: they were `secret` at the commit the host runs.
    /// A file no longer secret then shows its new content against nothing.
    pub withheld: &'a BTreeSet<String>,
}

/// Computes one host's plan.
pub fn plan_host(
    catalog: &Catalog,
    observed: &Observed,
    commit: &str,
    old: &OldContent<'_>,
) -> Result<HostPlan> {
    let mut changes = Vec::new();
    let mut patched = Vec::new();
    let host = &catalog.host;
    // One set, longest value first: redacting with the old secrets and then the new ones would
    // miss a new secret that contains the old one.
    let mut all_secrets = catalog.secrets.clone();
    if let Some(old) = old.secrets {
        all_secrets.extend(old);
    }
    for r in &catalog.resources {
        match r {
            Resource::Package(p) => {
                let installed = match observed.packages.get(&p.name) {
                    Some(PackageState::Installed(v)) => Some(v.clone()),
                    _ => None,
                };
                match (p.ensure.as_str(), &installed) {
                    ("absent", Some(_)) => {
                        changes.push(Change::RemovePackage { name: p.name.clone() })
                    }
                    ("absent", None) | ("present" | "installed" | "latest", Some(_)) => {}
                    (version, Some(v)) if v == version => {}
                    _ => changes.push(Change::InstallPackage {
                        name: p.name.clone(),
                        ensure: p.ensure.clone(),
                        installed,
                    }),
                }
            }
            Resource::Directory(d) => {
                match observed.paths.get(&d.path).unwrap_or(&PathState::Missing) {
                    PathState::Missing => changes.push(Change::CreateDirectory {
                        path: d.path.clone(),
                        owner: d.owner.clone(),
                        group: d.group.clone(),
                        mode: d.mode,
                    }),
                    PathState::Directory { mode, owner, group } => {
                        // A directory inherits setgid from its parent and `chmod 0755` keeps it,
                        // so special bits count only when the catalog asks for some.
                        let have = if d.mode.0 & 0o7000 == 0 { mode & 0o777 } else { *mode };
                        let attrs = attr_changes(
                            d.mode,
                            d.owner.as_deref(),
                            d.group.as_deref(),
                            have,
                            owner,
                            group,
                        );
                        if !attrs.is_empty() {
                            changes.push(Change::FixDirectory { path: d.path.clone(), attrs });
                        }
                    }
                    other => return Err(refuse(host, &d.path, other, "a directory")),
                }
            }
            Resource::File(f) => {
                let diff_text = |from: &str, label: &str| -> String {
                    let redact = |t: &str| all_secrets.redact(t).into_owned();
                    if f.secret {
                        return String::new();
                    }
                    let new_has_secret = *catalog.secrets.redact(&f.content) != *f.content;
                    if old.secrets.is_none() && new_has_secret && !from.is_empty() {
                        return format!(
                            "(diff hidden: {} holds secrets and the commit the host runs is unknown)\n",
                            f.path
                        );
                    }
                    masked_diff(&redact(from), &redact(&f.content), &f.path, label, commit)
                };
                let through = match f.links {
                    Links::Follow => observed.links.get(&f.path).filter(|t| **t != f.path).cloned(),
                    _ => None,
                };
                let create = |replacing: Option<String>| Change::CreateFile {
                    path: f.path.clone(),
                    owner: f.owner.clone(),
                    group: f.group.clone(),
                    mode: f.mode,
                    sha256: f.sha256.clone(),
                    diff: diff_text("", old.label),
                    through: through.clone(),
                    replacing,
                };
                match observed.paths.get(&f.path).unwrap_or(&PathState::Missing) {
                    PathState::Missing => changes.push(create(None)),
                    PathState::Other { what }
                        if f.links == Links::Replace && what.starts_with("symlink") =>
                    {
                        changes.push(create(Some(what.clone())))
                    }
                    PathState::File { sha256, mode, owner, group } => {
                        let attrs = attr_changes(
                            f.mode,
                            f.owner.as_deref(),
                            f.group.as_deref(),
                            *mode,
                            owner,
                            group,
                        );
                        let content_differs = *sha256 != f.sha256;
                        if content_differs || !attrs.is_empty() {
                            let diff = if !content_differs {
                                String::new()
                            } else if old.withheld.contains(&f.path) {
                                diff_text("", &format!("{}: secret there, not shown", old.label))
                            } else {
                                match old.files.get(&f.path) {
                                    Some(b) if is_binary(b) || is_binary(f.content.as_bytes()) => {
                                        not_diffed(
                                            &f.path,
                                            old.label,
                                            commit,
                                            b.len(),
                                            f.content.len(),
                                            "binary",
                                        )
                                    }
                                    Some(b) => diff_text(&String::from_utf8_lossy(b), old.label),
                                    None => String::new(),
                                }
                            };
                            changes.push(Change::UpdateFile {
                                path: f.path.clone(),
                                from_sha256: sha256.clone(),
                                to_sha256: f.sha256.clone(),
                                diff,
                                attrs,
                                through: through.clone(),
                            });
                        }
                    }
                    PathState::Other { what } if what.starts_with("symlink") => {
                        return Err(error::host(format!(
                            "{} is a {what} on the host, and file resources do not write through \
                             or over a symlink unless told: add `links = \"follow\"` to it (profile \
                             {}) to write the file the link points to, or `links = \"replace\"` to \
                             put a regular file in its place",
                            f.path, f.profile
                        ))
                        .at_host(host));
                    }
                    other => return Err(refuse(host, &f.path, other, "a regular file")),
                }
            }
            Resource::Patch(p) => {
                let record = observed.applied.as_ref().and_then(|a| a.patches.get(&p.path));
                match observed.paths.get(&p.path) {
                    // Two commits compared without a host: the patch file's own change.
                    None => {
                        if record.is_none_or(|r| r.sha256 != p.sha256) {
                            let before = record.map_or("", |r| r.patch.as_str());
                            changes.push(Change::PatchFile {
                                path: p.path.clone(),
                                patch: p.source.clone(),
                                from_sha256: String::new(),
                                to_sha256: String::new(),
                                diff: unified(before, &p.patch, &p.source, old.label, commit),
                                reverse: false,
                                after_packages: false,
                            });
                        }
                    }
                    Some(PathState::File { sha256, mode, .. }) => {
                        let content = old.files.get(&p.path).map(Vec::as_slice);
                        let planned = patch::plan(host, p, sha256, *mode, content, record)?;
                        if let (Some((from, to)), Some(new)) =
                            (planned.change, &planned.patched.content)
                        {
                            let redact = |t: &str| all_secrets.redact(t).into_owned();
                            let diff = masked_diff(
                                &redact(&planned.before),
                                &redact(new),
                                &p.path,
                                old.label,
                                commit,
                            );
                            changes.push(Change::PatchFile {
                                path: p.path.clone(),
                                patch: p.source.clone(),
                                from_sha256: from,
                                to_sha256: to,
                                diff,
                                reverse: false,
                                after_packages: false,
                            });
                        }
                        patched.push(planned.patched);
                    }
                    // A package installed earlier in this apply may bring it: patched by
                    // the plan made once the packages are in (rollout's second pass).
                    Some(PathState::Missing)
                        if changes.iter().any(|c| matches!(c, Change::InstallPackage { .. })) =>
                    {
                        changes.push(Change::PatchFile {
                            path: p.path.clone(),
                            patch: p.source.clone(),
                            from_sha256: String::new(),
                            to_sha256: String::new(),
                            diff: unified("", &p.patch, &p.source, old.label, commit),
                            reverse: false,
                            after_packages: true,
                        });
                    }
                    Some(PathState::Missing) => {
                        return Err(error::apply(format!(
                            "{} does not exist on the host, so patch {} (profile {}) has nothing \
                             to apply to, and this apply installs no package that could bring it: \
                             add the package that installs it (a package resource before the \
                             patch)",
                            p.path, p.source, p.profile
                        ))
                        .at_host(host));
                    }
                    Some(other) => return Err(refuse(host, &p.path, other, "a file to patch")),
                }
            }
            Resource::Exec(x) => {
                if !x.refreshonly && observed.execs.get(&x.name).copied().unwrap_or(true) {
                    changes.push(Change::RunExec { name: x.name.clone() });
                }
            }
            Resource::Service(s) => {
                let running = observed.services.get(&s.name).copied().unwrap_or(false);
                match (s.ensure.as_str(), running) {
                    ("running", false) => {
                        changes.push(Change::StartService { name: s.name.clone() })
                    }
                    ("stopped", true) => changes.push(Change::StopService { name: s.name.clone() }),
                    _ => {}
                }
            }
        }
    }

    // Files the last run managed that the catalog no longer has.
    if let Some(applied) = &observed.applied {
        for (path, _) in applied.files.iter() {
            let still = catalog.files().any(|f| &f.path == path);
            if let (false, Some(PathState::File { sha256, .. })) = (still, observed.paths.get(path))
            {
                changes.push(Change::RemoveFile { path: path.clone(), sha256: sha256.clone() });
            }
        }
    }

    // Patches the last run left that the catalog no longer has (a file resource that now
    // writes the path replaces the whole file anyway).
    if let Some(applied) = &observed.applied {
        for (path, r) in &applied.patches {
            if catalog.patch(path).is_some() || catalog.file(path).is_some() {
                continue;
            }
            let reverse = |from: String, to: String, diff: String| Change::PatchFile {
                path: path.clone(),
                patch: r.source.clone(),
                from_sha256: from,
                to_sha256: to,
                diff,
                reverse: true,
                after_packages: false,
            };
            match observed.paths.get(path) {
                None => changes.push(reverse(
                    String::new(),
                    String::new(),
                    unified(&r.patch, "", &r.source, old.label, commit),
                )),
                Some(PathState::File { sha256, mode, .. }) => {
                    let content = old.files.get(path).map(Vec::as_slice);
                    if let Some(planned) = patch::revert(host, path, sha256, *mode, content, r)? {
                        let new = planned.patched.content.as_deref().unwrap_or_default();
                        let redact = |t: &str| all_secrets.redact(t).into_owned();
                        let diff = masked_diff(
                            &redact(&planned.before),
                            &redact(new),
                            path,
                            old.label,
                            commit,
                        );
                        let (from, to) = planned.change.unwrap_or_default();
                        changes.push(reverse(from, to, diff));
                        patched.push(planned.patched);
                    }
                }
                Some(_) => {}
            }
        }
    }

    let restarts = restarts(catalog, &changes, observed);
    Ok(HostPlan {
        host: catalog.host.clone(),
        environment: catalog.environment.clone(),
        role: catalog.role.clone(),
        address: catalog.address.clone(),
        port: catalog.port,
        commit: commit.to_string(),
        changes,
        restarts,
        patched,
    })
}

/// Notified services/execs, once each, in catalog order. A service that is being started (or
/// stopped) anyway is not restarted as well.
fn restarts(catalog: &Catalog, changes: &[Change], observed: &Observed) -> Vec<Restart> {
    let pending = &observed.pending_restarts;
    let recorded = |path: &str| observed.applied.as_ref().and_then(|a| a.patches.get(path));
    let mut because: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in changes {
        let Some(path) = c.changes_content() else { continue };
        let notify = match catalog.file(path) {
            Some(f) => &f.notify,
            None => match (catalog.patch(path), recorded(path)) {
                (Some(p), _) => &p.notify,
                // Taken out: what it notified when it was put in.
                (None, Some(r)) => &r.notify,
                (None, None) => continue,
            },
        };
        for target in notify {
            because.entry(target.clone()).or_default().push(path.to_string());
        }
    }
    for r in &catalog.resources {
        if let Resource::Exec(x) = r {
            let ran =
                changes.iter().any(|c| matches!(c, Change::RunExec { name } if name == &x.name));
            if ran {
                for target in &x.notify {
                    because.entry(target.clone()).or_default().push(format!("exec:{}", x.name));
                }
            }
        }
    }
    // A refresh-only exec that is triggered passes the refresh on to what it notifies.
    loop {
        let mut added = false;
        for r in &catalog.resources {
            let Resource::Exec(x) = r else { continue };
            let id = format!("exec:{}", x.name);
            if !because.contains_key(&id) {
                continue;
            }
            for target in &x.notify {
                let entry = because.entry(target.clone()).or_default();
                if !entry.contains(&id) {
                    entry.push(id.clone());
                    added = true;
                }
            }
        }
        if !added {
            break;
        }
    }
    // Started, stopped or run anyway: no second restart or run.
    let handled: Vec<String> = changes
        .iter()
        .filter(|c| {
            matches!(
                c,
                Change::StartService { .. } | Change::StopService { .. } | Change::RunExec { .. }
            )
        })
        .map(Change::id)
        .collect();
    let mut out = Vec::new();
    for r in &catalog.resources {
        let id = match r {
            Resource::Service(s) if s.ensure == "running" => format!("service:{}", s.name),
            Resource::Exec(x) => format!("exec:{}", x.name),
            _ => continue,
        };
        let is_pending = pending.contains(&id);
        let triggered = because.remove(&id);
        if (triggered.is_some() || is_pending) && !handled.contains(&id) {
            out.push(Restart {
                resource: id,
                because: triggered.unwrap_or_default(),
                pending: is_pending,
            });
        }
    }
    out
}

/// The attributes that differ from what the host has; an unmanaged owner or group never does.
fn attr_changes(
    mode: Mode,
    owner: Option<&str>,
    group: Option<&str>,
    have_mode: u32,
    have_owner: &str,
    have_group: &str,
) -> Vec<AttrChange> {
    let mut out = Vec::new();
    if mode.0 != have_mode {
        out.push(AttrChange {
            attr: "mode".into(),
            from: Mode(have_mode).to_string(),
            to: mode.to_string(),
        });
    }
    if let Some(owner) = owner.filter(|o| *o != have_owner) {
        out.push(AttrChange { attr: "owner".into(), from: have_owner.into(), to: owner.into() });
    }
    if let Some(group) = group.filter(|g| *g != have_group) {
        out.push(AttrChange { attr: "group".into(), from: have_group.into(), to: group.into() });
    }
    out
}

fn refuse(host: &str, path: &str, state: &PathState, wanted: &str) -> crate::error::Error {
    let what = match state {
        PathState::Directory { .. } => "a directory".to_string(),
        PathState::File { .. } => "a regular file".to_string(),
        PathState::Other { what } => what.clone(),
        PathState::Missing => "missing".to_string(),
    };
    error::host(format!(
        "{path} is {what} on the host, but the catalog manages it as {wanted}; stackdeploy will \
         not replace it: remove or move it by hand"
    ))
    .at_host(host)
}

/// Files larger than this (either side) are not diffed: the plan says how the size changes
/// (the hashes show the content does).
pub const MAX_DIFF_INPUT: usize = 1024 * 1024;
/// A longer diff is cut at a line, saying how much was left out.
pub const MAX_DIFF_OUTPUT: usize = 256 * 1024;
/// How long one file's diff may take; past it the diff is still right, only less minimal.
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// Content a diff would only garble: a NUL byte, or not UTF-8.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.contains(&0) || std::str::from_utf8(bytes).is_err()
}

fn header(path: &str, label: &str, commit: &str) -> (String, String) {
    let short = &commit[..commit.len().min(12)];
    (format!("{path} ({label})"), format!("{path} (commit {short})"))
}

/// What stands for the diff of a file too large or binary to show.
fn not_diffed(path: &str, label: &str, commit: &str, from: usize, to: usize, why: &str) -> String {
    let (a, b) = header(path, label, commit);
    format!("--- {a}\n+++ {b}\n(not diffed, {why}: {from} bytes -> {to} bytes)\n")
}

/// A unified diff of `from` (called `label`: the host, an older commit) to `to` (the commit),
/// with 3 lines of context; bounded in the input it diffs, the time it takes and its length.
pub fn unified(from: &str, to: &str, path: &str, label: &str, commit: &str) -> String {
    cut(unified_whole(from, to, path, label, commit))
}

/// [`unified`] of texts already redacted, with the host's side of secret-bearing hunks
/// withheld ([`masking`]) before the diff is cut to length: a cut between a host line and the
/// secret line that replaces it must not leave the host line in its hunk alone.
pub fn masked_diff(from: &str, to: &str, path: &str, label: &str, commit: &str) -> String {
    cut(masking::mask_replaced_secrets(&unified_whole(from, to, path, label, commit)))
}

/// The diff of [`unified`], not yet cut to length.
fn unified_whole(from: &str, to: &str, path: &str, label: &str, commit: &str) -> String {
    if from.len() > MAX_DIFF_INPUT || to.len() > MAX_DIFF_INPUT {
        let why = format!("larger than {} KiB", MAX_DIFF_INPUT / 1024);
        return not_diffed(path, label, commit, from.len(), to.len(), &why);
    }
    if to.contains('\0') {
        return not_diffed(path, label, commit, from.len(), to.len(), "binary");
    }
    let (a, b) = header(path, label, commit);
    let diff = similar::TextDiff::configure().timeout(DIFF_DEADLINE).diff_lines(from, to);
    diff.unified_diff().context_radius(3).header(&a, &b).to_string()
}

/// `text` cut at a line to at most [`MAX_DIFF_OUTPUT`] bytes, saying how much is left out.
fn cut(text: String) -> String {
    if text.len() <= MAX_DIFF_OUTPUT {
        return text;
    }
    // At a newline, which is always a character boundary.
    let cut =
        text.as_bytes()[..MAX_DIFF_OUTPUT].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let left = text[cut..].lines().count();
    format!("{}(diff cut here: {left} more lines)\n", &text[..cut])
}

#[cfg(test)]
mod tests;

//! Planning `[[patch]]` resources: from the host's current file (fetched) and the patch the
//! last run recorded, the file's new content, which apply then writes like any file (staged,
//! backed up, renamed into place). The patch is applied here, on the engine's side, so the
//! plan shows exactly what will be written and a hunk that does not apply stops the host
//! before anything is touched.
//!
//! - In place already (the record's patch, and the file as the record left it): nothing to do,
//!   and nothing fetched.
//! - A new version of the patch: the old one (from the record) is taken out first, then the new
//!   one applied to what that gives.
//! - A file that already holds the patch (applied by hand, or by a run whose record is gone):
//!   nothing to write; recorded from now on.
//! - A patch the catalog no longer has: undone, when the file still holds it.

use std::sync::Arc;

use crate::catalog::{Catalog, Patch};
use crate::digest::sha256_hex;
use crate::error::{self, Error};
use crate::patchfile::PatchFile;
use crate::state::{AppliedPatch, Observed, PathState};

/// A patched file as the plan left it. Not part of the plan's serialised form: the content is
/// the host's, computed anew by every plan (a saved plan's apply plans again and refuses a
/// host whose plan changed).
#[derive(Debug, Clone)]
pub struct Patched {
    pub path: String,
    /// What the host's record says about it after the apply (`None`: no patch in it).
    pub record: Option<AppliedPatch>,
    /// The content to write, when it changes.
    pub content: Option<Arc<str>>,
    /// The file's mode, which the new content keeps.
    pub mode: u32,
}

/// The outcome of planning one patched file.
pub struct Planned {
    pub patched: Patched,
    /// From, to (hashes); `None` when nothing is written.
    pub change: Option<(String, String)>,
    /// The text before and after, for the diff.
    pub before: String,
}

/// The patched paths whose current content the plan needs (fetched by the rollout before it
/// plans): those not already as the last run left them.
pub fn needs_content<'o>(catalog: &Catalog, observed: &'o Observed) -> Vec<&'o str> {
    let record = |path: &str| observed.applied.as_ref().and_then(|a| a.patches.get(path));
    let mut out = Vec::new();
    for (path, state) in &observed.paths {
        let PathState::File { sha256, .. } = state else { continue };
        let needed = match (catalog.patch(path), record(path)) {
            (Some(p), Some(r)) => !(r.sha256 == p.sha256 && r.patched == *sha256),
            (Some(_), None) => true,
            // Dropped: unless the file is as it was without the patch, or a file resource
            // writes it now anyway.
            (None, Some(r)) => r.original != *sha256 && catalog.file(path).is_none(),
            (None, None) => false,
        };
        if needed {
            out.push(path.as_str());
        }
    }
    out
}

/// Plans `patch` on its file, whose state is `state`, content `content` (`None` when not
/// fetched: only possible when the record says it is in place) and record `record`.
pub fn plan(
    host: &str,
    patch: &Patch,
    sha256: &str,
    mode: u32,
    content: Option<&[u8]>,
    record: Option<&AppliedPatch>,
) -> Result<Planned, Error> {
    let keep = |r: &AppliedPatch| Planned {
        patched: Patched { path: patch.path.clone(), record: Some(r.clone()), content: None, mode },
        change: None,
        before: String::new(),
    };
    if let Some(r) = record.filter(|r| r.sha256 == patch.sha256 && r.patched == sha256) {
        return Ok(keep(r));
    }
    let current = text(host, &patch.path, content)?;
    let parsed = PatchFile::parse(&patch.patch)
        .map_err(|e| error::syntax(e.message).at_file(&patch.source, Some(e.line)))?;
    // The file as the recorded patch left it: take that patch out first.
    let base = match record.filter(|r| r.patched == sha256) {
        Some(r) => match PatchFile::parse(&r.patch).ok().map(|old| old.reversed().apply(current)) {
            Some(Ok(original)) => original,
            _ => current.to_string(),
        },
        None => current.to_string(),
    };
    let (original, result) = match parsed.apply(&base) {
        Ok(result) => (sha256_hex(base.as_bytes()), result),
        Err(mismatch) => match parsed.reversed().apply(&base) {
            // The file holds the patch already.
            Ok(original) => (sha256_hex(original.as_bytes()), base),
            Err(_) => {
                return Err(error::apply(format!(
                    "patch {} does not apply to {}: {mismatch}. The file is not the one the \
                     patch was made against (a package upgrade?), so nothing was written to \
                     it: make the patch again against the file as it is now",
                    patch.source, patch.path
                ))
                .at_host(host));
            }
        },
    };
    let to = sha256_hex(result.as_bytes());
    let record = AppliedPatch {
        source: patch.source.clone(),
        sha256: patch.sha256.clone(),
        original,
        patched: to.clone(),
        patch: patch.patch.to_string(),
        notify: patch.notify.clone(),
    };
    if to == sha256 {
        return Ok(keep(&record));
    }
    Ok(Planned {
        patched: Patched {
            path: patch.path.clone(),
            record: Some(record),
            content: Some(result.into()),
            mode,
        },
        change: Some((sha256.to_string(), to)),
        before: current.to_string(),
    })
}

/// Plans taking out a patch the catalog no longer has; `None` when the file does not hold it
/// (any more): the package replaced the file, or it is as it was before the patch.
pub fn revert(
    host: &str,
    path: &str,
    sha256: &str,
    mode: u32,
    content: Option<&[u8]>,
    record: &AppliedPatch,
) -> Result<Option<Planned>, Error> {
    if record.original == sha256 {
        return Ok(None);
    }
    let current = text(host, path, content)?;
    let Some(original) =
        PatchFile::parse(&record.patch).ok().and_then(|p| p.reversed().apply(current).ok())
    else {
        return Ok(None);
    };
    let to = sha256_hex(original.as_bytes());
    Ok(Some(Planned {
        patched: Patched {
            path: path.to_string(),
            record: None,
            content: Some(original.into()),
            mode,
        },
        change: Some((sha256.to_string(), to)),
        before: current.to_string(),
    }))
}

fn text<'c>(host: &str, path: &str, content: Option<&'c [u8]>) -> Result<&'c str, Error> {
    let bytes = content.ok_or_else(|| {
        error::host(format!("the content of {path} was not fetched from the host")).at_host(host)
    })?;
    std::str::from_utf8(bytes).map_err(|_| {
        error::apply(format!("{path} is not UTF-8 text on the host, so no patch applies to it"))
            .at_host(host)
    })
}

/// Runs through a host's life: plan, apply what the plan writes (as the apply script would),
/// plan again, with the host's file and record kept between runs.
#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::catalog::Resource;
    use crate::catalog::fixtures::{catalog, service};
    use crate::plan::{Change, HostPlan, OldContent, plan_host};
    use crate::state::Applied;

    const MODULE: &str = "/usr/lib/python3/dist-packages/app/m.py";
    const ORIGINAL: &str = "import os\n\ndef start():\n    os.sync()\n    return 1\n";
    const FIX: &str = "--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,3 @@\n def start():\n-    os.sync()\n+    pass\n     return 1\n";
    const PATCHED: &str = "import os\n\ndef start():\n    pass\n    return 1\n";
    const FIX2: &str = "--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,3 @@\n def start():\n-    os.sync()\n+    return 0\n     return 1\n";

    fn patch(text: &str) -> Resource {
        Resource::Patch(Patch {
            profile: "p".into(),
            path: MODULE.into(),
            source: "profiles/p/patches/fix.patch".into(),
            patch: text.into(),
            sha256: sha256_hex(text.as_bytes()),
            notify: vec!["service:app".into()],
        })
    }

    struct Host {
        content: Option<String>,
        applied: Option<Applied>,
        /// What the last plan fetched.
        fetched: Vec<String>,
    }

    impl Host {
        fn new(content: &str) -> Host {
            Host { content: Some(content.into()), applied: None, fetched: Vec::new() }
        }

        fn plan(&mut self, patches: &[&str]) -> Result<HostPlan, Error> {
            let mut resources: Vec<Resource> = patches.iter().map(|p| patch(p)).collect();
            resources.push(service("start"));
            let c = catalog("h", "r", resources);
            let mut o = Observed::default();
            o.services.insert("app".into(), true);
            o.applied = self.applied.clone();
            let state = match &self.content {
                Some(t) => PathState::File {
                    sha256: sha256_hex(t.as_bytes()),
                    mode: 0o644,
                    owner: "root".into(),
                    group: "root".into(),
                },
                None => PathState::Missing,
            };
            o.paths.insert(MODULE.into(), state);
            let mut files = BTreeMap::new();
            self.fetched = needs_content(&c, &o).into_iter().map(String::from).collect();
            for p in &self.fetched {
                files.insert(p.clone(), self.content.clone().unwrap_or_default().into_bytes());
            }
            let withheld = BTreeSet::new();
            let old =
                OldContent { files: &files, secrets: None, label: "on host", withheld: &withheld };
            plan_host(&c, &o, "0123456789abcdef", &old)
        }

        fn run(&mut self, patches: &[&str]) {
            let plan = self.plan(patches).unwrap();
            self.apply(&plan);
        }

        /// What apply does with a plan: write the contents, record the patches.
        fn apply(&mut self, plan: &HostPlan) {
            for p in &plan.patched {
                if let Some(content) = &p.content {
                    self.content = Some(content.to_string());
                }
            }
            self.applied = Some(Applied {
                commit: plan.commit.clone(),
                run_id: "r".into(),
                time: 0,
                files: BTreeMap::new(),
                patches: plan
                    .patched
                    .iter()
                    .filter_map(|p| Some((p.path.clone(), p.record.clone()?)))
                    .collect(),
            });
        }
    }

    #[test]
    fn applied_once_shown_as_a_diff_and_then_left_alone() {
        let mut host = Host::new(ORIGINAL);
        let plan = host.plan(&[FIX]).unwrap();
        let [Change::PatchFile { path, patch, from_sha256, to_sha256, diff, reverse: false, .. }] =
            &plan.changes[..]
        else {
            panic!("{:?}", plan.changes)
        };
        assert_eq!((path.as_str(), patch.as_str()), (MODULE, "profiles/p/patches/fix.patch"));
        assert_eq!(
            (from_sha256, to_sha256),
            (&sha256_hex(ORIGINAL.as_bytes()), &sha256_hex(PATCHED.as_bytes()))
        );
        assert!(diff.contains("-    os.sync()\n+    pass\n"), "{diff}");
        assert_eq!(plan.restarts[0].resource, "service:app");
        host.apply(&plan);
        assert_eq!(host.content.as_deref(), Some(PATCHED));

        let again = host.plan(&[FIX]).unwrap();
        assert!(again.is_empty(), "{:?}", again.changes);
        assert!(host.fetched.is_empty(), "a patch in place is not fetched again");
        assert_eq!(
            again.patched[0].record.as_ref().unwrap().original,
            sha256_hex(ORIGINAL.as_bytes())
        );
    }

    #[test]
    fn an_upgraded_file_that_the_patch_no_longer_fits_is_an_error_naming_the_hunk() {
        let mut host = Host::new(ORIGINAL);
        let plan = host.plan(&[FIX]).unwrap();
        host.apply(&plan);
        // The package's new version, over the patched file.
        host.content = Some(ORIGINAL.replace("os.sync()", "os.fsync(0)"));
        let e = host.plan(&[FIX]).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Apply);
        assert_eq!(
            e.to_string(),
            "h: patch profiles/p/patches/fix.patch does not apply to \
             /usr/lib/python3/dist-packages/app/m.py: hunk 1 of 1 (@@ -3,3 +3,3 @@, line 3 of the \
             patch) matches nowhere in the file: at line 4 the patch expects \"    os.sync()\" but \
             the file has \"    os.fsync(0)\". The file is not the one the patch was made against \
             (a package upgrade?), so nothing was written to it: make the patch again against the \
             file as it is now"
        );
    }

    #[test]
    fn an_upgrade_that_leaves_the_hunk_alone_is_patched_again() {
        let mut host = Host::new(ORIGINAL);
        host.run(&[FIX]);
        host.content = Some(format!("# 2.0\n{ORIGINAL}"));
        let plan = host.plan(&[FIX]).unwrap();
        host.apply(&plan);
        assert_eq!(host.content, Some(format!("# 2.0\n{PATCHED}")));
    }

    #[test]
    fn a_dropped_patch_is_taken_out_and_restarts_what_it_notified() {
        let mut host = Host::new(ORIGINAL);
        host.run(&[FIX]);
        let plan = host.plan(&[]).unwrap();
        assert!(
            matches!(&plan.changes[..], [Change::PatchFile { reverse: true, .. }]),
            "{:?}",
            plan.changes
        );
        assert_eq!(plan.restarts[0].resource, "service:app");
        host.apply(&plan);
        assert_eq!(host.content.as_deref(), Some(ORIGINAL));
        assert!(host.applied.as_ref().unwrap().patches.is_empty());
        assert!(host.plan(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_new_version_of_the_patch_replaces_the_old_one() {
        let mut host = Host::new(ORIGINAL);
        host.run(&[FIX]);
        let plan = host.plan(&[FIX2]).unwrap();
        let [Change::PatchFile { diff, .. }] = &plan.changes[..] else {
            panic!("{:?}", plan.changes)
        };
        assert!(diff.contains("-    pass\n+    return 0\n"), "{diff}");
        host.apply(&plan);
        assert_eq!(host.content.as_deref(), Some(PATCHED.replace("pass", "return 0").as_str()));
    }

    #[test]
    fn a_file_patched_by_hand_is_not_patched_twice() {
        let mut host = Host::new(PATCHED);
        let plan = host.plan(&[FIX]).unwrap();
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);
        // Recorded from now on, so dropping the patch takes it out.
        host.apply(&plan);
        host.run(&[]);
        assert_eq!(host.content.as_deref(), Some(ORIGINAL));
    }

    #[test]
    fn a_missing_file_names_the_patch_and_what_to_do() {
        let mut host = Host::new("");
        host.content = None;
        let e = host.plan(&[FIX]).unwrap_err().to_string();
        assert!(e.starts_with("h: /usr/lib/python3/dist-packages/app/m.py does not exist on the host, so patch profiles/p/patches/fix.patch"), "{e}");
        assert!(e.contains("this apply installs no package that could bring it"), "{e}");
        assert!(!e.contains("  "), "one sentence, not a broken string literal: {e}");
    }
}

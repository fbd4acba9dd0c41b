//! What the unit tests of rollouts and pipelines share: a small composition (one environment
//! of six hosts in three roles, one profile with a file, a service and an exec), as files, as a
//! loaded [`Composition`], or committed to a real git repository.

use std::collections::BTreeMap;
use std::path::Path;

use crate::composition::Composition;
use crate::source::{Origin, Snapshot};

/// `staging`: db01 (database), controller01-02 (controller), compute01-03 (compute).
pub const PIPELINE: &str = include_str!("pipeline.toml");

pub const PROFILE: &str = include_str!("profile.toml");

/// The composition's files, with the rollout's batches and failure budget, and extra files
/// (hieradata, stages) added or replacing.
pub fn files(batches: &str, budget: usize, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let pipeline = PIPELINE.replace("BATCHES", batches).replace("BUDGET", &budget.to_string());
    let mut files: BTreeMap<String, String> = [
        ("pipeline.toml", pipeline.as_str()),
        ("roles/database.toml", "profiles = [\"app\"]\n"),
        ("roles/controller.toml", "profiles = [\"app\"]\n"),
        ("roles/compute.toml", "profiles = [\"app\"]\n"),
        ("profiles/app/profile.toml", PROFILE),
        ("hieradata/common.toml", ""),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    for (path, content) in extra {
        if *path == "pipeline.toml" {
            // Stages and other pipeline.toml additions go after the environments.
            files.get_mut("pipeline.toml").unwrap().push_str(content);
        } else {
            files.insert(path.to_string(), content.to_string());
        }
    }
    files
}

/// The composition loaded as if committed as `commit`.
pub fn composition(commit: &str, files: &BTreeMap<String, String>) -> Composition {
    let origin = Origin::Commit { id: commit.to_string(), summary: "unit".into() };
    let snapshot = Snapshot::from_files(origin, files.iter().map(|(p, c)| (p.clone(), c.clone())));
    Composition::load(&snapshot).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A real git repository in a temporary directory, to commit compositions to.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl GitRepo {
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        GitRepo { dir, repo }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Commits exactly `files` (the previous tree is replaced); returns the commit id.
    pub fn commit(&self, message: &str, files: &BTreeMap<String, String>) -> String {
        let mut index = self.repo.index().unwrap();
        index.clear().unwrap();
        for (path, content) in files {
            let full = self.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, content).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("unit", "unit@test").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap().to_string()
    }
}

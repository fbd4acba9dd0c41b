//! Reading the composition: a [`Snapshot`] of every composition file, taken from one git commit
//! (through git2) or, when asked, from the working tree.
//!
//! Everything downstream works on the in-memory snapshot, so what is checked, compiled and
//! applied is exactly what was committed, and the core never touches git or the file system.
//! Promotion state (notes, refs) is git too, but it is the pipeline store's: this module reads
//! commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{self, Result};

/// The top-level entries of a composition that the engine reads.
const COMPOSITION_ENTRIES: &[&str] = &["pipeline.toml", "roles", "profiles", "hieradata", "checks"];

/// Where a snapshot was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A commit; `id` is the full hex object id.
    Commit { id: String, summary: String },
    /// The working tree, uncommitted edits included.
    Worktree { path: PathBuf },
}

impl Origin {
    /// A short human label: `commit 1a2b3c4` or `working tree /path`.
    pub fn label(&self) -> String {
        match self {
            Origin::Commit { id, .. } => format!("commit {}", &id[..id.len().min(12)]),
            Origin::Worktree { path } => format!("working tree {}", path.display()),
        }
    }

    pub fn commit_id(&self) -> Option<&str> {
        match self {
            Origin::Commit { id, .. } => Some(id),
            Origin::Worktree { .. } => None,
        }
    }
}

/// A commit as a review lists it: what it says and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// The full hex object id.
    pub id: String,
    /// The first line of the message.
    pub subject: String,
    /// The author's name (no e-mail address: a review is an artifact others read).
    pub author: String,
}

/// The composition's files, keyed by their path relative to the composition root with `/`
/// separators (`profiles/haproxy/templates/haproxy.cfg.j2`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub origin: Origin,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    /// A snapshot from in-memory files, for tests and benchmarks.
    pub fn from_files<P: Into<String>, C: Into<Vec<u8>>>(
        origin: Origin,
        files: impl IntoIterator<Item = (P, C)>,
    ) -> Snapshot {
        Snapshot { origin, files: files.into_iter().map(|(p, c)| (p.into(), c.into())).collect() }
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Files directly or indirectly below `dir` (no trailing slash), in path order.
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(p, c)| (p.as_str(), c.as_slice()))
    }
}

/// The git repository holding a composition, and where in it the composition lives. Shared by
/// the threads that prepare hosts (git2's handle is not `Sync`, so it sits behind a mutex).
pub struct Repo {
    repo: Mutex<git2::Repository>,
    /// The composition directory relative to the repository's work tree (empty for the root).
    prefix: PathBuf,
    /// The composition directory on disk.
    dir: PathBuf,
}

impl Repo {
    /// Opens the repository containing `dir`; the composition is `dir` itself.
    pub fn discover(dir: &Path) -> Result<Repo> {
        let dir = dir.canonicalize().map_err(|e| {
            error::usage(format!("cannot open composition directory {}", dir.display()))
                .with_source(e)
        })?;
        let repo = git2::Repository::discover(&dir).map_err(|e| {
            error::git(format!(
                "{} is not inside a git repository; stackdeploy reads the composition from \
                 commits (run `git init` and commit it, or pass -C DIR)",
                dir.display()
            ))
            .with_source(e)
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| error::git("bare repositories are not supported; use a clone"))?
            .canonicalize()
            .map_err(|e| error::io("cannot resolve the repository's work tree").with_source(e))?;
        let prefix = dir.strip_prefix(&workdir).unwrap_or(Path::new("")).to_path_buf();
        Ok(Repo { repo: Mutex::new(repo), prefix, dir })
    }

    /// Opens the repository containing `start`; the composition is the nearest of `start` and
    /// its parents (inside the repository's work tree) that holds a file called `marker` (the
    /// composition's pipeline.toml), the way git finds `.git`, so commands work from any
    /// subdirectory of it. Without one on disk (a composition that only exists in a commit
    /// named with --rev), it is `start` itself.
    pub fn find(start: &Path, marker: &str) -> Result<Repo> {
        let found = Repo::discover(start)?;
        let inside = found.prefix.components().count() + 1;
        let root = found.dir.ancestors().take(inside).find(|d| d.join(marker).is_file());
        match root {
            Some(root) if root != found.dir => {
                tracing::debug!("composition {} (found above {})", root.display(), start.display());
                Repo::discover(root)
            }
            _ => Ok(found),
        }
    }

    fn git(&self) -> MutexGuard<'_, git2::Repository> {
        self.repo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The composition directory on disk (where `.stackdeploy/` local state lives).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves a revision (`HEAD`, a branch, a tag, a hex id, `HEAD~2`) to a commit id.
    pub fn resolve(&self, rev: &str) -> Result<String> {
        let repo = self.git();
        let object = repo.revparse_single(rev).map_err(|e| {
            error::git(format!("cannot resolve revision '{rev}' (is it committed?)")).with_source(e)
        })?;
        let commit = object
            .peel_to_commit()
            .map_err(|e| error::git(format!("'{rev}' does not name a commit")).with_source(e))?;
        Ok(commit.id().to_string())
    }

    /// The first line of a commit's message ("" when it cannot be read).
    pub fn summary(&self, commit: &str) -> String {
        let repo = self.git();
        git2::Oid::from_str(commit)
            .and_then(|id| repo.find_commit(id))
            .ok()
            .and_then(|c| c.summary().ok().flatten().map(str::to_string))
            .unwrap_or_default()
    }

    /// `from` and its first-parent ancestors, newest first, at most `limit` of them.
    pub fn first_parents(&self, from: &str, limit: usize) -> Result<Vec<String>> {
        let repo = self.git();
        let walking = |e: git2::Error| error::git("walking history").with_source(e);
        let mut walk = repo.revwalk().map_err(walking)?;
        let id = git2::Oid::from_str(from).map_err(walking)?;
        walk.push(id).map_err(walking)?;
        walk.simplify_first_parent().map_err(walking)?;
        Ok(walk.take(limit).flatten().map(|id| id.to_string()).collect())
    }

    /// The commits reachable from `to` but not from `from`, newest first, at most `limit`, and
    /// how many there are in all: what moving from `from` to `to` brings in.
    pub fn commits_between(
        &self,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<(Vec<CommitSummary>, usize)> {
        let repo = self.git();
        let walking =
            |e: git2::Error| error::git("listing the commits between two revisions").with_source(e);
        let mut walk = repo.revwalk().map_err(walking)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME).map_err(walking)?;
        walk.push(git2::Oid::from_str(to).map_err(walking)?).map_err(walking)?;
        walk.hide(git2::Oid::from_str(from).map_err(walking)?).map_err(walking)?;
        let mut commits = Vec::new();
        let mut total = 0;
        for id in walk {
            let id = id.map_err(walking)?;
            total += 1;
            if commits.len() < limit {
                let c = repo.find_commit(id).map_err(walking)?;
                commits.push(CommitSummary {
                    id: id.to_string(),
                    subject: String::from_utf8_lossy(c.summary_bytes().unwrap_or_default())
                        .into_owned(),
                    author: String::from_utf8_lossy(c.author().name_bytes()).into_owned(),
                });
            }
        }
        Ok((commits, total))
    }

    /// Reads every composition file as it is in commit `rev`.
    pub fn snapshot_at(&self, rev: &str) -> Result<Snapshot> {
        let id = self.resolve(rev)?;
        let repo = self.git();
        let id =
            git2::Oid::from_str(&id).map_err(|e| error::git("bad commit id").with_source(e))?;
        let commit =
            repo.find_commit(id).map_err(|e| error::git("reading commit").with_source(e))?;
        let mut tree =
            commit.tree().map_err(|e| error::git("reading commit tree").with_source(e))?;
        if !self.prefix.as_os_str().is_empty() {
            let entry = tree.get_path(&self.prefix).map_err(|e| {
                error::git(format!(
                    "commit {} has no directory {}",
                    short(&id.to_string()),
                    self.prefix.display()
                ))
                .with_source(e)
            })?;
            tree = repo
                .find_tree(entry.id())
                .map_err(|e| error::git("reading composition tree").with_source(e))?;
        }
        let mut files = BTreeMap::new();
        for entry in COMPOSITION_ENTRIES {
            let Ok(item) = tree.get_path(Path::new(entry)) else {
                continue;
            };
            match item.kind() {
                Some(git2::ObjectType::Blob) => {
                    let blob = repo
                        .find_blob(item.id())
                        .map_err(|e| error::git("reading blob").with_source(e))?;
                    files.insert(entry.to_string(), blob.content().to_vec());
                }
                Some(git2::ObjectType::Tree) => {
                    let sub = repo
                        .find_tree(item.id())
                        .map_err(|e| error::git("reading tree").with_source(e))?;
                    let mut failure = None;
                    sub.walk(git2::TreeWalkMode::PreOrder, |parent, e| {
                        if e.kind() != Some(git2::ObjectType::Blob) {
                            return git2::TreeWalkResult::Ok;
                        }
                        let path = format!("{entry}/{parent}{}", e.name().unwrap_or(""));
                        match repo.find_blob(e.id()) {
                            Ok(blob) => {
                                files.insert(path, blob.content().to_vec());
                                git2::TreeWalkResult::Ok
                            }
                            Err(err) => {
                                failure = Some(err);
                                git2::TreeWalkResult::Abort
                            }
                        }
                    })
                    .ok();
                    if let Some(err) = failure {
                        return Err(error::git("reading composition files").with_source(err));
                    }
                }
                _ => {}
            }
        }
        let summary = commit.summary().ok().flatten().unwrap_or("").to_string();
        Ok(Snapshot { origin: Origin::Commit { id: id.to_string(), summary }, files })
    }

    /// Reads every composition file from the working tree (uncommitted edits included).
    pub fn snapshot_worktree(&self) -> Result<Snapshot> {
        let mut files = BTreeMap::new();
        for entry in COMPOSITION_ENTRIES {
            read_dir_into(&self.dir, Path::new(entry), &mut files)?;
        }
        Ok(Snapshot { origin: Origin::Worktree { path: self.dir.clone() }, files })
    }
}

fn read_dir_into(root: &Path, rel: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let full = root.join(rel);
    let Ok(meta) = std::fs::metadata(&full) else {
        return Ok(());
    };
    let key = rel.to_string_lossy().replace('\\', "/");
    if meta.is_file() {
        let content = std::fs::read(&full)
            .map_err(|e| error::io(format!("cannot read {}", full.display())).with_source(e))?;
        files.insert(key, content);
    } else if meta.is_dir() {
        let entries = std::fs::read_dir(&full)
            .map_err(|e| error::io(format!("cannot list {}", full.display())).with_source(e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            read_dir_into(root, &rel.join(name), files)?;
        }
    }
    Ok(())
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

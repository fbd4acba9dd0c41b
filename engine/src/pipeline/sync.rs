//! Sharing the promotion state with a git remote, so that CI jobs on different agents see and
//! extend the same state.
//!
//! Pulling fetches the remote's notes and `refs/stackdeploy/*` into a scratch namespace, merges
//! the notes into the local ones and takes every ref the remote moved. Pushing does the same,
//! then pushes what this clone changed, atomically, each ref with a lease on the value just
//! fetched; a push that lost a race is fetched, merged and pushed again (bounded, with backoff).
//!
//! - **Notes** are merged record by record: every stage and approval either side has, the later
//!   one where both have the same stage. Two agents recording different stages of one commit at
//!   once both keep their result.
//! - **Refs** (`envs/<env>`, and each host of `hosts/<env>`) are merged three ways against the
//!   value this clone last saw on the remote (kept under `refs/stackdeploy-seen/<remote>/`):
//!   moved only here is pushed (forced: a rollback moves an environment backwards), moved only
//!   there is taken, moved on both sides is a conflict that names both commits and is not
//!   resolved by guessing: two runs deployed the same environment at once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use git2::{ObjectType, Oid, Repository};

use super::store::{GitStore, NOTES_REF, Record};
use crate::error::{self, Result};
use crate::source::short;

/// Pushes that lost a race are retried this often before the error is the stage's.
const ATTEMPTS: u32 = 8;

/// What one pull or push did, for the log line.
#[derive(Debug, Default, PartialEq)]
pub struct Synced {
    /// Refs taken from the remote (it moved them).
    pub taken: Vec<String>,
    /// Refs pushed to the remote (this clone moved them).
    pub pushed: Vec<String>,
    /// Commits whose notes were merged from both sides.
    pub merged_notes: usize,
    /// Pushes that lost a race and were retried.
    pub retries: u32,
}

impl Synced {
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.pushed.is_empty() {
            parts.push(format!("pushed {}", self.pushed.join(", ")));
        }
        if !self.taken.is_empty() {
            parts.push(format!("took {}", self.taken.join(", ")));
        }
        if self.merged_notes > 0 {
            parts.push(format!("merged the notes of {} commit(s)", self.merged_notes));
        }
        if self.retries > 0 {
            parts.push(format!("after {} retried push(es)", self.retries));
        }
        if parts.is_empty() { "already in sync".to_string() } else { parts.join("; ") }
    }
}

/// The outcome of a three-way comparison of one value.
#[derive(Debug, PartialEq, Eq)]
pub enum Merge<T> {
    /// Both sides agree.
    Same,
    /// Only the remote moved: take its value.
    Theirs(T),
    /// Only this clone moved: push its value.
    Ours(T),
    /// Both moved, to different values.
    Conflict { ours: T, theirs: T },
}

/// Three-way merge of one value against `base`, what this clone last saw on the remote.
pub fn merge3<T: PartialEq + Clone>(base: &T, ours: &T, theirs: &T) -> Merge<T> {
    if ours == theirs {
        Merge::Same
    } else if ours == base {
        Merge::Theirs(theirs.clone())
    } else if theirs == base {
        Merge::Ours(ours.clone())
    } else {
        Merge::Conflict { ours: ours.clone(), theirs: theirs.clone() }
    }
}

/// One record out of two sides' records of the same commit: every stage and approval of
/// either, the later one (by time; ours on a tie) where both have it.
pub fn merge_records(ours: &Record, theirs: &Record) -> Record {
    let mut merged = ours.clone();
    for (stage, result) in &theirs.stages {
        match merged.stages.get(stage) {
            Some(mine) if mine.time >= result.time => {}
            _ => {
                merged.stages.insert(stage.clone(), result.clone());
            }
        }
    }
    for (stage, approval) in &theirs.approvals {
        match merged.approvals.get(stage) {
            Some(mine) if mine.time >= approval.time => {}
            _ => {
                merged.approvals.insert(stage.clone(), approval.clone());
            }
        }
    }
    merged.schema_version = ours.schema_version.max(theirs.schema_version);
    merged
}

/// Host → commit maps merged host by host; Err: the hosts both sides moved differently.
pub fn merge_host_maps(
    base: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> std::result::Result<BTreeMap<String, String>, Vec<String>> {
    let hosts: BTreeSet<&String> = base.keys().chain(ours.keys()).chain(theirs.keys()).collect();
    let mut merged = BTreeMap::new();
    let mut conflicts = Vec::new();
    for host in hosts {
        let value = match merge3(&base.get(host), &ours.get(host), &theirs.get(host)) {
            Merge::Same | Merge::Ours(_) => ours.get(host),
            Merge::Theirs(v) => v,
            Merge::Conflict { ours, theirs } => {
                let show = |v: Option<&String>| {
                    v.map_or_else(
                        || "the environment's commit".to_string(),
                        |c| short(c).to_string(),
                    )
                };
                conflicts.push(format!("{host} (here {}, there {})", show(ours), show(theirs)));
                ours
            }
        };
        if let Some(commit) = value {
            merged.insert(host.clone(), commit.clone());
        }
    }
    if conflicts.is_empty() { Ok(merged) } else { Err(conflicts) }
}

/// A ref name segment for `remote` (a remote's name, or a URL or path).
fn remote_key(remote: &str) -> String {
    let plain = !remote.is_empty()
        && remote.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if plain {
        remote.to_string()
    } else {
        format!("url-{}", &crate::digest::sha256_hex(remote.as_bytes())[..16])
    }
}

/// The refs of one sync round: where the remote's state was fetched to, and what was last seen.
struct Names {
    fetched: String,
    seen: String,
}

impl Names {
    fn new(remote: &str) -> Names {
        let key = remote_key(remote);
        Names {
            fetched: format!("refs/stackdeploy-fetch/{key}"),
            seen: format!("refs/stackdeploy-seen/{key}"),
        }
    }
    /// `refs/stackdeploy/envs/x` → the same ref under `prefix`.
    fn under(prefix: &str, state_ref: &str) -> String {
        if state_ref == NOTES_REF {
            format!("{prefix}/notes")
        } else {
            format!("{prefix}/state/{}", state_ref.trim_start_matches("refs/stackdeploy/"))
        }
    }
}

/// One ref to push, with the value the remote must still have (None: must not exist).
struct Update {
    name: String,
    value: Oid,
    expect: Option<Oid>,
}

enum PushError {
    /// Someone pushed between our fetch and our push: fetch, merge and try again.
    Raced(String),
    Failed(crate::error::Error),
}

fn git_err(what: &str) -> impl FnOnce(git2::Error) -> crate::error::Error + '_ {
    move |e| error::git(what.to_string()).with_source(e)
}

fn target(repo: &Repository, name: &str) -> Option<Oid> {
    repo.find_reference(name).ok().and_then(|r| r.target())
}

/// Annotated commit → note blob, from a notes commit's tree (flat or with fan-out).
fn notes_in(repo: &Repository, notes_commit: Option<Oid>) -> Result<BTreeMap<Oid, Oid>> {
    let mut notes = BTreeMap::new();
    let Some(id) = notes_commit else { return Ok(notes) };
    let tree = repo
        .find_commit(id)
        .and_then(|c| c.tree())
        .map_err(git_err("reading the stackdeploy notes"))?;
    let mut walk_err = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) {
            let hex: String = format!("{dir}{}", entry.name().unwrap_or("")).replace('/', "");
            match Oid::from_str(&hex) {
                Ok(annotated) if hex.len() == 40 => {
                    notes.insert(annotated, entry.id());
                }
                _ => walk_err = Some(hex),
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(git_err("reading the stackdeploy notes"))?;
    if let Some(name) = walk_err {
        return Err(error::git(format!(
            "{NOTES_REF} holds '{name}', which is not a note on a commit: repair it with `git notes --ref stackdeploy` (or remove that entry)"
        )));
    }
    Ok(notes)
}

fn parse_record(repo: &Repository, blob: Oid) -> Option<Record> {
    repo.find_blob(blob).ok().and_then(|b| serde_json::from_slice(b.content()).ok())
}

fn record_blob(repo: &Repository, record: &Record) -> Result<Oid> {
    let text = serde_json::to_string_pretty(record).expect("record serialises") + "\n";
    repo.blob(text.as_bytes()).map_err(git_err("writing a merged note"))
}

fn host_map(repo: &Repository, blob: Option<Oid>) -> BTreeMap<String, String> {
    blob.and_then(|id| repo.find_blob(id).ok())
        .and_then(|b| serde_json::from_slice(b.content()).ok())
        .unwrap_or_default()
}

impl GitStore {
    /// Takes what the remote's state has that this clone lacks (merged notes, moved refs),
    /// holding the clone's state lock.
    pub fn pull(&self, remote: &str) -> Result<Synced> {
        self.locked(|| self.pull_locked(remote))
    }

    fn pull_locked(&self, remote: &str) -> Result<Synced> {
        let names = Names::new(remote);
        self.fetch(remote, &names)?;
        let mut synced = Synced::default();
        self.integrate(remote, &names, &mut synced)?;
        Ok(synced)
    }

    /// Pulls, then pushes what this clone changed; a push that lost a race is retried.
    pub fn push(&self, remote: &str) -> Result<Synced> {
        self.locked(|| self.push_locked(remote))
    }

    fn push_locked(&self, remote: &str) -> Result<Synced> {
        let names = Names::new(remote);
        let mut synced = Synced::default();
        for attempt in 0..ATTEMPTS {
            self.fetch(remote, &names)?;
            let updates = self.integrate(remote, &names, &mut synced)?;
            if updates.is_empty() {
                return Ok(synced);
            }
            match self.push_updates(remote, &updates) {
                Ok(()) => {
                    // What the remote has now is what we pushed: the base of the next merge.
                    for u in &updates {
                        self.set_ref(&Names::under(&names.seen, &u.name), u.value)?;
                    }
                    synced.pushed = updates.iter().map(|u| u.name.clone()).collect();
                    return Ok(synced);
                }
                Err(PushError::Raced(why)) if attempt + 1 < ATTEMPTS => {
                    synced.retries += 1;
                    tracing::info!(
                        "pushing the pipeline state to {remote} lost a race ({why}); retrying"
                    );
                    // Agents racing with the same backoff would race again: spread them.
                    let jitter = u64::from(std::process::id() % 100);
                    std::thread::sleep(Duration::from_millis((100 << attempt).min(5000) + jitter));
                }
                Err(PushError::Raced(why)) => {
                    return Err(error::git(format!(
                        "pushing the pipeline state to '{remote}' lost a race with other pushes \
                         {ATTEMPTS} times ({why}); run `stackdeploy state push` again"
                    )));
                }
                Err(PushError::Failed(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            // A job without credentials must fail, not wait for a password nobody types.
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn fetch(&self, remote: &str, names: &Names) -> Result<()> {
        let out = self
            .git()
            .args(["fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", remote])
            .arg(format!("+{NOTES_REF}*:{}/notes*", names.fetched))
            .arg(format!("+refs/stackdeploy/*:{}/state/*", names.fetched))
            .output()
            .map_err(|e| error::git("cannot run git fetch").with_source(e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(error::git(format!(
                "fetching the pipeline state from '{remote}' failed: {} (check the remote's \
                 address and this job's read access to it)",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn set_ref(&self, name: &str, id: Oid) -> Result<()> {
        self.repo
            .reference(name, id, true, "stackdeploy: state sync")
            .map_err(git_err("updating a stackdeploy ref"))?;
        Ok(())
    }

    /// Merges the fetched state into the local one; returns the refs to push.
    fn integrate(&self, remote: &str, names: &Names, synced: &mut Synced) -> Result<Vec<Update>> {
        let repo = &self.repo;
        let mut updates = Vec::new();
        let mut state_refs: BTreeSet<String> = BTreeSet::new();
        for prefix in ["refs/stackdeploy/", &format!("{}/state/", names.fetched)] {
            for r in repo.references_glob(&format!("{prefix}*")).map_err(git_err("listing refs"))? {
                let r = r.map_err(git_err("listing refs"))?;
                if let Ok(name) = r.name() {
                    state_refs.insert(format!("refs/stackdeploy/{}", &name[prefix.len()..]));
                }
            }
        }
        if let Some(u) = self.integrate_notes(remote, names, synced)? {
            updates.push(u);
        }
        let mut conflicts = Vec::new();
        for name in &state_refs {
            let ours = target(repo, name);
            let theirs = target(repo, &Names::under(&names.fetched, name));
            let base = target(repo, &Names::under(&names.seen, name));
            let result = if name.starts_with("refs/stackdeploy/hosts/") {
                self.integrate_hosts(name, base, ours, theirs)
            } else {
                self.integrate_env(name, base, ours, theirs)
            };
            match result {
                Ok(Some(Merge::Theirs(id))) => {
                    self.set_ref(name, id)?;
                    synced.taken.push(name.clone());
                }
                Ok(Some(Merge::Ours(id))) => {
                    updates.push(Update { name: name.clone(), value: id, expect: theirs })
                }
                Ok(_) => {}
                Err(why) => conflicts.push(why),
            }
        }
        if !conflicts.is_empty() {
            return Err(error::git(format!(
                "the pipeline state here and on '{remote}' both changed since this clone last \
                 synced, differently: {}. Two runs deployed the same environment at once; find \
                 out which commit the hosts run (`stackdeploy plan --env E` shows their applied \
                 commit), set the ref to it with `git update-ref` here, and run `stackdeploy \
                 state push`",
                conflicts.join("; ")
            )));
        }
        // Seen := fetched, for everything this round did not push (pushes update it after).
        for name in &state_refs {
            if let Some(id) = target(repo, &Names::under(&names.fetched, name)) {
                self.set_ref(&Names::under(&names.seen, name), id)?;
            }
        }
        Ok(updates)
    }

    fn integrate_env(
        &self,
        name: &str,
        base: Option<Oid>,
        ours: Option<Oid>,
        theirs: Option<Oid>,
    ) -> std::result::Result<Option<Merge<Oid>>, String> {
        // A ref deleted here (a repair) is fetched again, never pushed as a deletion.
        let (Some(o), Some(t)) = (ours, theirs) else {
            return Ok(match (ours, theirs) {
                (None, Some(t)) => Some(Merge::Theirs(t)),
                (Some(o), None) => Some(Merge::Ours(o)),
                _ => None,
            });
        };
        let repo = &self.repo;
        let merged = match base {
            Some(b) => merge3(&b, &o, &t),
            // Never synced with this remote (a clone from before state sync): history decides.
            None if repo.graph_descendant_of(t, o).unwrap_or(false) => Merge::Theirs(t),
            None if repo.graph_descendant_of(o, t).unwrap_or(false) => Merge::Ours(o),
            None if o == t => Merge::Same,
            None => Merge::Conflict { ours: o, theirs: t },
        };
        match merged {
            Merge::Conflict { ours, theirs } => Err(format!(
                "{name} is {} here and {} there",
                short(&ours.to_string()),
                short(&theirs.to_string())
            )),
            m => Ok(Some(m)),
        }
    }

    fn integrate_hosts(
        &self,
        name: &str,
        base: Option<Oid>,
        ours: Option<Oid>,
        theirs: Option<Oid>,
    ) -> std::result::Result<Option<Merge<Oid>>, String> {
        let (Some(_), Some(_)) = (ours, theirs) else {
            return Ok(match (ours, theirs) {
                (None, Some(t)) => Some(Merge::Theirs(t)),
                (Some(o), None) => Some(Merge::Ours(o)),
                _ => None,
            });
        };
        if ours == theirs {
            return Ok(None);
        }
        let repo = &self.repo;
        let (b, o, t) = (host_map(repo, base), host_map(repo, ours), host_map(repo, theirs));
        let merged =
            merge_host_maps(&b, &o, &t).map_err(|hosts| format!("{name}: {}", hosts.join(", ")))?;
        if merged == t {
            return Ok(theirs.map(Merge::Theirs));
        }
        let id = if merged == o {
            ours.expect("both refs exist")
        } else {
            let text = serde_json::to_vec_pretty(&merged).expect("map serialises");
            let id = repo.blob(&text).map_err(|e| format!("{name}: {e}"))?;
            self.set_ref(name, id).map_err(|e| e.to_string())?;
            id
        };
        Ok(Some(Merge::Ours(id)))
    }

    /// Local notes := local ∪ fetched. Some(update) when the remote lacks some of them.
    fn integrate_notes(
        &self,
        remote: &str,
        names: &Names,
        synced: &mut Synced,
    ) -> Result<Option<Update>> {
        let repo = &self.repo;
        let ours = target(repo, NOTES_REF);
        let theirs = target(repo, &Names::under(&names.fetched, NOTES_REF));
        let push = |value: Oid| Update { name: NOTES_REF.to_string(), value, expect: theirs };
        let (o, t) = match (ours, theirs) {
            (None, None) => return Ok(None),
            (Some(o), None) => return Ok(Some(push(o))),
            (None, Some(t)) => {
                self.set_ref(NOTES_REF, t)?;
                synced.taken.push(NOTES_REF.to_string());
                return Ok(None);
            }
            (Some(o), Some(t)) => (o, t),
        };
        if o == t {
            return Ok(None);
        }
        if repo.graph_descendant_of(o, t).unwrap_or(false) {
            return Ok(Some(push(o)));
        }
        if repo.graph_descendant_of(t, o).unwrap_or(false) {
            self.set_ref(NOTES_REF, t)?;
            synced.taken.push(NOTES_REF.to_string());
            return Ok(None);
        }
        // Both sides added notes: one merge commit holding the union, so the push is a
        // fast-forward for the remote and `git log refs/notes/stackdeploy` shows both histories.
        let mut notes = notes_in(repo, Some(o))?;
        for (annotated, their_blob) in notes_in(repo, Some(t))? {
            let merged = match notes.get(&annotated) {
                None => their_blob,
                Some(&our_blob) if our_blob == their_blob => continue,
                Some(&our_blob) => {
                    synced.merged_notes += 1;
                    match (parse_record(repo, our_blob), parse_record(repo, their_blob)) {
                        (Some(a), Some(b)) => record_blob(repo, &merge_records(&a, &b))?,
                        // An unreadable side loses to a readable one; `status` names what is left.
                        (None, Some(_)) => their_blob,
                        _ => our_blob,
                    }
                }
            };
            notes.insert(annotated, merged);
        }
        let mut tree = repo.treebuilder(None).map_err(git_err("merging notes"))?;
        for (annotated, blob) in &notes {
            tree.insert(annotated.to_string(), *blob, 0o100644)
                .map_err(git_err("merging notes"))?;
        }
        let tree =
            tree.write().and_then(|id| repo.find_tree(id)).map_err(git_err("merging notes"))?;
        let parents = [
            &repo.find_commit(o).map_err(git_err("merging notes"))?,
            &repo.find_commit(t).map_err(git_err("merging notes"))?,
        ];
        let sig = self.signature();
        let message = format!("stackdeploy: merge the notes of '{remote}'");
        let id = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .map_err(git_err("merging notes"))?;
        self.set_ref(NOTES_REF, id)?;
        Ok(Some(push(id)))
    }

    fn push_updates(&self, remote: &str, updates: &[Update]) -> std::result::Result<(), PushError> {
        let mut cmd = self.git();
        cmd.args(["push", "--porcelain", "--atomic", remote]);
        for u in updates {
            let expect = u.expect.map(|e| e.to_string()).unwrap_or_default();
            cmd.arg(format!("--force-with-lease={}:{expect}", u.name));
            cmd.arg(format!("{}:{}", u.value, u.name));
        }
        let out = cmd
            .output()
            .map_err(|e| PushError::Failed(error::git("cannot run git push").with_source(e)))?;
        if out.status.success() {
            return Ok(());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let rejected: Vec<&str> = stdout.lines().filter(|l| l.starts_with('!')).collect();
        // Lost races: a lease or fast-forward check failed, or (on the remote) another push
        // held the ref's lock or changed it between check and update.
        let races = [
            "stale info",
            "fetch first",
            "non-fast-forward",
            "atomic transaction failed",
            "cannot lock ref",
            "incorrect old value",
        ];
        let raced = rejected.iter().any(|l| races.iter().any(|r| l.contains(r)));
        let why = if rejected.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            rejected.iter().map(|l| l.trim_start_matches('!').trim()).collect::<Vec<_>>().join("; ")
        };
        if raced {
            Err(PushError::Raced(why))
        } else {
            Err(PushError::Failed(error::git(format!(
                "pushing the pipeline state to '{remote}' failed: {why} (check this job's write \
                 access to the remote, e.g. its credential helper)"
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::store::{Approval, StageResult, StageStatus};

    fn stage(result: StageStatus, time: u64) -> StageResult {
        StageResult {
            status: result,
            kind: "deploy".into(),
            environment: Some("staging".into()),
            hosts: vec![],
            duration_secs: 1.0,
            run_id: format!("r{time}"),
            user: "ci".into(),
            time,
            detail: String::new(),
            hooks_fired: Vec::new(),
        }
    }

    #[test]
    fn records_keep_every_stage_of_both_sides_and_the_later_result() {
        let mut ours = Record { schema_version: 1, ..Record::default() };
        ours.stages.insert("deploy".into(), stage(StageStatus::Failed, 10));
        ours.stages.insert("integration".into(), stage(StageStatus::Passed, 30));
        let mut theirs = Record { schema_version: 1, ..Record::default() };
        theirs.stages.insert("deploy".into(), stage(StageStatus::Passed, 20));
        theirs.stages.insert("integration".into(), stage(StageStatus::Failed, 5));
        theirs.stages.insert("canary".into(), stage(StageStatus::Passed, 40));
        theirs.approvals.insert("release".into(), Approval { user: "ann".into(), time: 50 });
        let merged = merge_records(&ours, &theirs);
        assert_eq!(merged.stages["deploy"].time, 20, "their later deploy wins");
        assert_eq!(merged.stages["integration"].time, 30, "our later integration stays");
        assert!(merged.passed("canary"));
        assert_eq!(merged.approvals["release"].user, "ann");
        // Merging is symmetric in what it keeps.
        assert_eq!(merge_records(&theirs, &ours).stages, merged.stages);
    }

    #[test]
    fn three_way_takes_the_side_that_moved_and_names_a_conflict() {
        assert_eq!(merge3(&1, &1, &1), Merge::Same);
        assert_eq!(merge3(&1, &1, &2), Merge::Theirs(2));
        assert_eq!(merge3(&1, &2, &1), Merge::Ours(2));
        assert_eq!(merge3(&1, &2, &2), Merge::Same);
        assert_eq!(merge3(&1, &2, &3), Merge::Conflict { ours: 2, theirs: 3 });
    }

    #[test]
    fn host_maps_merge_host_by_host() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(h, c)| (h.to_string(), c.to_string())).collect()
        };
        let base = map(&[("c1", "aaa"), ("c2", "aaa")]);
        // Here a release cleared c1; there a canary moved c3.
        let ours = map(&[("c2", "aaa")]);
        let theirs = map(&[("c1", "aaa"), ("c2", "aaa"), ("c3", "bbb")]);
        assert_eq!(
            merge_host_maps(&base, &ours, &theirs),
            Ok(map(&[("c2", "aaa"), ("c3", "bbb")]))
        );
        let theirs = map(&[("c1", "ccc"), ("c2", "aaa")]);
        let err = merge_host_maps(&base, &ours, &theirs).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].starts_with("c1 (here the environment's commit, there ccc"), "{err:?}");
    }

    #[test]
    fn remote_keys_are_ref_safe() {
        assert_eq!(remote_key("origin"), "origin");
        let key = remote_key("/tmp/x y/state.git");
        assert!(key.starts_with("url-") && key.len() == 20, "{key}");
        assert!(git2::Reference::is_valid_name(&format!("refs/x/{key}/notes")));
    }
}

/// Real repositories: a bare remote and clones of it, synced with the git command line.
#[cfg(test)]
mod git_tests {
    use std::path::Path;

    use super::*;
    use crate::pipeline::Store;
    use crate::pipeline::store::{Approval, StageResult, StageStatus, env_ref};

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A bare remote with two commits on main, and `clones` clones of it.
    struct World {
        _dir: tempfile::TempDir,
        remote: String,
        clones: Vec<std::path::PathBuf>,
        first: String,
        second: String,
    }

    fn world(clones: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.git");
        git(dir.path(), &["init", "-q", "--bare", "-b", "main", remote.to_str().unwrap()]);
        let seed = dir.path().join("seed");
        git(dir.path(), &["init", "-q", "-b", "main", seed.to_str().unwrap()]);
        for c in ["first", "second"] {
            git(
                &seed,
                &[
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-m",
                    c,
                ],
            );
        }
        git(&seed, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let first = git(&seed, &["rev-parse", "HEAD~1"]);
        let second = git(&seed, &["rev-parse", "HEAD"]);
        let clones = (0..clones)
            .map(|i| {
                let path = dir.path().join(format!("agent{i}"));
                git(dir.path(), &["clone", "-q", remote.to_str().unwrap(), path.to_str().unwrap()]);
                path
            })
            .collect();
        World { remote: remote.to_str().unwrap().to_string(), _dir: dir, clones, first, second }
    }

    fn stage(result: StageStatus, time: u64) -> StageResult {
        StageResult {
            status: result,
            kind: "deploy".into(),
            environment: Some("staging".into()),
            hosts: vec!["db01".into()],
            duration_secs: 1.0,
            run_id: format!("r{time}"),
            user: "ci".into(),
            time,
            detail: String::new(),
            hooks_fired: Vec::new(),
        }
    }

    fn remote_ref(w: &World, name: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["--git-dir", &w.remote, "rev-parse", "-q", "--verify", name])
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Two agents record different stages of one commit without seeing each other's: both
    /// results reach the remote (the old plain `git push` of the notes was refused as
    /// non-fast-forward for the second agent).
    #[test]
    fn two_agents_recording_different_stages_both_keep_their_result() {
        let w = world(3);
        let a = GitStore::open(&w.clones[0]).unwrap();
        let b = GitStore::open(&w.clones[1]).unwrap();
        a.record_stage(&w.second, "deploy-staging", stage(StageStatus::Passed, 10)).unwrap();
        b.record_stage(&w.second, "precommit", stage(StageStatus::Passed, 11)).unwrap();
        b.approve(&w.second, "release", Approval { user: "ann".into(), time: 12 }).unwrap();
        a.push(&w.remote).unwrap();
        let synced = b.push(&w.remote).unwrap();
        assert_eq!(synced.pushed, [NOTES_REF]);
        // A third agent that has seen neither reads both.
        let c = GitStore::open(&w.clones[2]).unwrap();
        c.pull(&w.remote).unwrap();
        let record = c.read(&w.second).unwrap();
        assert!(record.passed("deploy-staging") && record.passed("precommit"), "{record:?}");
        assert_eq!(record.approvals["release"].user, "ann");
        // The first agent gets the merge too, as a fast-forward.
        let synced = a.pull(&w.remote).unwrap();
        assert_eq!(synced.taken, [NOTES_REF]);
        assert!(a.read(&w.second).unwrap().passed("precommit"));
    }

    /// Several agents pushing at the same moment: every push lands (the losers fetch, merge and
    /// push again), and the remote holds every agent's stage.
    #[test]
    fn concurrent_pushes_all_land() {
        let w = world(4);
        std::thread::scope(|s| {
            for (i, path) in w.clones.iter().enumerate() {
                let (remote, commit) = (&w.remote, &w.second);
                s.spawn(move || {
                    let store = GitStore::open(path).unwrap();
                    store
                        .record_stage(
                            commit,
                            &format!("stage{i}"),
                            stage(StageStatus::Passed, i as u64),
                        )
                        .unwrap();
                    store.push(remote).unwrap();
                });
            }
        });
        let reader = GitStore::open(&w.clones[0]).unwrap();
        reader.pull(&w.remote).unwrap();
        let record = reader.read(&w.second).unwrap();
        let stages: Vec<&str> = record.stages.keys().map(String::as_str).collect();
        assert_eq!(stages, ["stage0", "stage1", "stage2", "stage3"]);
    }

    /// An environment ref moved here is pushed even backwards (a rollback); moved there, it is
    /// taken; moved on both sides it is a conflict naming both commits, and nothing is pushed.
    #[test]
    fn environment_refs_merge_three_ways() {
        let w = world(2);
        let a = GitStore::open(&w.clones[0]).unwrap();
        let b = GitStore::open(&w.clones[1]).unwrap();
        a.set_env_commit("staging", &w.second, "t").unwrap();
        a.push(&w.remote).unwrap();
        assert_eq!(remote_ref(&w, &env_ref("staging")).as_deref(), Some(w.second.as_str()));
        // Rollback: backwards is still pushed.
        a.set_env_commit("staging", &w.first, "t").unwrap();
        assert_eq!(a.push(&w.remote).unwrap().pushed, [env_ref("staging")]);
        assert_eq!(remote_ref(&w, &env_ref("staging")).as_deref(), Some(w.first.as_str()));
        // Another agent takes it.
        let synced = b.pull(&w.remote).unwrap();
        assert_eq!(synced.taken, [env_ref("staging")]);
        assert_eq!(b.env_commit("staging").unwrap().as_deref(), Some(w.first.as_str()));
        // Both move it from the same base, differently: the second is refused.
        a.set_env_commit("staging", &w.second, "t").unwrap();
        a.push(&w.remote).unwrap();
        b.set_env_commit("production", &w.second, "t").unwrap();
        // b left staging alone (it equals what b last saw), so it takes a's move and pushes its own.
        let synced = b.push(&w.remote).unwrap();
        assert_eq!(synced.taken, [env_ref("staging")]);
        assert_eq!(synced.pushed, [env_ref("production")]);
        // Now a real conflict: both move staging.
        a.set_env_commit("staging", &w.first, "t").unwrap();
        a.push(&w.remote).unwrap();
        git(
            &w.clones[1],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "third",
            ],
        );
        let head = git(&w.clones[1], &["rev-parse", "HEAD"]);
        b.set_env_commit("staging", &head, "t").unwrap();
        let e = b.push(&w.remote).unwrap_err().to_string();
        assert!(e.contains("refs/stackdeploy/envs/staging is"), "{e}");
        assert!(e.contains(&w.first[..12]) && e.contains(&head[..12]), "{e}");
        assert!(e.contains("Two runs deployed the same environment at once"), "{e}");
        assert_eq!(remote_ref(&w, &env_ref("staging")).as_deref(), Some(w.first.as_str()));
    }

    /// A release clears the canary hosts here while another agent put another host on a canary:
    /// both changes survive, host by host.
    #[test]
    fn canary_host_maps_merge_host_by_host() {
        let w = world(2);
        let a = GitStore::open(&w.clones[0]).unwrap();
        let b = GitStore::open(&w.clones[1]).unwrap();
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(h, c)| (h.to_string(), c.to_string())).collect()
        };
        a.set_host_commits("production", &map(&[("c1", &w.second)])).unwrap();
        a.push(&w.remote).unwrap();
        b.pull(&w.remote).unwrap();
        assert_eq!(b.host_commits("production").unwrap(), map(&[("c1", &w.second)]));
        b.set_host_commits("production", &map(&[])).unwrap();
        a.set_host_commits("production", &map(&[("c1", &w.second), ("c9", &w.first)])).unwrap();
        a.push(&w.remote).unwrap();
        b.push(&w.remote).unwrap();
        a.pull(&w.remote).unwrap();
        assert_eq!(a.host_commits("production").unwrap(), map(&[("c9", &w.first)]));
    }

    /// A remote that cannot be written is the push's error, naming the remote and what to check.
    #[test]
    fn an_unwritable_remote_is_an_error_that_says_so() {
        let w = world(1);
        let a = GitStore::open(&w.clones[0]).unwrap();
        a.set_env_commit("staging", &w.second, "t").unwrap();
        let hooks = Path::new(&w.remote).join("hooks/pre-receive");
        std::fs::write(&hooks, "#!/bin/sh\necho 'denied by policy' >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = a.push(&w.remote).unwrap_err().to_string();
        assert!(e.contains(&format!("pushing the pipeline state to '{}' failed", w.remote)), "{e}");
        assert!(e.contains("write access"), "{e}");
        assert_eq!(remote_ref(&w, &env_ref("staging")), None);
    }
}

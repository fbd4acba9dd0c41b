//! A scripted fake host for fast tests of rollout and pipeline logic: it answers each script's
//! [`Intent`] from an in-memory host (files, packages, services, exec guards, applied record,
//! owed restarts, lock) in the same wire format the real scripts print, so the real parsers
//! read it. Faults are scripted: a failing step, a held lock, a connection cut before a step,
//! an unreachable host, canned check results.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::{Connect, Remote};
use crate::digest::sha256_hex;
use crate::error::{self, Error};
use crate::model::Host;
use crate::remote::apply::Step;
use crate::remote::{Intent, ProbeRequest, Script};
use crate::state::Applied;
use crate::transport::Output;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    pub content: Vec<u8>,
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

/// An owner or group as created: root's when unmanaged.
fn or_root(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "root".into())
}

/// One fake host's state and scripted behaviour.
#[derive(Debug, Default)]
pub struct FakeHost {
    pub files: BTreeMap<String, FakeFile>,
    pub dirs: BTreeMap<String, (u32, String, String)>,
    pub packages: BTreeMap<String, String>,
    /// The files a package puts in place when it is installed (path, content).
    pub package_files: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    pub running: BTreeSet<String>,
    /// Execs whose guards are satisfied (they ran, or were satisfied from the start).
    pub satisfied: BTreeSet<String>,
    /// Execs whose guards never become satisfied (a command that is not idempotent).
    pub always_needed: BTreeSet<String>,
    pub applied: Option<Applied>,
    pub pending: Vec<String>,
    pub locked_by: Option<String>,
    pub facts: BTreeMap<String, String>,
    /// Fail the step of this resource id with this message (`validate` for a file's stage
    /// step reports a validate failure).
    pub fail: Option<(String, String)>,
    /// The connection breaks just before the step of this resource id, in the next apply.
    pub cut_before: Option<String>,
    pub unreachable: bool,
    /// Check commands (substring) → exit status and output.
    pub checks: Vec<(String, i32, String)>,
    /// What ran on the host, in order: `restart service:x`, `exec exec:y`, `start ...`.
    pub ran: Vec<String>,
}

/// Fake hosts by name, sharing a timeline of what happened across hosts.
#[derive(Default, Clone)]
pub struct Fleet {
    hosts: Arc<Mutex<BTreeMap<String, Arc<Mutex<FakeHost>>>>>,
    timeline: Arc<Mutex<Vec<String>>>,
}

impl Fleet {
    pub fn new() -> Fleet {
        Fleet::default()
    }

    /// The host `name` (created empty on first use), to set up or inspect.
    pub fn host(&self, name: &str) -> Arc<Mutex<FakeHost>> {
        self.hosts.lock().unwrap().entry(name.to_string()).or_default().clone()
    }

    pub fn with<R>(&self, name: &str, f: impl FnOnce(&mut FakeHost) -> R) -> R {
        let host = self.host(name);
        let mut h = host.lock().unwrap();
        f(&mut h)
    }

    /// `probe HOST`, `apply HOST`, `applied HOST`, `check HOST`, in the order they happened.
    pub fn timeline(&self) -> Vec<String> {
        self.timeline.lock().unwrap().clone()
    }
}

impl Connect for Fleet {
    fn connect(&self, host: &Host) -> Result<Box<dyn Remote>, Error> {
        let state = self.host(&host.name);
        if state.lock().unwrap().unreachable {
            return Err(error::host(format!(
                "cannot connect to {}:{} (no SSH server listens there)",
                host.address, host.port
            ))
            .at_host(&host.name));
        }
        Ok(Box::new(FakeRemote { name: host.name.clone(), state, timeline: self.timeline.clone() }))
    }
}

struct FakeRemote {
    name: String,
    state: Arc<Mutex<FakeHost>>,
    timeline: Arc<Mutex<Vec<String>>>,
}

fn output(status: i32, stdout: String) -> Output {
    Output { status, stdout: stdout.into_bytes(), stderr: Vec::new(), lost: None }
}

impl Remote for FakeRemote {
    fn run(&mut self, script: &Script) -> Result<Output, Error> {
        let note = |what: &str| self.timeline.lock().unwrap().push(format!("{what} {}", self.name));
        match &script.intent {
            Intent::Probe(request) => {
                note("probe");
                Ok(output(0, self.state.lock().unwrap().probe(request)))
            }
            Intent::Fetch(paths) => {
                let host = self.state.lock().unwrap();
                let mut out = Vec::new();
                for p in paths {
                    let content = host.files.get(p).map(|f| f.content.clone()).unwrap_or_default();
                    out.extend(format!("CONTENT\t{p}\t{}\n", content.len()).into_bytes());
                    out.extend(content);
                }
                Ok(Output { status: 0, stdout: out, stderr: Vec::new(), lost: None })
            }
            Intent::Apply(steps) => {
                note("apply");
                // Other hosts of the batch get to start meanwhile, as real ones would.
                std::thread::sleep(std::time::Duration::from_millis(5));
                let result = self.state.lock().unwrap().apply(&self.name, steps, &script.stdin);
                note("applied");
                result
            }
            Intent::Command(command) => {
                note("check");
                let host = self.state.lock().unwrap();
                let canned = host.checks.iter().find(|(c, _, _)| command.contains(c.as_str()));
                Ok(canned.map_or_else(
                    || output(0, String::new()),
                    |(_, status, out)| output(*status, out.clone()),
                ))
            }
        }
    }
}

impl FakeHost {
    fn probe(&self, request: &ProbeRequest) -> String {
        let mut out = String::new();
        for (k, v) in &self.facts {
            out.push_str(&format!("FACT\t{k}\t{v}\n"));
        }
        if let Some(a) = &self.applied {
            out.push_str(&format!("APPLIED\t{}\n", serde_json::to_string(a).unwrap()));
        }
        let pending: BTreeSet<&String> = self.pending.iter().collect();
        for p in pending {
            out.push_str(&format!("PENDING\t{p}\n"));
        }
        for (i, p) in request.paths.iter().enumerate() {
            if let Some(f) = self.files.get(p) {
                out.push_str(&format!("PATH\t{i}\tfile\t{:o}\t{}\t{}\n", f.mode, f.owner, f.group));
                out.push_str(&format!("HASH\t{}  {p}\n", sha256_hex(&f.content)));
            } else if let Some((mode, owner, group)) = self.dirs.get(p) {
                out.push_str(&format!("PATH\t{i}\tdir\t{mode:o}\t{owner}\t{group}\n"));
            } else {
                out.push_str(&format!("PATH\t{i}\tmissing\n"));
            }
        }
        for p in &request.packages {
            match self.packages.get(p) {
                Some(v) => out.push_str(&format!("PKG\t{p}\tinstalled\t{v}\n")),
                None => out.push_str(&format!("PKG\t{p}\tabsent\n")),
            }
        }
        for s in &request.services {
            let state = if self.running.contains(s) { "running" } else { "stopped" };
            out.push_str(&format!("SVC\t{s}\t{state}\n"));
        }
        for (x, _, _) in &request.execs {
            let needed = self.always_needed.contains(x) || !self.satisfied.contains(x);
            out.push_str(&format!("EXEC\t{x}\t{}\n", if needed { "needed" } else { "satisfied" }));
        }
        out.push_str("END\n");
        out
    }

    fn apply(&mut self, name: &str, steps: &[Step], stdin: &[u8]) -> Result<Output, Error> {
        if let Some(holder) = &self.locked_by {
            return Ok(output(75, format!("LOCKED\t-\t{holder}\n")));
        }
        let mut out = String::new();
        let mut input = stdin;
        let mut staged: BTreeMap<String, FakeFile> = BTreeMap::new();
        let cut = self.cut_before.take();
        for step in steps {
            let id = step_id(step);
            if cut.is_some() && cut.as_deref() == id {
                let lost = Some(format!("{name}: the connection broke (fake)"));
                return Ok(Output {
                    status: -1,
                    stdout: out.into_bytes(),
                    stderr: Vec::new(),
                    lost,
                });
            }
            if let Some((fail_id, why)) = &self.fail
                && Some(fail_id.as_str()) == id
            {
                let kind = if matches!(step, Step::StageFile { .. }) && why == "validate" {
                    "VALIDATE"
                } else {
                    "FAIL"
                };
                out.push_str(&format!("{kind}\t{fail_id}\t{why}\n"));
                return Ok(output(1, out));
            }
            let mut ok = |what: &str| out.push_str(&format!("OK\t{}\t{what}\n", id.unwrap_or("-")));
            match step {
                Step::Expect { run } => {
                    let now = self.applied.as_ref().map(|a| a.run_id.clone());
                    if now != *run {
                        let record =
                            self.applied.as_ref().map(|a| serde_json::to_string(a).unwrap());
                        out.push_str(&format!("STALE\t-\t{}\n", record.unwrap_or_default()));
                        return Ok(output(76, out));
                    }
                }
                Step::InstallPackage { name, apt, .. } => {
                    let version = apt.split_once('=').map_or("1.0", |(_, v)| v).to_string();
                    self.packages.insert(name.clone(), version);
                    for (path, content) in self.package_files.get(name).cloned().unwrap_or_default()
                    {
                        let file = FakeFile {
                            content,
                            mode: 0o644,
                            owner: "root".into(),
                            group: "root".into(),
                        };
                        self.files.insert(path, file);
                    }
                    ok("installed");
                }
                Step::RemovePackage { name, .. } => {
                    self.packages.remove(name);
                    ok("removed");
                }
                Step::CreateDirectory { path, owner, group, mode, .. } => {
                    let (owner, group) = (or_root(owner), or_root(group));
                    self.dirs.insert(path.clone(), (mode.0, owner, group));
                    ok("created");
                }
                Step::FixAttributes { path, owner, group, mode, .. } => {
                    if let Some(f) = self.files.get_mut(path) {
                        f.mode = mode.0;
                        f.owner = owner.clone().unwrap_or(f.owner.clone());
                        f.group = group.clone().unwrap_or(f.group.clone());
                    } else if let Some(d) = self.dirs.get_mut(path) {
                        d.0 = mode.0;
                        d.1 = owner.clone().unwrap_or(d.1.clone());
                        d.2 = group.clone().unwrap_or(d.2.clone());
                    }
                    ok("fixed");
                }
                Step::StageFile { path, len, owner, group, mode, .. } => {
                    let (content, rest) = input.split_at((*len).min(input.len()));
                    input = rest;
                    // Unmanaged: the replaced file's, or root's for a new one.
                    let old = self.files.get(path);
                    let file = FakeFile {
                        content: content.to_vec(),
                        mode: mode.0,
                        owner: owner
                            .clone()
                            .or(old.map(|f| f.owner.clone()))
                            .unwrap_or("root".into()),
                        group: group
                            .clone()
                            .or(old.map(|f| f.group.clone()))
                            .unwrap_or("root".into()),
                    };
                    staged.insert(path.clone(), file);
                }
                Step::OweRestarts(ids) => self.pending.extend(ids.iter().cloned()),
                Step::CheckSpace(_) | Step::Backup(_) | Step::Prune(_) => {}
                Step::PlaceFile { path, .. } => {
                    if let Some(f) = staged.remove(path) {
                        self.files.insert(path.clone(), f);
                    }
                    ok("written");
                }
                Step::RemoveFile { path, .. } => {
                    self.files.remove(path);
                    ok("removed");
                }
                Step::SyncDirectory(_) => {}
                Step::RunExec { id, .. } => {
                    self.satisfied.insert(id.trim_start_matches("exec:").to_string());
                    self.ran.push(format!("exec {id}"));
                    ok("ran");
                }
                Step::RefreshExec { id, .. } => {
                    self.ran.push(format!("refresh {id}"));
                    self.pending.retain(|p| p != id);
                    ok("ran");
                }
                Step::RestartService { id, .. } => {
                    self.running.insert(id.trim_start_matches("service:").to_string());
                    self.ran.push(format!("restart {id}"));
                    self.pending.retain(|p| p != id);
                    ok("restarted");
                }
                Step::StartService { id, .. } => {
                    self.running.insert(id.trim_start_matches("service:").to_string());
                    self.ran.push(format!("start {id}"));
                    self.pending.retain(|p| p != id);
                    ok("started");
                }
                Step::StopService { id, .. } => {
                    self.running.remove(id.trim_start_matches("service:"));
                    self.ran.push(format!("stop {id}"));
                    ok("stopped");
                }
                Step::RecordApplied(json) => {
                    self.applied = Some(serde_json::from_str(json).expect("an applied record"));
                }
            }
        }
        out.push_str("DONE\t-\t-\n");
        Ok(output(0, out))
    }
}

fn step_id(step: &Step) -> Option<&str> {
    match step {
        Step::InstallPackage { id, .. }
        | Step::RemovePackage { id, .. }
        | Step::CreateDirectory { id, .. }
        | Step::FixAttributes { id, .. }
        | Step::StageFile { id, .. }
        | Step::PlaceFile { id, .. }
        | Step::RemoveFile { id, .. }
        | Step::RunExec { id, .. }
        | Step::RefreshExec { id, .. }
        | Step::RestartService { id, .. }
        | Step::StartService { id, .. }
        | Step::StopService { id, .. } => Some(id),
        Step::Expect { .. }
        | Step::CheckSpace(_)
        | Step::Backup(_)
        | Step::Prune(_)
        | Step::OweRestarts(_)
        | Step::SyncDirectory(_)
        | Step::RecordApplied(_) => None,
    }
}

//! Surveying hosts for drift: prepare each host (compile, connect, probe, plan) at the commit
//! it runs, which its applied record names, and keep what `plan::drift` calls drift.
//!
//! The probe needs a catalog before it can read the applied record, so each host is first
//! prepared at a guess (the commit the promotion state says it runs); a host whose record
//! names another commit is prepared again at that one. Hosts that run the same commit are
//! prepared together, at most once per commit and round. Nothing is changed on any host.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Hosts, Rollout};
use crate::composition::Composition;
use crate::error::{self, Error};
use crate::model::Host;
use crate::plan::drift::{HostDrift, host_drift};
use crate::source::short;

/// One host's drift, or why it could not be told.
pub struct Surveyed {
    pub host: String,
    pub result: Result<HostDrift, Error>,
}

/// The composition at a commit; an error says why this clone cannot read it.
pub type LoadCommit<'a> = dyn Fn(&str) -> Result<Arc<Composition>, Error> + 'a;

/// Surveys `hosts` of environment `env` (the inventory of the newest composition, whose SSH
/// settings `reach` connects with). `guess` is the commit each host probably runs. Results
/// are in the order of `hosts`.
pub fn survey(
    env: &str,
    hosts: &[&Host],
    guess: &dyn Fn(&Host) -> String,
    load: &LoadCommit<'_>,
    reach: Hosts<'_>,
) -> Vec<Surveyed> {
    let mut todo: Vec<(Host, String)> = hosts.iter().map(|h| ((*h).clone(), guess(h))).collect();
    let mut tried: BTreeSet<(String, String)> = BTreeSet::new();
    let mut done: BTreeMap<String, Result<HostDrift, Error>> = BTreeMap::new();
    while !todo.is_empty() {
        let mut by_commit: BTreeMap<String, Vec<Host>> = BTreeMap::new();
        for (host, commit) in todo.drain(..) {
            tried.insert((host.name.clone(), commit.clone()));
            by_commit.entry(commit).or_default().push(host);
        }
        for (commit, group) in by_commit {
            let runs = match at_commit(env, &commit, &group, load, reach) {
                Ok(runs) => runs,
                Err(why) => {
                    for host in &group {
                        done.insert(host.name.clone(), Err(clone_at(&why, &host.name)));
                    }
                    continue;
                }
            };
            for (host, run) in group.into_iter().zip(runs) {
                let name = host.name.clone();
                let result = match run {
                    Err(e) => Err(e),
                    Ok((plan, observed)) => match &observed.applied {
                        None => Err(error::usage(
                            "has no applied record (/var/lib/stackdeploy/applied.json): no \
                             stackdeploy apply finished on it (one that failed may have changed \
                             files), so nothing says what its files should be; apply it first",
                        )
                        .at_host(&name)),
                        Some(a) if a.commit != commit => {
                            if tried.contains(&(name.clone(), a.commit.clone())) {
                                Err(error::host(format!(
                                    "changed while it was surveyed: it ran commit {}, now {}; \
                                     run drift again once the run on it is done",
                                    short(&commit),
                                    short(&a.commit)
                                ))
                                .at_host(&name))
                            } else {
                                todo.push((host, a.commit.clone()));
                                continue;
                            }
                        }
                        Some(_) => Ok(host_drift(&plan, &observed).expect("an applied record")),
                    },
                };
                done.insert(name, result);
            }
        }
    }
    hosts
        .iter()
        .map(|h| Surveyed {
            host: h.name.clone(),
            result: done.remove(&h.name).unwrap_or_else(|| {
                Err(error::host("was not surveyed (internal error)").at_host(&h.name))
            }),
        })
        .collect()
}

type Prepared = Result<(crate::plan::HostPlan, crate::state::Observed), Error>;

/// Prepares `group` at `commit`: one result per host, in order. `Err`: no host of the group
/// could be prepared (the commit cannot be read or does not compile), and why.
fn at_commit(
    env: &str,
    commit: &str,
    group: &[Host],
    load: &LoadCommit<'_>,
    reach: Hosts<'_>,
) -> Result<Vec<Prepared>, Error> {
    let comp = load(commit)?;
    let Some(environment) = comp.pipeline.environments.get(env) else {
        return Err(error::usage(format!(
            "runs commit {}, which has no environment '{env}'",
            short(commit)
        )));
    };
    let mut at: Vec<&Host> = Vec::new();
    let mut missing = Vec::new();
    for h in group {
        match environment.host(&h.name) {
            Some(old) => at.push(old),
            None => missing.push(h.name.clone()),
        }
    }
    let rollout =
        Rollout::new(&comp, environment, reach).map_err(|errors| first(errors, commit))?;
    let mut runs = rollout.prepare(&at).map_err(|errors| first(errors, commit))?.into_iter();
    Ok(group
        .iter()
        .map(|h| {
            if missing.contains(&h.name) {
                return Err(error::usage(format!(
                    "is not in the inventory of commit {} that its applied record names",
                    short(commit)
                ))
                .at_host(&h.name));
            }
            let run = runs.next().expect("one run per prepared host");
            match (run.error, run.plan, run.observed) {
                (Some(e), _, _) => Err(e),
                (None, Some(plan), Some(observed)) => Ok((plan, observed)),
                _ => Err(error::host("was not prepared (internal error)").at_host(&h.name)),
            }
        })
        .collect())
}

/// The first of several errors (a commit that does not compile), saying which commit.
fn first(errors: crate::error::Errors, commit: &str) -> Error {
    let count = errors.len();
    let e = errors.into_iter().next().unwrap_or_else(|| error::invalid("compile failed"));
    let more = if count > 1 { format!(" (and {} more)", count - 1) } else { String::new() };
    error::invalid(format!("commit {} does not compile: {e}{more}", short(commit)))
}

/// The same error for each host of a group (errors are not `Clone`: they hold their cause).
fn clone_at(e: &Error, host: &str) -> Error {
    Error::new(e.kind(), e.to_string()).at_host(host)
}

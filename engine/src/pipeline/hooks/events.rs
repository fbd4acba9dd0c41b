//! Which hook events a stage's end causes, computed from git alone (pure): the inventory at the
//! commit against the inventory at the environment's previous release, the commit each host
//! ran before (the environment's ref and its exceptions), and the stage's previous result for
//! the commit (its note). Nothing here depends on what a run did before it was interrupted, so
//! a retried run computes the same events, and a run after a finished one computes none.

use std::collections::BTreeMap;

use crate::model::hooks::HookEvent;
use crate::model::stages::StageKind;
use crate::model::{Environment, Host};
use crate::pipeline::store::StageStatus;

/// The environment's previous release: its commit, and its inventory then (`None` when that
/// commit had no such environment).
#[derive(Debug, Clone, Copy)]
pub struct Released<'a> {
    pub commit: &'a str,
    pub inventory: Option<&'a Environment>,
}

/// Everything the events of one stage's end depend on.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub kind: StageKind,
    pub commit: &'a str,
    pub passed: bool,
    /// The stage's result for this commit before this run (under the key this run records).
    pub prior: Option<StageStatus>,
    /// A shard of the stage (`--shard K/N`): only its hosts' events are its own; the stage's
    /// own events are the gate's.
    pub shard: bool,
    /// The stage, passing, moves the environment to the commit (a deploy or release of the
    /// whole environment, or the gate of one).
    pub moves_environment: bool,
    /// The hosts the stage worked on, at the commit.
    pub hosts: &'a [&'a Host],
    /// The environment at the commit.
    pub inventory: Option<&'a Environment>,
    pub released: Option<Released<'a>>,
    /// Hosts running another commit than the environment's (canaries), before the stage.
    pub host_commits: &'a BTreeMap<String, String>,
}

/// One event, and the host it is about.
#[derive(Debug, Clone)]
pub struct Occurrence<'a> {
    pub event: HookEvent,
    pub host: Option<&'a Host>,
    /// What the host (or, for inventory and release events, the environment) ran before.
    pub from: Option<&'a str>,
}

impl Occurrence<'_> {
    /// Names this occurrence in the stage's record of deliveries: the same change gives the
    /// same key on every run, another change (a host added again after it was removed, from
    /// another release) another one.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.event,
            self.host.map_or("-", |h| h.name.as_str()),
            self.from.map_or("-", |c| &c[..c.len().min(12)])
        )
    }
}

/// The events of the stage's end, in the order hooks get them: hosts added to the inventory,
/// hosts removed from it (each by name), hosts deployed (in the stage's order), then the stage's
/// own, then the release's.
pub fn events<'a>(t: &Transition<'a>) -> Vec<Occurrence<'a>> {
    let mut out = Vec::new();
    let stage_event = |event| Occurrence { event, host: None, from: None };
    if !t.passed {
        if !t.shard && t.prior != Some(StageStatus::Failed) {
            out.push(stage_event(HookEvent::StageFailed));
        }
        return out;
    }
    let released = t.released.map(|r| r.commit);
    let moves = t.moves_environment && released != Some(t.commit);
    if moves {
        let before: &[Host] = t.released.and_then(|r| r.inventory).map_or(&[], |e| &e.hosts);
        let now: &[Host] = t.inventory.map_or(&[], |e| &e.hosts);
        let has = |hosts: &[Host], name: &str| hosts.iter().any(|h| h.name == name);
        for h in now.iter().filter(|h| !has(before, &h.name)) {
            out.push(Occurrence { event: HookEvent::HostAdded, host: Some(h), from: released });
        }
        for h in before.iter().filter(|h| !has(now, &h.name)) {
            out.push(Occurrence { event: HookEvent::HostRemoved, host: Some(h), from: released });
        }
    }
    for h in t.hosts {
        let ran = t.host_commits.get(&h.name).map(String::as_str).or(released);
        if ran != Some(t.commit) {
            out.push(Occurrence { event: HookEvent::HostDeployed, host: Some(h), from: ran });
        }
    }
    if t.shard {
        return out;
    }
    if t.prior != Some(StageStatus::Passed) {
        out.push(stage_event(HookEvent::StagePassed));
    }
    if moves && t.kind == StageKind::Release {
        out.push(Occurrence { event: HookEvent::ReleaseDone, host: None, from: released });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pipeline;

    fn env(hosts: &[&str]) -> Environment {
        let mut text = "[hiera]\nhierarchy = [\"common\"]\n[environments.prod.hosts]\n".to_string();
        for h in hosts {
            let role = h.trim_end_matches(char::is_numeric);
            text.push_str(&format!("{h} = {{ address = \"10.0.0.1\", role = \"{role}\" }}\n"));
        }
        Pipeline::parse(&text).unwrap().environments.remove("prod").unwrap()
    }

    fn names(events: &[Occurrence<'_>]) -> Vec<String> {
        events
            .iter()
            .map(|o| match o.host {
                Some(h) => format!("{} {}", o.event, h.name),
                None => o.event.to_string(),
            })
            .collect()
    }

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    fn release<'a>(
        now: &'a Environment,
        hosts: &'a [&'a Host],
        before: Option<&'a Environment>,
        canaries: &'a BTreeMap<String, String>,
    ) -> Transition<'a> {
        Transition {
            kind: StageKind::Release,
            commit: C2,
            passed: true,
            prior: None,
            shard: false,
            moves_environment: true,
            hosts,
            inventory: Some(now),
            released: before.map(|inventory| Released { commit: C1, inventory: Some(inventory) }),
            host_commits: canaries,
        }
    }

    #[test]
    fn a_release_that_adds_and_removes_hosts() {
        let before = env(&["compute1", "compute2", "db1"]);
        let now = env(&["compute2", "compute3", "db1"]);
        let hosts: Vec<&Host> = now.hosts.iter().collect();
        // The canary put compute2 on the commit already.
        let canaries: BTreeMap<String, String> = [("compute2".into(), C2.into())].into();
        let t = release(&now, &hosts, Some(&before), &canaries);
        let events = events(&t);
        assert_eq!(
            names(&events),
            [
                "host_added compute3",
                "host_removed compute1",
                "host_deployed compute3",
                "host_deployed db1",
                "stage_passed",
                "release_done"
            ]
        );
        // The removed host is described as the previous release had it.
        assert!(std::ptr::eq(events[1].host.unwrap(), &before.hosts[0]));
        assert_eq!(events[0].key(), "host_added:compute3:111111111111");
    }

    #[test]
    fn a_first_release_adds_every_host() {
        let now = env(&["compute1", "db1"]);
        let hosts: Vec<&Host> = now.hosts.iter().collect();
        let none = BTreeMap::new();
        let t = release(&now, &hosts, None, &none);
        assert_eq!(
            names(&events(&t)),
            [
                "host_added compute1",
                "host_added db1",
                "host_deployed compute1",
                "host_deployed db1",
                "stage_passed",
                "release_done"
            ]
        );
    }

    /// A run after the release passed finds the environment on the commit and the stage
    /// passed: nothing happens again.
    #[test]
    fn a_run_after_a_passed_release_causes_nothing() {
        let now = env(&["compute1", "db1"]);
        let hosts: Vec<&Host> = now.hosts.iter().collect();
        let none = BTreeMap::new();
        let mut t = release(&now, &hosts, Some(&now), &none);
        t.released = Some(Released { commit: C2, inventory: Some(&now) });
        t.prior = Some(StageStatus::Passed);
        assert!(events(&t).is_empty(), "{:?}", names(&events(&t)));
    }

    #[test]
    fn failures_canaries_and_shards() {
        let before = env(&["compute1", "db1"]);
        let now = env(&["compute1", "compute2", "db1"]);
        let none = BTreeMap::new();
        let canary_hosts: Vec<&Host> = vec![&now.hosts[0], &now.hosts[2]];
        let mut t = release(&now, &canary_hosts, Some(&before), &none);
        t.kind = StageKind::Canary;
        t.moves_environment = false;
        assert_eq!(
            names(&events(&t)),
            ["host_deployed compute1", "host_deployed db1", "stage_passed"],
            "a canary does not change the environment's inventory"
        );
        t.passed = false;
        assert_eq!(names(&events(&t)), ["stage_failed"]);
        t.prior = Some(StageStatus::Failed);
        assert!(events(&t).is_empty(), "failing again is not news");
        let mut shard = release(&now, &canary_hosts, Some(&before), &none);
        shard.shard = true;
        shard.moves_environment = false;
        assert_eq!(names(&events(&shard)), ["host_deployed compute1", "host_deployed db1"]);
    }
}

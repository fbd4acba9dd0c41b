//! Pipeline stages from `pipeline.toml` (`[[stages]]`): what runs, where, after what.

use serde::Deserialize;

use super::pipeline::{Environment, Host};
use crate::error::{self, Result};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// `check`: parse and compile everything; touches no host.
    Precommit,
    /// Apply to an environment twice; the second apply must change nothing.
    Deploy,
    /// Checks against an environment (no apply).
    Integration,
    /// Checks measuring an environment (no apply); like integration, reported separately.
    Performance,
    /// Apply to a subset of an environment and run checks; on failure those hosts are rolled
    /// back to the environment's released commit.
    Canary,
    /// Apply to the whole environment in rollout batches; the environment ref moves here.
    Release,
}

impl StageKind {
    pub fn applies(self) -> bool {
        matches!(self, StageKind::Deploy | StageKind::Canary | StageKind::Release)
    }
}

/// Which hosts of the environment a stage works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSelect {
    All,
    /// The first N hosts (by name) of every role.
    PerRole(usize),
    /// The first P percent (rounded up, at least one) of every role's hosts.
    PercentPerRole(u32),
    /// A `--limit`-style pattern: names, globs, `role:NAME`, `fact:KEY=VALUE`, `&`, `,`.
    Pattern(String),
}

/// Where a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOn {
    /// On the machine running the pipeline.
    Local,
    /// On every selected host matching this pattern, over SSH.
    Hosts(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// A minijinja template (context: `environment`, `hosts`, `roles`, `host` on hosts) that
    /// renders to a shell command; exit 0 = pass.
    pub command: String,
    pub on: CheckOn,
    pub timeout_secs: u64,
    /// A failing check runs again (every [`RETRY_PAUSE`]) until it passes or this long has
    /// passed since its first try: for what becomes true shortly after an apply (a compute host
    /// the scheduler maps into its cell within a minute). 0: one try.
    pub retry_for_secs: u64,
}

/// The pause between two tries of a check that has `retry_for`.
pub const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
    pub environment: Option<String>,
    pub hosts: HostSelect,
    pub checks: Vec<Check>,
    /// A manual `stackdeploy approve REV --stage NAME` must be recorded before it runs.
    pub approval: bool,
    /// Stages that must have passed for the same commit first.
    pub requires: Vec<String>,
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StageDef {
    name: String,
    kind: StageKind,
    environment: Option<String>,
    hosts: Option<HostsDef>,
    #[serde(default)]
    checks: Vec<CheckDef>,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    requires: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum HostsDef {
    Pattern(String),
    PerRole { per_role: usize },
    Percent { percent_per_role: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckDef {
    name: String,
    command: String,
    #[serde(default = "local")]
    on: String,
    #[serde(default = "thirty")]
    timeout: u64,
    #[serde(default)]
    retry_for: u64,
}

fn local() -> String {
    "local".into()
}
fn thirty() -> u64 {
    30
}

impl StageDef {
    pub(super) fn build(self, line: usize) -> Stage {
        Stage {
            name: self.name,
            kind: self.kind,
            environment: self.environment,
            hosts: match self.hosts {
                None => HostSelect::All,
                Some(HostsDef::Pattern(p)) if p == "all" => HostSelect::All,
                Some(HostsDef::Pattern(p)) => HostSelect::Pattern(p),
                Some(HostsDef::PerRole { per_role }) => HostSelect::PerRole(per_role.max(1)),
                Some(HostsDef::Percent { percent_per_role }) => {
                    HostSelect::PercentPerRole(percent_per_role.clamp(1, 100))
                }
            },
            checks: self
                .checks
                .into_iter()
                .map(|c| Check {
                    name: c.name,
                    command: c.command,
                    on: if c.on == "local" { CheckOn::Local } else { CheckOn::Hosts(c.on) },
                    timeout_secs: c.timeout.max(1),
                    retry_for_secs: c.retry_for,
                })
                .collect(),
            approval: self.approval,
            requires: self.requires,
            line,
        }
    }
}

/// Checks the stage list against the environments; `path` and lines locate errors.
pub(super) fn validate(
    stages: &[Stage],
    environments: &std::collections::BTreeMap<String, Environment>,
    path: &str,
) -> Result<()> {
    for (i, stage) in stages.iter().enumerate() {
        let at = |e: crate::error::Error| e.at_file(path, Some(stage.line));
        if stages[..i].iter().any(|s| s.name == stage.name) {
            return Err(at(error::invalid(format!("stage '{}' is declared twice", stage.name))));
        }
        match (stage.kind, &stage.environment) {
            (StageKind::Precommit, _) => {}
            (_, None) => {
                return Err(at(error::invalid(format!(
                    "stage '{}' needs an `environment`",
                    stage.name
                ))));
            }
            (_, Some(env)) if !environments.contains_key(env) => {
                return Err(at(error::invalid(format!(
                    "stage '{}' names unknown environment '{env}'{}",
                    stage.name,
                    crate::suggest::hint(env, environments.keys().map(String::as_str))
                ))));
            }
            _ => {}
        }
        for req in &stage.requires {
            if !stages[..i].iter().any(|s| &s.name == req) {
                return Err(at(error::invalid(format!(
                    "stage '{}' requires '{req}', which is not an earlier stage{}",
                    stage.name,
                    crate::suggest::hint(req, stages[..i].iter().map(|s| s.name.as_str()))
                ))));
            }
        }
    }
    Ok(())
}

impl Stage {
    /// The hosts of `env` this stage works on, sorted by name.
    pub fn select<'e>(&self, env: &'e Environment) -> Vec<&'e Host> {
        match &self.hosts {
            HostSelect::All => env.hosts.iter().collect(),
            HostSelect::Pattern(p) => env.hosts.iter().filter(|h| matches(p, h)).collect(),
            HostSelect::PerRole(_) | HostSelect::PercentPerRole(_) => {
                let mut per_role: std::collections::BTreeMap<&str, usize> = Default::default();
                for h in &env.hosts {
                    *per_role.entry(h.role.as_str()).or_default() += 1;
                }
                let limit = |role: &str| match self.hosts {
                    HostSelect::PerRole(n) => n,
                    HostSelect::PercentPerRole(p) => {
                        (per_role[role] * p as usize).div_ceil(100).max(1)
                    }
                    _ => unreachable!(),
                };
                let mut taken: std::collections::BTreeMap<&str, usize> = Default::default();
                env.hosts
                    .iter()
                    .filter(|h| {
                        let c = taken.entry(h.role.as_str()).or_default();
                        *c += 1;
                        *c <= limit(&h.role)
                    })
                    .collect()
            }
        }
    }
}

/// Does `host` match a pattern? A pattern is comma-separated terms, any of which may match; a
/// term joins selectors with `&`, all of which must: a name or glob (`compute*`, `all`),
/// `role:GLOB`, `fact:KEY=GLOB` or `fact:KEY` (the host has that fact). Facts are the static
/// ones of the inventory: which hosts a run touches must not depend on what a probe saw last.
pub fn matches(pattern: &str, host: &Host) -> bool {
    pattern
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .any(|term| term.split('&').all(|s| selector_matches(s.trim(), host)))
}

fn selector_matches(selector: &str, host: &Host) -> bool {
    if let Some(role) = selector.strip_prefix("role:") {
        return glob(role, &host.role);
    }
    if let Some(fact) = selector.strip_prefix("fact:") {
        let (key, wanted) = match fact.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (fact.trim(), None),
        };
        return match (host.facts.get(key), wanted) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(toml::Value::String(v)), Some(w)) => glob(w, v),
            (Some(v), Some(w)) => glob(w, &v.to_string()),
        };
    }
    selector == "all" || glob(selector, &host.name)
}

/// Host-name and fact-value patterns: `*` is the only wildcard.
fn glob(pattern: &str, text: &str) -> bool {
    crate::glob::matches(pattern.as_bytes(), text.as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_selection_per_role() {
        let text = "[hiera]\nhierarchy = [\"common\"]\n[environments.p.hosts]\nc1 = { address = \"a\", role = \"c\" }\nc2 = { address = \"a\", role = \"c\" }\nc3 = { address = \"a\", role = \"c\" }\nc4 = { address = \"a\", role = \"c\" }\nd1 = { address = \"a\", role = \"d\" }\n\n[[stages]]\nname = \"one\"\nkind = \"canary\"\nenvironment = \"p\"\nhosts = { per_role = 1 }\n\n[[stages]]\nname = \"half\"\nkind = \"canary\"\nenvironment = \"p\"\nhosts = { percent_per_role = 50 }\n\n[[stages]]\nname = \"pat\"\nkind = \"canary\"\nenvironment = \"p\"\nhosts = \"role:d,c4\"\n";
        let p = crate::model::Pipeline::parse(text).unwrap();
        let env = p.environment("p").unwrap();
        let names =
            |i: usize| p.stages[i].select(env).iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(0), ["c1", "d1"]);
        assert_eq!(names(1), ["c1", "c2", "d1"]);
        assert_eq!(names(2), ["c4", "d1"]);
    }

    #[test]
    fn facts_and_intersections_select_hosts() {
        let text = "[hiera]\nhierarchy = [\"common\"]\n[environments.p]\nfacts = { region = \"tokyo\" }\n[environments.p.hosts]\nc1 = { address = \"a\", role = \"compute\", facts = { az = 1 } }\nc2 = { address = \"a\", role = \"compute\", facts = { region = \"osaka\", az = 2 } }\nctl1 = { address = \"a\", role = \"controller\", facts = { region = \"osaka\" } }\n";
        let p = crate::model::Pipeline::parse(text).unwrap();
        let env = p.environment("p").unwrap();
        let names = |pattern: &str| {
            env.hosts
                .iter()
                .filter(|h| matches(pattern, h))
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("fact:region=osaka"), ["c2", "ctl1"]);
        assert_eq!(names("fact:region=tok*"), ["c1"], "environment facts count, host facts win");
        assert_eq!(names("role:compute & fact:region=osaka"), ["c2"]);
        assert_eq!(names("fact:az=2, ctl*"), ["c2", "ctl1"]);
        assert_eq!(names("fact:az"), ["c1", "c2"], "a fact without a value: hosts that have it");
        assert!(names("fact:rack=1").is_empty());
    }

    #[test]
    fn globs() {
        assert!(glob("compute*", "compute01"));
        assert!(glob("*01", "compute01"));
        assert!(glob("c*e*1", "compute01"));
        assert!(!glob("compute*", "controller01"));
    }
}

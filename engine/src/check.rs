//! `check`: everything a precommit hook can verify without touching a host. Loads the
//! composition, parses every template, and compiles every host of every environment,
//! collecting all problems (deduplicated: one broken template shows once, not once per host).

use std::collections::HashSet;

use crate::catalog::{Compiler, EnvContext, Secrets};
use crate::error::Error;
use crate::facts::FactCache;
use crate::hiera::HostHiera;
use crate::model::{Composition, Host};
use crate::source::Snapshot;

pub struct CheckResult {
    pub problems: Vec<Error>,
    pub warnings: Vec<Error>,
    pub environments: usize,
    pub hosts: usize,
    pub roles: usize,
    pub profiles: usize,
}

pub fn check(snapshot: &Snapshot, cache: &FactCache) -> CheckResult {
    let mut result = CheckResult {
        problems: Vec::new(),
        warnings: Vec::new(),
        environments: 0,
        hosts: 0,
        roles: 0,
        profiles: 0,
    };
    let mut comp = match Composition::load(snapshot) {
        Ok(c) => c,
        Err(errors) => {
            result.problems = errors;
            return result;
        }
    };
    result.roles = comp.roles.len();
    result.profiles = comp.profiles.len();
    result.warnings = std::mem::take(&mut comp.warnings);
    let compiler = match Compiler::new(&comp) {
        Ok(c) => c,
        Err(errors) => {
            result.problems = errors;
            return result;
        }
    };
    let mut seen = HashSet::new();
    for env in comp.pipeline.environments.values() {
        result.environments += 1;
        result.hosts += env.hosts.len();
        let env_ctx = EnvContext::new(env, &|h| cache.facts(h));
        let outcomes = crate::catalog::compile_all(
            &compiler,
            &env_ctx,
            &env.hosts,
            &|h| cache.facts(h),
            |_, r| r.err(),
        );
        for errors in outcomes.into_iter().flatten() {
            for e in errors {
                if seen.insert(e.to_string()) {
                    result.problems.push(e);
                }
            }
        }
    }
    result
}

/// The secret values a host's catalog would contain, for redacting outputs that are not
/// catalogs (lookup). Parameters that fail to look up are simply skipped.
pub fn host_secrets(comp: &Composition, hiera: &HostHiera, host: &Host) -> Secrets {
    let mut secrets = Secrets::default();
    let Some(role) = comp.roles.get(&host.role) else {
        return secrets;
    };
    for (name, _) in &role.profiles {
        let Some(profile) = comp.profiles.get(name) else {
            continue;
        };
        for decl in profile.params.values().filter(|d| d.secret) {
            let key = format!("{}::{}", profile.name, decl.name);
            if let Ok(Some(v)) = hiera.lookup(&key, None) {
                secrets.add(&key, &v);
            } else if let Some(d) = &decl.default {
                secrets.add(&key, d);
            }
        }
    }
    secrets
}

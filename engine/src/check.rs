//! `check`: everything a precommit hook can verify without touching a host. Loads the
//! composition, parses every template, and compiles every host of every environment,
//! collecting all problems (deduplicated: one broken template shows once, not once per host).

use std::collections::HashMap;

use crate::catalog::{Compiler, EnvContext, Secrets};
use crate::error::Error;
use crate::facts::FactCache;
use crate::hiera::HostHiera;
use crate::model::{Composition, Host};
use crate::source::Snapshot;

pub struct CheckResult {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Error>,
    pub environments: usize,
    pub hosts: usize,
    pub roles: usize,
    pub profiles: usize,
}

/// One problem, with the hosts (`env/host`) it was found on when it came from compiling.
pub struct Problem {
    pub error: Error,
    pub hosts: Vec<String>,
}

impl Problem {
    fn new(error: Error) -> Problem {
        Problem { error, hosts: Vec::new() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if self.hosts.len() > 1 {
            const SHOWN: usize = 5;
            let more = self.hosts.len().saturating_sub(SHOWN);
            write!(
                f,
                " [same on {} hosts: {}{}]",
                self.hosts.len(),
                self.hosts[..self.hosts.len().min(SHOWN)].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )?;
        }
        Ok(())
    }
}

pub fn check(
    snapshot: &Snapshot,
    cache: &FactCache,
    keyring: std::sync::Arc<crate::hiera::Keyring>,
) -> CheckResult {
    let mut result = CheckResult {
        problems: Vec::new(),
        warnings: Vec::new(),
        environments: 0,
        hosts: 0,
        roles: 0,
        profiles: 0,
    };
    let mut comp = match Composition::load(snapshot) {
        Ok(c) => Composition { keyring, ..c },
        Err(errors) => {
            result.problems = errors.into_iter().map(Problem::new).collect();
            return result;
        }
    };
    result.roles = comp.roles.len();
    result.profiles = comp.profiles.len();
    result.warnings = std::mem::take(&mut comp.warnings);
    let compiler = match Compiler::new(&comp) {
        Ok(c) => c,
        Err(errors) => {
            result.problems = errors.into_iter().map(Problem::new).collect();
            return result;
        }
    };
    // The same mistake usually breaks every host of a role; it is reported once, with the
    // hosts it affects, keyed by its message with the host name taken out.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for env in comp.pipeline.environments.values() {
        result.environments += 1;
        result.hosts += env.hosts.len();
        let env_ctx = EnvContext::new(&comp, env, &|h| cache.facts(h));
        let outcomes = crate::catalog::compile_all(
            &compiler,
            &env_ctx,
            &env.hosts,
            &|h| cache.facts(h),
            |h, r| {
                r.err().map(|errors| (format!("{}/{}", env.name, h.name), h.name.clone(), errors))
            },
        );
        for (label, name, errors) in outcomes.into_iter().flatten() {
            for e in errors {
                let key = e.to_string().replace(&name, "\u{0}");
                match seen.get(&key) {
                    // Two parameters failing the same way on one host are one problem there.
                    Some(&i) if result.problems[i].hosts.last() == Some(&label) => {}
                    Some(&i) => result.problems[i].hosts.push(label.clone()),
                    None => {
                        seen.insert(key, result.problems.len());
                        result.problems.push(Problem { error: e, hosts: vec![label.clone()] });
                    }
                }
            }
        }
    }
    result
}

/// The secret values a host's catalog would contain, for redacting outputs that are not
/// catalogs (lookup). Parameters that fail to look up are simply skipped.
pub fn host_secrets(comp: &Composition, hiera: &HostHiera, host: &Host) -> Secrets {
    collect_secrets(comp, hiera, host, false).unwrap_or_default()
}

/// The secret values of a host's parameters at a composition (no templates rendered), with
/// the given host's facts. `None` when any of them cannot be looked up: a partial set would
/// let an old secret through a diff unredacted.
pub fn secrets_of(comp: &Composition, host: &Host) -> Option<Secrets> {
    let vars = std::sync::Arc::new(crate::hiera::Vars::new(host, host.facts.clone()));
    let hiera = HostHiera::new(comp.hiera.clone(), &comp.pipeline.hierarchy, vars)
        .ok()?
        .with_keyring(comp.keyring.clone());
    collect_secrets(comp, &hiera, host, true)
}

/// Every secret parameter of the host's role, looked up (else its default), and every
/// encrypted value its parameters reveal. With `strict`, a failed lookup makes the whole set
/// `None`; otherwise that parameter is skipped.
fn collect_secrets(
    comp: &Composition,
    hiera: &HostHiera,
    host: &Host,
    strict: bool,
) -> Option<Secrets> {
    let mut secrets = Secrets::default();
    let role = comp.roles.get(&host.role)?;
    for (name, _) in &role.profiles {
        let Some(profile) = comp.profiles.get(name) else { continue };
        for decl in profile.params.values() {
            let key = format!("{}::{}", profile.name, decl.name);
            let found = hiera.lookup(&key, None);
            // An ordinary parameter that fails to look up (say, it needs a gathered fact) holds
            // no secret; one that fails to decrypt may, and then the set is incomplete.
            let undecrypted = matches!(&found, Err(e) if crate::hiera::crypt::is_decrypt_error(e));
            if strict && (undecrypted || (decl.secret && found.is_err())) {
                return None;
            }
            if !decl.secret {
                // Looked up only so that an encrypted value is revealed, and so redacted.
                continue;
            }
            match found {
                Ok(Some(v)) => secrets.add(&key, &v),
                _ => {
                    if let Some(d) = &decl.default {
                        secrets.add(&key, d);
                    }
                }
            }
        }
    }
    secrets.extend(&hiera.revealed());
    Some(secrets)
}

//! Precommit validation (the `check` command and the pipeline's precommit stage): everything
//! that can be verified without touching a host. Loads the composition, parses every template,
//! and compiles every host of every environment, collecting all problems (deduplicated: one
//! broken template shows once, not once per host).

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::{Compiler, EnvContext};
use crate::composition::Composition;
use crate::error::Error;
use crate::model::Host;
use crate::secrets::Keyring;
use crate::source::Snapshot;

/// What precommit found.
pub struct Precommit {
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

impl Precommit {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
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

/// Checks the composition of `snapshot`, compiling every host with `facts` (static plus cached
/// gathered facts).
pub fn check(
    snapshot: &Snapshot,
    facts: &(dyn Fn(&Host) -> toml::Table + Sync),
    keyring: Arc<Keyring>,
) -> Precommit {
    let mut result = Precommit {
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
        let env_ctx = EnvContext::new(&comp, env, facts);
        let outcomes =
            crate::catalog::compile_all(&compiler, &env_ctx, &env.hosts, facts, |h, r| {
                r.err().map(|errors| (format!("{}/{}", env.name, h.name), h.name.clone(), errors))
            });
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

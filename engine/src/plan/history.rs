//! The commits hosts run, as far as plans need them: a host's diff is redacted with the secrets
//! of the commit that wrote its files, and a file that commit kept secret never shows its old
//! content. Compositions of those commits are loaded once each and shared by every host.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::catalog::{Catalog, Compiler, EnvContext, parameter_secrets};
use crate::composition::Composition;
use crate::model::Host;
use crate::secrets::{Keyring, Secrets};
use crate::source::Snapshot;

/// What the commit a host runs says about its secrets, so that a plan's diffs show neither
/// old secret values nor the old content of a file that was secret.
#[derive(Debug, Default)]
pub struct OldRedaction {
    /// That commit's secret values, plus the values it gives keys the new catalog marks secret.
    pub secrets: Secrets,
    /// Files that commit marks `secret` (also when the new commit no longer does).
    pub secret_files: BTreeSet<String>,
}

/// Reads the composition files of a commit; `None` when this clone cannot.
pub type Load<'a> = dyn Fn(&str) -> Option<Snapshot> + Sync + 'a;

/// Compositions of the commits hosts run, loaded on first use.
pub struct History<'a> {
    load: &'a Load<'a>,
    keyring: Arc<Keyring>,
    loaded: Mutex<Vec<(String, Option<Arc<Composition>>)>>,
}

impl<'a> History<'a> {
    pub fn new(load: &'a Load<'a>, keyring: Arc<Keyring>) -> History<'a> {
        History { load, keyring, loaded: Mutex::new(Vec::new()) }
    }

    /// The redaction for a host that runs `running` (from its applied record) while `catalog`
    /// (at `commit`) is planned for it. `host` carries the facts the catalog was compiled with.
    /// `None` when the host records no commit or that commit cannot be read: diffs of files
    /// holding secrets are then withheld.
    pub fn for_host(
        &self,
        host: &Host,
        running: Option<&str>,
        commit: &str,
        catalog: &Catalog,
    ) -> Option<OldRedaction> {
        match running {
            Some(c) if c == commit => {
                Some(OldRedaction { secrets: catalog.secrets.clone(), ..Default::default() })
            }
            Some(c) => self.redaction(host, c, &catalog.secrets),
            None => None,
        }
    }

    fn composition(&self, commit: &str) -> Option<Arc<Composition>> {
        let mut loaded = self.loaded.lock().unwrap();
        if !loaded.iter().any(|(c, _)| c == commit) {
            let comp = (self.load)(commit)
                .and_then(|s| Composition::load(&s).ok())
                .map(|c| Arc::new(Composition { keyring: self.keyring.clone(), ..c }));
            loaded.push((commit.to_string(), comp));
        }
        loaded.iter().find(|(c, _)| c == commit)?.1.clone()
    }

    fn redaction(&self, host: &Host, commit: &str, new: &Secrets) -> Option<OldRedaction> {
        // Compiled outside the lock: hosts are prepared in parallel.
        let comp = self.composition(commit)?;
        let env = comp.pipeline.environments.get(&host.environment)?;
        let mut with_facts = env.host(&host.name)?.clone();
        with_facts.facts = host.facts.clone();
        // A full compile also knows the values only templates look up (`lookup('k')`) and
        // which files were secret; an old commit that does not compile leaves just its
        // parameters' secrets.
        let compiler = Compiler::new(&comp).ok();
        let env_ctx = EnvContext::new(&comp, env, &|h| h.facts.clone());
        let compiled = compiler.as_ref().and_then(|c| {
            c.compile(&env_ctx, &with_facts, with_facts.facts.clone()).ok().map(|cat| (c, cat))
        });
        match compiled {
            Some((compiler, catalog)) => {
                let mut secrets = catalog.secrets.clone();
                compiler.add_newly_secret(
                    &with_facts,
                    || with_facts.facts.clone(),
                    &mut secrets,
                    new,
                );
                let secret_files =
                    catalog.files().filter(|f| f.secret).map(|f| f.path.clone()).collect();
                Some(OldRedaction { secrets, secret_files })
            }
            None => parameter_secrets(&comp, &with_facts)
                .map(|secrets| OldRedaction { secrets, ..Default::default() }),
        }
    }
}

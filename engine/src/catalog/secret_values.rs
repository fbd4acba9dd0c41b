//! Which values of a host are secret, outside a full compile: for outputs that are not
//! catalogs (`lookup`, pipeline check output) and for the old side of diffs (the commit a host
//! runs, which may mark other keys secret than the commit being planned).

use std::collections::HashSet;

use super::Compiler;
use crate::composition::Composition;
use crate::hiera::HostHiera;
use crate::model::Host;
use crate::secrets::Secrets;

impl Compiler<'_> {
    /// Adds to `secrets` (a host's secrets at this compiler's commit) the values this commit
    /// gives the keys that `newer` (the host's secrets at a newer commit) holds and `secrets`
    /// does not. A key marked secret (or encrypted) only in the newer commit held a plain value
    /// here that is just as sensitive, and the old side of a diff must not show it. Keys that
    /// do not look up here are skipped: they hold nothing to hide. `facts` is called only when
    /// there is such a key (a diff of 1,000 hosts usually has none, and facts come from disk).
    pub fn add_newly_secret(
        &self,
        host: &Host,
        facts: impl FnOnce() -> toml::Table,
        secrets: &mut Secrets,
        newer: &Secrets,
    ) {
        let known: HashSet<&str> = secrets.keys().collect();
        let newly: Vec<&str> = newer.keys().filter(|k| !known.contains(k)).collect();
        if newly.is_empty() {
            return;
        }
        let Ok(hiera) = self.host_hiera(host, facts()) else { return };
        for key in newly {
            if let Ok(Some(value)) = hiera.lookup(key, None) {
                secrets.add(key, &value);
            }
        }
        secrets.extend(&hiera.revealed());
    }
}

/// The secret values a host's catalog would contain, for redacting outputs that are not
/// catalogs (lookup). Parameters that fail to look up are simply skipped.
pub fn lookup_secrets(comp: &Composition, hiera: &HostHiera, host: &Host) -> Secrets {
    collect_secrets(comp, hiera, host, false).unwrap_or_default()
}

/// The secret values of a host's parameters at a composition (no templates rendered), with
/// the given host's facts. `None` when any of them cannot be looked up: a partial set would
/// let an old secret through a diff unredacted.
pub fn parameter_secrets(comp: &Composition, host: &Host) -> Option<Secrets> {
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
            let undecrypted =
                matches!(&found, Err(e) if crate::secrets::crypt::is_decrypt_error(e));
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

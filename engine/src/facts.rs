//! The local facts cache: facts gathered from hosts during runs, kept under
//! `.stackdeploy/facts/<env>/<host>.json` so offline commands (catalog, check, diff) compile
//! with the last known facts.

use std::path::{Path, PathBuf};

use crate::model::Host;

pub struct FactCache {
    composition_dir: PathBuf,
    dir: PathBuf,
}

impl FactCache {
    pub fn new(composition_dir: &Path) -> FactCache {
        FactCache {
            composition_dir: composition_dir.to_path_buf(),
            dir: crate::workdir::facts(composition_dir),
        }
    }

    fn path(&self, host: &Host) -> PathBuf {
        self.dir.join(&host.environment).join(format!("{}.json", host.name))
    }

    /// The facts a compile uses: cached gathered facts, overlaid with the static facts from
    /// pipeline.toml (which the operator wrote, so they win).
    pub fn facts(&self, host: &Host) -> toml::Table {
        let mut facts = self.cached(host).unwrap_or_default();
        facts.extend(host.facts.clone());
        facts
    }

    /// Records the facts gathered from a host (best effort: a read-only checkout just does
    /// without the cache).
    pub fn store(&self, host: &Host, facts: &toml::Table) {
        let path = self.path(host);
        let Ok(json) = serde_json::to_string_pretty(facts) else { return };
        crate::workdir::create_best_effort(&self.composition_dir);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    fn cached(&self, host: &Host) -> Option<toml::Table> {
        let text = std::fs::read_to_string(self.path(host)).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        // JSON null has no TOML form; gathered facts never need it.
        toml::Table::try_from(strip_nulls(json)).ok()
    }
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.into_iter().filter(|v| !v.is_null()).map(strip_nulls).collect(),
        ),
        other => other,
    }
}

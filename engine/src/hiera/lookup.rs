//! One host's view of the hierarchy: resolved levels, lookups, interpolation, `--explain`.

use std::sync::{Arc, Mutex};

use toml::Value;

use super::data::{DataFile, HieraData, KeyPattern, LookupOptions};
use super::interpolate::{Token, tokenize};
use super::merge::{self, Found, Merge};
use crate::error::{self, Result};
use crate::model::Host;
use crate::model::PIPELINE_FILE;
use crate::secrets::{Keyring, Secrets};

const DEFAULT_KNOCKOUT: &str = "--";

/// The variables that `%{...}` can name for one host.
#[derive(Debug, Clone)]
pub struct Vars {
    pub host: String,
    pub role: String,
    pub address: String,
    pub port: u16,
    pub environment: String,
    pub facts: toml::Table,
}

impl Vars {
    pub fn new(host: &Host, facts: toml::Table) -> Vars {
        Vars {
            host: host.name.clone(),
            role: host.role.clone(),
            address: host.address.clone(),
            port: host.port,
            environment: host.environment.clone(),
            facts,
        }
    }

    /// The value of a variable as a string; an unknown variable is an error, never "".
    pub fn get(&self, name: &str) -> Result<String> {
        let known = || {
            error::lookup(format!(
                "unknown variable '{name}' (known: host.name, host.role, host.address, host.port, \
                 environment, facts.*)"
            ))
        };
        match name {
            "host.name" | "hostname" => return Ok(self.host.clone()),
            "host.role" | "role" => return Ok(self.role.clone()),
            "host.address" => return Ok(self.address.clone()),
            "host.port" => return Ok(self.port.to_string()),
            "environment" | "host.environment" => return Ok(self.environment.clone()),
            _ => {}
        }
        let Some(path) = name.strip_prefix("facts.") else {
            return Err(known());
        };
        let mut current: Option<&Value> = None;
        let mut table = &self.facts;
        for (i, part) in path.split('.').enumerate() {
            if i > 0 {
                table = match current {
                    Some(Value::Table(t)) => t,
                    _ => return Err(self.unknown_fact(path)),
                };
            }
            current = table.get(part);
            if current.is_none() {
                return Err(self.unknown_fact(path));
            }
        }
        scalar_string(current.expect("checked above")).ok_or_else(|| {
            error::lookup(format!(
                "fact '{path}' is a {}; only scalars can be interpolated",
                current.unwrap().type_str()
            ))
        })
    }

    fn unknown_fact(&self, path: &str) -> crate::error::Error {
        let known: Vec<&str> = self.facts.keys().map(String::as_str).collect();
        error::lookup(format!(
            "unknown fact '{path}' for host {} (its facts: {}); add it to the host's or the \
             environment's `facts` in pipeline.toml",
            self.host,
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ))
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Datetime(d) => Some(d.to_string()),
        Value::Array(_) | Value::Table(_) => None,
    }
}

#[derive(Debug, Clone)]
struct Level {
    /// As written in pipeline.toml, e.g. `nodes/%{host.name}`.
    template: String,
    /// Resolved level name, e.g. `nodes/db01`.
    name: String,
}

/// One host's hierarchy; cheap to share across threads.
#[derive(Debug, Clone)]
pub struct HostHiera {
    data: Arc<HieraData>,
    vars: Arc<Vars>,
    levels: Vec<Level>,
    keyring: Arc<Keyring>,
    /// Values decrypted by lookups so far, shared by the clones (a compile's template
    /// `lookup()` runs on one).
    revealed: Arc<Mutex<Secrets>>,
}

/// What `lookup --explain` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explain {
    pub key: String,
    pub merge: String,
    /// Where the merge behaviour came from.
    pub merge_source: String,
    pub levels: Vec<ExplainLevel>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExplainLevel {
    pub level: String,
    pub path: String,
    pub outcome: LevelOutcome,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum LevelOutcome {
    NoFile,
    NotFound,
    Found(Value),
    /// Not searched: `first` had already found the key at a higher level.
    NotSearched,
}

impl HostHiera {
    /// Resolves the hierarchy for one host; a level naming an unknown variable is an error at
    /// its line in pipeline.toml.
    pub fn new(
        data: Arc<HieraData>,
        hierarchy: &[(String, usize)],
        vars: Arc<Vars>,
    ) -> Result<HostHiera> {
        let mut levels = Vec::with_capacity(hierarchy.len());
        for (template, line) in hierarchy {
            let mut name = String::new();
            let tokens = tokenize(template).map_err(|e| e.at_file(PIPELINE_FILE, Some(*line)))?;
            for token in tokens {
                match token {
                    Token::Text(t) | Token::Literal(t) => name.push_str(t),
                    Token::Var(v) => name.push_str(&vars.get(v).map_err(|e| {
                        error::lookup(format!("hierarchy level '{template}': {}", e.detail()))
                            .at_file(PIPELINE_FILE, Some(*line))
                    })?),
                    Token::Lookup(_) | Token::Alias(_) => {
                        return Err(error::lookup(format!(
                            "hierarchy level '{template}' may only use variables, not lookups"
                        ))
                        .at_file(PIPELINE_FILE, Some(*line)));
                    }
                }
            }
            levels.push(Level { template: template.clone(), name });
        }
        Ok(HostHiera {
            data,
            vars,
            levels,
            keyring: Arc::new(Keyring::Missing),
            revealed: Arc::default(),
        })
    }

    /// Decrypts encrypted values with `keyring` (without one, they are an error).
    pub fn with_keyring(self, keyring: Arc<Keyring>) -> HostHiera {
        HostHiera { keyring, ..self }
    }

    /// Every value decrypted by this host's lookups so far, as secrets to redact.
    pub fn revealed(&self) -> Secrets {
        self.revealed.lock().unwrap().clone()
    }

    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// Every data file path this host's hierarchy searches, in order, those that do not exist
    /// marked `(missing)`: a key set in a file nobody created yet is the usual mistake.
    pub fn searched_paths(&self) -> Vec<String> {
        self.files()
            .map(|(l, file)| match file {
                Some(_) => format!("hieradata/{}.toml", l.name),
                None => format!("hieradata/{}.toml (missing)", l.name),
            })
            .collect()
    }

    /// Looks `key` up; `Ok(None)` when no level has it. `merge` overrides `lookup_options`.
    pub fn lookup(&self, key: &str, merge: Option<Merge>) -> Result<Option<Value>> {
        let value = self.lookup_inner(key, merge, &mut Vec::new(), None)?;
        self.reveal(key, value)
    }

    fn reveal(&self, key: &str, value: Option<Value>) -> Result<Option<Value>> {
        value.map(|v| self.keyring.reveal(key, v, &self.revealed)).transpose()
    }

    /// Like [`lookup`](Self::lookup), also recording every level searched.
    pub fn explain(&self, key: &str, merge: Option<Merge>) -> (Result<Option<Value>>, Explain) {
        let mut explain = Explain {
            key: key.to_string(),
            merge: String::new(),
            merge_source: String::new(),
            levels: Vec::new(),
        };
        let result = self
            .lookup_inner(key, merge, &mut Vec::new(), Some(&mut explain))
            .and_then(|v| self.reveal(key, v));
        (result, explain)
    }

    fn files(&self) -> impl Iterator<Item = (&Level, Option<&DataFile>)> {
        self.levels.iter().map(|l| (l, self.data.files.get(&l.name)))
    }

    /// `lookup_options` for a key: exact keys win over regexes; higher levels win.
    fn options_for(&self, key: &str) -> Option<&LookupOptions> {
        let exact = self.files().filter_map(|(_, f)| f).find_map(|f| {
            f.options
                .iter()
                .find_map(|(p, o)| matches!(p, KeyPattern::Exact(k) if k == key).then_some(o))
        });
        exact.or_else(|| {
            self.files().filter_map(|(_, f)| f).find_map(|f| {
                f.options.iter().find_map(|(p, o)| {
                    matches!(p, KeyPattern::Regex(r) if r.is_match(key)).then_some(o)
                })
            })
        })
    }

    fn lookup_inner(
        &self,
        key: &str,
        merge: Option<Merge>,
        stack: &mut Vec<String>,
        mut explain: Option<&mut Explain>,
    ) -> Result<Option<Value>> {
        if stack.iter().any(|k| k == key) {
            let mut chain = stack.clone();
            chain.push(key.to_string());
            return Err(error::lookup(format!("interpolation cycle: {}", chain.join(" -> "))));
        }
        let options = self.options_for(key);
        let (strategy, source) = match (merge, options.and_then(|o| o.merge)) {
            (Some(m), _) => (m, "requested".to_string()),
            (None, Some(m)) => (m, options.map(|o| o.origin.clone()).unwrap_or_default()),
            (None, None) => (Merge::First, "default".to_string()),
        };
        let knockout =
            options.and_then(|o| o.knockout_prefix.as_deref()).unwrap_or(DEFAULT_KNOCKOUT);
        if let Some(e) = explain.as_deref_mut() {
            e.merge = strategy.to_string();
            e.merge_source = source;
        }

        stack.push(key.to_string());
        let mut found = Vec::new();
        for (level, file) in self.files() {
            let path = format!("hieradata/{}.toml", level.name);
            let done = strategy == Merge::First && !found.is_empty();
            let outcome = match file {
                _ if done => LevelOutcome::NotSearched,
                None => LevelOutcome::NoFile,
                Some(f) => match f.values.get(key) {
                    None => LevelOutcome::NotFound,
                    Some(raw) => {
                        let value = self
                            .interpolate(raw, stack)
                            .map_err(|e| e.at_file(&f.path, f.line_of(key)))?;
                        found.push(Found { value: value.clone(), path: &f.path });
                        LevelOutcome::Found(value)
                    }
                },
            };
            if let Some(e) = explain.as_deref_mut() {
                e.levels.push(ExplainLevel { level: level.template.clone(), path, outcome });
            }
        }
        stack.pop();
        if found.is_empty() {
            return Ok(None);
        }
        merge::merge(strategy, found, knockout).map(Some).map_err(|e| {
            error::lookup(format!("lookup of '{key}' with merge '{strategy}': {}", e.detail()))
        })
    }

    fn interpolate(&self, value: &Value, stack: &mut Vec<String>) -> Result<Value> {
        match value {
            Value::String(s) if s.contains("%{") => self.interpolate_str(s, stack),
            Value::Array(items) => items
                .iter()
                .map(|v| self.interpolate(v, stack))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Table(t) => {
                let mut out = toml::Table::new();
                for (k, v) in t {
                    out.insert(k.clone(), self.interpolate(v, stack)?);
                }
                Ok(Value::Table(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn interpolate_str(&self, s: &str, stack: &mut Vec<String>) -> Result<Value> {
        let tokens = tokenize(s)?;
        if let [Token::Alias(key)] = tokens.as_slice() {
            return self
                .lookup_inner(key, None, stack, None)?
                .ok_or_else(|| self.not_found(key, "alias"));
        }
        let mut out = String::with_capacity(s.len());
        for token in tokens {
            match token {
                Token::Text(t) | Token::Literal(t) => out.push_str(t),
                Token::Var(v) => out.push_str(&self.vars.get(v)?),
                Token::Lookup(key) => {
                    let v = self
                        .lookup_inner(key, None, stack, None)?
                        .ok_or_else(|| self.not_found(key, "lookup"))?;
                    let text = scalar_string(&v).ok_or_else(|| {
                        error::lookup(format!(
                            "lookup('{key}') is a {}; use %{{alias('{key}')}} as the whole value to keep its type",
                            v.type_str()
                        ))
                    })?;
                    out.push_str(&text);
                }
                Token::Alias(key) => {
                    return Err(error::lookup(format!(
                        "%{{alias('{key}')}} must be the whole string, not part of \"{s}\"; use %{{lookup('{key}')}} inside text"
                    )));
                }
            }
        }
        Ok(Value::String(out))
    }

    fn not_found(&self, key: &str, func: &str) -> crate::error::Error {
        error::lookup(format!(
            "{func}('{key}'): no value in any hierarchy level (searched {})",
            self.searched_paths().join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::DataFile;
    use super::*;

    fn hiera(files: &[(&str, &str)], facts: &str) -> HostHiera {
        let mut data = HieraData::default();
        for (level, text) in files {
            let path = format!("hieradata/{level}.toml");
            data.files.insert(level.to_string(), DataFile::parse(&path, text).unwrap());
        }
        let host = Host {
            name: "web01".into(),
            environment: "staging".into(),
            address: "10.0.0.5".into(),
            port: 22,
            role: "web".into(),
            line: 1,
            facts: toml::from_str(facts).unwrap(),
        };
        let vars = Arc::new(Vars::new(&host, host.facts.clone()));
        let hierarchy: Vec<(String, usize)> =
            ["nodes/%{host.name}", "roles/%{host.role}", "regions/%{facts.region}", "common"]
                .iter()
                .enumerate()
                .map(|(i, l)| (l.to_string(), i + 3))
                .collect();
        HostHiera::new(Arc::new(data), &hierarchy, vars).unwrap()
    }

    fn val(s: &str) -> Value {
        toml::from_str::<toml::Table>(&format!("v = {s}")).unwrap()["v"].clone()
    }

    #[test]
    fn first_found_wins_and_missing_files_are_skipped() {
        let h = hiera(&[("roles/web", "k = 1"), ("common", "k = 2\nonly = 3")], "region = \"eu\"");
        assert_eq!(h.lookup("k", None).unwrap(), Some(val("1")));
        assert_eq!(h.lookup("only", None).unwrap(), Some(val("3")));
        assert_eq!(h.lookup("nope", None).unwrap(), None);
    }

    #[test]
    fn lookup_options_pick_the_merge_exact_before_regex() {
        let h = hiera(
            &[
                ("roles/web", "l = [\"a\"]\nh = { x = 1 }"),
                (
                    "common",
                    "l = [\"b\", \"a\"]\nh = { y = 2 }\n[lookup_options]\nl = { merge = \"unique\" }\n\"^h$\" = { merge = \"hash\" }\n\"^l$\" = { merge = \"first\" }",
                ),
            ],
            "region = \"eu\"",
        );
        assert_eq!(h.lookup("l", None).unwrap(), Some(val("[\"a\", \"b\"]")));
        assert_eq!(h.lookup("h", None).unwrap(), Some(val("{ x = 1, y = 2 }")));
        assert_eq!(h.lookup("l", Some(Merge::First)).unwrap(), Some(val("[\"a\"]")));
    }

    #[test]
    fn interpolates_vars_lookups_aliases_and_literals() {
        let h = hiera(
            &[(
                "common",
                "pw = \"s3\"\nports = [1, 2]\nurl = \"mysql://u:%{lookup('pw')}@%{host.address}/%{facts.region}\"\np = \"%{alias('ports')}\"\npct = \"100%{literal('%')}\"",
            )],
            "region = \"eu\"",
        );
        assert_eq!(h.lookup("url", None).unwrap(), Some(val("\"mysql://u:s3@10.0.0.5/eu\"")));
        assert_eq!(h.lookup("p", None).unwrap(), Some(val("[1, 2]")));
        assert_eq!(h.lookup("pct", None).unwrap(), Some(val("\"100%\"")));
    }

    #[test]
    fn cycles_are_reported_with_the_chain_and_file() {
        let h = hiera(
            &[("common", "a = \"%{lookup('b')}\"\nb = \"x%{lookup('a')}\"")],
            "region = \"eu\"",
        );
        let e = h.lookup("a", None).unwrap_err().to_string();
        assert!(e.contains("interpolation cycle: a -> b -> a"), "{e}");
        assert!(e.starts_with("hieradata/common.toml:"), "{e}");
    }

    #[test]
    fn unknown_fact_in_value_is_an_error_not_empty() {
        let h = hiera(&[("common", "\n\nx = \"%{facts.rack}\"")], "region = \"eu\"");
        let e = h.lookup("x", None).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "hieradata/common.toml:3: unknown fact 'rack' for host web01 (its facts: region)"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_fact_in_level_names_pipeline_line() {
        let mut data = HieraData::default();
        data.files.insert("common".into(), DataFile::parse("hieradata/common.toml", "").unwrap());
        let host = Host {
            name: "h".into(),
            environment: "e".into(),
            address: "a".into(),
            port: 22,
            role: "r".into(),
            line: 1,
            facts: Default::default(),
        };
        let e = HostHiera::new(
            Arc::new(data),
            &[("regions/%{facts.region}".into(), 4)],
            Arc::new(Vars::new(&host, Default::default())),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "pipeline.toml:4: hierarchy level 'regions/%{facts.region}': unknown fact 'region'"
            ),
            "{e}"
        );
    }

    #[test]
    fn alias_inside_text_is_refused() {
        let h = hiera(&[("common", "a = 1\nb = \"x%{alias('a')}\"")], "region = \"eu\"");
        assert!(h.lookup("b", None).unwrap_err().to_string().contains("must be the whole string"));
    }

    #[test]
    fn explain_records_every_level() {
        let h = hiera(&[("roles/web", "k = 1"), ("common", "k = 2")], "region = \"eu\"");
        let (r, e) = h.explain("k", None);
        assert_eq!(r.unwrap(), Some(val("1")));
        let outcomes: Vec<_> =
            e.levels.iter().map(|l| format!("{}={:?}", l.path, l.outcome)).collect();
        assert_eq!(outcomes[0], "hieradata/nodes/web01.toml=NoFile");
        assert!(outcomes[1].starts_with("hieradata/roles/web.toml=Found"));
        assert_eq!(outcomes[2], "hieradata/regions/eu.toml=NotSearched");
        assert_eq!(outcomes[3], "hieradata/common.toml=NotSearched");
    }
}

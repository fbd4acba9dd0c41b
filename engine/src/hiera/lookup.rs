//! One host's view of the hierarchy: resolved levels, lookups, interpolation, `--explain`.

use std::sync::{Arc, Mutex};

use toml::Value;

use super::data::{DataFile, HieraData, KeyPattern, LookupOptions};
use super::explain::{Explain, ExplainLevel, Interpolation, LevelOutcome};
use super::interpolate::{Token, tokenize};
use super::key::KeyPath;
use super::merge::{self, Found, Merge, MergeOptions};
use crate::error::{self, Result};
use crate::model::Host;
use crate::model::PIPELINE_FILE;
use crate::secrets::{Keyring, Secrets};
use crate::text::a_type;

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
                "fact '{path}' is {}; only scalars can be interpolated",
                a_type(current.unwrap())
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
        Value::Float(f) => Some(crate::text::ruby_float(*f)),
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

    /// For the level written as `template`: the data file this host's values of it name,
    /// when that file does not exist, with the files that do under the level's fixed prefix
    /// (`releases/` for `releases/%{facts.openstack_release}`).
    pub fn missing_level(&self, template: &str) -> Option<(String, Vec<String>)> {
        let level = self.levels.iter().find(|l| l.template == template)?;
        if self.data.files.contains_key(&level.name) {
            return None;
        }
        let prefix = &template[..template.find("%{").unwrap_or(template.len())];
        let prefix = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
        let known = self
            .data
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|rest| !rest.contains('/'))
            .map(String::from)
            .collect();
        Some((level.name.clone(), known))
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

    /// Looks `key` up (`k.sub.0` digs into its value); `Ok(None)` when no level has it. `merge`
    /// replaces the key's `lookup_options`.
    pub fn lookup(&self, key: &str, merge: Option<MergeOptions>) -> Result<Option<Value>> {
        let path = KeyPath::parse(key)?;
        let (value, _) = self.lookup_inner(&path, merge.as_ref(), &mut Walk::default(), None)?;
        self.reveal(key, value)
    }

    fn reveal(&self, key: &str, value: Option<Value>) -> Result<Option<Value>> {
        value.map(|v| self.keyring.reveal(key, v, &self.revealed)).transpose()
    }

    /// Like [`lookup`](Self::lookup), also recording every level searched and every
    /// interpolation, up to the failure when there is one.
    pub fn explain(
        &self,
        key: &str,
        merge: Option<MergeOptions>,
    ) -> (Result<Option<Value>>, Explain) {
        let mut explain = Explain { key: key.to_string(), ..Explain::default() };
        let mut interpolations = Vec::new();
        let result = KeyPath::parse(key).and_then(|path| {
            let mut walk = Walk { trace: Some(&mut interpolations), ..Walk::default() };
            self.lookup_inner(&path, merge.as_ref(), &mut walk, Some(&mut explain))
        });
        explain.interpolations = interpolations;
        (result.and_then(|(v, _)| self.reveal(key, v)), explain)
    }

    fn files(&self) -> impl DoubleEndedIterator<Item = (&Level, Option<&DataFile>)> {
        self.levels.iter().map(|l| (l, self.data.files.get(&l.name)))
    }

    /// `lookup_options` for a key, as Puppet collects them: every level's entries hash-merged
    /// (per key or pattern the highest level's entry, whole, at the lowest level's position);
    /// an exact key wins over patterns, and patterns are tried in that merged order.
    fn options_for(&self, key: &str) -> Option<&LookupOptions> {
        let mut merged: Vec<(&KeyPattern, &LookupOptions)> = Vec::new();
        for file in self.files().rev().filter_map(|(_, f)| f) {
            for (pattern, options) in &file.options {
                match merged.iter_mut().find(|(p, _)| p.text() == pattern.text()) {
                    Some(slot) => *slot = (pattern, options),
                    None => merged.push((pattern, options)),
                }
            }
        }
        let exact = merged.iter().find(|(p, _)| matches!(p, KeyPattern::Exact(k) if k == key));
        exact
            .or_else(|| {
                merged.iter().find(|(p, _)| matches!(p, KeyPattern::Regex(r) if r.is_match(key)))
            })
            .map(|(_, o)| *o)
    }

    /// The value of `path` and the `file:line` of each value it was built from.
    fn lookup_inner(
        &self,
        path: &KeyPath,
        merge: Option<&MergeOptions>,
        walk: &mut Walk<'_>,
        mut explain: Option<&mut Explain>,
    ) -> Result<(Option<Value>, Vec<String>)> {
        let key = path.root.as_str();
        if walk.stack.iter().any(|k| k == key) {
            let mut chain = walk.stack.clone();
            chain.push(key.to_string());
            return Err(error::lookup(format!("interpolation cycle: {}", chain.join(" -> "))));
        }
        let options = self.options_for(key);
        let (strategy, knockout, source) = match (merge, options.and_then(|o| o.merge)) {
            (Some(m), _) => (m.strategy, m.knockout_prefix.clone(), "requested".to_string()),
            (None, Some(m)) => (
                m,
                options.and_then(|o| o.knockout_prefix.clone()),
                options.map(|o| o.origin.clone()).unwrap_or_default(),
            ),
            (None, None) => (Merge::First, None, "default".to_string()),
        };
        let knockout = knockout.filter(|_| strategy == Merge::Deep);
        if let Some(e) = explain.as_deref_mut() {
            e.merge = strategy.to_string();
            e.merge_source = source;
            e.knockout_prefix = knockout.clone();
        }

        walk.stack.push(key.to_string());
        let mut found = Vec::new();
        // Where the values came from, only for an `--explain` that records interpolations.
        let mut from = Vec::new();
        for (level, file) in self.files() {
            let done = strategy == Merge::First && !found.is_empty();
            let outcome = match file {
                _ if done => LevelOutcome::NotSearched,
                None => LevelOutcome::NoFile,
                Some(f) => match f.values.get(key) {
                    None => LevelOutcome::NotFound,
                    Some(raw) => {
                        let line = f.line_of(key);
                        let at = Site { path: &f.path, line };
                        match self.interpolate(raw, walk, at) {
                            Ok(value) => {
                                if walk.trace.is_some() {
                                    from.push(at.to_string());
                                }
                                // Copied only for `--explain` to show; without it the
                                // outcome is dropped unread.
                                let shown = explain.is_some().then(|| value.clone());
                                found.push(Found { value, path: &f.path, line });
                                shown.map_or(LevelOutcome::NotFound, LevelOutcome::Found)
                            }
                            Err(e) => {
                                let e = e.at_file(&f.path, line);
                                if let Some(x) = explain.as_deref_mut() {
                                    x.levels.push(ExplainLevel {
                                        level: level.template.clone(),
                                        path: format!("hieradata/{}.toml", level.name),
                                        outcome: LevelOutcome::Error(e.to_string()),
                                    });
                                }
                                walk.stack.pop();
                                return Err(e);
                            }
                        }
                    }
                },
            };
            if let Some(e) = explain.as_deref_mut() {
                e.levels.push(ExplainLevel {
                    level: level.template.clone(),
                    path: format!("hieradata/{}.toml", level.name),
                    outcome,
                });
            }
        }
        walk.stack.pop();
        if found.is_empty() {
            return Ok((None, from));
        }
        let merged = merge::merge(strategy, found, knockout.as_deref())
            .map_err(|e| e.map_detail(|d| format!("lookup of '{key}': {d}")))?;
        Ok((merged.map(|v| path.dig(v)).transpose()?, from))
    }

    fn interpolate(&self, value: &Value, walk: &mut Walk<'_>, at: Site<'_>) -> Result<Value> {
        match value {
            Value::String(s) if s.contains("%{") => self.interpolate_str(s, walk, at),
            Value::Array(items) => items
                .iter()
                .map(|v| self.interpolate(v, walk, at))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Table(t) => {
                let mut out = toml::Table::new();
                for (k, v) in t {
                    // Hash keys are interpolated too (`"%{facts.hostname}.example.com" = ...`).
                    let k = if k.contains("%{") {
                        match self.interpolate_str(k, walk, at)? {
                            Value::String(s) => s,
                            other => {
                                return Err(error::lookup(format!(
                                    "the key \"{k}\" interpolates to {}; a key must be a string \
                                     (use %{{lookup()}}, not %{{alias()}})",
                                    a_type(&other)
                                )));
                            }
                        }
                    } else {
                        k.clone()
                    };
                    if k.contains("ENC[") {
                        // Keys are not decrypted (nor redacted): a secret has no place there.
                        return Err(error::lookup(
                            "a hash key interpolates an encrypted value; keys cannot be secret \
                             (make it a value)",
                        ));
                    }
                    if out.contains_key(&k) {
                        return Err(error::lookup(format!(
                            "two keys of the same hash are both \"{k}\" after interpolation"
                        )));
                    }
                    out.insert(k, self.interpolate(v, walk, at)?);
                }
                Ok(Value::Table(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn interpolate_str(&self, s: &str, walk: &mut Walk<'_>, at: Site<'_>) -> Result<Value> {
        let tokens = tokenize(s)?;
        if let [Token::Alias(key)] = tokens.as_slice() {
            return self
                .resolve(key, "alias", walk, at)?
                .ok_or_else(|| self.not_found(key, "alias"));
        }
        let mut out = String::with_capacity(s.len());
        for token in tokens {
            match token {
                Token::Text(t) | Token::Literal(t) => out.push_str(t),
                Token::Var(v) => out.push_str(&self.vars.get(v)?),
                Token::Lookup(key) => {
                    let v = self
                        .resolve(key, "lookup", walk, at)?
                        .ok_or_else(|| self.not_found(key, "lookup"))?;
                    let text = scalar_string(&v).ok_or_else(|| {
                        error::lookup(format!(
                            "lookup('{key}') is {}; use %{{alias('{key}')}} as the whole value to keep its type",
                            a_type(&v)
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

    /// A `%{lookup()}`/`%{alias()}` inside a value at `at`, recorded for `--explain`.
    fn resolve(
        &self,
        key: &str,
        function: &'static str,
        walk: &mut Walk<'_>,
        at: Site<'_>,
    ) -> Result<Option<Value>> {
        let path = KeyPath::parse(key)?;
        let step = walk.trace.as_deref_mut().map(|t| {
            t.push(Interpolation {
                depth: walk.stack.len(),
                function,
                key: key.to_string(),
                r#in: at.to_string(),
                from: Vec::new(),
            });
            t.len() - 1
        });
        let (value, from) = self.lookup_inner(&path, None, walk, None)?;
        if let (Some(i), Some(t)) = (step, walk.trace.as_deref_mut()) {
            t[i].from = from;
        }
        Ok(value)
    }

    fn not_found(&self, key: &str, func: &str) -> crate::error::Error {
        error::lookup(format!(
            "{func}('{key}'): no value in any hierarchy level (searched {})",
            self.searched_paths().join(", ")
        ))
    }
}

/// The data file and line of a value, shown as `file:line` by `--explain`.
#[derive(Clone, Copy)]
struct Site<'a> {
    path: &'a str,
    line: Option<usize>,
}

impl std::fmt::Display for Site<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.path),
            None => f.write_str(self.path),
        }
    }
}

/// The state of one lookup through its interpolations: the keys being resolved (to catch
/// cycles) and, for `--explain`, the interpolations met.
#[derive(Default)]
struct Walk<'t> {
    stack: Vec<String>,
    trace: Option<&'t mut Vec<Interpolation>>,
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
            port_given: false,
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
        assert_eq!(h.lookup("l", Some(Merge::First.into())).unwrap(), Some(val("[\"a\"]")));
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
            port_given: false,
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

    #[test]
    fn lookup_options_merge_like_puppet_higher_entry_whole_lower_regexes_first() {
        let h = hiera(
            &[
                (
                    "roles/web",
                    "l = [\"--a\"]\nx1 = [\"r\"]\n[lookup_options]\nl = { merge = \"deep\" }\n\"^x\" = { merge = \"first\" }",
                ),
                (
                    "common",
                    "l = [\"a\", \"b\"]\nx1 = [\"c\"]\n[lookup_options]\nl = { merge = { strategy = \"deep\", knockout_prefix = \"--\" } }\n\"^x1\" = { merge = \"unique\" }",
                ),
            ],
            "region = \"eu\"",
        );
        // The role's entry for `l` replaces common's whole: deep, but without its knockout.
        assert_eq!(h.lookup("l", None).unwrap(), Some(val("[\"a\", \"b\", \"--a\"]")));
        // Both patterns match x1: common's comes first in the merged options.
        assert_eq!(h.lookup("x1", None).unwrap(), Some(val("[\"r\", \"c\"]")));
    }

    #[test]
    fn hash_keys_are_interpolated() {
        let h = hiera(
            &[(
                "common",
                "hosts = { \"%{host.name}.example.com\" = \"%{host.address}\", \"%{lookup('zone')}\" = 1 }\nzone = \"z1\"",
            )],
            "region = \"eu\"",
        );
        assert_eq!(
            h.lookup("hosts", None).unwrap(),
            Some(val("{ \"web01.example.com\" = \"10.0.0.5\", z1 = 1 }"))
        );
    }

    #[test]
    fn sub_keys_in_lookups_aliases_and_interpolations() {
        let h = hiera(
            &[(
                "common",
                "db = { port = 3306, hosts = [\"h1\", \"h2\"] }\nurl = \"mysql://%{lookup('db.hosts.1')}:%{lookup('db.port')}\"\nports = \"%{alias('db.hosts')}\"\nbad = \"%{lookup('db.user')}\"",
            )],
            "region = \"eu\"",
        );
        assert_eq!(h.lookup("db.port", None).unwrap(), Some(val("3306")));
        assert_eq!(h.lookup("url", None).unwrap(), Some(val("\"mysql://h2:3306\"")));
        assert_eq!(h.lookup("ports", None).unwrap(), Some(val("[\"h1\", \"h2\"]")));
        assert_eq!(h.lookup("nope.x", None).unwrap(), None);
        let e = h.lookup("bad", None).unwrap_err().to_string();
        assert!(e.contains("'db' has no key 'user' (its keys: port, hosts)"), "{e}");
        assert!(e.starts_with("hieradata/common.toml:4:"), "{e}");
    }

    #[test]
    fn explain_shows_the_interpolation_chain_and_the_levels_of_a_failure() {
        let h = hiera(
            &[
                ("roles/web", "url = \"%{lookup('user')}@%{lookup('db.host')}\""),
                (
                    "common",
                    "user = \"%{lookup('name')}\"\nname = \"nova\"\ndb = { host = \"h1\" }\nbroken = \"%{facts.rack}\"",
                ),
            ],
            "region = \"eu\"",
        );
        let (r, e) = h.explain("url", None);
        assert_eq!(r.unwrap(), Some(val("\"nova@h1\"")));
        let chain: Vec<_> = e
            .interpolations
            .iter()
            .map(|i| format!("{} {} {} <- {}", i.depth, i.key, i.r#in, i.from.join(",")))
            .collect();
        assert_eq!(
            chain,
            [
                "1 user hieradata/roles/web.toml:1 <- hieradata/common.toml:1",
                "2 name hieradata/common.toml:1 <- hieradata/common.toml:2",
                "1 db.host hieradata/roles/web.toml:1 <- hieradata/common.toml:3",
            ]
        );
        let (r, e) = h.explain("broken", None);
        assert!(r.is_err());
        let last = e.levels.last().unwrap();
        assert_eq!(last.path, "hieradata/common.toml");
        assert!(
            matches!(&last.outcome, LevelOutcome::Error(m) if m.contains("unknown fact 'rack'")),
            "{last:?}"
        );
        assert_eq!(e.levels.len(), 4);
    }

    #[test]
    fn interpolated_keys_may_not_collide_or_hold_secrets() {
        let h = hiera(
            &[(
                "common",
                "dup = { \"%{host.role}\" = 1, web = 2 }\npw = \"ENC[AGE,xyz]\"\nsecret_key = { \"%{lookup('pw')}\" = 1 }",
            )],
            "region = \"eu\"",
        );
        let e = h.lookup("dup", None).unwrap_err().to_string();
        assert!(e.contains("two keys of the same hash are both \"web\""), "{e}");
        let e = h.lookup("secret_key", None).unwrap_err().to_string();
        assert!(e.contains("keys cannot be secret"), "{e}");
    }
}

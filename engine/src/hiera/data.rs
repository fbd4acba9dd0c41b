//! Parsed hieradata files and their `lookup_options`.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use super::merge::Merge;
use crate::error::{self, Error, Result};
use crate::source::Snapshot;
use crate::text::{parse_toml, utf8};

pub const DATA_DIR: &str = "hieradata";

/// Every data file of a commit, keyed by level name (`roles/compute` for
/// `hieradata/roles/compute.toml`).
#[derive(Debug, Default)]
pub struct HieraData {
    pub files: BTreeMap<String, DataFile>,
}

#[derive(Debug)]
pub struct DataFile {
    /// Path relative to the composition root, e.g. `hieradata/common.toml`.
    pub path: String,
    pub values: toml::Table,
    /// `lookup_options` entries in file order.
    pub options: Vec<(KeyPattern, LookupOptions)>,
    key_lines: HashMap<String, usize>,
}

#[derive(Debug)]
pub enum KeyPattern {
    Exact(String),
    Regex(Regex),
}

impl KeyPattern {
    /// The key or pattern as written.
    pub fn text(&self) -> &str {
        match self {
            KeyPattern::Exact(k) => k,
            KeyPattern::Regex(r) => r.as_str(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookupOptions {
    pub merge: Option<Merge>,
    pub knockout_prefix: Option<String>,
    /// Where these options were declared, for `--explain`.
    pub origin: String,
}

impl HieraData {
    /// Parses every `hieradata/**/*.toml` of the snapshot; returns all the files that parsed and
    /// an error for each that did not.
    pub fn load(snapshot: &Snapshot) -> (HieraData, Vec<Error>) {
        let mut data = HieraData::default();
        let mut errors = Vec::new();
        for (path, bytes) in snapshot.under(DATA_DIR) {
            let Some(level) = path.strip_prefix("hieradata/").and_then(|p| p.strip_suffix(".toml"))
            else {
                continue;
            };
            match utf8(path, bytes).and_then(|text| DataFile::parse(path, text)) {
                Ok(file) => {
                    data.files.insert(level.to_string(), file);
                }
                Err(e) => errors.push(e),
            }
        }
        (data, errors)
    }
}

impl DataFile {
    pub fn parse(path: &str, text: &str) -> Result<DataFile> {
        let mut values: toml::Table = parse_toml(path, text)?;
        let KeyLines { top: key_lines, options: option_lines } = scan_key_lines(text);
        let mut options = Vec::new();
        if let Some(raw) = values.remove("lookup_options") {
            let line = key_lines.get("lookup_options").copied();
            let toml::Value::Table(raw) = raw else {
                return Err(error::invalid(
                    "lookup_options must be a table of key = { merge = ... }",
                )
                .at_file(path, line));
            };
            for (key, opts) in raw {
                let line = option_lines.get(&key).copied().or(line);
                let pattern = if key.starts_with('^') {
                    KeyPattern::Regex(Regex::new(&key).map_err(|e| {
                        error::invalid(format!("lookup_options key '{key}' is not a valid regex"))
                            .with_source(e)
                            .at_file(path, line)
                    })?)
                } else {
                    KeyPattern::Exact(key.clone())
                };
                let parsed = parse_options(&key, &opts).map_err(|e| e.at_file(path, line))?;
                options.push((
                    pattern,
                    LookupOptions { origin: format!("lookup_options '{key}' in {path}"), ..parsed },
                ));
            }
        }
        Ok(DataFile { path: path.to_string(), values, options, key_lines })
    }

    /// The line where `key` is set in this file, when a plain scan can find it.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.key_lines.get(key).copied()
    }
}

fn parse_options(key: &str, opts: &toml::Value) -> Result<LookupOptions> {
    let table = opts.as_table().ok_or_else(|| {
        error::invalid(format!(
            "lookup_options for '{key}' must be a table like {{ merge = \"deep\" }}"
        ))
    })?;
    let mut out = LookupOptions::default();
    for (name, value) in table {
        match (name.as_str(), value) {
            ("merge", toml::Value::String(s)) => out.merge = Some(Merge::parse(s)?),
            // Hiera 5 also spells it `merge = { strategy = "deep", knockout_prefix = "--" }`.
            ("merge", toml::Value::Table(t)) => {
                if let Some(s) = t.get("strategy").and_then(|s| s.as_str()) {
                    out.merge = Some(Merge::parse(s)?);
                }
                if let Some(k) = t.get("knockout_prefix").and_then(|s| s.as_str()) {
                    out.knockout_prefix = Some(k.to_string());
                }
            }
            ("knockout_prefix", toml::Value::String(s)) => out.knockout_prefix = Some(s.clone()),
            _ => {
                return Err(error::invalid(format!(
                    "lookup_options for '{key}': unknown option '{name}' (use merge, knockout_prefix)"
                )));
            }
        }
    }
    Ok(out)
}

/// The lines where a file's keys are set, by a plain line scan (TOML parsers drop positions of
/// table keys): top-level keys (`key = ...`, `key.sub = ...`, or a `[key]`/`[key.sub]`/`[[key]]`
/// header, as `toml` writes hashes), and the entries of `[lookup_options]`.
struct KeyLines {
    top: HashMap<String, usize>,
    options: HashMap<String, usize>,
}

fn scan_key_lines(text: &str) -> KeyLines {
    let mut lines = KeyLines { top: HashMap::new(), options: HashMap::new() };
    // The table a `key = ...` line is in: None at the top, Some("lookup_options"), ...
    let mut table: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if let Some(header) = l.strip_prefix('[') {
            let header = header.trim_start_matches('[').trim_start();
            if let Some((root, _)) = first_key(header) {
                lines.top.entry(root.to_string()).or_insert(i + 1);
                table = Some(root.to_string());
            }
            continue;
        }
        let Some((k, rest)) = first_key(l) else { continue };
        let rest = rest.trim_start();
        if !(rest.starts_with('=') || rest.starts_with('.')) {
            continue;
        }
        match table.as_deref() {
            None => {
                lines.top.entry(k.to_string()).or_insert(i + 1);
            }
            Some("lookup_options") => {
                lines.options.entry(k.to_string()).or_insert(i + 1);
            }
            Some(_) => {}
        }
    }
    lines
}

/// The first key of a TOML key path (`"a::b"`, `'x'`, `plain`) and what follows it.
fn first_key(l: &str) -> Option<(&str, &str)> {
    let (k, rest) = if let Some(rest) = l.strip_prefix('"') {
        rest.split_once('"')?
    } else if let Some(rest) = l.strip_prefix('\'') {
        rest.split_once('\'')?
    } else {
        let end = l
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':')))
            .unwrap_or(l.len());
        (&l[..end], &l[end..])
    };
    (!k.is_empty()).then_some((k, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_options_and_lines() {
        let text = "\"a::b\" = 1\nplain = \"x\"\n\n[lookup_options]\n\"a::b\" = { merge = \"deep\" }\n\"^x::.*\" = { merge = { strategy = \"hash\" } }\n";
        let f = DataFile::parse("hieradata/common.toml", text).unwrap();
        assert_eq!(f.values.len(), 2);
        assert_eq!(f.line_of("a::b"), Some(1));
        assert_eq!(f.line_of("plain"), Some(2));
        assert_eq!(f.options.len(), 2);
        assert_eq!(f.options[0].1.merge, Some(Merge::Deep));
        assert!(matches!(&f.options[1].0, KeyPattern::Regex(r) if r.is_match("x::y")));
    }

    #[test]
    fn keys_set_by_table_headers_and_dotted_keys_have_lines() {
        let text = "a = 1\nb.x = 2\n\n[\"nova::config\".DEFAULT]\na = 3\n[[list]]\nx = 1\n[lookup_options]\nq = { merge = \"deep\" }\n";
        let f = DataFile::parse("hieradata/common.toml", text).unwrap();
        assert_eq!(f.line_of("a"), Some(1), "not the nested a on line 5");
        assert_eq!(f.line_of("b"), Some(2));
        assert_eq!(f.line_of("nova::config"), Some(4));
        assert_eq!(f.line_of("list"), Some(6));
        assert_eq!(f.line_of("x"), None);
        let bad = text.replace("deep", "deepest");
        let e = DataFile::parse("hieradata/common.toml", &bad).unwrap_err();
        assert!(e.to_string().starts_with("hieradata/common.toml:9: unknown merge"), "{e}");
    }

    #[test]
    fn bad_option_is_located() {
        let text = "[lookup_options]\n\"k\" = { merge = \"deepest\" }\n";
        let e = DataFile::parse("hieradata/common.toml", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "hieradata/common.toml:2: unknown merge behaviour 'deepest' (use first, unique, hash or deep)"
        );
    }
}

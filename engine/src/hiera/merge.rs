//! The four merge behaviours, as pure functions over the values found at each level
//! (highest priority first), and the knockout prefix of `deep`.
//!
//! Orders and knockouts follow Puppet's Hiera 5 (its `deep_merge`) except where docs/puppet.md
//! says otherwise and why: a knockout removes what it names from every lower level, not only
//! the next one down, and a knocked-out value removes its key instead of leaving `""`.

use std::fmt;

use toml::Value;

use crate::error::{self, Result};
use crate::text::a_type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Merge {
    #[default]
    First,
    Unique,
    Hash,
    Deep,
}

impl Merge {
    pub fn parse(s: &str) -> Result<Merge> {
        match s {
            "first" => Ok(Merge::First),
            "unique" => Ok(Merge::Unique),
            "hash" => Ok(Merge::Hash),
            "deep" => Ok(Merge::Deep),
            _ => Err(error::invalid(format!(
                "unknown merge behaviour '{s}' (use first, unique, hash or deep)"
            ))),
        }
    }
}

impl fmt::Display for Merge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Merge::First => "first",
            Merge::Unique => "unique",
            Merge::Hash => "hash",
            Merge::Deep => "deep",
        })
    }
}

/// A merge asked for by the caller (`lookup --merge`, a template's `lookup(k, merge=...)`). Like
/// Puppet's `--merge`, it replaces the key's `lookup_options` whole: no knockout prefix unless
/// this one names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeOptions {
    pub strategy: Merge,
    pub knockout_prefix: Option<String>,
}

impl From<Merge> for MergeOptions {
    fn from(strategy: Merge) -> MergeOptions {
        MergeOptions { strategy, knockout_prefix: None }
    }
}

/// A value found at one level, with the file and line it came from (for error messages).
pub struct Found<'a> {
    pub value: Value,
    pub path: &'a str,
    pub line: Option<usize>,
}

/// Merges the found values (highest priority first). `found` is never empty. `None` when a
/// knockout removed the whole value.
pub fn merge(
    strategy: Merge,
    found: Vec<Found<'_>>,
    knockout: Option<&str>,
) -> Result<Option<Value>> {
    match strategy {
        Merge::First => Ok(Some(found.into_iter().next().expect("at least one value").value)),
        Merge::Unique => {
            let mut out: Vec<Value> = Vec::new();
            for f in found {
                // As in Puppet: arrays (of anything, hashes too) and scalars; a hash is no list.
                let items = match f.value {
                    Value::Array(items) => items,
                    Value::Table(_) => {
                        return Err(error::lookup(
                            "merge 'unique' needs arrays or scalars, but this level has a hash",
                        )
                        .at_file(f.path, f.line));
                    }
                    other => vec![other],
                };
                for item in flatten(items) {
                    if !out.contains(&item) {
                        out.push(item);
                    }
                }
            }
            Ok(Some(Value::Array(out)))
        }
        Merge::Hash => {
            let mut out = toml::Table::new();
            for f in found.into_iter().rev() {
                match f.value {
                    // A key both levels have keeps the lower level's position (Puppet's order).
                    Value::Table(t) => out.extend(t),
                    other => {
                        return Err(error::lookup(format!(
                            "merge 'hash' needs hashes, but this level has {}",
                            a_type(&other)
                        ))
                        .at_file(f.path, f.line));
                    }
                }
            }
            Ok(Some(Value::Table(out)))
        }
        Merge::Deep => {
            let ko = Knockout(knockout.filter(|p| !p.is_empty()));
            let mut iter = found.into_iter().rev();
            let mut acc = ko.strip(iter.next().expect("at least one value").value);
            for f in iter {
                acc = ko.deep_merge(acc, f.value);
            }
            Ok(acc)
        }
    }
}

fn flatten(items: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Array(inner) => out.extend(flatten(inner)),
            other => out.push(other),
        }
    }
    out
}

/// The knockout prefix of a deep merge, when there is one.
#[derive(Clone, Copy)]
struct Knockout<'p>(Option<&'p str>);

/// What a string means under a knockout prefix.
enum Mark<'a> {
    /// Not a knockout: a plain value.
    None,
    /// The prefix alone: in an array, empty the lower levels' array.
    All,
    /// The prefix and a name: remove that item (or, as a key, that key).
    Item(&'a str),
}

impl<'p> Knockout<'p> {
    fn mark<'a>(&self, s: &'a str) -> Mark<'a> {
        match self.0.and_then(|p| s.strip_prefix(p)) {
            None => Mark::None,
            Some("") => Mark::All,
            Some(rest) => Mark::Item(rest),
        }
    }

    fn is_mark(&self, v: &Value) -> bool {
        v.as_str().is_some_and(|s| !matches!(self.mark(s), Mark::None))
    }

    /// Merges `higher` (higher priority) over `lower`; `None` when `higher` knocks the value out.
    fn deep_merge(&self, lower: Option<Value>, higher: Value) -> Option<Value> {
        if self.is_mark(&higher) {
            return None;
        }
        match (lower, higher) {
            (Some(Value::Table(mut low)), Value::Table(high)) => {
                for (k, v) in high {
                    if let Mark::Item(name) = self.mark(&k) {
                        low.remove(name);
                        continue;
                    }
                    match low.get_mut(&k) {
                        // Merged in place: the lower level's key order is kept, as in Puppet.
                        Some(slot) => match self.deep_merge(Some(slot.clone()), v) {
                            Some(merged) => *slot = merged,
                            None => {
                                low.remove(&k);
                            }
                        },
                        None => {
                            if let Some(v) = self.deep_merge(None, v) {
                                low.insert(k, v);
                            }
                        }
                    }
                }
                Some(Value::Table(low))
            }
            (Some(Value::Array(low)), Value::Array(high)) => {
                // Puppet's `lower | higher`: the lower level's items first, then the new ones,
                // duplicates dropped; knockouts take items (or, alone, everything) from below.
                let mut out = Vec::new();
                let clear = high
                    .iter()
                    .any(|i| i.as_str().is_some_and(|s| matches!(self.mark(s), Mark::All)));
                let removed: Vec<&str> = high
                    .iter()
                    .filter_map(|i| match i.as_str().map(|s| self.mark(s)) {
                        Some(Mark::Item(name)) => Some(name),
                        _ => None,
                    })
                    .collect();
                let low = if clear { Vec::new() } else { low };
                for item in low.into_iter().chain(high.iter().cloned()) {
                    let knocked = item.as_str().is_some_and(|s| removed.contains(&s));
                    if !knocked && !self.is_mark(&item) && !out.contains(&item) {
                        out.push(item);
                    }
                }
                Some(Value::Array(out))
            }
            (_, higher) => self.strip(higher),
        }
    }

    /// A value with nothing below it: knockouts have nothing to remove and are dropped, so a
    /// knockout never shows in a result. As in Puppet, the items of an array are not merged,
    /// so a hash inside an array keeps its keys as written.
    fn strip(&self, v: Value) -> Option<Value> {
        if self.0.is_none() {
            return Some(v);
        }
        match v {
            v if self.is_mark(&v) => None,
            Value::Table(t) => Some(Value::Table(
                t.into_iter()
                    .filter(|(k, _)| !matches!(self.mark(k), Mark::Item(_)))
                    .filter_map(|(k, v)| self.strip(v).map(|v| (k, v)))
                    .collect(),
            )),
            Value::Array(a) => {
                Some(Value::Array(a.into_iter().filter(|i| !self.is_mark(i)).collect()))
            }
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        let t: toml::Table = toml::from_str(&format!("v = {s}")).unwrap();
        t["v"].clone()
    }

    fn run_ko(strategy: Merge, values: &[&str], knockout: Option<&str>) -> Result<Option<Value>> {
        let found = values
            .iter()
            .enumerate()
            .map(|(i, s)| Found {
                value: v(s),
                path: if i == 0 { "high.toml" } else { "low.toml" },
                line: Some(i + 1),
            })
            .collect();
        merge(strategy, found, knockout)
    }

    fn run(strategy: Merge, values: &[&str]) -> Result<Value> {
        run_ko(strategy, values, None).map(|v| v.expect("a value"))
    }

    fn deep_ko(values: &[&str]) -> Option<Value> {
        run_ko(Merge::Deep, values, Some("--")).unwrap()
    }

    #[test]
    fn first_takes_highest() {
        assert_eq!(run(Merge::First, &["1", "2"]).unwrap(), v("1"));
    }

    #[test]
    fn unique_flattens_and_dedupes_highest_first() {
        assert_eq!(
            run(Merge::Unique, &["[\"b\", [\"a\"]]", "\"a\"", "[\"c\", \"b\"]"]).unwrap(),
            v("[\"b\", \"a\", \"c\"]")
        );
    }

    #[test]
    fn unique_refuses_a_hash_but_not_hashes_in_arrays() {
        let e = run(Merge::Unique, &["[1]", "{ a = 1 }"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "low.toml:2: merge 'unique' needs arrays or scalars, but this level has a hash"
        );
        assert_eq!(
            run(Merge::Unique, &["[{ a = 2 }]", "[{ a = 1 }, { a = 2 }]"]).unwrap(),
            v("[{ a = 2 }, { a = 1 }]")
        );
    }

    #[test]
    fn hash_merges_top_level_keys_higher_wins_lower_order_kept() {
        let r = run(
            Merge::Hash,
            &["{ s = 4, a = 1, n = { x = 1 } }", "{ a = 2, b = 3, n = { y = 2 } }"],
        )
        .unwrap();
        assert_eq!(r, v("{ a = 1, b = 3, n = { x = 1 }, s = 4 }"));
        let keys: Vec<_> = r.as_table().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "n", "s"]);
    }

    #[test]
    fn hash_refuses_non_hash_with_an_article() {
        let e = run(Merge::Hash, &["{ a = 1 }", "[1]"]).unwrap_err().to_string();
        assert_eq!(e, "low.toml:2: merge 'hash' needs hashes, but this level has an array");
    }

    #[test]
    fn deep_merges_recursively_lower_items_and_keys_first() {
        let r = run(
            Merge::Deep,
            &[
                "{ n = { x = 1, l = [\"b\", \"c\"] } }",
                "{ a = 2, n = { y = 2, l = [\"a\", \"b\"] } }",
            ],
        )
        .unwrap();
        assert_eq!(r, v("{ a = 2, n = { y = 2, l = [\"a\", \"b\", \"c\"], x = 1 } }"));
        let keys: Vec<_> = r["n"].as_table().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["y", "l", "x"]);
    }

    #[test]
    fn deep_without_a_prefix_keeps_dashes_literally() {
        // Command-line flags in arrays are data, not knockouts, unless lookup_options asks.
        let r = run(Merge::Deep, &["[\"--quiet\", \"--\"]", "[\"--verbose\"]"]).unwrap();
        assert_eq!(r, v("[\"--verbose\", \"--quiet\", \"--\"]"));
    }

    #[test]
    fn deep_knockout_removes_keys_and_items() {
        let r = deep_ko(&[
            "{ \"--b\" = true, l = [\"--x\", \"z\"] }",
            "{ a = 1, b = 2, l = [\"x\", \"y\"] }",
        ]);
        assert_eq!(r, Some(v("{ a = 1, l = [\"y\", \"z\"] }")));
    }

    #[test]
    fn a_lone_prefix_empties_the_lower_array() {
        assert_eq!(deep_ko(&["{ l = [\"--\"] }", "{ l = [\"a\", \"b\"] }"]), Some(v("{ l = [] }")));
        assert_eq!(
            deep_ko(&["{ l = [\"--\", \"c\"] }", "{ l = [\"a\"] }"]),
            Some(v("{ l = [\"c\"] }"))
        );
        assert_eq!(deep_ko(&["[\"--\"]", "[\"a\"]"]), Some(v("[]")));
    }

    #[test]
    fn a_knocked_out_value_removes_its_key() {
        assert_eq!(
            deep_ko(&[
                "{ s = \"--\", t = \"--x\", n = \"--\", keep = 1 }",
                "{ s = \"low\", t = \"low\", n = { q = 1 } }"
            ]),
            Some(v("{ keep = 1 }"))
        );
        // The whole value knocked out: the lookup finds nothing.
        assert_eq!(deep_ko(&["\"--\"", "{ a = 1 }"]), None);
    }

    #[test]
    fn a_knockout_reaches_every_lower_level() {
        assert_eq!(
            deep_ko(&["[\"--a\"]", "[\"a\", \"c\"]", "[\"a\", \"b\"]"]),
            Some(v("[\"b\", \"c\"]"))
        );
    }

    #[test]
    fn hashes_inside_arrays_and_a_lone_prefix_key_are_data() {
        assert_eq!(
            deep_ko(&["[{ \"--name\" = \"x\" }]", "[{ name = \"a\" }]"]),
            Some(v("[{ name = \"a\" }, { \"--name\" = \"x\" }]"))
        );
        assert_eq!(deep_ko(&["{ \"--\" = 1, b = 2 }"]), Some(v("{ \"--\" = 1, b = 2 }")));
        assert_eq!(
            deep_ko(&["{ \"--\" = 1, b = 2 }", "{ a = 1 }"]),
            Some(v("{ a = 1, \"--\" = 1, b = 2 }"))
        );
    }

    #[test]
    fn knockouts_with_nothing_below_never_show() {
        assert_eq!(
            deep_ko(&[
                "{ n = { z = \"--\", l = [\"--\", \"--a\", \"x\"], \"--k\" = 1 } }",
                "{ n = { } }"
            ]),
            Some(v("{ n = { l = [\"x\"] } }"))
        );
    }
}

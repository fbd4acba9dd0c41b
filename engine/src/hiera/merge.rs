//! The four merge behaviours, as pure functions over the values found at each level
//! (highest priority first).

use std::fmt;

use toml::Value;

use crate::error::{self, Result};

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

/// A value found at one level, with the file it came from (for error messages).
pub struct Found<'a> {
    pub value: Value,
    pub path: &'a str,
}

/// Merges the found values (highest priority first). `found` is never empty.
pub fn merge(strategy: Merge, found: Vec<Found<'_>>, knockout: &str) -> Result<Value> {
    match strategy {
        Merge::First => Ok(found.into_iter().next().expect("at least one value").value),
        Merge::Unique => {
            let mut out: Vec<Value> = Vec::new();
            for f in found {
                let items = match f.value {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for item in flatten(items) {
                    if item.is_table() {
                        return Err(error::lookup(format!(
                            "merge 'unique' cannot merge hashes, but {} has one",
                            f.path
                        )));
                    }
                    if !out.contains(&item) {
                        out.push(item);
                    }
                }
            }
            Ok(Value::Array(out))
        }
        Merge::Hash => {
            let mut out = toml::Table::new();
            for f in found.into_iter().rev() {
                match f.value {
                    Value::Table(t) => out.extend(t),
                    other => {
                        return Err(error::lookup(format!(
                            "merge 'hash' needs hashes, but {} has a {}",
                            f.path,
                            other.type_str()
                        )));
                    }
                }
            }
            Ok(Value::Table(out))
        }
        Merge::Deep => {
            let mut iter = found.into_iter().rev();
            let mut acc = strip_knockouts(iter.next().expect("at least one value").value, knockout);
            for f in iter {
                acc = deep_merge(acc, f.value, knockout);
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

/// Merges `higher` (higher priority) into `lower`.
fn deep_merge(lower: Value, higher: Value, knockout: &str) -> Value {
    match (lower, higher) {
        (Value::Table(mut low), Value::Table(high)) => {
            for (k, v) in high {
                if let Some(removed) = knockout_of(&k, knockout) {
                    low.remove(removed);
                    continue;
                }
                let merged = match low.remove(&k) {
                    Some(existing) => deep_merge(existing, v, knockout),
                    None => strip_knockouts(v, knockout),
                };
                low.insert(k, merged);
            }
            Value::Table(low)
        }
        (Value::Array(low), Value::Array(high)) => {
            // Higher-priority items first, like `unique`; knockouts remove from the lower ones.
            let mut out: Vec<Value> = Vec::new();
            let mut removed: Vec<&str> = Vec::new();
            for item in &high {
                match item.as_str().and_then(|s| knockout_of(s, knockout)) {
                    Some(r) => removed.push(r),
                    None if !out.contains(item) => out.push(item.clone()),
                    None => {}
                }
            }
            for item in low {
                let knocked = item.as_str().is_some_and(|s| removed.contains(&s));
                if !knocked && !out.contains(&item) {
                    out.push(item);
                }
            }
            Value::Array(out)
        }
        (_, higher) => strip_knockouts(higher, knockout),
    }
}

/// Knockout entries in a value that has nothing below it to knock out are simply dropped.
fn strip_knockouts(v: Value, knockout: &str) -> Value {
    match v {
        Value::Table(t) => Value::Table(
            t.into_iter()
                .filter(|(k, _)| knockout_of(k, knockout).is_none())
                .map(|(k, v)| (k, strip_knockouts(v, knockout)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .filter(|i| i.as_str().and_then(|s| knockout_of(s, knockout)).is_none())
                .map(|i| strip_knockouts(i, knockout))
                .collect(),
        ),
        other => other,
    }
}

fn knockout_of<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return None;
    }
    s.strip_prefix(prefix).filter(|rest| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        let t: toml::Table = toml::from_str(&format!("v = {s}")).unwrap();
        t["v"].clone()
    }

    fn run(strategy: Merge, values: &[&str]) -> Result<Value> {
        let found = values
            .iter()
            .enumerate()
            .map(|(i, s)| Found {
                value: v(s),
                path: if i == 0 { "high.toml" } else { "low.toml" },
            })
            .collect();
        merge(strategy, found, "--")
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
    fn unique_refuses_hashes() {
        let e = run(Merge::Unique, &["[1]", "{ a = 1 }"]).unwrap_err();
        assert!(e.to_string().contains("low.toml"), "{e}");
    }

    #[test]
    fn hash_merges_top_level_keys_higher_wins() {
        let r = run(Merge::Hash, &["{ a = 1, n = { x = 1 } }", "{ a = 2, b = 3, n = { y = 2 } }"])
            .unwrap();
        assert_eq!(r, v("{ a = 1, b = 3, n = { x = 1 } }"));
    }

    #[test]
    fn hash_refuses_non_hash() {
        assert!(
            run(Merge::Hash, &["{ a = 1 }", "[1]"])
                .unwrap_err()
                .to_string()
                .contains("needs hashes")
        );
    }

    #[test]
    fn deep_merges_recursively() {
        let r = run(
            Merge::Deep,
            &["{ n = { x = 1, l = [\"b\"] } }", "{ a = 2, n = { y = 2, l = [\"a\"] } }"],
        )
        .unwrap();
        assert_eq!(r, v("{ a = 2, n = { x = 1, y = 2, l = [\"b\", \"a\"] } }"));
    }

    #[test]
    fn deep_knockout_removes_keys_and_items() {
        let r = run(
            Merge::Deep,
            &["{ \"--b\" = true, l = [\"--x\", \"z\"] }", "{ a = 1, b = 2, l = [\"x\", \"y\"] }"],
        )
        .unwrap();
        assert_eq!(r, v("{ a = 1, l = [\"z\", \"y\"] }"));
    }
}

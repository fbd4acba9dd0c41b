//! Lookup keys with sub-keys: `k.db.port` looks `k` up, then digs into its hash (and into arrays
//! by index), as Hiera does. A segment in quotes may hold dots: `'"a.b".c'`.

use toml::Value;

use crate::error::{self, Result};
use crate::text::a_type;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    /// The key as written.
    pub full: String,
    /// The hiera key the data files hold.
    pub root: String,
    /// Sub-keys and indexes below it, in order.
    pub parts: Vec<String>,
}

impl KeyPath {
    pub fn parse(key: &str) -> Result<KeyPath> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut chars = key.chars();
        let mut quoted_segment = false;
        while let Some(c) = chars.next() {
            match c {
                '"' | '\'' if current.is_empty() && !quoted_segment => {
                    let mut closed = false;
                    for q in chars.by_ref() {
                        if q == c {
                            closed = true;
                            break;
                        }
                        current.push(q);
                    }
                    if !closed {
                        return Err(error::lookup(format!("key '{key}': unterminated quote")));
                    }
                    quoted_segment = true;
                }
                '.' => {
                    segments.push(std::mem::take(&mut current));
                    quoted_segment = false;
                }
                _ if quoted_segment => {
                    return Err(error::lookup(format!(
                        "key '{key}': a quoted segment must be followed by '.' or the end"
                    )));
                }
                _ => current.push(c),
            }
        }
        segments.push(current);
        if segments.iter().any(String::is_empty) {
            return Err(error::lookup(format!(
                "key '{key}' has an empty segment (write sub-keys as key.sub.0, quote a key \
                 holding dots: '\"a.b\".sub')"
            )));
        }
        let root = segments.remove(0);
        Ok(KeyPath { full: key.to_string(), root, parts: segments })
    }

    /// The value at the sub-keys of the root key's value; a missing part is an error naming it.
    pub fn dig(&self, mut value: Value) -> Result<Value> {
        let mut so_far = self.root.clone();
        for part in &self.parts {
            value = match value {
                Value::Table(mut t) => t.remove(part).ok_or_else(|| {
                    let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                    error::lookup(format!(
                        "lookup of '{}': '{so_far}' has no key '{part}' (its keys: {})",
                        self.full,
                        if keys.is_empty() { "none".into() } else { keys.join(", ") }
                    ))
                })?,
                Value::Array(mut a) => {
                    let len = a.len();
                    match part.parse::<usize>() {
                        Ok(i) if i < len => a.swap_remove(i),
                        Ok(i) => {
                            return Err(error::lookup(format!(
                                "lookup of '{}': '{so_far}' has {len} element{}, so no index {i}",
                                self.full,
                                if len == 1 { "" } else { "s" }
                            )));
                        }
                        Err(_) => {
                            return Err(error::lookup(format!(
                                "lookup of '{}': '{so_far}' is an array; '{part}' is not an index \
                                 (use a number from 0)",
                                self.full
                            )));
                        }
                    }
                }
                other => {
                    return Err(error::lookup(format!(
                        "lookup of '{}': '{so_far}' is {}, which has no key '{part}'",
                        self.full,
                        a_type(&other)
                    )));
                }
            };
            so_far.push('.');
            so_far.push_str(part);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Value {
        toml::from_str::<toml::Table>(&format!("v = {s}")).unwrap()["v"].clone()
    }

    #[test]
    fn parses_roots_sub_keys_and_quotes() {
        let k = KeyPath::parse("nova::db.hosts.1").unwrap();
        assert_eq!(
            (k.root.as_str(), k.parts.clone()),
            ("nova::db", vec!["hosts".into(), "1".into()])
        );
        let k = KeyPath::parse("'a.b'.c").unwrap();
        assert_eq!((k.root.as_str(), k.parts.clone()), ("a.b", vec!["c".to_string()]));
        let k = KeyPath::parse("x.\"y.z\"").unwrap();
        assert_eq!(k.parts, ["y.z"]);
        assert!(KeyPath::parse("a..b").unwrap_err().to_string().contains("empty segment"));
        assert!(KeyPath::parse("'a.b").unwrap_err().to_string().contains("unterminated"));
    }

    #[test]
    fn digs_into_hashes_and_arrays() {
        let v = val("{ db = { port = 3306, hosts = [\"h1\", \"h2\"] } }");
        assert_eq!(KeyPath::parse("k.db.port").unwrap().dig(v.clone()).unwrap(), val("3306"));
        assert_eq!(KeyPath::parse("k.db.hosts.1").unwrap().dig(v.clone()).unwrap(), val("\"h2\""));
        assert_eq!(KeyPath::parse("k").unwrap().dig(v.clone()).unwrap(), v);
    }

    #[test]
    fn a_missing_part_is_named() {
        let v = val("{ db = { port = 3306, hosts = [\"h1\"] } }");
        let err = |k: &str| KeyPath::parse(k).unwrap().dig(v.clone()).unwrap_err().to_string();
        assert_eq!(
            err("k.db.user"),
            "lookup of 'k.db.user': 'k.db' has no key 'user' (its keys: port, hosts)"
        );
        assert_eq!(
            err("k.db.hosts.3"),
            "lookup of 'k.db.hosts.3': 'k.db.hosts' has 1 element, so no index 3"
        );
        assert!(err("k.db.hosts.x").contains("'x' is not an index"));
        assert_eq!(
            err("k.db.port.x"),
            "lookup of 'k.db.port.x': 'k.db.port' is an integer, which has no key 'x'"
        );
    }
}

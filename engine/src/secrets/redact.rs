//! The secret values of a catalog and their redaction.

use std::borrow::Cow;

use crate::digest::sha256_hex;

/// Secret values with the hiera key they came from. Values are kept longest first so that a
/// secret containing another secret is replaced whole.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    entries: Vec<(String, String)>,
}

impl Secrets {
    /// Records every scalar inside `value` as secret under `key`.
    pub fn add(&mut self, key: &str, value: &toml::Value) {
        match value {
            toml::Value::String(s) => self.add_str(key, s),
            toml::Value::Array(items) => items.iter().for_each(|v| self.add(key, v)),
            toml::Value::Table(t) => t.values().for_each(|v| self.add(key, v)),
            other => self.add_str(key, &other.to_string()),
        }
    }

    fn add_str(&mut self, key: &str, value: &str) {
        if value.is_empty() || self.entries.iter().any(|(_, v)| v == value) {
            return;
        }
        self.entries.push((key.to_string(), value.to_string()));
        self.entries.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    }

    /// Adds every secret of `other` (to redact texts that may hold values of either set).
    pub fn extend(&mut self, other: &Secrets) {
        for (key, value) in &other.entries {
            self.add_str(key, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The hiera keys the secrets came from, each once.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self.entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
    }

    /// Every secret value (for tests that search outputs for plaintext).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, v)| v.as_str())
    }

    /// Redacts every string inside a value, before it is formatted: once a value is quoted
    /// or escaped (TOML, JSON), a secret holding `"`, `\\` or a newline no longer matches.
    pub fn redact_value(&self, value: &toml::Value) -> toml::Value {
        match value {
            toml::Value::String(s) => toml::Value::String(self.redact(s).into_owned()),
            toml::Value::Array(items) => {
                toml::Value::Array(items.iter().map(|v| self.redact_value(v)).collect())
            }
            toml::Value::Table(t) => toml::Value::Table(
                t.iter().map(|(k, v)| (k.clone(), self.redact_value(v))).collect(),
            ),
            other => other.clone(),
        }
    }

    /// Replaces every secret value in `text` with `<secret:KEY#HASH>`, where HASH is the first
    /// 8 hex digits of the value's SHA-256, so that a changed secret shows as a changed hash.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (key, value) in &self.entries {
            if out.contains(value.as_str()) {
                let marker = format!("<secret:{key}#{}>", &sha256_hex(value.as_bytes())[..8]);
                out = Cow::Owned(out.replace(value.as_str(), &marker));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_with_hash() {
        let mut s = Secrets::default();
        s.add("a::pw", &toml::Value::from("abc"));
        s.add("b::pw", &toml::Value::from("abcdef"));
        let r = s.redact("x=abcdef y=abc");
        assert!(!r.contains("abc"), "{r}");
        assert!(r.starts_with("x=<secret:b::pw#"), "{r}");
        assert!(r.contains(" y=<secret:a::pw#"), "{r}");
    }

    #[test]
    fn changed_secret_changes_marker() {
        let mut a = Secrets::default();
        a.add("k", &toml::Value::from("one"));
        let mut b = Secrets::default();
        b.add("k", &toml::Value::from("two"));
        assert_ne!(a.redact("one"), b.redact("two"));
    }
}

//! The secret values of a catalog and their redaction, in every form a template can print
//! them in.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::digest::sha256_hex;

/// Secret values with the hiera key they came from, and what redaction looks for.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// (key, value), in the order added; a value is recorded once, under its first key.
    entries: Vec<(String, String)>,
    /// (text to find, marker replacing it): every value, and each form a template may print
    /// it in, longest first so that a secret containing another is replaced whole.
    needles: Vec<(String, String)>,
}

/// The forms a template can print `value` in besides itself: JSON-escaped (`tojson`, also its
/// HTML-safe variant, and any JSON writer), URL-encoded (`urlencode`), HTML-escaped
/// (`escape`), shell-quoted (a value holding `'`), base64, and what the Ansible filters of
/// `template` print it as (`to_json`, `to_yaml`, `quote`, `regex_escape`, `b64encode`'s
/// variants, `hash`). Each only where it differs.
fn encodings(value: &str) -> Vec<String> {
    let inner = |quoted: String| quoted[1..quoted.len() - 1].to_string();
    let mut forms = vec![inner(serde_json::to_string(value).expect("a string serialises"))];
    let v = minijinja::Value::from(value);
    if let Ok(json) = minijinja::filters::tojson(
        &v,
        None,
        std::iter::empty::<(&str, minijinja::Value)>().collect(),
    ) && let Some(s) = json.as_str()
    {
        forms.push(inner(s.to_string()));
    }
    if let Ok(url) = minijinja::filters::urlencode(&v) {
        forms.push(url);
    }
    forms.push(minijinja::HtmlEscape(value).to_string());
    let sql = crate::sql::string_literal(value);
    forms.push(sql[1..sql.len() - 1].to_string());
    forms.push(STANDARD.encode(value));
    forms.push(STANDARD_NO_PAD.encode(value));
    forms.extend(crate::template::encoded_forms(value));
    forms.retain(|f| f != value && !f.is_empty());
    forms
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
        let marker = format!("<secret:{key}#{}>", &sha256_hex(value.as_bytes())[..8]);
        for needle in std::iter::once(value.to_string()).chain(encodings(value)) {
            if !self.needles.iter().any(|(n, _)| *n == needle) {
                self.needles.push((needle, marker.clone()));
            }
        }
        self.needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
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

    /// Replaces every secret value in `text`, in any form a template can print it in, with
    /// `<secret:KEY#HASH>`, where HASH is the first 8 hex digits of the value's SHA-256, so that
    /// a changed secret shows as a changed hash.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (needle, marker) in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), marker));
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

    /// What a template prints a secret as (through the engine's own filters and its shell
    /// quoting) is redacted like the secret. (`tojson` and `urlencode` used to show it.)
    #[test]
    fn every_form_a_template_prints_is_redacted() {
        let value = "p\"a's&w<r>d/+ =\\x\nyé";
        let mut s = Secrets::default();
        s.add("k", &toml::Value::from(value));
        let mut jinja = minijinja::Environment::new();
        jinja
            .add_template(
                "t",
                "{{ v }}|{{ v|tojson }}|{{ v|urlencode }}|{{ v|e }}|{{ v|tojson|e }}",
            )
            .unwrap();
        let rendered =
            jinja.get_template("t").unwrap().render(minijinja::context! { v => value }).unwrap();
        let quoted = crate::shell::quote(value);
        let json = serde_json::to_string(&serde_json::json!({ "v": value })).unwrap();
        let b64 = STANDARD.encode(value);
        let sql = crate::sql::string_literal(value);
        for text in [rendered, quoted, json, b64, sql] {
            let r = s.redact(&text);
            assert!(r.contains("<secret:k#"), "{text} -> {r}");
            for part in [
                "w<r>",
                "w%3Cr%3E",
                "w&lt;r&gt;",
                "w\\u003cr",
                "'\"'\"'s",
                "yé",
                "y\\u00e9",
                "y%C3%A9",
            ] {
                assert!(!r.contains(part), "{part} left in {r}");
            }
        }
    }

    /// What the Ansible filters print a secret as is redacted too, digests included.
    #[test]
    fn what_the_ansible_filters_print_is_redacted() {
        let value = "p\"a's\\wé\nx";
        let mut s = Secrets::default();
        s.add("k", &toml::Value::from(value));
        let source = "{{ v | to_json }}|{{ [v] | to_nice_json }}|{{ v | to_yaml }}|{{ {'k': v} | to_nice_yaml }}|{{ v | quote }}|{{ v | regex_escape }}|{{ v | b64encode(urlsafe=true) }}|{{ v | b64encode(encoding='utf-16-le') }}|{{ v | hash('md5') }}|{{ v | sha1 }}|{{ v | hash('sha512') }}";
        let rendered =
            crate::template::tests::render(source, minijinja::context! { v => value }).unwrap();
        let r = s.redact(&rendered);
        assert_eq!(r.matches("<secret:k#").count(), 11, "{rendered} -> {r}");
        for part in ["wé", "w\\u00e9", "a''s", "'\"'\"'", "\\ w"] {
            assert!(!r.contains(part), "{part} left in {r}");
        }
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

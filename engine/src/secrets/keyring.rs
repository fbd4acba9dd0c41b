//! The identities that decrypt encrypted hiera values (`"ENC[AGE,...]"`), used when a lookup
//! returns one.
//!
//! Every value revealed is recorded as a secret under its key, so it is redacted wherever the
//! host's secrets are (plans, diffs, catalogs, check output). A lookup whose value embeds an
//! encrypted one through `%{lookup()}` reveals the embedded part the same way.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use toml::Value;

use super::Secrets;
use super::crypt::{ENCRYPTED, decrypt};
use crate::digest::sha256_hex;
use crate::error::{self, Result};

/// The environment variable naming the identity file (`AGE-SECRET-KEY-1...` lines).
pub const KEY_FILE_VAR: &str = "STACKDEPLOY_AGE_KEY_FILE";

/// What a lookup does with an encrypted value.
pub enum Keyring {
    /// No identity: an encrypted value is an error that says how to provide one. The default,
    /// and what every command that writes to hosts uses when no key file is given.
    Missing,
    /// No identity, and the caller only shows or checks catalogs: an encrypted value becomes
    /// `<encrypted:KEY#HASH>` (HASH of the ciphertext), so a re-encrypted value shows as a
    /// change but nothing can be read.
    Placeholders,
    Identities {
        /// Where the identities came from, for error messages.
        source: String,
        identities: Vec<age::x25519::Identity>,
        /// Ciphertext → plaintext: the same value is looked up on every host.
        cache: Mutex<HashMap<String, String>>,
    },
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keyring::Missing => f.write_str("Keyring::Missing"),
            Keyring::Placeholders => f.write_str("Keyring::Placeholders"),
            Keyring::Identities { source, identities, .. } => {
                write!(f, "Keyring::Identities({source}, {} identities)", identities.len())
            }
        }
    }
}

impl Keyring {
    /// Parses an identity file as written by `age-keygen` or `stackdeploy secret keygen`.
    pub fn parse(source: &str, text: &str) -> Result<Keyring> {
        let mut identities = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| {
                error::usage(
                    "not an age identity (expected AGE-SECRET-KEY-1..., as written by \
                     `stackdeploy secret keygen` or age-keygen)",
                )
                .at_file(source, Some(i + 1))
            })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(error::usage("no age identity in the file").at_file(source, None));
        }
        Ok(Keyring::Identities {
            source: source.to_string(),
            identities,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces every encrypted part of `value` (the value of `key`), recording what it
    /// revealed in `revealed`.
    pub fn reveal(&self, key: &str, value: Value, revealed: &Mutex<Secrets>) -> Result<Value> {
        Ok(match value {
            Value::String(s) if s.contains("ENC[AGE,") => {
                Value::String(self.reveal_str(key, &s, revealed)?)
            }
            Value::Array(items) => Value::Array(
                items.into_iter().map(|v| self.reveal(key, v, revealed)).collect::<Result<_>>()?,
            ),
            Value::Table(t) => Value::Table(
                t.into_iter()
                    .map(|(k, v)| Ok((k, self.reveal(key, v, revealed)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other,
        })
    }

    fn reveal_str(&self, key: &str, s: &str, revealed: &Mutex<Secrets>) -> Result<String> {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for m in ENCRYPTED.captures_iter(s) {
            let whole = m.get(0).expect("match");
            out.push_str(&s[last..whole.start()]);
            last = whole.end();
            let b64 = &m[1];
            match self {
                Keyring::Missing => {
                    return Err(error::lookup(format!(
                        "'{key}' is encrypted and no age identity is available: set \
                         {KEY_FILE_VAR} to the file holding the identity (create one with \
                         `stackdeploy secret keygen`)"
                    )));
                }
                Keyring::Placeholders => {
                    out.push_str(&format!(
                        "<encrypted:{key}#{}>",
                        &sha256_hex(b64.as_bytes())[..8]
                    ));
                }
                Keyring::Identities { source, identities, cache } => {
                    let cached = cache.lock().unwrap().get(b64).cloned();
                    let plain = match cached {
                        Some(p) => p,
                        None => {
                            let p = decrypt(b64, identities).map_err(|why| {
                                error::lookup(format!(
                                    "cannot decrypt '{key}' with the identity in {source}: {why}"
                                ))
                            })?;
                            cache.lock().unwrap().insert(b64.to_string(), p.clone());
                            p
                        }
                    };
                    revealed.lock().unwrap().add(key, &Value::String(plain.clone()));
                    out.push_str(&plain);
                }
            }
        }
        out.push_str(&s[last..]);
        Ok(out)
    }
}

/// The identities of one command, read once: what each use of them needs them as. Commands
/// that only show or check catalogs get placeholders without identities; commands that write
/// to hosts get an error as soon as they meet an encrypted value.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    identities: Option<Arc<Keyring>>,
}

impl Keys {
    /// No identities.
    pub fn none() -> Keys {
        Keys::default()
    }

    /// The identity file named by `STACKDEPLOY_AGE_KEY_FILE`, when it is set.
    pub fn from_environment() -> Result<Keys> {
        match std::env::var_os(KEY_FILE_VAR).filter(|v| !v.is_empty()) {
            Some(path) => Keys::from_file(Path::new(&path)),
            None => Ok(Keys::none()),
        }
    }

    pub fn from_file(path: &Path) -> Result<Keys> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            error::usage(format!("{KEY_FILE_VAR} names {}, which cannot be read", path.display()))
                .with_source(e)
        })?;
        let ring = Keyring::parse(&path.display().to_string(), &text)?;
        Ok(Keys { identities: Some(Arc::new(ring)) })
    }

    pub fn has_identities(&self) -> bool {
        self.identities.is_some()
    }

    /// For showing or checking catalogs: placeholders when there are no identities.
    pub fn for_showing(&self) -> Arc<Keyring> {
        self.identities.clone().unwrap_or_else(|| Arc::new(Keyring::Placeholders))
    }

    /// For writing to hosts: an encrypted value without identities is an error.
    pub fn for_deploying(&self) -> Arc<Keyring> {
        self.identities.clone().unwrap_or_else(|| Arc::new(Keyring::Missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::crypt::encrypt;

    fn keyring() -> (Keyring, String) {
        let (text, public) = crate::secrets::crypt::generate();
        (Keyring::parse("key.txt", &text).unwrap(), public)
    }

    #[test]
    fn round_trip_records_the_plaintext_as_secret() {
        let (ring, public) = keyring();
        let enc = encrypt(&[public], "s3cret pw").unwrap();
        assert!(enc.starts_with("ENC[AGE,") && !enc.contains("s3cret"));
        let revealed = Mutex::new(Secrets::default());
        let v = ring
            .reveal("db::pw", Value::String(format!("mysql://u:{enc}@db/x")), &revealed)
            .unwrap();
        assert_eq!(v.as_str(), Some("mysql://u:s3cret pw@db/x"));
        let r = revealed.lock().unwrap().redact("pw=s3cret pw").into_owned();
        assert!(r.starts_with("pw=<secret:db::pw#"), "{r}");
    }

    #[test]
    fn without_an_identity_it_is_an_error_or_a_placeholder() {
        let (_, public) = keyring();
        let enc = encrypt(&[public], "x").unwrap();
        let revealed = Mutex::new(Secrets::default());
        let e = Keyring::Missing.reveal("k", Value::String(enc.clone()), &revealed).unwrap_err();
        assert!(e.to_string().contains(KEY_FILE_VAR), "{e}");
        let v = Keyring::Placeholders.reveal("k", Value::String(enc), &revealed).unwrap();
        assert!(v.as_str().unwrap().starts_with("<encrypted:k#"), "{v}");
        assert!(revealed.lock().unwrap().is_empty());
    }

    #[test]
    fn the_wrong_identity_says_so() {
        let (_, public) = keyring();
        let (other, _) = keyring();
        let enc = encrypt(&[public], "x").unwrap();
        let e = other.reveal("k", Value::String(enc), &Mutex::default()).unwrap_err();
        assert!(e.to_string().contains("not encrypted to this identity"), "{e}");
    }

    #[test]
    fn a_bad_identity_file_names_the_line() {
        let e = Keyring::parse("key.txt", "# comment\nAGE-SECRET-KEY-1NOPE\n").unwrap_err();
        assert!(e.to_string().starts_with("key.txt:2: not an age identity"), "{e}");
    }
}

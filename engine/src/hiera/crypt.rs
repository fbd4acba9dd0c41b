//! Encrypted hiera values: `"ENC[AGE,<base64 of an age file>]"` in a data file, decrypted when
//! a lookup returns it, with the identities of a [`Keyring`].
//!
//! Every value revealed is recorded as a secret under its key, so it is redacted wherever the
//! host's secrets are (plans, diffs, catalogs, check output). A lookup whose value embeds an
//! encrypted one through `%{lookup()}` reveals the embedded part the same way.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use toml::Value;

use crate::catalog::{Secrets, sha256_hex};
use crate::error::{self, Result};
use crate::transport::base64;

/// The environment variable naming the identity file (`AGE-SECRET-KEY-1...` lines).
pub const KEY_FILE_VAR: &str = "STACKDEPLOY_AGE_KEY_FILE";

static ENCRYPTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ENC\[AGE,([A-Za-z0-9+/=]+)\]").expect("valid regex"));

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

fn decrypt(b64: &str, identities: &[age::x25519::Identity]) -> std::result::Result<String, String> {
    let bytes = base64::decode(b64).ok_or("the ciphertext is not valid base64")?;
    let decryptor = age::Decryptor::new(&bytes[..]).map_err(|e| e.to_string())?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                "it was not encrypted to this identity (see [secrets] recipients in pipeline.toml)"
                    .to_string()
            }
            other => other.to_string(),
        })?;
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).map_err(|e| e.to_string())?;
    String::from_utf8(plain).map_err(|_| "the plaintext is not UTF-8".to_string())
}

/// Encrypts `plaintext` to every recipient (`age1...` public keys): `ENC[AGE,...]`.
pub fn encrypt(recipients: &[String], plaintext: &str) -> Result<String> {
    let parsed = recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r).map_err(|e| {
                error::invalid(format!("[secrets] recipients: '{r}' is not an age public key: {e}"))
                    .at_file(crate::model::PIPELINE_FILE, None)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if parsed.is_empty() {
        return Err(error::invalid(
            "no [secrets] recipients: add the public key(s) that may read secrets, e.g. \
             recipients = [\"age1...\"] (printed by `stackdeploy secret keygen`)",
        )
        .at_file(crate::model::PIPELINE_FILE, None));
    }
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| error::invalid(format!("cannot encrypt: {e}")))?;
    let mut out = Vec::new();
    let mut writer =
        encryptor.wrap_output(&mut out).map_err(|e| error::io("cannot encrypt").with_source(e))?;
    writer
        .write_all(plaintext.as_bytes())
        .and_then(|_| writer.finish().map(|_| ()))
        .map_err(|e| error::io("cannot encrypt").with_source(e))?;
    Ok(format!("ENC[AGE,{}]", base64::encode(&out)))
}

/// A new identity: (the identity file's text, its public key).
pub fn generate() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let text = format!(
        "# stackdeploy age identity; public key: {public}\n{}\n",
        identity.to_string().expose_secret()
    );
    (text, public)
}

/// Did this lookup error come from an encrypted value that could not be decrypted?
pub fn is_decrypt_error(e: &crate::error::Error) -> bool {
    e.kind() == crate::error::ErrorKind::Lookup
        && (e.detail().contains("cannot decrypt") || e.detail().contains("is encrypted and no age"))
}

/// Does this text hold an encrypted value?
pub fn is_encrypted(s: &str) -> bool {
    ENCRYPTED.is_match(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (Keyring, String) {
        let (text, public) = generate();
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

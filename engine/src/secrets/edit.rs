//! `secret edit`, as text: every `"ENC[AGE,…]"` string of a data file becomes
//! `"DEC[plaintext]"` for the editor ([`open`]), and every `"DEC[…]"` of the edited text is
//! encrypted again ([`Opened::seal`]), an unchanged plaintext keeping its old ciphertext so the
//! commit shows only what really changed. Where the text lives and which editor runs is the
//! command's business.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::{Keyring, crypt};
use crate::error::{self, Error, Result};

static ENC_STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(ENC\[AGE,[A-Za-z0-9+/=]+\])""#).expect("valid regex"));
static DEC_STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""DEC\[((?:[^"\\]|\\.)*)\]""#).expect("valid regex"));

/// A data file opened for editing: its decrypted text and what each plaintext was encrypted as.
pub struct Opened {
    pub text: String,
    originals: Vec<(String, String)>,
}

/// Decrypts every encrypted string of `text` (the file `label`) into a `DEC[…]` marker.
pub fn open(text: &str, label: &str, keyring: &Keyring) -> Result<Opened> {
    let mut originals: Vec<(String, String)> = Vec::new();
    let mut failure = None;
    let decrypted = ENC_STRING.replace_all(text, |c: &regex::Captures<'_>| {
        let revealed = std::sync::Mutex::default();
        match keyring.reveal(label, toml::Value::String(c[1].to_string()), &revealed) {
            Ok(toml::Value::String(plain)) => {
                // A JSON string is a valid TOML basic string: quotes, backslashes and
                // newlines come out escaped, so any value survives the round trip.
                let quoted = serde_json::to_string(&plain).expect("json");
                originals.push((plain, c[1].to_string()));
                format!("\"DEC[{}]\"", &quoted[1..quoted.len() - 1])
            }
            Ok(_) => unreachable!("a string reveals to a string"),
            Err(e) => {
                failure.get_or_insert(e);
                c[0].to_string()
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(Opened { text: decrypted.into_owned(), originals }),
    }
}

impl Opened {
    /// Encrypts every `DEC[…]` of `edited` to `recipients` and checks that the result is
    /// valid TOML. Errors name `file` and the line, never quoting a plaintext, and say that the
    /// file was not changed.
    pub fn seal(&self, edited: &str, recipients: &[String], file: &Path) -> Result<String> {
        let mut failure: Option<Error> = None;
        let encrypted = DEC_STRING.replace_all(edited, |c: &regex::Captures<'_>| {
            let plain = match toml::from_str::<toml::Table>(&format!("v = \"{}\"", &c[1])) {
                Ok(t) => t["v"].as_str().unwrap_or_default().to_string(),
                // The error's own text would quote the line, plaintext included.
                Err(e) => {
                    let line = edited[..c.get(0).expect("match").start()].lines().count().max(1);
                    failure.get_or_insert(
                        error::syntax(format!("bad escape in a DEC[…] value: {}", e.message()))
                            .at_file(file, Some(line)),
                    );
                    return c[0].to_string();
                }
            };
            if let Some((_, enc)) = self.originals.iter().find(|(p, _)| *p == plain) {
                return format!("\"{enc}\"");
            }
            match crypt::encrypt(recipients, &plain) {
                Ok(enc) => format!("\"{enc}\""),
                Err(e) => {
                    failure.get_or_insert(e);
                    c[0].to_string()
                }
            }
        });
        if let Some(e) = failure {
            return Err(e.map_detail(|d| format!("{d}; {} was not changed", file.display())));
        }
        if let Err(e) = toml::from_str::<toml::Table>(&encrypted) {
            let line = e.span().map(|s| encrypted[..s.start].lines().count().max(1));
            return Err(error::syntax(format!(
                "the edited file is not valid TOML ({}); {} was not changed",
                e.message(),
                file.display()
            ))
            .at_file(file, line));
        }
        Ok(encrypted.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_values_keep_their_ciphertext_and_new_ones_are_encrypted() {
        let (identity, public) = crypt::generate();
        let ring = Keyring::parse("key.txt", &identity).unwrap();
        let recipients = std::slice::from_ref(&public);
        let keep = crypt::encrypt(recipients, "kept").unwrap();
        let old = crypt::encrypt(recipients, "old \"pw\"\\").unwrap();
        let text = format!("a = \"{keep}\"\nb = \"{old}\"\n");
        let opened = open(&text, "f.toml", &ring).unwrap();
        assert_eq!(opened.text, "a = \"DEC[kept]\"\nb = \"DEC[old \\\"pw\\\"\\\\]\"\n");
        let edited = opened.text.replace("old", "new");
        let sealed = opened.seal(&edited, recipients, Path::new("f.toml")).unwrap();
        assert!(sealed.starts_with(&format!("a = \"{keep}\"\n")), "{sealed}");
        // Base64 ciphertext may hold "new" by chance; the plaintext with its quotes cannot.
        assert!(
            !sealed.contains(&old) && !sealed.contains("new \\\"pw") && sealed.contains("ENC[AGE,")
        );
        let again = open(&sealed, "f.toml", &ring).unwrap();
        assert_eq!(again.text, "a = \"DEC[kept]\"\nb = \"DEC[new \\\"pw\\\"\\\\]\"\n");
    }

    #[test]
    fn invalid_toml_is_refused_with_the_line_and_no_plaintext() {
        let (identity, public) = crypt::generate();
        let ring = Keyring::parse("key.txt", &identity).unwrap();
        let opened = open("a = 1\n", "f.toml", &ring).unwrap();
        let e = opened.seal("a = 1\nb = \"DEC[Topsecret\\q]\"\n", &[public], Path::new("f.toml"));
        let e = e.unwrap_err().to_string();
        assert!(e.starts_with("f.toml:2: bad escape"), "{e}");
        assert!(!e.contains("Topsecret") && e.contains("was not changed"), "{e}");
    }
}

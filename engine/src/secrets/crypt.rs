//! The encrypted value format, `"ENC[AGE,<base64 of an age file>]"`, and age X25519 encryption
//! to the recipients of pipeline.toml.

use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;

use crate::error::{self, Result};

/// An encrypted value inside a string; group 1 is the base64 age file.
pub(crate) static ENCRYPTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ENC\[AGE,([A-Za-z0-9+/=]+)\]").expect("valid regex"));

pub(super) fn decrypt(
    b64: &str,
    identities: &[age::x25519::Identity],
) -> std::result::Result<String, String> {
    let bytes = STANDARD.decode(b64).map_err(|_| "the ciphertext is not valid base64")?;
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

/// Encrypts `plaintext` to every recipient (`age1...` public keys): `ENC[AGE,...]`. Errors
/// about the recipients name `[secrets] recipients`; the caller knows which file holds them.
pub fn encrypt(recipients: &[String], plaintext: &str) -> Result<String> {
    let parsed = recipients
        .iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r).map_err(|e| {
                error::invalid(format!("[secrets] recipients: '{r}' is not an age public key: {e}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if parsed.is_empty() {
        return Err(error::invalid(
            "no [secrets] recipients: add the public key(s) that may read secrets, e.g. \
             recipients = [\"age1...\"] (printed by `stackdeploy secret keygen`)",
        ));
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
    Ok(format!("ENC[AGE,{}]", STANDARD.encode(&out)))
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

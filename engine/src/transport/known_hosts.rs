//! Host key verification against an OpenSSH `known_hosts` file.
//!
//! The file is parsed here rather than handed to libssh2 as a whole, because libssh2's own check
//! differs from OpenSSH in ways that would turn into false alarms: it compares keys regardless of
//! their type (a host known by its ed25519 key that offers ecdsa would look "changed"), and for a
//! non-standard port it also accepts entries of the bare address (port 22). libssh2 is still used
//! for hashed entries (`|1|salt|hash`), which need HMAC-SHA1. Wildcards (`*`, `?`) and negations
//! (`!pattern`) in plain entries work as in OpenSSH; `@revoked` keys are refused, and
//! `@cert-authority` lines trust host certificates their CA signed (see [`super::certificate`]).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::certificate::Certificate;
use crate::glob;

/// The key a server presented, as the raw SSH wire blob.
pub(crate) struct HostKey {
    /// The key type named inside the blob, e.g. `ssh-ed25519`; this is what known_hosts records.
    pub key_type: String,
    pub blob: Vec<u8>,
}

impl HostKey {
    pub(crate) fn from_blob(blob: &[u8]) -> Option<HostKey> {
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        let key_type = std::str::from_utf8(blob.get(4..4 + len)?).ok()?.to_string();
        Some(HostKey { key_type, blob: blob.to_vec() })
    }

    /// The fingerprint as OpenSSH shows it: `SHA256:` and unpadded base64 of the blob's digest.
    pub(crate) fn fingerprint(&self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&self.blob)))
    }

    /// The known_hosts line that trusts this key for `name` (see [`host_name`]).
    pub(crate) fn known_hosts_line(&self, name: &str) -> String {
        format!("{name} {} {}", self.key_type, STANDARD.encode(&self.blob))
    }
}

/// How known_hosts names an address and port: the bare address for port 22, else `[address]:port`.
pub(crate) fn host_name(address: &str, port: u16) -> String {
    if port == 22 { address.to_string() } else { format!("[{address}]:{port}") }
}

/// The outcome of looking a presented key up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An entry for this host holds exactly this key.
    Known,
    /// No entry for this host has this key type; `other_types` lists the types it is known by.
    Unknown { other_types: Vec<String> },
    /// An entry for this host has a different key of the same type (1-based line number).
    Changed { line: usize },
    /// The key is marked `@revoked` (1-based line number).
    Revoked { line: usize },
    /// A certificate signed by the `@cert-authority` at `line` for this host, which does not
    /// certify it: `why`.
    CertificateRefused { line: usize, why: String },
}

struct Entry {
    line: usize,
    marker: Option<String>,
    hosts: String,
    key_type: String,
    key: String,
}

pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Reads the file; a missing file is an empty one (nothing is known yet).
    pub(crate) fn load(path: &Path) -> io::Result<KnownHosts> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(KnownHosts::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownHosts { entries: Vec::new() }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn parse(text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let mut fields = raw.split_whitespace();
            let Some(mut first) = fields.next() else {
                continue;
            };
            if first.starts_with('#') {
                continue;
            }
            let mut marker = None;
            if first.starts_with('@') {
                marker = Some(first.to_string());
                match fields.next() {
                    Some(f) => first = f,
                    None => continue,
                }
            }
            let (Some(key_type), Some(key)) = (fields.next(), fields.next()) else {
                continue;
            };
            entries.push(Entry {
                line: i + 1,
                marker,
                hosts: first.to_string(),
                key_type: key_type.to_string(),
                key: key.to_string(),
            });
        }
        KnownHosts { entries }
    }

    /// The key types recorded for `name`, in file order, without duplicates.
    pub(crate) fn key_types(&self, session: &ssh2::Session, name: &str) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for entry in self.entries.iter().filter(|e| e.marker.is_none()) {
            if !types.contains(&entry.key_type) && entry.names(session, name) {
                types.push(entry.key_type.clone());
            }
        }
        types
    }

    /// Whether an `@cert-authority` line names this host, so that certificates are worth
    /// asking the server for.
    pub(crate) fn has_cert_authority(&self, session: &ssh2::Session, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.marker.as_deref() == Some("@cert-authority") && e.names(session, name))
    }

    /// Checks a host certificate: trusted when an `@cert-authority` line for `name` holds its
    /// CA and it certifies `address` now; else its key is looked up like a plain key, as `ssh`
    /// does, so a host known by its key still connects.
    pub(crate) fn verify_certificate(
        &self,
        session: &ssh2::Session,
        name: &str,
        address: &str,
        cert: &Certificate,
        now: u64,
    ) -> Verdict {
        let ca = STANDARD.encode(&cert.ca_key);
        let plain = HostKey { key_type: cert.key_type.clone(), blob: cert.public_key.clone() };
        let key = STANDARD.encode(&plain.blob);
        for entry in &self.entries {
            if entry.marker.as_deref() == Some("@revoked") && (entry.key == ca || entry.key == key)
            {
                return Verdict::Revoked { line: entry.line };
            }
        }
        let authority = self.entries.iter().find(|e| {
            e.marker.as_deref() == Some("@cert-authority") && e.key == ca && e.names(session, name)
        });
        match self.verify(session, name, &plain) {
            Verdict::Known => Verdict::Known,
            other => match authority {
                Some(entry) => match cert.problem(address, now) {
                    None => Verdict::Known,
                    Some(why) => Verdict::CertificateRefused {
                        line: entry.line,
                        why: format!("its certificate {} does not count: {why}", cert.name()),
                    },
                },
                None => other,
            },
        }
    }

    pub(crate) fn verify(&self, session: &ssh2::Session, name: &str, key: &HostKey) -> Verdict {
        let encoded = STANDARD.encode(&key.blob);
        let mut changed = None;
        let mut other_types = Vec::new();
        for entry in &self.entries {
            match entry.marker.as_deref() {
                Some("@revoked") if entry.key == encoded => {
                    return Verdict::Revoked { line: entry.line };
                }
                Some(_) => continue,
                None => {}
            }
            if !entry.names(session, name) {
                continue;
            }
            if entry.key_type != key.key_type {
                if !other_types.contains(&entry.key_type) {
                    other_types.push(entry.key_type.clone());
                }
            } else if entry.key == encoded {
                return Verdict::Known;
            } else if changed.is_none() {
                changed = Some(entry.line);
            }
        }
        match changed {
            Some(line) => Verdict::Changed { line },
            None => Verdict::Unknown { other_types },
        }
    }
}

impl Entry {
    /// Whether this entry's host field names `name` (`address` or `[address]:port`).
    fn names(&self, session: &ssh2::Session, name: &str) -> bool {
        if self.hosts.starts_with("|1|") {
            // Hashed: let libssh2 do the HMAC-SHA1. A dummy key makes a name match show up as
            // a mismatch, whatever key the entry holds.
            let Ok(mut kh) = session.known_hosts() else {
                return false;
            };
            let line = format!("{} {} {}", self.hosts, self.key_type, self.key);
            if kh.read_str(&line, ssh2::KnownHostFileKind::OpenSSH).is_err() {
                return false;
            }
            return matches!(kh.check(name, b"\0"), ssh2::CheckResult::Mismatch);
        }
        let name = name.to_ascii_lowercase();
        let mut matched = false;
        for pattern in self.hosts.split(',') {
            let (negated, pattern) = match pattern.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pattern),
            };
            if glob::matches(pattern.to_ascii_lowercase().as_bytes(), name.as_bytes(), true) {
                if negated {
                    return false;
                }
                matched = true;
            }
        }
        matched
    }
}

/// Appends one line to the file (creating it and its directory), as a single write so that
/// concurrent connections trusting different hosts do not interleave.
pub(crate) fn append(path: &Path, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let needs_newline = match fs::read(path) {
        Ok(bytes) => !bytes.is_empty() && !bytes.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut text = String::new();
    if needs_newline {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key_type: &str, payload: &[u8]) -> HostKey {
        let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(key_type.as_bytes());
        blob.extend_from_slice(payload);
        HostKey::from_blob(&blob).unwrap()
    }

    #[test]
    fn key_type_and_fingerprint() {
        // The blob and fingerprint of a real key, as printed by `ssh-keygen -lf`.
        let blob = STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIAfDAHBT93eAgAqjuLvLlKbbR2Vzj8ts8rwv4pT/AJQ2")
            .unwrap();
        let k = HostKey::from_blob(&blob).unwrap();
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.fingerprint(), "SHA256:QFmfcoUSr7NAqUw6M9BkLqs51m+DyiIlHx+9BfLzwX8");
        assert_eq!(host_name("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(host_name("10.0.0.1", 2222), "[10.0.0.1]:2222");
    }

    #[test]
    fn verdicts() {
        let session = ssh2::Session::new().unwrap();
        let ed = key("ssh-ed25519", b"one");
        let ed2 = key("ssh-ed25519", b"two");
        let ec = key("ecdsa-sha2-nistp256", b"three");
        let text = format!(
            "# comment\n{}\n{}\n[10.*]:2222,![10.9.9.9]:2222 {} {}\n",
            ed.known_hosts_line("[127.0.0.1]:2222"),
            ec.known_hosts_line("127.0.0.1"),
            ed2.key_type,
            STANDARD.encode(&ed2.blob),
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.verify(&session, "[127.0.0.1]:2222", &ed), Verdict::Known);
        assert_eq!(kh.verify(&session, "[127.0.0.1]:2222", &ed2), Verdict::Changed { line: 2 });
        // Another key type is not a change, and port 22 entries do not count for port 2222.
        assert_eq!(
            kh.verify(&session, "[127.0.0.1]:2222", &ec),
            Verdict::Unknown { other_types: vec!["ssh-ed25519".into()] }
        );
        assert_eq!(kh.verify(&session, "127.0.0.1", &ec), Verdict::Known);
        assert_eq!(kh.verify(&session, "[10.1.2.3]:2222", &ed2), Verdict::Known);
        assert_eq!(
            kh.verify(&session, "[10.9.9.9]:2222", &ed2),
            Verdict::Unknown { other_types: vec![] }
        );
        assert_eq!(kh.key_types(&session, "[127.0.0.1]:2222"), vec!["ssh-ed25519"]);

        let revoked = format!("@revoked * {} {}\n", ed.key_type, STANDARD.encode(&ed.blob));
        let kh = KnownHosts::parse(&format!("{revoked}{}", ed.known_hosts_line("h")));
        assert_eq!(kh.verify(&session, "h", &ed), Verdict::Revoked { line: 1 });
    }
}

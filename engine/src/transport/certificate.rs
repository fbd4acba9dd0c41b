//! OpenSSH host certificates (PROTOCOL.certkeys): a host key signed by a certificate
//! authority, trusted through an `@cert-authority` line in known_hosts instead of one line per
//! host.
//!
//! libssh2 negotiates certificate host key types and checks that the server holds the key in
//! the certificate, but not the certificate itself. That is done here, as `ssh` does it: the
//! CA's signature, that it is a host certificate, that the host's name is one of its
//! principals, its validity period, and that it has no critical options (none are defined for
//! host certificates, and one we do not understand must not be ignored). Signatures are
//! checked with OpenSSL, which libssh2 links already: Ed25519, ECDSA (P-256/384/521) and RSA
//! with SHA-2 (SHA-1 `ssh-rsa` signatures are refused, as OpenSSH refuses them).

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;

/// The certificate type of host certificates (user certificates are 1).
const HOST: u32 = 2;

/// The parts of a certificate that are checked.
#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    /// The plain key type, e.g. `ecdsa-sha2-nistp256`.
    pub key_type: String,
    /// The certified key as a plain public key blob (what known_hosts would record).
    pub public_key: Vec<u8>,
    pub serial: u64,
    pub kind: u32,
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    /// Names of the critical options.
    pub critical: Vec<String>,
    /// The CA's public key blob.
    pub ca_key: Vec<u8>,
    signature: Vec<u8>,
    /// The signed bytes: the certificate up to its signature.
    signed: Vec<u8>,
}

/// Reads SSH wire format.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.string()?.to_vec()).ok()
    }
    fn done(&self) -> bool {
        self.at == self.data.len()
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Whether a key type names a certificate.
pub(crate) fn is_certificate(key_type: &str) -> bool {
    key_type.ends_with("-cert-v01@openssh.com")
}

impl Certificate {
    /// Parses a certificate blob; `None` when it is not a well-formed certificate.
    pub(crate) fn parse(blob: &[u8]) -> Option<Certificate> {
        let mut r = Reader { data: blob, at: 0 };
        let cert_type = r.text()?;
        let key_type = cert_type.strip_suffix("-cert-v01@openssh.com")?.to_string();
        let _nonce = r.string()?;
        // The key's own fields, which follow the type in a plain key blob too.
        let fields = match key_type.as_str() {
            "ssh-ed25519" => 1,
            "ssh-rsa" => 2,
            "ssh-dss" => 4,
            t if t.starts_with("ecdsa-sha2-") => 2,
            _ => return None,
        };
        let mut public_key = Vec::new();
        put_string(&mut public_key, key_type.as_bytes());
        for _ in 0..fields {
            put_string(&mut public_key, r.string()?);
        }
        let serial = r.u64()?;
        let kind = r.u32()?;
        let key_id = r.text()?;
        let mut principals = Vec::new();
        let mut list = Reader { data: r.string()?, at: 0 };
        while !list.done() {
            principals.push(list.text()?);
        }
        let valid_after = r.u64()?;
        let valid_before = r.u64()?;
        let mut critical = Vec::new();
        let mut options = Reader { data: r.string()?, at: 0 };
        while !options.done() {
            critical.push(options.text()?);
            options.string()?;
        }
        let _extensions = r.string()?;
        let _reserved = r.string()?;
        let ca_key = r.string()?.to_vec();
        let signed = blob[..r.at].to_vec();
        let signature = r.string()?.to_vec();
        if !r.done() {
            return None;
        }
        Some(Certificate {
            key_type,
            public_key,
            serial,
            kind,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical,
            ca_key,
            signature,
            signed,
        })
    }

    /// How an administrator finds the certificate: its key id and serial.
    pub(crate) fn name(&self) -> String {
        format!("'{}' (serial {})", self.key_id, self.serial)
    }

    /// Why this certificate does not certify host `name` at time `now` (Unix seconds), if it
    /// does not. Assumes the CA is trusted for the name; checks everything else.
    pub(crate) fn problem(&self, name: &str, now: u64) -> Option<String> {
        if !verify_signature(&self.ca_key, &self.signature, &self.signed) {
            return Some("its CA signature does not verify".into());
        }
        if self.kind != HOST {
            return Some(format!("it is not a host certificate (type {})", self.kind));
        }
        if !self.principals.is_empty() && !self.principals.iter().any(|p| p == name) {
            return Some(format!(
                "{name} is not one of its principals ({})",
                self.principals.join(", ")
            ));
        }
        if now < self.valid_after {
            return Some(format!("it is not valid yet (from {})", date(self.valid_after)));
        }
        if now >= self.valid_before {
            return Some(format!("it expired on {}", date(self.valid_before)));
        }
        if let Some(option) = self.critical.first() {
            return Some(format!("it has a critical option stackdeploy does not know ({option})"));
        }
        None
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (for "expired on").
fn date(t: u64) -> String {
    if t == u64::MAX {
        return "forever".into();
    }
    format!("{} UTC", crate::utc::iso(t).replace('T', " "))
}

/// Whether `signature` (SSH signature blob) is `ca_key`'s signature of `data`.
fn verify_signature(ca_key: &[u8], signature: &[u8], data: &[u8]) -> bool {
    verify(ca_key, signature, data).unwrap_or(false)
}

fn verify(ca_key: &[u8], signature: &[u8], data: &[u8]) -> Option<bool> {
    let mut key = Reader { data: ca_key, at: 0 };
    let key_type = key.text()?;
    let mut sig = Reader { data: signature, at: 0 };
    let sig_type = sig.text()?;
    let sig_bytes = sig.string()?;
    match key_type.as_str() {
        "ssh-ed25519" => {
            if sig_type != "ssh-ed25519" {
                return Some(false);
            }
            let pkey = PKey::public_key_from_raw_bytes(key.string()?, Id::ED25519).ok()?;
            let mut v = Verifier::new_without_digest(&pkey).ok()?;
            v.verify_oneshot(sig_bytes, data).ok()
        }
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
            if sig_type != key_type {
                return Some(false);
            }
            let (nid, digest) = match key_type.as_str() {
                "ecdsa-sha2-nistp256" => (Nid::X9_62_PRIME256V1, MessageDigest::sha256()),
                "ecdsa-sha2-nistp384" => (Nid::SECP384R1, MessageDigest::sha384()),
                _ => (Nid::SECP521R1, MessageDigest::sha512()),
            };
            let _curve = key.string()?;
            let point = key.string()?;
            let group = EcGroup::from_curve_name(nid).ok()?;
            let mut ctx = openssl::bn::BigNumContext::new().ok()?;
            let point = EcPoint::from_bytes(&group, point, &mut ctx).ok()?;
            let ec = EcKey::from_public_key(&group, &point).ok()?;
            let mut rs = Reader { data: sig_bytes, at: 0 };
            let r = BigNum::from_slice(rs.string()?).ok()?;
            let s = BigNum::from_slice(rs.string()?).ok()?;
            let sig = EcdsaSig::from_private_components(r, s).ok()?;
            let digest = hash(digest, data).ok()?;
            sig.verify(&digest, &ec).ok()
        }
        "ssh-rsa" => {
            let digest = match sig_type.as_str() {
                "rsa-sha2-256" => MessageDigest::sha256(),
                "rsa-sha2-512" => MessageDigest::sha512(),
                _ => return Some(false),
            };
            let e = BigNum::from_slice(key.string()?).ok()?;
            let n = BigNum::from_slice(key.string()?).ok()?;
            let pkey = PKey::from_rsa(Rsa::from_public_components(n, e).ok()?).ok()?;
            let mut v = Verifier::new(digest, &pkey).ok()?;
            v.update(data).ok()?;
            v.verify(sig_bytes).ok()
        }
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn keygen(path: &Path, kind: &str) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(path)
            .output()
            .expect("ssh-keygen (openssh-client)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Signs `key`.pub with `ca` and returns the certificate's blob.
    fn sign(ca: &Path, key: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(ca)
            .args(["-I", "host-id"])
            .args(args)
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cert = std::fs::read_to_string(
            key.with_file_name(format!("{}-cert.pub", key.file_name().unwrap().to_string_lossy())),
        )
        .unwrap();
        STANDARD.decode(cert.split_whitespace().nth(1).unwrap()).unwrap()
    }

    fn pub_blob(key: &Path) -> Vec<u8> {
        let text = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        STANDARD.decode(text.split_whitespace().nth(1).unwrap()).unwrap()
    }

    const NOW: u64 = 1_800_000_000; // 2027-01-15

    #[test]
    fn certificates_from_ssh_keygen_verify_with_every_ca_key_type() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        keygen(&host, "ecdsa");
        for (ca_type, bits) in [("ed25519", None), ("ecdsa", Some("384")), ("rsa", Some("3072"))] {
            let ca = dir.path().join(format!("ca-{ca_type}"));
            let mut args = vec!["-q", "-t", ca_type, "-N", ""];
            if let Some(b) = bits {
                args.extend(["-b", b]);
            }
            args.push("-f");
            let out = Command::new("ssh-keygen").args(&args).arg(&ca).output().unwrap();
            assert!(out.status.success());
            let blob = sign(&ca, &host, &["-h", "-n", "db01,10.0.0.5", "-V", "20260101:20300101"]);
            let cert = Certificate::parse(&blob).unwrap();
            assert_eq!(cert.key_type, "ecdsa-sha2-nistp256");
            assert_eq!(cert.public_key, pub_blob(&host), "the certified key is the host's");
            assert_eq!(cert.ca_key, pub_blob(&ca));
            assert_eq!(cert.principals, ["db01", "10.0.0.5"]);
            assert_eq!(cert.key_id, "host-id");
            assert_eq!(cert.problem("10.0.0.5", NOW), None, "{ca_type} CA");

            // A certificate whose signed part was changed (here its key id) no longer verifies.
            let mut forged = blob.clone();
            let at = forged.windows(7).position(|w| w == b"host-id").unwrap();
            forged[at] = b'H';
            let p = Certificate::parse(&forged).unwrap().problem("10.0.0.5", NOW);
            assert_eq!(p.as_deref(), Some("its CA signature does not verify"), "{ca_type}");
        }
    }

    #[test]
    fn principals_validity_type_and_options_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (host, ca) = (dir.path().join("host"), dir.path().join("ca"));
        keygen(&host, "ecdsa");
        keygen(&ca, "ed25519");
        let problem = |args: &[&str], name: &str| {
            Certificate::parse(&sign(&ca, &host, args)).unwrap().problem(name, NOW)
        };
        let valid = ["-V", "20260101:20300101"];
        let p = problem(&[&["-h", "-n", "db01"][..], &valid].concat(), "db02").unwrap();
        assert!(p.contains("db02 is not one of its principals (db01)"), "{p}");
        let p = problem(&["-h", "-n", "db01", "-V", "20200101:20250101"], "db01").unwrap();
        assert!(p.contains("expired on 2025-01-01"), "{p}");
        let p = problem(&["-h", "-n", "db01", "-V", "20290101:20300101"], "db01").unwrap();
        assert!(p.contains("not valid yet"), "{p}");
        let p = problem(&[&["-n", "db01"][..], &valid].concat(), "db01").unwrap();
        assert!(p.contains("not a host certificate"), "{p}");
        // Without principals a certificate names any host, as in OpenSSH.
        assert_eq!(problem(&[&["-h"][..], &valid].concat(), "anything"), None);
        let p = problem(&[&["-n", "db01", "-O", "force-command=x"][..], &valid].concat(), "db01");
        assert!(p.is_some(), "a user certificate with a critical option must not pass");
    }

    #[test]
    fn dates_print_as_utc() {
        assert_eq!(date(1_735_689_600), "2025-01-01 00:00:00 UTC");
        assert_eq!(date(u64::MAX), "forever");
    }

    #[test]
    fn malformed_blobs_are_not_certificates() {
        assert!(Certificate::parse(b"").is_none());
        let mut blob = Vec::new();
        put_string(&mut blob, b"ssh-ed25519-cert-v01@openssh.com");
        put_string(&mut blob, b"nonce");
        assert!(Certificate::parse(&blob).is_none());
    }
}

//! SSH transport: one authenticated connection per host (ssh2/libssh2), verified against a
//! known_hosts file, on which the engine runs many commands, each with its own stdin, stdout,
//! stderr and exit status.
//!
//! This module owns connecting, host key verification (and explicit trust on first use),
//! authentication (identity file or ssh-agent), privilege escalation with `sudo -n`, and moving
//! bytes without deadlocks. It knows nothing about what the commands do: probing, file transfer
//! and service handling are built on [`Session::exec`] by the apply stage.
//!
//! A [`Session`] is `Send`, so each worker thread can own the session of the host it converges.
//! Every error carries the host name as its location.

mod certificate;
mod jump;
mod known_hosts;
mod session;
pub mod ssh_config;

use std::path::PathBuf;
use std::time::Duration;

pub use session::{Output, Session};

/// Parses a known_hosts text and checks a key against it, for the fuzz targets.
pub(crate) fn known_hosts_for_fuzzing(text: &str) {
    let known = known_hosts::KnownHosts::parse(text);
    let Ok(session) = ssh2::Session::new() else { return };
    let mut blob = 11u32.to_be_bytes().to_vec();
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&[7; 32]);
    let key = known_hosts::HostKey::from_blob(&blob).expect("a well-formed key blob");
    for name in ["10.0.0.1", "[10.0.0.1]:2222", "db01.example.com"] {
        let _ = known.key_types(&session, name);
        let _ = known.verify(&session, name, &key);
    }
}

/// Where and how to connect to one host.
#[derive(Debug, Clone)]
pub struct Target {
    /// The inventory name of the host, used in every error message.
    pub host: String,
    /// An IP address or a DNS name.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// A private key without passphrase; `None` uses ssh-agent (`SSH_AUTH_SOCK`).
    pub identity: Option<PathBuf>,
    /// The OpenSSH known_hosts file the host key is checked against (a missing file is empty).
    pub known_hosts: PathBuf,
    /// Run commands through `sudo -n sh -c` when `user` is not root.
    pub sudo: bool,
    /// Trust on first use: record a key for a host that has none yet. A changed key is refused
    /// whatever this says.
    pub trust_new_host_keys: bool,
    /// Bounds the TCP connect and every protocol round trip (handshake, auth, opening a
    /// channel); a running command is bounded by keepalives instead.
    pub connect_timeout: Duration,
    /// The jump host this host is reached through (which may have its own): its session
    /// carries this one in a tunnel, as OpenSSH's ProxyJump does.
    pub jump: Option<Box<Target>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_send() {
        fn send<T: Send>() {}
        send::<Session>();
    }
}

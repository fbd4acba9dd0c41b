//! Secrets: which values are secret and how every output hides them ([`Secrets`]), encrypted
//! hiera values and the identities that decrypt them ([`Keyring`], [`crypt`]), and the text
//! transformations of `secret edit` ([`edit`]).
//!
//! Redaction is by value: whoever produces text for people (plans, diffs, catalogs, reports,
//! notes) runs it through the host's [`Secrets`] at the edge. This module knows nothing about
//! hiera, catalogs or hosts; they hand it the values.

pub mod crypt;
pub mod edit;
mod keyring;
mod redact;

pub use keyring::{KEY_FILE_VAR, Keyring, Keys};
pub use redact::Secrets;

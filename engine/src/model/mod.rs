//! The composition's files as typed data: `pipeline.toml` (hierarchy, environments, inventory,
//! stages), roles and profiles, each parsed with file and line on every error.
//!
//! Parsing checks each file on its own; cross-file consistency (a role's profiles exist, a
//! profile's `requires` are on the host) is checked by
//! [`Composition::load`](crate::composition::Composition::load) and the compiler.

pub mod hooks;
pub mod limit;
pub mod names;
mod pipeline;
mod profile;
mod role;
pub mod shard;
pub mod stages;

pub use pipeline::{Environment, Host, JumpHost, PIPELINE_FILE, Pipeline, SshSettings};
pub use profile::{
    Common, DirectoryDecl, ExecDecl, FileBody, FileDecl, Links, PackageDecl, PatchDecl, Profile,
    ServiceDecl, notify_target_id,
};
pub use role::Role;
pub use shard::Shard;

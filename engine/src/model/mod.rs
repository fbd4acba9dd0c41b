//! The composition as typed data: `pipeline.toml` (hierarchy, environments, inventory), roles and
//! profiles, parsed from a [`Snapshot`](crate::source::Snapshot) with file and line on every error.
//!
//! Parsing checks each file on its own; cross-file consistency (a role's profiles exist, a
//! profile's `requires` are on the host) is checked by [`Composition::load`] and the compiler.

mod composition;
mod pipeline;
mod profile;
mod role;
pub mod stages;
pub(crate) mod text;

pub use composition::Composition;
pub use pipeline::{Batch, Environment, Host, PIPELINE_FILE, Pipeline, Rollout, SshSettings};
pub use profile::{
    DirectoryDecl, ExecDecl, FileBody, FileDecl, PackageDecl, ParamDecl, ParamType, Profile,
    ServiceDecl, notify_target_id,
};
pub use role::Role;

//! The deployment pipeline: the stages of pipeline.toml run for one commit ([`runner`]), the
//! checks they run ([`checks`]), the hooks their ends fire ([`hooks`]), the promotion state they
//! record ([`store`]), and what reads it back ([`status`], [`rollback`]).
//!
//! The stages themselves are parsed with the rest of pipeline.toml, in `model::stages`: a
//! composition is data, running it is this module's.

pub mod checks;
pub mod gate;
pub mod hooks;
pub mod rollback;
pub mod runner;
pub mod stage_status;
pub mod status;
pub mod store;
pub mod sync;

pub use checks::PlannedCheck;
pub use runner::{ApplyResult, Ended, NotRun, Outcome, Runner, StageReport};
pub use store::{GitStore, Store};

#[cfg(test)]
mod tests;

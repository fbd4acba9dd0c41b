//! stackdeploy: a declarative deployment pipeline engine.
//!
//! Data flows one way: a [`source::Snapshot`] of the composition at a commit →
//! [`model::Composition`] → a compiled [`catalog::Catalog`] per host → (later stages) a plan
//! against probed state → apply → a recorded result. git, SSH and printing stay at the edges
//! (`source`, `transport`, `report`/`app`); everything in between is pure and unit-tested.

pub mod catalog;
pub mod error;
pub mod hiera;
pub mod model;
pub mod report;
pub mod source;

mod app;
mod check;
mod cli;
mod facts;

pub use app::run;
pub use error::{Error, ErrorKind, Result};

//! stackdeploy: a declarative deployment pipeline engine.
//!
//! Data flows one way: a [`source::Snapshot`] of the composition at a commit →
//! [`model::Composition`] → a compiled [`catalog::Catalog`] per host → (later stages) a plan
//! against probed state → apply → a recorded result. git, SSH and printing stay at the edges
//! (`source`, `transport`, `report`/`app`); everything in between is pure and unit-tested.

pub mod catalog;
pub mod checks;
pub mod cli;
pub mod diff;
pub mod error;
pub mod hiera;
pub mod lab;
pub mod model;
pub mod plan;
pub mod promotion;
pub mod remote;
pub mod report;
pub mod run;
pub mod source;
pub mod state;
pub mod transport;

mod app;
mod check;
mod converge;
mod facts;
mod progress;
mod promote;
mod review;
mod secret;
mod workdir;

pub use app::run;
pub use error::{Error, ErrorKind, Result};

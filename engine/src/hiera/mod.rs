//! Hiera-like data: the hierarchy of TOML data files, key lookups for one host with merge
//! behaviours, `lookup_options`, and `%{...}` interpolation.
//!
//! [`HieraData`] holds every parsed data file of a commit and is shared by all hosts;
//! [`HostHiera`] is one host's view of it (the hierarchy levels resolved with that host's
//! variables) and answers lookups. Nothing here reads files or knows about profiles.

mod data;
mod explain;
mod interpolate;
mod key;
mod lookup;
mod merge;

pub use data::HieraData;
pub use explain::{Explain, LevelOutcome};
pub use lookup::{HostHiera, Vars};

/// The interpolation tokenizer, for the fuzz targets.
pub(crate) fn tokenize_for_fuzzing(s: &str) -> bool {
    interpolate::tokenize(s).is_ok()
}
pub use merge::{Merge, MergeOptions};

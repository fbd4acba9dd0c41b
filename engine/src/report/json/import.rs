//! `import hiera --format json`: what was converted, written and left out.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Problem, SchemaVersion};
use crate::error::Errors;
use crate::import::hiera::{NotConverted, Outcome};

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportDoc<'a> {
    pub schema_version: SchemaVersion,
    /// The levels for pipeline.toml's `[hiera] hierarchy`.
    pub hierarchy: &'a [String],
    /// Each source file and the file written for it.
    pub files: Vec<Written<'a>>,
    /// What was not converted, with what to do about it (exit code 2).
    pub not_converted: &'a [NotConverted],
    pub notes: &'a [String],
    /// Files that could not be read or parsed (exit code 1); nothing of them was written.
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Written<'a> {
    pub from: &'a str,
    pub to: &'a str,
}

pub fn document<'a>(
    outcome: &'a Outcome,
    written: &'a [(String, String)],
    errors: &Errors,
) -> ImportDoc<'a> {
    ImportDoc {
        schema_version: SchemaVersion,
        hierarchy: &outcome.hierarchy,
        files: written.iter().map(|(from, to)| Written { from, to }).collect(),
        not_converted: &outcome.not_converted,
        notes: &outcome.notes,
        errors: Problem::all(errors),
    }
}

/// An import that stopped before converting anything: the same document, empty but for errors.
pub fn failed(errors: &Errors) -> ImportDoc<'static> {
    ImportDoc {
        schema_version: SchemaVersion,
        hierarchy: &[],
        files: Vec::new(),
        not_converted: &[],
        notes: &[],
        errors: Problem::all(errors),
    }
}

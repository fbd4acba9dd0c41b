//! `catalog --format json`: one host's compiled catalog.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::catalog::Catalog;
use crate::source::Origin;

#[derive(Debug, Serialize, JsonSchema)]
pub struct CatalogDoc<'a> {
    pub schema_version: SchemaVersion,
    /// The commit compiled (or the working tree, with `--worktree`).
    pub commit: Commit,
    /// The host, its role and address, and its resources in apply order.
    #[serde(flatten)]
    pub catalog: &'a Catalog,
    /// Always empty: a catalog that does not compile is a `Failure` document.
    pub errors: Vec<Problem>,
}

pub fn document<'a>(catalog: &'a Catalog, origin: &Origin) -> CatalogDoc<'a> {
    CatalogDoc {
        schema_version: SchemaVersion,
        commit: Commit::of(origin),
        catalog,
        errors: vec![],
    }
}

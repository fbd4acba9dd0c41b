//! `lookup --format json`: one hiera key's value for one host, with every level searched when
//! `--explain` is given; also when the lookup fails.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::error::Errors;
use crate::hiera::Explain;
use crate::source::Origin;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupDoc<'a> {
    pub schema_version: SchemaVersion,
    /// The commit looked in; `null` when the lookup failed before reading one.
    pub commit: Option<Commit>,
    pub key: &'a str,
    pub host: &'a str,
    pub environment: &'a str,
    pub found: bool,
    /// The value (secrets redacted unless `--show-secrets`); `null` when not found.
    #[schemars(with = "serde_json::Value")]
    pub value: Option<&'a toml::Value>,
    /// With `--explain`: every level searched, as far as the lookup got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<&'a Explain>,
    pub errors: Vec<Problem>,
}

pub struct Query<'a> {
    pub key: &'a str,
    pub host: &'a str,
    pub environment: &'a str,
}

pub fn found<'a>(
    q: &Query<'a>,
    origin: &Origin,
    value: Option<&'a toml::Value>,
    explain: Option<&'a Explain>,
) -> LookupDoc<'a> {
    LookupDoc {
        schema_version: SchemaVersion,
        commit: Some(Commit::of(origin)),
        key: q.key,
        host: q.host,
        environment: q.environment,
        found: value.is_some(),
        value,
        explain,
        errors: Vec::new(),
    }
}

pub fn failed<'a>(q: &Query<'a>, errors: &Errors, explain: Option<&'a Explain>) -> LookupDoc<'a> {
    LookupDoc {
        schema_version: SchemaVersion,
        commit: None,
        key: q.key,
        host: q.host,
        environment: q.environment,
        found: false,
        value: None,
        explain,
        errors: Problem::all(errors),
    }
}

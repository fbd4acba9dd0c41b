//! What `lookup --explain` shows: every level searched for the key and what it held, and the
//! chain of `%{lookup()}`/`%{alias()}` interpolations its value needed, each with the file and
//! line it was resolved from. Recorded even when the lookup fails, up to the failure.

use toml::Value;

#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Explain {
    pub key: String,
    pub merge: String,
    /// Where the merge behaviour came from.
    pub merge_source: String,
    /// The deep merge's knockout prefix, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knockout_prefix: Option<String>,
    pub levels: Vec<ExplainLevel>,
    /// Interpolations resolved while building the value, in the order they ran.
    pub interpolations: Vec<Interpolation>,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ExplainLevel {
    pub level: String,
    pub path: String,
    pub outcome: LevelOutcome,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum LevelOutcome {
    NoFile,
    NotFound,
    Found(#[schemars(with = "serde_json::Value")] Value),
    /// Not searched: `first` had already found the key at a higher level.
    NotSearched,
    /// The level has the key but its value could not be built (the message says why).
    Error(String),
}

/// One `%{lookup('k')}` or `%{alias('k')}` met while building a value.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Interpolation {
    /// 1 for an interpolation in the looked-up key's own value, 2 inside that one, ...
    pub depth: usize,
    pub function: &'static str,
    pub key: String,
    /// `file:line` of the value holding the interpolation.
    pub r#in: String,
    /// `file:line` of each value the key was resolved from (several when merged); empty when
    /// nothing was found.
    pub from: Vec<String>,
}

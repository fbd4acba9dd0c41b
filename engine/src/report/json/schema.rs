//! The JSON Schema of every output, generated from the document types with schemars, and
//! the list of outputs (`stackdeploy schema OUTPUT` prints one). The checked-in copies under
//! docs/schemas/ are compared with these by a test, so a change of a type that changes what
//! is printed cannot land without its published schema.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::Serialize;

use super::Failure;
use crate::pipeline::store::Record;

/// Every JSON document stackdeploy writes, by the name of its schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Check,
    Catalog,
    Lookup,
    Diff,
    Plan,
    Apply,
    Pipeline,
    Gate,
    Status,
    Import,
    Drift,
    /// The record git notes hold per commit under refs/notes/stackdeploy.
    Note,
}

/// What a command prints: its document, or the Failure of a command that stopped.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum Printed<D> {
    Done(D),
    Failed(Failure),
}

impl Output {
    pub const ALL: [Output; 12] = [
        Output::Check,
        Output::Catalog,
        Output::Lookup,
        Output::Diff,
        Output::Plan,
        Output::Apply,
        Output::Pipeline,
        Output::Gate,
        Output::Status,
        Output::Import,
        Output::Drift,
        Output::Note,
    ];

    /// The schema's file name stem: `plan` for docs/schemas/plan.schema.json.
    pub fn name(self) -> &'static str {
        match self {
            Output::Check => "check",
            Output::Catalog => "catalog",
            Output::Lookup => "lookup",
            Output::Diff => "diff",
            Output::Plan => "plan",
            Output::Apply => "apply",
            Output::Pipeline => "pipeline",
            Output::Gate => "gate",
            Output::Status => "status",
            Output::Import => "import",
            Output::Drift => "drift",
            Output::Note => "note",
        }
    }

    /// What writes it.
    pub fn writer(self) -> &'static str {
        match self {
            Output::Check => "stackdeploy check --format json",
            Output::Catalog => "stackdeploy catalog --format json",
            Output::Lookup => "stackdeploy lookup --format json",
            Output::Diff => "stackdeploy diff --format json",
            Output::Plan => "stackdeploy plan --format json",
            Output::Apply => "stackdeploy apply --format json",
            Output::Pipeline => "stackdeploy pipeline run --format json",
            Output::Gate => "stackdeploy pipeline gate --format json",
            Output::Status => "stackdeploy status --format json",
            Output::Import => "stackdeploy import hiera --format json",
            Output::Drift => "stackdeploy drift --format json",
            Output::Note => "stackdeploy pipeline run (git notes --ref stackdeploy show COMMIT)",
        }
    }

    pub fn schema(self) -> Schema {
        use super::*;
        let mut schema = match self {
            Output::Check => printed::<check::CheckDoc>(),
            Output::Catalog => printed::<catalog::CatalogDoc>(),
            // Failures are lookup documents too (with `errors`), as are import's.
            Output::Lookup => generate::<lookup::LookupDoc>(),
            Output::Diff => printed::<diff::DiffDoc>(),
            Output::Plan => printed::<plan::PlanDoc>(),
            Output::Apply => printed::<apply::ApplyDoc>(),
            Output::Pipeline => printed::<pipeline::PipelineDoc>(),
            Output::Gate => printed::<gate::GateDoc>(),
            Output::Status => printed::<status::StatusDoc>(),
            Output::Import => generate::<import::ImportDoc>(),
            Output::Drift => printed::<drift::DriftDoc>(),
            Output::Note => generate::<Record>(),
        };
        schema.insert("$id".into(), format!("{}.schema.json", self.name()).into());
        schema.insert("title".into(), self.writer().into());
        let what = match self {
            Output::Note => "The record of one commit's stages and approvals, as JSON in the \
                             commit's note under refs/notes/stackdeploy."
                .to_string(),
            Output::Lookup | Output::Import => {
                format!("What `{}` prints, also when it fails (then with `errors`).", self.writer())
            }
            _ => format!(
                "What `{}` prints: its document, or a Failure when the command stopped \
                 before it had a result.",
                self.writer()
            ),
        };
        schema.insert("description".into(), what.into());
        schema
    }

    /// The schema as published: pretty JSON with a final newline.
    pub fn schema_text(self) -> String {
        serde_json::to_string_pretty(&self.schema()).expect("schemas serialise") + "\n"
    }
}

fn generate<T: JsonSchema>() -> Schema {
    // What is written: fields skipped when empty are optional, whatever deserialising needs.
    SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>()
}

fn printed<D: JsonSchema>() -> Schema {
    generate::<Printed<D>>()
}

#[cfg(test)]
mod tests {
    use super::Output;

    /// The published schemas are what the types generate. To update them after changing a
    /// document type: `STACKDEPLOY_WRITE_SCHEMAS=1 cargo nextest run -E 'test(published_schemas)'`.
    #[test]
    fn published_schemas_are_what_the_types_generate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas");
        let write = std::env::var_os("STACKDEPLOY_WRITE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for output in Output::ALL {
            let path = dir.join(format!("{}.schema.json", output.name()));
            let want = output.schema_text();
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        let listed: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !Output::ALL.iter().any(|o| *n == format!("{}.schema.json", o.name())))
            .collect();
        assert!(listed.is_empty(), "docs/schemas/ has files no output writes: {listed:?}");
        assert!(
            stale.is_empty(),
            "these published schemas differ from what the document types generate: {stale:?}\n\
             regenerate them with: STACKDEPLOY_WRITE_SCHEMAS=1 cargo nextest run -E \
             'test(published_schemas)'  (and list any new output in docs/json.md)"
        );
    }
}

//! Turning engine results into text, JSON, JUnit XML or HTML. Pure functions returning
//! strings, so they can be snapshot-tested; the commands decide where the strings go and
//! whether to colour them. Events become lines, or a progress bar on a terminal
//! ([`progress`]).
//!
//! Callers pass already-redacted data: nothing here knows secret values.

pub mod catalog;
pub mod events;
pub mod import;
pub mod junit;
pub mod lookup;
pub mod pipeline;
pub mod plan;
pub mod precommit;
pub mod progress;
pub mod review;
pub mod status;

use serde_json::json;

use crate::error::{Error, Location};
use crate::source::Origin;

/// Version of every JSON document the CLI prints; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// ANSI colouring, decided by the caller (only on a terminal, never with NO_COLOR).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and NO_COLOR is not set.
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        Style { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    pub(crate) fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// A JSON document as printed: pretty, with a final newline.
pub(crate) fn json_text(doc: &serde_json::Value) -> String {
    serde_json::to_string_pretty(doc).expect("json") + "\n"
}

pub fn origin_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::Commit { id, summary } => json!({ "commit": id, "summary": summary }),
        Origin::Worktree { path } => json!({ "worktree": path }),
    }
}

/// One problem as JSON: `{ kind, message, path?, line?, host? }`.
pub fn error_json(e: &Error) -> serde_json::Value {
    let mut v = json!({ "kind": format!("{:?}", e.kind()).to_lowercase(), "message": e.to_string(), "detail": e.detail() });
    match e.location() {
        Some(Location::File { path, line }) => {
            v["path"] = json!(path);
            v["line"] = json!(line);
        }
        Some(Location::Host { host }) => v["host"] = json!(host),
        None => {}
    }
    v
}

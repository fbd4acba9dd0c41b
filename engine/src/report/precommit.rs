//! Precommit results (`check`) as text or JSON.

use crate::precommit::Precommit;
use crate::source::Origin;

/// Every problem as `path:line: message`, then the warnings.
pub fn text(result: &Precommit) -> String {
    let mut text = String::new();
    for e in &result.problems {
        text.push_str(&format!("{e}\n"));
    }
    for w in &result.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text
}

/// The one-line verdict for stderr.
pub fn verdict(result: &Precommit, origin: &Origin) -> String {
    if result.passed() {
        format!(
            "ok: {} environment(s), {} host(s), {} role(s), {} profile(s) compiled from {}",
            result.environments,
            result.hosts,
            result.roles,
            result.profiles,
            origin.label()
        )
    } else {
        format!("{} problem(s) in {}", result.problems.len(), origin.label())
    }
}

//! Applying a saved plan: only hosts whose probed state (and the plan computed now) are still
//! what the plan was made against are accepted; the others are refused with the reasons.

use super::HostRun;
use crate::plan::planfile::{SavedPlan, drift};

/// The hosts of a saved plan, sorted into what may be applied and what may not.
pub struct Gate {
    pub accepted: Vec<HostRun>,
    /// Host, why (every reason, joined).
    pub refused: Vec<(String, String)>,
}

/// Sorts prepared `runs` (the saved plan's hosts, prepared at its commit) against `saved`.
pub fn gate(saved: &SavedPlan, runs: Vec<HostRun>) -> Gate {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for run in runs {
        let reasons = match (&run.error, &run.plan, &run.observed, saved.host(&run.host.name)) {
            (Some(e), _, _, _) => vec![e.detail().to_string()],
            (None, Some(plan), Some(observed), Some(host)) => {
                drift(host, observed, plan, &run.catalog)
            }
            (None, _, _, None) => vec!["not in the plan".to_string()],
            _ => vec!["not prepared".to_string()],
        };
        if reasons.is_empty() {
            accepted.push(run);
        } else {
            refused.push((run.host.name.clone(), reasons.join("; ")));
        }
    }
    Gate { accepted, refused }
}

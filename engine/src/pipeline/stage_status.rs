//! [`StageStatus`]: how a stage stands for a commit, the one vocabulary of the notes recorded
//! in git, `pipeline run`'s report and `status`'s matrix (text and JSON alike).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a stage stands for a commit. Notes record only `passed` and `failed` (the result of a
/// run); `pipeline run` reports a stage it did not run as `awaiting_approval`, `refused` or
/// `skipped`; `status` shows a stage with no result as `approved`, `pending` or `unreadable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// It ran and passed.
    Passed,
    /// It ran and failed (or its result could not be published to the state remote).
    Failed,
    /// It needs a manual approval first (`stackdeploy approve`); the run stopped there.
    AwaitingApproval,
    /// Its `requires` had not passed for the commit; nothing was recorded.
    Refused,
    /// Not run: the run stopped at an earlier stage.
    Skipped,
    /// Approved, not run yet.
    Approved,
    /// Not run yet.
    Pending,
    /// The commit's note cannot be read (the document's `errors` say why and how to repair it).
    Unreadable,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Passed => "passed",
            StageStatus::Failed => "failed",
            StageStatus::AwaitingApproval => "awaiting_approval",
            StageStatus::Refused => "refused",
            StageStatus::Skipped => "skipped",
            StageStatus::Approved => "approved",
            StageStatus::Pending => "pending",
            StageStatus::Unreadable => "unreadable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StageStatus;

    #[test]
    fn the_text_is_the_json_name() {
        use StageStatus::*;
        for s in [Passed, Failed, AwaitingApproval, Refused, Skipped, Approved, Pending, Unreadable]
        {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}

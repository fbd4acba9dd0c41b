//! How a command ended, and the one mapping from that to the process exit code.
//!
//! Most exit codes are outcomes, not errors: CI tells "the plan has changes" (2) and "the
//! pipeline waits for an approval" (3) apart from a failure (1) by the code alone.

/// The outcome of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing to report (`plan`: no changes).
    Ok,
    /// `plan` (and `diff --exit-code`) found changes.
    Changes,
    /// An error, bad input or usage, a failed host or stage, a refusal, a cancelled prompt.
    Failed,
    /// `pipeline run` stopped at a stage that needs `stackdeploy approve`.
    AwaitingApproval,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Changes => 2,
            ExitStatus::AwaitingApproval => 3,
        }
    }

    /// `Failed` when `failed`, else `Ok`.
    pub fn failed_if(failed: bool) -> ExitStatus {
        if failed { ExitStatus::Failed } else { ExitStatus::Ok }
    }
}

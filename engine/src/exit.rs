//! How a command ended, and the one mapping from that to the process exit code.
//!
//! Most exit codes are outcomes, not errors: CI tells "the plan has changes" (2) and "the
//! pipeline waits for an approval" (3) apart from a failure (1) by the code alone. 2 is "done,
//! but there is something to look at": a plan's changes, or what `import` left out.

/// The outcome of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; nothing to report (`plan`: no changes).
    Ok,
    /// `plan` (and `diff --exit-code`) found changes; `drift` found drift.
    Changes,
    /// An error, bad input or usage, a failed host or stage, a refusal, a cancelled prompt.
    Failed,
    /// `pipeline run` stopped at a stage that needs `stackdeploy approve`.
    AwaitingApproval,
    /// `import` wrote what it converted and reported what it left out.
    Incomplete,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Changes | ExitStatus::Incomplete => 2,
            ExitStatus::AwaitingApproval => 3,
        }
    }

    /// `Failed` when `failed`, else `Ok`.
    pub fn failed_if(failed: bool) -> ExitStatus {
        if failed { ExitStatus::Failed } else { ExitStatus::Ok }
    }
}

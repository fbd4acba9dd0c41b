//! Who is running what, now: the run id every apply and stage records, the user the notes and
//! plan files name, and the line a second run sees when a host is locked.

/// One invocation of the engine.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `<seconds since the epoch>-<pid>`: unique per machine, sortable by time.
    pub id: String,
    pub user: String,
    /// What holds a host's lock during this run, as a second run shows it.
    pub lock_owner: String,
}

impl RunInfo {
    /// This process's run.
    pub fn current() -> RunInfo {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let id = format!("{}-{}", now.as_secs(), std::process::id());
        let user = user();
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let lock_owner = format!("run {id} by {user}@{machine} (pid {})", std::process::id());
        RunInfo { id, user, lock_owner }
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Who runs the engine: `STACKDEPLOY_USER`, else the login name.
pub fn user() -> String {
    std::env::var("STACKDEPLOY_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

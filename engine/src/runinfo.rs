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

/// Who runs the engine: `STACKDEPLOY_USER`; else the person the CI system ran the job for
/// (GitLab, Jenkins' build-user-vars plugin, GitHub Actions), since a CI job's login name is the
/// runner's account; else the login name.
pub fn user() -> String {
    user_from(|name| std::env::var(name).ok())
}

const USER_VARIABLES: [&str; 5] =
    ["STACKDEPLOY_USER", "GITLAB_USER_LOGIN", "BUILD_USER_ID", "GITHUB_ACTOR", "USER"];

fn user_from(var: impl Fn(&str) -> Option<String>) -> String {
    USER_VARIABLES
        .iter()
        .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ci_user_beats_the_runner_account() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            user_from(env(&[("USER", "gitlab-runner"), ("GITLAB_USER_LOGIN", "alice")])),
            "alice"
        );
        assert_eq!(user_from(env(&[("USER", "jenkins"), ("BUILD_USER_ID", "bob")])), "bob");
        assert_eq!(user_from(env(&[("USER", "runner"), ("GITHUB_ACTOR", "carol")])), "carol");
        assert_eq!(
            user_from(env(&[("GITLAB_USER_LOGIN", "alice"), ("STACKDEPLOY_USER", "ops")])),
            "ops"
        );
        assert_eq!(user_from(env(&[("USER", "dave"), ("GITHUB_ACTOR", "")])), "dave");
        assert_eq!(user_from(env(&[])), "unknown");
    }
}

//! The composition's local working directory, `.stackdeploy/` next to pipeline.toml: the facts
//! cache and each environment's lab (host filesystems, keys, sockets). None of it belongs in
//! git, so the directory carries its own `.gitignore`: a `git add -A` in the composition
//! repository must neither commit lab files nor fail on a socket or a file a lab daemon is
//! rewriting at that moment.

use std::io;
use std::path::{Path, PathBuf};

const DIR: &str = ".stackdeploy";
const IGNORE: &str =
    "# Written by stackdeploy: local state (facts cache, labs) never belongs in git.\n*\n";

pub fn facts(composition_dir: &Path) -> PathBuf {
    composition_dir.join(DIR).join("facts")
}

/// The lab of an environment keeps its keys and host filesystems under `.stackdeploy/lab/<env>`.
pub fn lab(composition_dir: &Path, env: &str) -> PathBuf {
    composition_dir.join(DIR).join("lab").join(env)
}

/// Creates `.stackdeploy/` with its `.gitignore`, before anything is written below it. An
/// existing `.gitignore` is left as the operator has it.
pub fn create(composition_dir: &Path) -> io::Result<()> {
    let root = composition_dir.join(DIR);
    std::fs::create_dir_all(&root)?;
    let ignore = root.join(".gitignore");
    if !ignore.exists() {
        let tmp = root.join(".gitignore.tmp");
        std::fs::write(&tmp, IGNORE)?;
        std::fs::rename(&tmp, &ignore)?;
    }
    Ok(())
}

/// [`create`] for commands that go on without it (a read-only checkout still runs).
pub fn create_best_effort(composition_dir: &Path) {
    if let Err(e) = create(composition_dir) {
        tracing::debug!("cannot create {}: {e}", composition_dir.join(DIR).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_ignores_everything_and_keeps_an_operator_file() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let ignore = dir.path().join(".stackdeploy/.gitignore");
        assert!(std::fs::read_to_string(&ignore).unwrap().lines().any(|l| l == "*"));
        std::fs::write(&ignore, "facts/\n").unwrap();
        create(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "facts/\n");
    }
}

//! The test builder: a composition in a fresh git repository in a temporary directory, and a
//! runner for the real `stackdeploy` binary that reports every mismatch with the command,
//! directory and both output streams.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_stackdeploy");

/// The repository root (where the shipped composition lives).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestRepo {
    dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl TestRepo {
    /// An empty git repository.
    pub fn empty() -> TestRepo {
        let dir = tempfile::Builder::new().prefix("stackdeploy-test").tempdir().expect("tempdir");
        let repo = git2::Repository::init(dir.path()).expect("git init");
        let mut cfg = repo.config().expect("config");
        cfg.set_str("user.name", "stackdeploy tests").unwrap();
        cfg.set_str("user.email", "tests@stackdeploy.invalid").unwrap();
        TestRepo { dir, repo }
    }

    /// A repository holding `tests/fixtures/<name>`, committed.
    pub fn fixture(name: &str) -> TestRepo {
        let repo = TestRepo::empty();
        copy_tree(&project_root().join("tests/fixtures").join(name), repo.path());
        repo.commit("fixture");
        repo
    }

    /// A repository holding the shipped composition of the project root, committed.
    pub fn shipped() -> TestRepo {
        let repo = TestRepo::empty();
        let root = project_root();
        for entry in ["pipeline.toml", "roles", "profiles", "hieradata", "checks"] {
            let from = root.join(entry);
            if from.is_dir() {
                copy_tree(&from, &repo.path().join(entry));
            } else {
                std::fs::copy(&from, repo.path().join(entry)).expect("copy pipeline.toml");
            }
        }
        repo.commit("shipped composition");
        repo
    }

    /// A repository holding a copy of `dir` (e.g. a composition under `examples/`), committed.
    pub fn from_dir(dir: &Path) -> TestRepo {
        let repo = TestRepo::empty();
        copy_tree(dir, repo.path());
        repo.commit(&format!("copy of {}", dir.display()));
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> &TestRepo {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Replaces `from` by `to` in a file, failing the test if `from` is not there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) -> &TestRepo {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1))
    }

    /// Commits the whole working tree; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = self.repo.signature().unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::new(self.path(), args)
    }

    /// Runs with extra environment variables (e.g. the age key file).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::with_env(self.path(), args, env)
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One finished run of the binary.
pub struct Run {
    pub cmd: String,
    pub dir: PathBuf,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new(dir: &Path, args: &[&str]) -> Run {
        Run::with_env(dir, args, &[])
    }

    pub fn with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("STACKDEPLOY_DIR")
            .env_remove("STACKDEPLOY_REV")
            .env_remove("STACKDEPLOY_ENV")
            .env_remove("STACKDEPLOY_AGE_KEY_FILE")
            .env_remove("CLICOLOR_FORCE")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .expect("run stackdeploy");
        let run = Run {
            cmd: format!("stackdeploy {}", args.join(" ")),
            dir: dir.to_path_buf(),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // Whatever a test asserts about it, a JSON output must follow its published schema.
        if let Some(schema) = crate::schema::output_of(args) {
            let v = crate::schema::violations(schema, &run.stdout);
            assert!(
                v.is_empty(),
                "{}",
                run.report(&[format!(
                    "stdout does not follow docs/schemas/{schema}.schema.json:\n{v}"
                )])
            );
        }
        run
    }

    fn report(&self, problems: &[String]) -> String {
        let mut s = String::new();
        for p in problems {
            let _ = writeln!(s, "- {p}");
        }
        let _ = write!(
            s,
            "command: {}\ndir: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd,
            self.dir.display(),
            self.code,
            self.stdout,
            self.stderr
        );
        s
    }

    /// Asserts the exit code and that each needle occurs in stdout or stderr; reports all
    /// mismatches at once.
    pub fn expect(&self, code: i32, needles: &[&str]) -> &Run {
        let mut problems = Vec::new();
        if self.code != code {
            problems.push(format!("expected exit code {code}, got {}", self.code));
        }
        for n in needles {
            if !self.stdout.contains(n) && !self.stderr.contains(n) {
                problems.push(format!("output does not contain {n:?}"));
            }
        }
        assert!(problems.is_empty(), "{}", self.report(&problems));
        self
    }

    pub fn success(&self) -> &Run {
        self.expect(0, &[])
    }

    /// Asserts that no output stream contains `needle`.
    pub fn lacks(&self, needle: &str) -> &Run {
        let found = self.stdout.contains(needle) || self.stderr.contains(needle);
        assert!(!found, "{}", self.report(&[format!("output contains {needle:?}")]));
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}", self.report(&[format!("stdout is not JSON: {e}")])))
    }
}

/// Every command line the machine's processes show while it runs (lab hosts share the
/// machine's process list): what tests that a secret never reaches one look through.
pub struct ProcessWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(std::collections::BTreeSet<String>, usize)>,
}

impl ProcessWatch {
    pub fn start() -> ProcessWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            let mut scans = 0;
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    if !cmdline.is_empty() {
                        seen.insert(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                    }
                }
                scans += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (seen, scans)
        });
        ProcessWatch { stop, thread }
    }

    /// Stops watching; the command lines that hold any of `needles`, after checking that the
    /// list was read often enough (`min_scans`) for the answer to mean something.
    pub fn stop(self, needles: &[&str], min_scans: usize) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (seen, scans) = self.thread.join().unwrap();
        assert!(scans >= min_scans, "the process list was read {scans} times only");
        seen.into_iter().filter(|c| needles.iter().any(|n| c.contains(n))).collect()
    }
}

/// The secret values of every host of every environment of the composition in `dir`, as
/// compiled at HEAD: (environment, host, its secrets).
pub fn compiled_secrets(dir: &Path) -> Vec<(String, String, Vec<String>)> {
    let snapshot = stackdeploy::Repo::discover(dir).unwrap().snapshot_at("HEAD").unwrap();
    let comp = stackdeploy::Composition::load(&snapshot).unwrap();
    let compiler = stackdeploy::Compiler::new(&comp).map_err(|e| format!("{e:?}")).unwrap();
    let mut out = Vec::new();
    for env in comp.pipeline.environments.values() {
        let ctx = stackdeploy::EnvContext::new(&comp, env, &|h| h.facts.clone());
        for host in &env.hosts {
            let catalog = compiler
                .compile(&ctx, host, host.facts.clone())
                .map_err(|e| format!("{e:?}"))
                .unwrap();
            let secrets = catalog.secrets.values().map(String::from).collect();
            out.push((env.name.clone(), host.name.clone(), secrets));
        }
    }
    out
}

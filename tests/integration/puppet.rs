//! Hiera semantics checked against real Puppet: every case of tests/fixtures/hiera-corpus is
//! looked up by Puppet 7's `puppet lookup` on the Hiera 5 YAML and by `stackdeploy lookup` on
//! the same data converted with `stackdeploy import hiera`. They must agree, hash key order
//! and array order included, except for the differences docs/puppet.md lists, which are
//! asserted on both sides.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TestRepo, project_root};

const ENV: &str = "corpus";

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The value, rendered as inline TOML in its own key order.
    Value(String),
    NotFound,
    Error(String),
}

impl Outcome {
    /// An expectation from cases.toml: JSON text, "not found" or "error: TEXT".
    fn expected(text: &str) -> Outcome {
        if text == "not found" {
            Outcome::NotFound
        } else if let Some(message) = text.strip_prefix("error: ") {
            Outcome::Error(message.to_string())
        } else {
            Outcome::Value(ordered(text))
        }
    }

    /// The same value, both not found, or both an error (the messages differ by nature).
    fn agrees(&self, other: &Outcome) -> bool {
        matches!((self, other), (Outcome::Error(_), Outcome::Error(_))) || self == other
    }

    fn matches(&self, expected: &Outcome) -> bool {
        match (self, expected) {
            (Outcome::Error(got), Outcome::Error(want)) => got.contains(want.as_str()),
            (got, want) => got == want,
        }
    }
}

/// JSON text as inline TOML, keeping the order of hash keys (toml's tables keep it; serde_json's
/// maps would sort them).
fn ordered(json: &str) -> String {
    let v: toml::Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("not JSON without nulls: {json}: {e}"));
    v.to_string()
}

struct Case {
    node: String,
    key: String,
    merge: Option<String>,
    knockout_prefix: Option<String>,
    differs: Option<(String, Outcome, Outcome)>,
}

impl Case {
    fn label(&self) -> String {
        let mut s = format!("{} on {}", self.key, self.node);
        if let Some(m) = &self.merge {
            s += &format!(" --merge {m}");
        }
        if let Some(p) = &self.knockout_prefix {
            s += &format!(" --knockout-prefix {p}");
        }
        s
    }
}

fn corpus() -> PathBuf {
    project_root().join("tests/fixtures/hiera-corpus")
}

fn load_cases() -> (toml::Table, Vec<Case>) {
    let text = std::fs::read_to_string(corpus().join("cases.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let nodes = doc["nodes"].as_table().unwrap().clone();
    let str_of = |c: &toml::Value, k: &str| c.get(k).and_then(|v| v.as_str()).map(String::from);
    let cases = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            node: str_of(c, "node").unwrap(),
            key: str_of(c, "key").unwrap(),
            merge: str_of(c, "merge"),
            knockout_prefix: str_of(c, "knockout_prefix"),
            differs: str_of(c, "differs").map(|row| {
                let side = |k: &str| {
                    Outcome::expected(&str_of(c, k).unwrap_or_else(|| panic!("{row}: no {k}")))
                };
                let (puppet, ours) = (side("puppet"), side("stackdeploy"));
                (row.clone(), puppet, ours)
            }),
        })
        .collect();
    (nodes, cases)
}

fn facts_of(nodes: &toml::Table, node: &str) -> toml::Table {
    nodes[node]["facts"].as_table().unwrap().clone()
}

/// Puppet's side: an environment directory holding the corpus, a confdir of its own (no global
/// hiera.yaml), one facts file per node.
struct Puppet {
    dir: tempfile::TempDir,
}

impl Puppet {
    fn new(nodes: &toml::Table) -> Puppet {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("environments/production");
        crate::util::copy_tree(&corpus(), &env);
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        for node in nodes.keys() {
            let facts = serde_json::to_string(&facts_of(nodes, node)).unwrap();
            std::fs::write(dir.path().join(format!("{node}.json")), facts).unwrap();
        }
        Puppet { dir }
    }

    /// `puppet lookup` of a case. Lookups run four at a time, each with state directories of
    /// its own (puppet writes to its vardir and rundir); a lookup that fails with output is
    /// tried once more, since a CI run once saw one fail that passes on its own, and its
    /// message is what the comparison shows if it fails again.
    fn lookup(&self, case: &Case) -> Outcome {
        match self.lookup_once(case) {
            Outcome::Error(_) => self.lookup_once(case),
            outcome => outcome,
        }
    }

    fn lookup_once(&self, case: &Case) -> Outcome {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = self.dir.path();
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let own = d.join(format!("state/{call}"));
        let mut cmd = Command::new("puppet");
        cmd.arg("lookup")
            .arg("--confdir")
            .arg(d.join("conf"))
            .arg("--vardir")
            .arg(own.join("var"))
            .arg("--rundir")
            .arg(own.join("run"))
            .arg("--logdir")
            .arg(own.join("log"))
            .arg("--environmentpath")
            .arg(d.join("environments"))
            .args(["--environment", "production", "--node", &case.node, "--facts"])
            .arg(d.join(format!("{}.json", case.node)))
            .args(["--render-as", "json"]);
        if let Some(m) = &case.merge {
            cmd.args(["--merge", m]);
        }
        if let Some(p) = &case.knockout_prefix {
            cmd.arg(format!("--knock-out-prefix={p}"));
        }
        let out = cmd.arg(&case.key).output().unwrap_or_else(|e| {
            panic!("cannot run puppet ({e}); install it: `bash .ci/install-deps` (as root)")
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Outcome::Value(ordered(stdout.trim()))
        } else if stderr.trim().is_empty() && stdout.trim().is_empty() {
            // `puppet lookup` prints nothing for a key it did not find, and for a lookup that
            // failed (a cycle, a merge of the wrong types): both are "not found" to its user.
            Outcome::NotFound
        } else {
            Outcome::Error(format!("{stdout}{stderr}"))
        }
    }
}

/// stackdeploy's side: the corpus imported into a fresh composition with one host per node.
fn stackdeploy_repo(nodes: &toml::Table) -> TestRepo {
    let repo = TestRepo::empty();
    let config = corpus().join("hiera.yaml");
    let import = repo.run(&[
        "import",
        "hiera",
        "--config",
        config.to_str().unwrap(),
        "--out",
        repo.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report = import.json();
    assert!(
        report["not_converted"].as_array().is_some_and(|a| a.is_empty()),
        "the corpus must import completely: {report:#}"
    );
    let hierarchy: Vec<String> = report["hierarchy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let mut pipeline = toml::Table::new();
    pipeline
        .insert("project".into(), toml::Value::Table(toml::from_str("name = \"corpus\"").unwrap()));
    let mut hiera = toml::Table::new();
    hiera.insert("hierarchy".into(), toml::Value::try_from(hierarchy).unwrap());
    pipeline.insert("hiera".into(), toml::Value::Table(hiera));
    let mut hosts = toml::Table::new();
    let mut roles = Vec::new();
    for (i, node) in nodes.keys().enumerate() {
        let facts = facts_of(nodes, node);
        let role = facts["role"].as_str().unwrap().to_string();
        let mut host = toml::Table::new();
        host.insert("address".into(), format!("127.0.9.{}", i + 1).into());
        host.insert("role".into(), role.clone().into());
        host.insert("facts".into(), toml::Value::Table(facts));
        hosts.insert(node.clone(), toml::Value::Table(host));
        roles.push(role);
    }
    let env: toml::Table = [("hosts".to_string(), toml::Value::Table(hosts))].into_iter().collect();
    let envs: toml::Table = [(ENV.to_string(), toml::Value::Table(env))].into_iter().collect();
    pipeline.insert("environments".into(), toml::Value::Table(envs));
    repo.write("pipeline.toml", &toml::to_string(&pipeline).unwrap());
    for role in roles {
        repo.write(&format!("roles/{role}.toml"), "profiles = []\n");
    }
    repo.commit("the corpus, imported");
    repo
}

fn stackdeploy_lookup(repo: &Path, case: &Case) -> Outcome {
    let mut args = vec!["lookup", case.key.as_str(), "--env", ENV, "--host", case.node.as_str()];
    if let Some(m) = &case.merge {
        args.extend(["--merge", m.as_str()]);
    }
    let prefix;
    if let Some(p) = &case.knockout_prefix {
        prefix = format!("--knockout-prefix={p}");
        args.push(&prefix);
    }
    let json_run = crate::util::Run::new(repo, &[args.as_slice(), &["--format", "json"]].concat());
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&json_run.stdout) else {
        return Outcome::Error(format!("no JSON on stdout: {}", json_run.stderr));
    };
    if let Some(first) = doc["errors"].as_array().and_then(|e| e.first()) {
        return Outcome::Error(first["message"].as_str().unwrap().to_string());
    }
    if doc["found"] != true {
        return Outcome::NotFound;
    }
    // JSON objects lose their key order; the text output (inline TOML) keeps it.
    match &doc["value"] {
        serde_json::Value::String(s) => Outcome::Value(toml::Value::String(s.clone()).to_string()),
        _ => {
            let text = crate::util::Run::new(repo, &args);
            let v: toml::Table = toml::from_str(&format!("v = {}", text.stdout.trim()))
                .unwrap_or_else(|e| panic!("{}: not inline TOML: {e}", text.stdout));
            Outcome::Value(v["v"].to_string())
        }
    }
}

#[test]
fn stackdeploy_answers_as_puppet_lookup_does_except_where_documented() {
    let (nodes, cases) = load_cases();
    let puppet = Puppet::new(&nodes);
    let repo = stackdeploy_repo(&nodes);
    // `puppet lookup` starts a Ruby interpreter per call (about a second): four at a time.
    let puppet_outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let chunks: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| s.spawn(|| chunk.iter().map(|c| puppet.lookup(c)).collect::<Vec<_>>()))
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let docs = std::fs::read_to_string(project_root().join("docs/puppet.md")).unwrap();
    let mut problems = Vec::new();
    for (case, from_puppet) in cases.iter().zip(puppet_outcomes) {
        let from_us = stackdeploy_lookup(repo.path(), case);
        match &case.differs {
            None if from_puppet.agrees(&from_us) => {}
            None => problems.push(format!(
                "{}: puppet says {from_puppet:?}, stackdeploy says {from_us:?}",
                case.label()
            )),
            Some((row, want_puppet, want_us)) => {
                if !docs.contains(&format!("| {row} |")) {
                    problems.push(format!("{}: docs/puppet.md has no row '{row}'", case.label()));
                }
                if !from_puppet.matches(want_puppet) {
                    problems.push(format!(
                        "{} ({row}): puppet now says {from_puppet:?}, cases.toml expects {want_puppet:?}",
                        case.label()
                    ));
                }
                if !from_us.matches(want_us) {
                    problems.push(format!(
                        "{} ({row}): stackdeploy now says {from_us:?}, cases.toml expects {want_us:?}",
                        case.label()
                    ));
                }
                if from_puppet == from_us {
                    problems.push(format!("{} ({row}): both now say {from_us:?}", case.label()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

//! Every `--format json` document the suite makes the binary print is validated against its
//! published schema (docs/schemas/) by Python's jsonschema, an implementation independent of
//! the schemars that generated the schemas: [`crate::util::Run`] does it for every run with
//! `--format json`, failures included, and the pipeline tests for the notes they read. The
//! tests here are about the schemas and the validator themselves.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::util::{BIN, TestRepo, project_root};

/// Debian's python3 with its python3-jsonschema (what .ci/install-deps installs), else any
/// python3 that has jsonschema.
fn python() -> &'static str {
    static PYTHON: OnceLock<&'static str> = OnceLock::new();
    PYTHON.get_or_init(|| {
        for candidate in ["/usr/bin/python3", "python3"] {
            let ok = Command::new(candidate)
                .args(["-c", "import jsonschema"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return candidate;
            }
        }
        panic!(
            "validating JSON outputs needs python3 with jsonschema: apt-get install \
             python3-jsonschema (see .ci/install-deps)"
        )
    })
}

/// The schema a command's `--format json` output follows, by its file name stem.
pub fn output_of(args: &[&str]) -> Option<&'static str> {
    let json =
        args.windows(2).any(|w| w == ["--format", "json"]) || args.contains(&"--format=json");
    if !json {
        return None;
    }
    for (i, arg) in args.iter().enumerate() {
        let output = match *arg {
            "check" => "check",
            "catalog" => "catalog",
            "lookup" => "lookup",
            "diff" => "diff",
            "plan" => "plan",
            "apply" => "apply",
            "status" => "status",
            "import" => "import",
            "drift" => "drift",
            "pipeline" if args.get(i + 1) == Some(&"gate") => "gate",
            "pipeline" => "pipeline",
            _ => continue,
        };
        return Some(output);
    }
    None
}

/// Every violation of `doc` against docs/schemas/`output`.schema.json, one per line; empty
/// when it is valid.
pub fn violations(output: &str, doc: &str) -> String {
    let schema = project_root().join(format!("docs/schemas/{output}.schema.json"));
    let mut child = Command::new(python())
        .arg(project_root().join("tests/fixtures/json/validate.py"))
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => String::new(),
        Some(1) => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => panic!(
            "the validator failed on {}: {}{}",
            schema.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Panics with every violation when `doc` does not follow `output`'s schema.
pub fn assert_valid(output: &str, doc: &str) {
    let v = violations(output, doc);
    assert!(
        v.is_empty(),
        "not a valid {output} document (docs/schemas/{output}.schema.json):\n{v}\n{doc}"
    );
}

#[test]
fn the_validator_catches_what_the_schema_forbids() {
    // The real document of a real run, then the same with one field as before schema 2.
    let repo = TestRepo::fixture("minimal");
    let run = repo.run(&["check", "--format", "json"]);
    run.success();
    assert_eq!(violations("check", &run.stdout), "");
    let mut doc = run.json();
    doc["problems"] = serde_json::json!([]);
    let v = violations("check", &doc.to_string());
    assert!(v.contains("problems"), "{v}");
    let mut doc = run.json();
    doc["schema_version"] = 1.into();
    assert!(violations("check", &doc.to_string()).contains("schema_version"));
    let mut doc = run.json();
    doc["commit"] = "1a2b3c".into();
    assert!(violations("check", &doc.to_string()).contains("commit"));
}

#[test]
fn schema_prints_the_published_schemas() {
    for output in [
        "check", "catalog", "lookup", "diff", "plan", "apply", "pipeline", "gate", "status",
        "import", "note",
    ] {
        let out = Command::new(BIN).args(["schema", output]).output().unwrap();
        assert!(out.status.success(), "stackdeploy schema {output}: {out:?}");
        let published = std::fs::read_to_string(
            project_root().join(format!("docs/schemas/{output}.schema.json")),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), published, "{output}");
    }
}

#[test]
fn a_command_that_stops_prints_a_failure_document() {
    let repo = TestRepo::fixture("minimal");
    for (args, output) in [
        (&["plan", "--env", "nope", "--format", "json"][..], "plan"),
        (&["diff", "HEAD", "--env", "nope", "--format", "json"][..], "diff"),
        (&["catalog", "--env", "nope", "--host", "x", "--format", "json"][..], "catalog"),
        (&["--rev", "no-such-rev", "status", "--format", "json"][..], "status"),
    ] {
        let run = repo.run(args);
        run.expect(1, &["error:"]);
        let doc = run.json();
        assert_eq!(doc["schema_version"], 2, "{}", run.stdout);
        assert_eq!(doc["command"], output, "{}", run.stdout);
        let errors = doc["errors"].as_array().unwrap();
        assert!(!errors.is_empty() && errors[0]["message"].is_string(), "{}", run.stdout);
        assert_valid(output, &run.stdout);
    }
}

//! The JUnit file of `pipeline run --junit` read by consumers nobody on the project wrote:
//! validated with xmllint against Jenkins' junit-10.xsd (tests/fixtures/junit/), parsed by
//! Python's ElementTree and by junitparser (tests/fixtures/junit/read.py), after a real pipeline
//! run on lab hosts. Lab network: 23 (see the table in converge.rs).

use std::path::Path;
use std::process::Command;

use crate::converge::Lab;

/// Asserts that `file` is valid against Jenkins' junit-10.xsd, with xmllint's complaint.
pub fn validate(file: &Path) {
    let xsd = crate::util::project_root().join("tests/fixtures/junit/junit-10.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(file)
        .output()
        .expect("xmllint (Debian package libxml2-utils, see .ci/install-deps)");
    assert!(
        out.status.success(),
        "{} is not valid against junit-10.xsd:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// What ElementTree and junitparser read in `file` (see read.py).
pub fn read(file: &Path) -> serde_json::Value {
    let script = crate::util::project_root().join("tests/fixtures/junit/read.py");
    // Debian's python3: the one python3-junitparser installs into.
    let python =
        if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let out = Command::new(python).arg(&script).arg(file).output().expect("python3");
    assert!(
        out.status.success(),
        "read.py could not read {}:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks that print colour and control characters, a failing check, and stages that never
/// run: the file is valid, both readers count the same cases, and the failure says what failed.
#[test]
fn a_failed_run_with_control_characters_is_a_junit_file_ci_tools_read() {
    let lab = Lab::up(23, &["staging"]);
    // Two more integration checks: one prints an ANSI colour, a window title, NUL, SOH and a
    // tab and passes; one prints a coloured first line and fails.
    let checks = r#"[[stages.checks]]
name = "colourful output"
on = "role:database"
command = '''printf '\033[31mred\033[0m \033]0;title\007nul:\000 soh:\001 tab:\tend\n' '''
timeout = 10

[[stages.checks]]
name = "keystone-token"
on = "role:controller"
command = '''printf '\033[1mHTTP 401\033[0m Unauthorized <&>\nsecond line\n'; exit 1'''
timeout = 10

[[stages]]
name = "canary""#;
    lab.repo.edit("pipeline.toml", "[[stages]]\nname = \"canary\"", checks);
    lab.repo.commit("checks that print escapes, and one that fails");
    let junit = lab.repo.path().join("junit.xml");
    let run = lab.run(&["pipeline", "run", "--yes", "--junit", junit.to_str().unwrap()]);
    run.expect(1, &["integration", "FAILED", "keystone-token"]);

    validate(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains('\u{1b}') && !xml.contains('\0') && !xml.contains('\u{1}'), "{xml}");
    let seen = read(&junit);

    // Stage -> (tests, failures, skipped): precommit one case; deploy one apply per staging
    // host; integration the five checks; canary (one production host per role) and release
    // (all seven) did not run: their applies and checks are skipped.
    let expected = [
        ("precommit", 1, 0, 0),
        ("deploy-staging", 4, 0, 0),
        ("integration", 5, 1, 0),
        ("canary", 5, 0, 5),
        ("release", 7, 0, 7),
    ];
    let etree = &seen["etree"]["suites"];
    let parsed = &seen["junitparser"];
    let names: Vec<&String> = etree.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), expected.len(), "{seen}");
    for (stage, tests, failures, skipped) in expected {
        let e = &etree[stage];
        let claims = &e["attributes"];
        let counted = (e["tests"].as_u64(), e["failures"].as_u64(), e["skipped"].as_u64());
        let want = (Some(tests), Some(failures), Some(skipped));
        assert_eq!(counted, want, "{stage}: the elements ElementTree sees\n{seen}");
        let claimed =
            [&claims["tests"], &claims["failures"], &claims["skipped"], &claims["errors"]];
        let claimed: Vec<&str> = claimed.iter().map(|v| v.as_str().unwrap()).collect();
        let want = [tests.to_string(), failures.to_string(), skipped.to_string(), "0".into()];
        assert_eq!(claimed, want, "{stage}: the suite's attributes\n{seen}");
        let p = &parsed[stage];
        let got = [&p["tests"], &p["failures"], &p["skipped"], &p["errors"], &p["cases"]];
        let got: Vec<u64> = got.iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(got, [tests, failures, skipped, 0, tests], "{stage}: junitparser\n{seen}");
        assert_eq!(p["failure_results"], failures, "{stage}\n{seen}");
        assert_eq!(p["skipped_results"], skipped, "{stage}\n{seen}");
        assert!(e["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{stage}: {e}");
    }
    let totals = &seen["etree"]["totals"];
    assert_eq!((totals["tests"].as_str(), totals["failures"].as_str()), (Some("22"), Some("1")));

    // The failure says which check failed where, with the first line of its output.
    let message =
        "check 'keystone-token' failed on controller01 (exit 1): HTTP 401 Unauthorized <&>";
    assert_eq!(etree["integration"]["failure_messages"], serde_json::json!([message]), "{seen}");
    assert_eq!(parsed["integration"]["failure_messages"], serde_json::json!([message]));
    // Ran stages have a timestamp (UTC, no zone); stages that did not run none.
    let stamp = etree["integration"]["timestamp"].as_str().unwrap();
    assert!(regex_like_timestamp(stamp), "{stamp}");
    assert!(etree["canary"]["timestamp"].is_null(), "{seen}");
    // Each check's output is its case's system-out, colour removed, control characters shown.
    let cases = &etree["integration"]["cases"];
    assert_eq!(
        cases["stackdeploy.integration / colourful output on db01"],
        "red nul:\\x00 soh:\\x01 tab:\tend",
        "{seen}"
    );
    let names: Vec<&String> = cases.as_object().unwrap().keys().collect();
    assert!(
        names
            .contains(&&"stackdeploy.integration / every API frontend answers HTTP (local)".into()),
        "{names:?}"
    );
    let deploy = etree["deploy-staging"]["cases"].as_object().unwrap();
    assert!(deploy.contains_key("stackdeploy.deploy-staging / apply on compute02"), "{deploy:?}");
    let release = etree["release"]["cases"].as_object().unwrap();
    assert!(release.contains_key("stackdeploy.release / apply on compute04"), "{release:?}");
    assert!(xml.contains("<skipped message=\"not run: stage 'integration' failed\"/>"), "{xml}");
}

/// `YYYY-MM-DDTHH:MM:SS`.
fn regex_like_timestamp(s: &str) -> bool {
    let shape: String = s.chars().map(|c| if c.is_ascii_digit() { 'd' } else { c }).collect();
    shape == "dddd-dd-ddTdd:dd:dd"
}

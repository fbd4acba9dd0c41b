//! The JUnit file of `pipeline run --junit` read by consumers nobody on the project wrote:
//! validated with xmllint against Jenkins' junit-10.xsd (tests/fixtures/junit/), parsed by
//! Python's ElementTree and by junitparser (tests/fixtures/junit/read.py), after a real pipeline
//! run on lab hosts. Lab networks: 23, 30 (see the table in converge.rs).

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
    let skipped = etree["canary"]["skipped_messages"].as_array().unwrap();
    assert!(skipped.iter().all(|m| m == "not run: stage 'integration' failed"), "{seen}");
}

/// The counts every suite claims are the elements both readers count, and the document's are
/// the sum of its suites'.
fn assert_counts_add_up(seen: &serde_json::Value) {
    let mut sum = [0u64; 3];
    for (stage, e) in seen["etree"]["suites"].as_object().unwrap() {
        let counted = ["tests", "failures", "errors", "skipped"].map(|k| e[k].as_u64().unwrap());
        let claims = &e["attributes"];
        let claimed = ["tests", "failures", "errors", "skipped"]
            .map(|k| claims[k].as_str().unwrap().parse::<u64>().unwrap());
        assert_eq!(claimed, counted, "{stage}: attributes against elements\n{seen}");
        let p = &seen["junitparser"][stage];
        let parsed =
            [&p["cases"], &p["failure_results"], &p["error_results"], &p["skipped_results"]]
                .map(|v| v.as_u64().unwrap());
        assert_eq!(parsed, counted, "{stage}: junitparser\n{seen}");
        for (s, n) in sum.iter_mut().zip(counted) {
            *s += n;
        }
    }
    let totals = &seen["etree"]["totals"];
    let totals = ["tests", "failures", "errors"]
        .map(|k| totals[k].as_str().unwrap().parse::<u64>().unwrap());
    assert_eq!(totals, sum, "<testsuites>\n{seen}");
}

/// One staging host cannot be reached (its inventory address moved to one of the lab's
/// network where nothing listens), one refuses its change (haproxy rejects the config it is
/// given), two converge: JUnit's "could not run" `<error>` for the first, a `<failure>` for
/// the second, passes for the others; the counts add up and every case has its time.
#[test]
fn an_unreachable_host_is_an_error_and_a_refused_change_a_failure() {
    let lab = Lab::up(30, &["staging"]);
    lab.repo.write(
        "hieradata/nodes/staging/controller01.toml",
        "[\"haproxy::timeouts\"]\nclient = \"ten minutes\"\n",
    );
    // The controller's failure must not stop the rollout before the compute hosts.
    lab.repo.edit("pipeline.toml", "failure_budget = 0", "failure_budget = 1");
    let compute02 = format!("\"{}\"", lab.address("compute02"));
    lab.repo.edit("pipeline.toml", &compute02, "\"127.78.30.99\"");
    lab.repo.commit("compute02 moved where nothing listens, a timeout haproxy refuses");
    let junit = lab.repo.path().join("junit.xml");
    let run = lab.run(&["pipeline", "run", "--yes", "--junit", junit.to_str().unwrap()]);
    run.expect(1, &["deploy-staging", "FAILED"]);

    validate(&junit);
    let seen = read(&junit);
    assert_counts_add_up(&seen);
    let deploy = &seen["etree"]["suites"]["deploy-staging"];
    let counted = ["tests", "failures", "errors", "skipped"].map(|k| deploy[k].as_u64().unwrap());
    assert_eq!(counted, [4, 1, 1, 0], "{seen}");
    let parsed = &seen["junitparser"]["deploy-staging"];
    assert_eq!((parsed["failures"].as_u64(), parsed["errors"].as_u64()), (Some(1), Some(1)));

    let errors = deploy["error_messages"].as_array().unwrap();
    let error = errors[0].as_str().unwrap();
    assert!(
        error.starts_with("could not apply on compute02: cannot connect to 127.78.30.99:2222"),
        "{error}"
    );
    let failures = deploy["failure_messages"].as_array().unwrap();
    let failure = failures[0].as_str().unwrap();
    assert!(
        failure.starts_with(
            "apply failed on controller01: file:/etc/haproxy/haproxy.cfg: validate failed"
        ),
        "{failure}"
    );
    let out = deploy["cases"]["stackdeploy.deploy-staging / apply on db01"].as_str().unwrap();
    assert!(out.ends_with(" change(s)"), "{out}");

    // Every case has a time; the hosts' applies took some (over SSH, more than a millisecond).
    for (stage, suite) in seen["etree"]["suites"].as_object().unwrap() {
        for (case, time) in suite["times"].as_object().unwrap() {
            let time = time.as_str().unwrap_or_else(|| panic!("{stage}: {case} has no time"));
            assert!(time.parse::<f64>().is_ok(), "{case}: {time}");
        }
    }
    let times = &deploy["times"];
    for host in ["db01", "controller01", "compute01"] {
        let t = times[format!("stackdeploy.deploy-staging / apply on {host}")].as_str().unwrap();
        assert!(t.parse::<f64>().unwrap() >= 0.001, "{host}: {t}");
    }
    let total = seen["etree"]["totals"]["time"].as_str().unwrap();
    assert!(total.parse::<f64>().unwrap() > 0.0, "{total}");
}

/// `YYYY-MM-DDTHH:MM:SS`.
fn regex_like_timestamp(s: &str) -> bool {
    let shape: String = s.chars().map(|c| if c.is_ascii_digit() { 'd' } else { c }).collect();
    shape == "dddd-dd-ddTdd:dd:dd"
}

//! The deployment pipeline end to end: real git repositories (notes and refs read back with
//! git2), real lab hosts for staging and production, the shipped pipeline.toml stages.
//!
//! Networks: 127.78.N.0/24 (staging) and 127.79.N.0/24 (production), N from the table (the
//! converge tests use 1–8).
//!
//! | N | test |
//! |---|------|
//! | 11 | a_good_commit_goes_through_every_stage |
//! | 12 | a_broken_service_fails_integration_and_production_is_untouched |
//! | 13 | a_commit_failing_only_on_the_canary_is_rolled_back_there |
//! | 14 | releasing_a_commit_that_skipped_a_stage_is_refused_and_approval_gates |
//! | 15 | rollback_returns_production_to_the_previous_release |
//! | 16 | a_deploy_that_is_not_idempotent_fails |
//! | 17 | encrypted_secrets_reach_hosts_and_no_output_shows_them |
//! | 22 | a_secret_full_of_shell_and_json_syntax_shows_nowhere |
//! | 25 | a_stage_run_in_two_shards_passes_at_the_gate |

use crate::converge::Lab;

pub fn git(lab: &Lab) -> git2::Repository {
    git2::Repository::open(lab.repo.path()).unwrap()
}

pub fn env_ref(lab: &Lab, env: &str) -> Option<String> {
    git(lab)
        .find_reference(&format!("refs/stackdeploy/envs/{env}"))
        .ok()
        .and_then(|r| r.target())
        .map(|o| o.to_string())
}

pub fn note(lab: &Lab, commit: &str) -> serde_json::Value {
    let repo = git(lab);
    let oid = git2::Oid::from_str(commit).unwrap();
    let note = repo
        .find_note(Some("refs/notes/stackdeploy"), oid)
        .expect("a stackdeploy note on the commit");
    crate::schema::assert_valid("note", note.message().unwrap());
    serde_json::from_str(note.message().unwrap()).unwrap()
}

pub fn head(lab: &Lab) -> String {
    git(lab).head().unwrap().peel_to_commit().unwrap().id().to_string()
}

/// A bare repository the lab's pipeline publishes its state to (`state_remote`), and the
/// commit that says so.
fn with_state_remote(lab: &Lab) -> (tempfile::TempDir, String) {
    let remote = tempfile::tempdir().unwrap();
    git2::Repository::init_bare(remote.path()).unwrap();
    lab.repo.edit(
        "pipeline.toml",
        "name = \"openstack\"",
        &format!("name = \"openstack\"\nstate_remote = \"{}\"", remote.path().display()),
    );
    let commit = lab.repo.commit("publish pipeline state");
    (remote, commit)
}

fn pipeline(lab: &Lab, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["pipeline", "run", "--yes"];
    args.extend_from_slice(extra);
    lab.run(&args)
}

/// sha256 of a file on a production host.
fn prod_hash(lab: &Lab, host: &str, path: &str) -> String {
    lab.sh_in("production", host, &format!("sha256sum < {path}"))
}

pub fn applied_commit(lab: &Lab, env: &str, host: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&lab.sh_in(env, host, "cat /var/lib/stackdeploy/applied.json"))
            .unwrap();
    record["commit"].as_str().unwrap().to_string()
}

#[test]
fn a_good_commit_goes_through_every_stage() {
    let lab = Lab::up(11, &["staging", "production"]);
    // Another CI agent's view: a remote the pipeline pushes its state to.
    let (remote, _) = with_state_remote(&lab);
    let junit = lab.repo.path().join("junit.xml");
    let run = pipeline(&lab, &["--junit", junit.to_str().unwrap(), "--format", "json"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["status"], "passed");
    let names: Vec<&str> =
        doc["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["precommit", "deploy-staging", "integration", "canary", "release"]);
    // The integration checks really ran against the deployed daemons.
    let checks = doc["stages"][2]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(checks.iter().all(|c| c["passed"] == true));

    let commit = head(&lab);
    assert_eq!(env_ref(&lab, "staging").as_deref(), Some(commit.as_str()));
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(commit.as_str()));
    let record = note(&lab, &commit);
    for stage in names {
        assert_eq!(record["stages"][stage]["status"], "passed", "{stage}: {record}");
    }
    assert_eq!(record["stages"]["release"]["hosts"].as_array().unwrap().len(), 7);
    for host in ["db01", "controller02", "compute04"] {
        assert_eq!(applied_commit(&lab, "production", host), commit);
    }

    let status = lab.run(&["status"]);
    status.success();
    let line = status.stdout.lines().find(|l| l.starts_with(&commit[..12])).unwrap();
    assert_eq!(line.matches("passed").count(), 5, "{line}");
    status.expect(
        0,
        &[&format!("production: {}", &commit[..12]), &format!("staging: {}", &commit[..12])],
    );

    // The remote holds the same notes and refs.
    let theirs = git2::Repository::open_bare(remote.path()).unwrap();
    let oid = git2::Oid::from_str(&commit).unwrap();
    let their_note: serde_json::Value = serde_json::from_str(
        theirs.find_note(Some("refs/notes/stackdeploy"), oid).unwrap().message().unwrap(),
    )
    .unwrap();
    assert_eq!(their_note["stages"]["release"]["status"], "passed");
    assert_eq!(
        theirs.find_reference("refs/stackdeploy/envs/production").unwrap().target(),
        Some(oid)
    );

    // One case per apply and check and host: precommit 1, deploy 4 hosts, integration 3
    // checks, canary 3 hosts and 2 checks, release 7 hosts.
    crate::junit::validate(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 20, "{xml}");
    assert!(
        xml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stackdeploy pipeline "
        ),
        "{xml}"
    );
    assert!(xml.contains(" tests=\"20\" failures=\"0\" errors=\"0\" "), "{xml}");
    assert!(!xml.contains("<skipped") && !xml.contains("<failure"), "{xml}");
    // No secret in the note, the JSON or the JUnit report.
    let text = format!("{record}{}{xml}", run.stdout);
    for secret in ["stg-", "prd-"] {
        assert!(!text.contains(secret), "a password prefix {secret} leaked");
    }
}

#[test]
fn a_broken_service_fails_integration_and_production_is_untouched() {
    let lab = Lab::up(12, &["staging", "production"]);
    pipeline(&lab, &[]).success();
    let good = head(&lab);
    let before = prod_hash(&lab, "controller01", "/etc/haproxy/haproxy.cfg");
    // Passes precommit (it compiles) but moves haproxy's stats page off the port checks use.
    lab.repo.write(
        "hieradata/roles/controller.toml",
        &(lab.repo.read("hieradata/roles/controller.toml") + "\n\"haproxy::stats_port\" = 8405\n"),
    );
    let bad = lab.repo.commit("haproxy stats on the wrong port");
    let run = pipeline(&lab, &[]);
    run.expect(
        1,
        &[
            "integration",
            "FAILED",
            "check 'haproxy stats page accepts the password from hieradata' on controller01 failed",
        ],
    );
    assert_eq!(note(&lab, &bad)["stages"]["integration"]["status"], "failed");
    assert!(note(&lab, &bad)["stages"].get("canary").is_none());
    assert_eq!(
        env_ref(&lab, "production").as_deref(),
        Some(good.as_str()),
        "production ref unchanged"
    );
    // staging runs the broken commit (its deploy passed), and its ref says so.
    assert_eq!(env_ref(&lab, "staging").as_deref(), Some(bad.as_str()));
    assert_eq!(prod_hash(&lab, "controller01", "/etc/haproxy/haproxy.cfg"), before);
    assert_eq!(applied_commit(&lab, "production", "controller01"), good);
}

#[test]
fn a_commit_failing_only_on_the_canary_is_rolled_back_there() {
    let lab = Lab::up(13, &["staging", "production"]);
    pipeline(&lab, &[]).success();
    let good = head(&lab);
    let before = prod_hash(&lab, "controller01", "/etc/haproxy/haproxy.cfg");
    // Only production moves the stats page: staging's integration passes, the canary fails.
    lab.repo
        .write("hieradata/nodes/production/controller01.toml", "\"haproxy::stats_port\" = 8405\n");
    lab.repo
        .write("hieradata/nodes/production/controller02.toml", "\"haproxy::stats_port\" = 8405\n");
    let bad = lab.repo.commit("production stats port moved");
    let run = pipeline(&lab, &[]);
    run.expect(1, &["canary", "FAILED", "canary hosts rolled back to"]);
    let record = note(&lab, &bad);
    assert_eq!(record["stages"]["integration"]["status"], "passed");
    assert_eq!(record["stages"]["canary"]["status"], "failed");
    assert!(record["stages"].get("release").is_none());
    // The canary controller is back on the released commit, byte for byte.
    assert_eq!(prod_hash(&lab, "controller01", "/etc/haproxy/haproxy.cfg"), before);
    assert_eq!(applied_commit(&lab, "production", "controller01"), good);
    // The other production hosts never saw it.
    for host in ["controller02", "compute02", "compute04"] {
        assert_eq!(applied_commit(&lab, "production", host), good, "{host}");
    }
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(good.as_str()));
    lab.run(&["status"]).expect(0, &[&format!("production: {}", &good[..12])]).lacks("runs");
}

#[test]
fn releasing_a_commit_that_skipped_a_stage_is_refused_and_approval_gates() {
    let lab = Lab::up(14, &["staging", "production"]);
    pipeline(&lab, &["--to", "integration"]).success();
    let commit = head(&lab);
    let run = pipeline(&lab, &["--from", "release"]);
    run.expect(
        1,
        &[
            "refused: stage 'release' requires 'canary' to have passed for commit",
            "'canary' has not run",
        ],
    );
    assert_eq!(env_ref(&lab, "production"), None, "production never deployed");
    assert!(note(&lab, &commit)["stages"].get("release").is_none());

    // With approval on, the pipeline stops before release until someone approves.
    lab.repo.edit("pipeline.toml", "# approval = true", "approval = true");
    let gated = lab.repo.commit("gate releases");
    pipeline(&lab, &[]).expect(
        3,
        &["waiting: stage 'release' needs a manual approval", "result: waiting for approval"],
    );
    assert!(note(&lab, &gated)["stages"].get("release").is_none());
    lab.run(&["status"]).expect(0, &["pending"]);
    lab.run(&["approve", &gated[..12], "--stage", "release"]).success();
    assert!(note(&lab, &gated)["approvals"].get("release").is_some());
    pipeline(&lab, &["--from", "release"]).success();
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(gated.as_str()));
}

#[test]
fn rollback_returns_production_to_the_previous_release() {
    let lab = Lab::up(15, &["staging", "production"]);
    pipeline(&lab, &[]).success();
    let first = head(&lab);
    let hashes = |lab: &Lab| -> Vec<String> {
        ["db01", "controller01", "controller02", "compute03"]
            .iter()
            .flat_map(|h| {
                ["/etc/memcached.conf", "/etc/hosts", "/etc/chrony/chrony.conf"].iter().filter_map(
                    move |p| {
                        let out = lab.sh_in(
                            "production",
                            h,
                            &format!("test -f {p} && sha256sum < {p} || true"),
                        );
                        (!out.is_empty()).then_some(format!("{h}:{p}:{out}"))
                    },
                )
            })
            .collect()
    };
    let released = hashes(&lab);
    lab.repo.write("hieradata/nodes/production/db01.toml", "\"memcached::memory\" = 256\n");
    let second = lab.repo.commit("more memcached memory in production");
    pipeline(&lab, &[]).success();
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(second.as_str()));
    assert_ne!(hashes(&lab), released);

    lab.run(&["rollback", "--env", "production", "--yes"])
        .expect(0, &[&format!("production now runs {}", &first[..12])]);
    assert_eq!(hashes(&lab), released, "every file back to the first release");
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(first.as_str()));
    for host in ["db01", "compute01"] {
        assert_eq!(applied_commit(&lab, "production", host), first);
    }
}

#[test]
fn a_deploy_that_is_not_idempotent_fails() {
    let lab = Lab::up(16, &["staging"]);
    // An exec with no guard runs on every apply: the second apply of the deploy stage changes
    // something, which is exactly what the stage exists to catch.
    let profile = "profiles/base/profile.toml";
    lab.repo.write(
        profile,
        &(lab.repo.read(profile)
            + "\n[[exec]]\nname = \"stamp\"\ncommand = \"date +%s%N > /var/tmp/stamp\"\n"),
    );
    let commit = lab.repo.commit("an unguarded exec");
    let run = pipeline(&lab, &["--to", "deploy-staging"]);
    run.expect(
        1,
        &[
            "deploy-staging",
            "FAILED",
            "not idempotent: the second apply changed things",
            "exec:stamp ran",
        ],
    );
    assert_eq!(note(&lab, &commit)["stages"]["deploy-staging"]["status"], "failed");
    assert_eq!(env_ref(&lab, "staging"), None, "a failed deploy does not move the environment ref");
}

/// Replaces the value of `key` in a hieradata file with `DEC[plain]` through `secret edit`
/// (the editor is a sed script), so it is stored encrypted.
/// Everything a pipeline leaves to be read: the git notes, and every file under `.stackdeploy/`.
fn recorded_state(lab: &Lab) -> Vec<(String, String)> {
    let mut outputs = Vec::new();
    let git = git(lab);
    for note in git.notes(Some("refs/notes/stackdeploy")).unwrap() {
        let (note_id, _) = note.unwrap();
        let blob = git.find_blob(note_id).unwrap();
        outputs.push(("a git note".into(), String::from_utf8_lossy(blob.content()).into_owned()));
    }
    let mut state = vec![lab.repo.path().join(".stackdeploy")];
    while let Some(path) = state.pop() {
        if path.is_dir() {
            state.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            outputs.push((path.display().to_string(), text));
        }
    }
    outputs
}

fn encrypt_with_edit(lab: &Lab, key_file: &str, file: &str, key: &str, plain: &str) {
    let dir = tempfile::tempdir().unwrap();
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\nsed -i 's|^\"{key}\" = .*|\"{key}\" = \"DEC[{plain}]\"|' \"$1\"\n"),
    )
    .unwrap();
    let run = lab.repo.run_env(
        &["secret", "edit", file],
        &[("STACKDEPLOY_AGE_KEY_FILE", key_file), ("EDITOR", &format!("sh {}", editor.display()))],
    );
    run.success();
    let text = lab.repo.read(file);
    let line = text.lines().find(|l| l.starts_with(&format!("\"{key}\""))).unwrap();
    assert!(line.contains("= \"ENC[AGE,"), "{line}");
    assert!(!text.contains(plain), "{file} holds the plaintext after edit");
}

#[test]
fn encrypted_secrets_reach_hosts_and_no_output_shows_them() {
    let lab = Lab::up(17, &["staging", "production"]);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("identity.txt");
    let key = key_file.to_str().unwrap();
    let keygen = lab.run(&["secret", "keygen", "--out", key]);
    keygen.success();
    let public = keygen.stdout.trim().to_string();
    assert!(public.starts_with("age1"), "{public}");
    lab.repo.write(
        "pipeline.toml",
        &format!("{}\n[secrets]\nrecipients = [\"{public}\"]\n", lab.repo.read("pipeline.toml")),
    );
    // A secret parameter, and a plain one: an encrypted value is secret wherever it is used.
    let plaintexts = ["Stg-Stats-Enc-7Kq2", "Prd-Stats-Enc-9Wx4", "Encrypted Org Zeta"];
    let stats = "haproxy::stats_password";
    encrypt_with_edit(&lab, key, "hieradata/environments/staging.toml", stats, plaintexts[0]);
    encrypt_with_edit(&lab, key, "hieradata/environments/production.toml", stats, plaintexts[1]);
    encrypt_with_edit(&lab, key, "hieradata/common.toml", "base::organisation", plaintexts[2]);
    let commit = lab.repo.commit("encrypted secrets");
    let with_key = [("STACKDEPLOY_AGE_KEY_FILE", key)];

    // Writing to hosts without the key is refused up front, naming what is missing.
    lab.run(&["plan", "--env", "staging"])
        .expect(1, &["'haproxy::stats_password' is encrypted", "STACKDEPLOY_AGE_KEY_FILE"]);

    let junit = lab.repo.path().join("junit.xml");
    let html = lab.repo.path().join("plan.html");
    let plan_file = lab.repo.path().join("plan.json");
    let diff_html = lab.repo.path().join("diff.html");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let r = lab.repo.run_env(args, &with_key);
        r.expect(code, &[]);
        outputs.push((r.cmd.clone(), format!("{}\n{}", r.stdout, r.stderr)));
    };
    // The integration stage logs in to haproxy's stats page with the decrypted password.
    run(&["-vv", "pipeline", "run", "--yes", "--junit", junit.to_str().unwrap()], 0);
    run(&["pipeline", "run", "--yes", "--format", "json"], 0);
    run(&["-v", "diff", "HEAD~1", "--env", "production", "--html", diff_html.to_str().unwrap()], 0);
    run(&["diff", "HEAD~1", "--env", "production", "--format", "json"], 0);
    run(
        &[
            "plan",
            "--env",
            "production",
            "--out",
            plan_file.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        0,
    );
    run(&["catalog", "--env", "production", "--host", "controller01", "--format", "json"], 0);
    run(&["lookup", stats, "--env", "production", "--host", "controller01", "--explain"], 0);
    run(&["status"], 0);
    for file in [&junit, &html, &plan_file, &diff_html] {
        outputs.push((file.display().to_string(), std::fs::read_to_string(file).unwrap()));
    }
    outputs.extend(recorded_state(&lab));
    assert!(outputs.len() > 15, "{} outputs searched", outputs.len());
    for (what, text) in &outputs {
        for plain in plaintexts {
            assert!(!text.contains(plain), "{what} shows the secret {plain}:\n{text}");
        }
    }
    assert!(outputs.iter().any(|(_, t)| t.contains("<secret:haproxy::stats_password#")));

    // The values did reach the hosts, decrypted: the search above could have found them.
    assert_eq!(note(&lab, &commit)["stages"]["release"]["status"], "passed");
    let cfg = lab.sh_in("production", "controller01", "cat /etc/haproxy/haproxy.cfg");
    assert!(cfg.contains(&format!("admin:{}", plaintexts[1])), "{cfg}");
    assert!(lab.sh_in("staging", "db01", "cat /etc/motd").contains(plaintexts[2]));
    lab.repo
        .run_env(&["catalog", "--env", "staging", "--host", "db01", "--show-secrets"], &with_key)
        .expect(0, &[plaintexts[2]]);
}

/// A note that is not a stage record, and refs that point at the wrong things, are named with
/// how to repair them; `status` still shows everything else, and `rollback` skips such notes.
#[test]
fn tampered_promotion_state_is_named_and_status_shows_the_rest() {
    let repo = crate::util::TestRepo::shipped();
    let first = repo.commit("first");
    repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 96\n");
    let second = repo.commit("second");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(repo.path()).output();
        assert!(out.unwrap().status.success(), "git {args:?}");
    };
    git(&["notes", "--ref", "stackdeploy", "add", "-m", "{ garbage", &first]);
    let blob = {
        let r = git2::Repository::open(repo.path()).unwrap();
        r.blob(b"not a host list").unwrap().to_string()
    };
    git(&["update-ref", "refs/stackdeploy/envs/production", &blob]);
    git(&["update-ref", "refs/stackdeploy/hosts/staging", &blob]);
    let status = repo.run(&["status"]);
    status.expect(
        0,
        &[
            "unreadable",
            &format!("git notes --ref stackdeploy remove {first}"),
            "refs/stackdeploy/envs/production points at",
            "refs/stackdeploy/hosts/staging holds no host list",
        ],
    );
    let row = status.stdout.lines().find(|l| l.starts_with(&second[..12])).unwrap();
    assert_eq!(row.matches("pending").count(), 5, "{row}");
    let json = repo.run(&["status", "--format", "json"]);
    let doc = json.json();
    let errors: Vec<&str> =
        doc["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(errors.iter().any(|e| e.contains("not a stage record")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("holds no host list")), "{errors:?}");
    let cells = doc["commits"][1]["stages"].as_object().unwrap();
    assert!(cells.values().all(|c| c == "unreadable"), "{cells:?}");
    git(&["update-ref", "refs/stackdeploy/envs/staging", &second]);
    repo.run(&["rollback", "--env", "staging", "--yes"])
        .expect(1, &["warning: the stackdeploy note on commit", "no release of 'staging' before"]);
}

/// A secret holding quotes, a backslash, a newline, unicode, shell and regex syntax, used raw
/// and through every escaping filter in a file, in an exec and in a check, reaches the hosts
/// exactly and shows nowhere: not in any output, report, plan file, note or file under
/// `.stackdeploy/`, nor in any process list while the pipeline runs.
#[test]
fn a_secret_full_of_shell_and_json_syntax_shows_nowhere() {
    let lab = Lab::up(22, &["staging", "production"]);
    let secret = "Zq9-Nasty'\"\\ $(id) `id` .*+?[a]{1}|^ üñ\nline2 %s %% ${HOME} & <b>";
    let profile = "profiles/base/profile.toml";
    lab.repo.edit(
        profile,
        "[params]\n",
        "[params]\ntoken = { type = \"string\", secret = true }\n",
    );
    lab.repo.write(
        profile,
        &format!(
            "{}\n[[file]]\npath = \"/etc/stackdeploy/token-forms\"\nmode = \"0600\"\n\
             content = \"{{{{ params.token }}}}|{{{{ params.token | tojson }}}}|{{{{ params.token | urlencode }}}}|{{{{ params.token | e }}}}\\n\"\n\
             \n[[exec]]\nname = \"token-use\"\ncreates = \"/etc/stackdeploy/token.done\"\n\
             command = \"sleep 2; printf '%s' {{{{ params.token }}}} > /etc/stackdeploy/token.copy; touch /etc/stackdeploy/token.done\"\n",
            lab.repo.read(profile)
        ),
    );
    lab.repo.write(
        "hieradata/common.toml",
        // At the top: the file ends with a [lookup_options] table.
        &format!(
            "\"base::token\" = {}\n{}",
            toml::Value::from(secret),
            lab.repo.read("hieradata/common.toml")
        ),
    );
    lab.repo.edit(
        "pipeline.toml",
        "[[stages.checks]]\nname = \"every API frontend answers HTTP\"",
        "[[stages.checks]]\nname = \"the token is readable on the controllers\"\non = \"role:controller\"\n\
         command = \"sleep 1; printf '%s' {{ lookup('base::token') }} | cmp -s - /etc/stackdeploy/token.copy\"\n\n\
         [[stages.checks]]\nname = \"every API frontend answers HTTP\"",
    );
    lab.repo.commit("a secret full of syntax");

    // Watch every process of the machine (lab hosts share its process list) during the run.
    let watch = crate::util::ProcessWatch::start();
    let junit = lab.repo.path().join("junit.xml");
    let plan_file = lab.repo.path().join("plan.json");
    let html = lab.repo.path().join("plan.html");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let r = lab.run(args);
        r.expect(code, &[]);
        outputs.push((r.cmd.clone(), format!("{}\n{}", r.stdout, r.stderr)));
    };
    run(
        &[
            "-vv",
            "pipeline",
            "run",
            "--yes",
            "--junit",
            junit.to_str().unwrap(),
            "--format",
            "json",
        ],
        0,
    );
    let seen = watch.stop(&["Zq9-Nasty"], 50);
    assert!(seen.is_empty(), "the secret is on a process list: {seen:?}");

    lab.repo.edit("hieradata/common.toml", "Zq9-Nasty", "Zq9-Nasty-Rotated");
    lab.repo.commit("rotated");
    let plan = ["plan", "--env", "production", "--out", plan_file.to_str().unwrap()];
    run(&[&plan[..], &["--html", html.to_str().unwrap()]].concat(), 2);
    run(&["plan", "--env", "production", "--format", "json"], 2);
    run(&["diff", "HEAD~1", "--env", "production"], 0);
    run(&["diff", "HEAD~1", "--env", "production", "--format", "json"], 0);
    run(&["catalog", "--env", "production", "--host", "controller01"], 0);
    run(&["catalog", "--env", "production", "--host", "controller01", "--format", "json"], 0);
    run(&["lookup", "base::token", "--env", "production", "--host", "db01", "--explain"], 0);
    run(&["status", "--format", "json"], 0);
    for file in [&junit, &html, &plan_file] {
        outputs.push((file.display().to_string(), std::fs::read_to_string(file).unwrap()));
    }
    outputs.extend(recorded_state(&lab));
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for (what, text) in &outputs {
        assert!(!text.contains("Zq9-Nasty"), "{what} shows the secret:\n{text}");
        assert!(!text.contains(&b64[..24]), "{what} shows the secret in base64");
    }
    assert!(outputs.iter().any(|(_, t)| t.contains("<secret:base::token#")));
    // It did reach the hosts, exactly, through the shell and the file.
    let copy = lab.sh_in("production", "compute04", "cat /etc/stackdeploy/token.copy");
    assert_eq!(copy, secret);
    let forms = lab.sh_in("production", "db01", "cat /etc/stackdeploy/token-forms");
    assert!(forms.starts_with(secret), "{forms}");
}

/// A stage run as two CI jobs would run it (`--shard 1/2`, `--shard 2/2`, each publishing to
/// the state remote), on real lab hosts: each shard applies its part only; the gate refuses
/// while a shard has not run, naming it, then passes; only then does staging run the commit
/// and does the next stage's `requires` hold.
#[test]
fn a_stage_run_in_two_shards_passes_at_the_gate() {
    let lab = Lab::up(25, &["staging"]);
    let (remote, commit) = with_state_remote(&lab);
    pipeline(&lab, &["--to", "precommit"]).success();
    let shard = |k: &str| {
        let run =
            pipeline(&lab, &["--from", "deploy-staging", "--to", "deploy-staging", "--shard", k]);
        run.success();
        run
    };
    let gate = |code: i32, texts: &[&str]| {
        let run = lab.run(&["pipeline", "gate", "--stage", "deploy-staging"]);
        run.expect(code, texts);
        run
    };
    // plan and apply take the same parts.
    let plan = lab.run(&["plan", "--env", "staging", "--shard", "2/2"]);
    let header = |host: &str| plan.stdout.lines().any(|l| l.starts_with(&format!("{host} (")));
    assert!(header("compute02") && !header("db01") && !header("compute01"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 1 host(s) to change, 0 unchanged"), "{}", plan.stdout);
    lab.run(&["plan", "--env", "staging", "--shard", "3/2"])
        .expect(1, &["expected K/N with 1 <= K <= N"]);
    shard("1/2");
    let first_shard = ["db01", "controller01", "compute01"];
    for host in first_shard {
        assert_eq!(applied_commit(&lab, "staging", host), commit, "{host}");
    }
    let untouched = lab.sh_in(
        "staging",
        "compute02",
        "test -e /var/lib/stackdeploy/applied.json && echo applied || echo none",
    );
    assert_eq!(untouched.trim(), "none", "shard 1/2 applied compute02");
    assert_eq!(note(&lab, &commit)["stages"]["deploy-staging@1/2"]["status"], "passed");
    assert_eq!(env_ref(&lab, "staging"), None, "staging moved before every shard passed");
    gate(1, &["shard(s) 2/2 have not run", "shard 1/2: passed", "result: FAILED"]);
    // The next stage is refused: its requirement is the stage, not a shard of it.
    pipeline(&lab, &["--from", "integration", "--to", "integration"])
        .expect(1, &["deploy-staging"]);

    shard("2/2");
    assert_eq!(applied_commit(&lab, "staging", "compute02"), commit);
    gate(0, &["all 2 shards passed, 4 host(s)", "result: passed"]);
    assert_eq!(env_ref(&lab, "staging").as_deref(), Some(commit.as_str()));
    assert_eq!(note(&lab, &commit)["stages"]["deploy-staging"]["status"], "passed");
    pipeline(&lab, &["--from", "integration", "--to", "integration"]).success();
    // Other agents see what the gate published.
    let theirs = git2::Repository::open_bare(remote.path()).unwrap();
    let env = theirs.find_reference("refs/stackdeploy/envs/staging").unwrap();
    assert_eq!(env.target().unwrap().to_string(), commit);
}

/// A mistyped environment is named as one (with the name meant) by rollback and diff, and a
/// rollback to a commit the environment never ran is refused before any host is contacted.
#[test]
fn rollback_and_diff_name_an_unknown_environment_and_refuse_a_target_that_never_ran() {
    let repo = crate::util::TestRepo::shipped();
    let first = repo.commit("first");
    let mistyped: [&[&str]; 3] = [
        &["rollback", "--env", "prod", "--yes"],
        &["rollback", "--env", "prod", "--to", "HEAD", "--yes"],
        &["diff", "--env", "prod"],
    ];
    for args in mistyped {
        repo.run(args)
            .expect(1, &["no environment 'prod'", "did you mean 'production'"])
            .lacks("rolling");
    }
    repo.run(&["rollback", "--env", "staging", "--to", &first, "--yes"])
        .expect(1, &["never passed a deploy or release of 'staging'", "stackdeploy apply --rev"])
        .lacks("rolling");
    repo.run(&["rollback", "--env", "staging", "--yes"])
        .expect(1, &["'staging' was never deployed, so there is nothing to roll back"]);
}

/// A secret pasted into a commit message or a fact is not printed again by `status`, in text
/// or JSON (commit subjects and `--by` fact values are redacted like every other output).
#[test]
fn status_redacts_secrets_in_commit_subjects_and_facts() {
    let repo = crate::util::TestRepo::shipped();
    let admin = "stg-admin-Jm4kQe9Wv2";
    assert!(repo.read("hieradata/environments/staging.toml").contains(admin));
    repo.edit(
        "pipeline.toml",
        "compute02    = { address = \"127.0.10.32\", role = \"compute\",    facts = { az = \"az2\" } }",
        &format!("compute02    = {{ address = \"127.0.10.32\", role = \"compute\",    facts = {{ az = \"az2\", note = \"{admin}\" }} }}"),
    );
    repo.commit(&format!("Rotate the admin password (was {admin})"));
    for format in ["text", "json"] {
        repo.run(&["status", "-n", "2", "--by", "note", "--format", format])
            .expect(0, &["Rotate the admin password (was <secret:keystone::admin_password#"])
            .lacks(admin);
    }
}

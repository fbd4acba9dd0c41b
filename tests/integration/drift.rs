//! `stackdeploy drift` on lab hosts: hand edits, chmods and stopped services made on the hosts
//! (over SSH, as an operator would) are reported exactly, in text, JSON and HTML, with no
//! secret shown; a re-apply clears them; and hosts are compared with the commit they run, not
//! with HEAD; the GitLab example's nightly job runs it under gitlab-ci-local. Networks 41 and 42
//! (see converge.rs).

use crate::converge::{Lab, kill9, lab_sshd_pid};
use crate::gitlab::{gitlab_ci_local, gitlab_project};
use crate::pipeline::applied_commit;

/// The staging passwords of the shipped data (`stg-...`), none of which may show.
fn passwords(lab: &Lab) -> Vec<String> {
    let staging = lab.repo.read("hieradata/environments/staging.toml");
    let found: Vec<String> = staging
        .split('"')
        .filter(|v| v.starts_with("stg-") && v.len() > 8)
        .map(String::from)
        .collect();
    assert!(found.len() >= 5, "{found:?}");
    found
}

fn drift_of<'a>(doc: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    let hosts = doc["hosts"].as_array().unwrap();
    let h = hosts.iter().find(|h| h["host"] == host).unwrap_or_else(|| panic!("{host}: {doc}"));
    &h["drift"]
}

#[test]
fn drift_reports_exactly_what_was_changed_by_hand_and_a_reapply_clears_it() {
    let lab = Lab::staging(41);
    lab.apply().success();
    lab.run(&["drift", "--env", "staging"])
        .expect(0, &["Drift: 0 host(s) drifted, 4 without drift, 0 failed"]);

    // By hand on the hosts: a secret-bearing file edited (its password line and another),
    // a file chmod-ed, a service stopped.
    let conf = "/etc/rabbitmq/rabbitmq.conf";
    lab.sh(
        "db01",
        &format!(
            "sed -i -e 's/^default_pass = .*/default_pass = Typed-By-Hand-77/' \
             -e 's/^vm_memory_high_watermark.relative = 0.5/vm_memory_high_watermark.relative = 0.7/' {conf}"
        ),
    );
    lab.sh("controller01", "chmod 0600 /etc/motd");
    lab.sh("db01", "kill $(cat /run/memcached/memcached.pid)");
    lab.sh(
        "db01",
        "while kill -0 $(cat /run/memcached/memcached.pid) 2>/dev/null; do sleep 0.1; done",
    );

    let html = lab.repo.path().join("drift.html");
    let text = lab.run(&["drift", "--env", "staging", "--html", html.to_str().unwrap()]);
    text.expect(
        2,
        &[
            "db01 (database, ",
            "2 drifted from commit ",
            "~ file /etc/rabbitmq/rabbitmq.conf: edited on the host (sha256 ",
            "-vm_memory_high_watermark.relative = 0.7\n",
            "+vm_memory_high_watermark.relative = 0.5\n",
            "-(1 line(s) on the host where the commit has a secret: not shown)\n",
            "+default_pass = <secret:rabbitmq::password#",
            "x service memcached: stopped, the commit wants it running",
            "controller01 (controller, ",
            "~ file /etc/motd: mode 0600 on the host, 0644 in the commit",
            "Drift: 2 host(s) drifted, 2 without drift, 0 failed; 3 drifted resource(s)",
        ],
    );
    for host in ["compute01", "compute02"] {
        assert!(
            text.stdout.lines().any(|l| l.starts_with(host) && l.contains(": no drift (commit ")),
            "{host} has no drift\n{}",
            text.stdout
        );
    }

    let json = lab.run(&["drift", "--env", "staging", "--format", "json"]);
    json.expect(2, &[]);
    let doc = json.json();
    assert!(doc["drifted"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(doc["errors"].as_array().unwrap().len(), 0, "{doc}");
    let kinds = |host: &str| -> Vec<String> {
        drift_of(&doc, host)
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let what = d["path"].as_str().or(d["name"].as_str()).unwrap();
                format!("{} {what}", d["drift"].as_str().unwrap())
            })
            .collect()
    };
    assert_eq!(kinds("db01"), ["file_edited /etc/rabbitmq/rabbitmq.conf", "service memcached"]);
    assert_eq!(kinds("controller01"), ["file_attributes /etc/motd"]);
    assert!(kinds("compute01").is_empty() && kinds("compute02").is_empty(), "{doc}");
    let memcached = &drift_of(&doc, "db01")[1];
    assert_eq!((&memcached["wanted"], &memcached["found"]), (&"running".into(), &"stopped".into()));
    let motd = &drift_of(&doc, "controller01")[0]["attrs"][0];
    assert_eq!(motd, &serde_json::json!({"attr": "mode", "wanted": "0644", "found": "0600"}));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("drift of environment staging"), "{page}");
    for anchor in
        ["id=\"file-etc-rabbitmq-rabbitmq-conf\"", "id=\"file-etc-motd\"", "id=\"host-db01\""]
    {
        assert!(page.contains(anchor), "no {anchor} in the HTML report:\n{page}");
    }
    assert!(lab.repo.path().join("drift.css").exists());
    let mut secrets = passwords(&lab);
    secrets.push("Typed-By-Hand-77".into());
    for secret in &secrets {
        text.lacks(secret);
        json.lacks(secret);
        assert!(!page.contains(secret.as_str()), "the HTML report shows {secret}");
    }

    // -q: each drifted resource on a line, no diffs, no hosts without drift.
    lab.run(&["-q", "drift", "--env", "staging"])
        .expect(
            2,
            &[
                "~ file /etc/rabbitmq/rabbitmq.conf: edited on the host",
                "x service memcached: stopped",
                "~ file /etc/motd: mode 0600",
                "Drift: 2 host(s) drifted, 2 without drift",
            ],
        )
        .lacks("vm_memory_high_watermark")
        .lacks("compute01");

    lab.apply().success();
    lab.run(&["drift", "--env", "staging"])
        .expect(0, &["Drift: 0 host(s) drifted, 4 without drift, 0 failed"]);
}

#[test]
fn drift_compares_each_host_with_the_commit_it_runs_not_with_head() {
    let lab = Lab::staging(42);
    // Before any apply nothing says what a host's files should be.
    lab.run(&["drift", "--env", "staging"]).expect(
        1,
        &[
            "db01: error: has no applied record",
            "apply it first",
            "0 host(s) drifted, 0 without drift, 4 failed",
        ],
    );
    lab.apply().success();
    let released = applied_commit(&lab, "staging", "db01");

    // HEAD moves on: another organisation in every motd, more memory for memcached on db01.
    lab.repo.edit(
        "hieradata/common.toml",
        "\"base::organisation\" = \"Example Cloud\"",
        "\"base::organisation\" = \"Later Cloud\"",
    );
    lab.repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 128\n");
    let head = lab.repo.commit("not applied yet");
    lab.run(&["plan", "--env", "staging"]).expect(2, &["~ file /etc/memcached.conf"]);
    // A HEAD-only change is no drift.
    lab.run(&["drift", "--env", "staging"])
        .expect(0, &["Drift: 0 host(s) drifted, 4 without drift, 0 failed"])
        .lacks("memcached");

    // compute02 alone gets HEAD; then both computes' motd is edited by hand.
    lab.run(&["apply", "--env", "staging", "--limit", "compute02", "--yes"]).success();
    for host in ["compute01", "compute02"] {
        lab.sh(host, "echo 'edited by hand' >> /etc/motd");
    }
    let json = lab.run(&["drift", "--env", "staging", "--format", "json"]);
    json.expect(2, &[]);
    let doc = json.json();
    let hosts = doc["hosts"].as_array().unwrap();
    for h in hosts {
        let want = if h["host"] == "compute02" { &head } else { &released };
        assert_eq!(h["commit"], want.as_str(), "{h}");
    }
    // Each diff puts back what that host's own commit wrote.
    let diff = |host: &str| drift_of(&doc, host)[0]["diff"].as_str().unwrap().to_string();
    assert!(diff("compute01").contains("-edited by hand\n"), "{}", diff("compute01"));
    assert!(!diff("compute01").contains("Later Cloud"), "{}", diff("compute01"));
    assert!(diff("compute02").contains("-edited by hand\n"), "{}", diff("compute02"));
    assert!(drift_of(&doc, "db01").as_array().unwrap().is_empty(), "{doc}");

    // An unreachable host is an error naming it; the others are still reported.
    kill9(lab_sshd_pid(&lab, "compute01"));
    lab.run(&["drift", "--env", "staging"]).expect(
        1,
        &[
            "compute01: error: ",
            "compute02 (compute, ",
            "Drift: 1 host(s) drifted, 2 without drift, 1 failed",
        ],
    );
}

#[test]
fn the_gitlab_example_runs_drift_alone_in_a_scheduled_pipeline_and_keeps_the_report() {
    // Production on net 41 (127.79.41.x); the first test has staging's 127.78.41.x.
    let lab = Lab::up(41, &["production"]);
    lab.run(&["apply", "--env", "production", "--yes"]).success();
    let dir = lab.repo.path();
    let (_, _remote, url) =
        gitlab_project(&lab.repo, ".gitlab-ci-local/\n.stackdeploy/\n*.html\n*.css\n");
    let schedule = ["--variable", "CI_PIPELINE_SOURCE=schedule"];
    let schedule = [&schedule[..], &["--ignore-predefined-vars", "CI_PIPELINE_SOURCE"]].concat();

    // A scheduled pipeline is the drift job alone; a push pipeline has no drift job.
    let jobs = |extra: &[&str]| -> Vec<String> {
        let (ok, out) = gitlab_ci_local(dir, &url, &[extra, &["--list"]].concat());
        assert!(ok, "{out}");
        // The table's rows, among stderr's lines: those with a `when` column.
        let row = |l: &&str| l.split_whitespace().any(|w| ["on_success", "manual"].contains(&w));
        out.lines()
            .filter(row)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    assert_eq!(jobs(&schedule), ["drift"]);
    let pushed = jobs(&[]);
    assert!(pushed.contains(&"canary".to_string()) && !pushed.contains(&"drift".to_string()));

    lab.sh_in("production", "compute03", "chmod 0600 /etc/motd");
    let (ok, out) = gitlab_ci_local(dir, &url, &[&schedule[..], &["drift"]].concat());
    assert!(!ok, "drift must fail the job:\n{out}");
    for needle in [
        " FAIL  drift",
        "compute03 (compute, ",
        "~ file /etc/motd: mode 0600 on the host, 0644 in the commit",
        "Drift: 1 host(s) drifted, 6 without drift, 0 failed",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    for report in ["drift.html", "drift.css"] {
        assert!(dir.join(report).exists(), "{report} was not written:\n{out}");
    }
}

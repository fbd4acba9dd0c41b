//! What reviewers read: `diff` between commits (no host contacted) and the HTML report,
//! loaded in real headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::TestRepo;

/// The shipped composition with one commit on top that changes NTP servers (chrony.conf on
/// the controllers), production's RabbitMQ password (a secret, in many files) and adds a
/// compute host. Returns (repo, old commit, new commit).
fn changed_repo() -> (TestRepo, String, String) {
    let repo = TestRepo::shipped();
    let old = repo.commit("base");
    let common = repo.read("hieradata/common.toml");
    let ntp = common.lines().find(|l| l.starts_with("\"ntp::servers\"")).unwrap().to_string();
    repo.edit(
        "hieradata/common.toml",
        &ntp,
        "\"ntp::servers\" = [\"0.debian.pool.ntp.org\", \"1.debian.pool.ntp.org\", \"ntp.example.net\"]",
    );
    let prod = repo.read("hieradata/environments/production.toml");
    let pw = prod.lines().find(|l| l.starts_with("\"rabbitmq::password\"")).unwrap().to_string();
    repo.edit(
        "hieradata/environments/production.toml",
        &pw,
        "\"rabbitmq::password\" = \"NEW-rabbit-Zq81\"",
    );
    let compute04 = repo
        .read("pipeline.toml")
        .lines()
        .find(|l| l.starts_with("compute04") && l.contains("127.0.20."))
        .unwrap()
        .to_string();
    repo.edit(
        "pipeline.toml",
        &compute04,
        &format!(
            "{compute04}\n{}",
            compute04.replace("compute04", "compute05").replace(".34\"", ".35\"")
        ),
    );
    let new = repo.commit("ntp, rabbitmq password, compute05");
    (repo, old, new)
}

fn old_rabbit_password(repo: &TestRepo, rev: &str) -> String {
    let run = repo.run(&[
        "--rev",
        rev,
        "lookup",
        "rabbitmq::password",
        "--env",
        "production",
        "--host",
        "db01",
        "--show-secrets",
    ]);
    run.success();
    run.stdout.trim().trim_matches('"').to_string()
}

#[test]
fn diff_groups_the_same_change_once_and_never_shows_secrets() {
    let (repo, old, new) = changed_repo();
    let old_pw = old_rabbit_password(&repo, &old);
    let run = repo.run(&["diff", &old, "--env", "production"]);
    run.expect(
        0,
        &[
            &format!("commit {} → commit {}", &old[..12], &new[..12]),
            "hosts added: compute05 (compute)",
            "2 controller hosts: controller01, controller02\n",
            "~ file /etc/chrony/chrony.conf",
            "ntp.example.net",
            "! restart service:chrony (after /etc/chrony/chrony.conf)",
            "4 compute hosts: compute01, compute02, compute03, compute04\n",
            "~ file /etc/nova/nova.conf",
            "1 database host: db01\n",
            "-default_pass = <secret:rabbitmq::password#",
            "+default_pass = <secret:rabbitmq::password#",
            "Diff: 7 host(s) change, 0 unchanged, 1 added, 0 removed",
        ],
    );
    run.lacks(&old_pw).lacks("NEW-rabbit-Zq81");
    // The same file changes once per role group, not once per host.
    assert_eq!(run.stdout.matches("~ file /etc/chrony/chrony.conf").count(), 1, "{}", run.stdout);
    assert_eq!(run.stdout.matches("~ file /etc/nova/nova.conf").count(), 2, "{}", run.stdout);

    let json = repo.run(&["diff", &old, &new, "--env", "production", "--format", "json"]);
    json.success().lacks(&old_pw).lacks("NEW-rabbit-Zq81");
    let doc = json.json();
    assert_eq!(doc["added"][0]["host"], "compute05");
    let chrony = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["item"]["path"] == "/etc/chrony/chrony.conf")
        .expect("a chrony.conf group");
    assert_eq!(chrony["label"], "2 controller hosts");
    assert_eq!(chrony["hosts"], serde_json::json!(["controller01", "controller02"]));
    assert_eq!(chrony["item"]["action"], "update_file");

    repo.run(&["diff", &old, "--env", "production", "--exit-code"]).expect(2, &[]);
    repo.run(&["diff", &new, "--env", "production", "--exit-code"])
        .expect(0, &["Diff: 0 host(s) change, 8 unchanged"]);
}

/// An operator marks a parameter secret and rotates its value in the same commit: the value
/// it had before was just as sensitive, so neither side of the diff shows it.
#[test]
fn a_value_marked_secret_in_the_newer_commit_is_hidden_on_both_sides() {
    let repo = TestRepo::shipped();
    let old = repo.commit("base");
    repo.edit(
        "profiles/base/profile.toml",
        "organisation = { type = \"string\", default",
        "organisation = { type = \"string\", secret = true, default",
    );
    repo.edit(
        "hieradata/common.toml",
        "\"base::organisation\" = \"Example Cloud\"",
        "\"base::organisation\" = \"Acme Sovereign Cloud\"",
    );
    repo.commit("organisation is secret now, and renamed");
    for format in ["text", "json"] {
        let run = repo.run(&["diff", &old, "--env", "staging", "--format", format]);
        run.success().lacks("Example Cloud").lacks("Acme Sovereign Cloud");
        if format == "text" {
            run.expect(
                0,
                &[
                    "~ file /etc/motd",
                    "-  <secret:base::organisation#",
                    "+  <secret:base::organisation#",
                ],
            );
        }
    }
}

#[test]
fn diff_defaults_to_the_commit_the_environment_runs() {
    let (repo, old, _) = changed_repo();
    repo.run(&["diff", "--env", "production"])
        .expect(1, &["environment 'production' has no deployed commit yet", "REV_A"]);
    let git = git2::Repository::open(repo.path()).unwrap();
    git.reference(
        "refs/stackdeploy/envs/production",
        git2::Oid::from_str(&old).unwrap(),
        true,
        "test",
    )
    .unwrap();
    repo.run(&["diff", "--env", "production"])
        .expect(0, &[&format!("commit {} →", &old[..12]), "hosts added: compute05"]);
    // A broken newer commit is an error naming the file, not an empty diff.
    repo.write("profiles/ntp/templates/chrony.conf.j2", "{{ params.nope }}\n");
    repo.commit("broken template");
    repo.run(&["diff", "--env", "production"])
        .expect(1, &["profiles/ntp/templates/chrony.conf.j2:1", "nope"]);
}

fn chromium() -> PathBuf {
    let bin = PathBuf::from("/usr/lib/chromium/chromium");
    assert!(
        bin.exists(),
        "Chromium is not installed: run `bash .ci/install-deps` (Debian package chromium)"
    );
    bin
}

/// Loads `page` in headless Chromium and returns the DOM after its scripts ran. A screenshot
/// of the page goes to `screenshot`.
fn load_in_chromium(page: &Path, screenshot: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", home.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        // Chromium writes crash-report and dconf files under $HOME whatever the profile dir.
        .env("HOME", home.path());
    let out = cmd.output().expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !dom.is_empty(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// Measures the report as a reader sees it: written into `<pre id="probe">` as JSON.
const PROBE: &str = r#"<script>
const q = (s) => Array.from(document.querySelectorAll(s));
const bg = (s) => { const e = document.querySelector(s); return e ? getComputedStyle(e).backgroundColor : null; };
const out = {
  title: document.title,
  scripts: q('script').length,
  external: q('link[href], img[src], script[src]').length,
  changes: q('details.change').map(d => ({
    label: d.querySelector('summary .label').textContent,
    headline: d.querySelector('summary').textContent,
    hosts: q('#' + d.id + ' ul.hostnames li').map(li => li.textContent),
    hostsVisible: d.querySelector('ul.hostnames').checkVisibility(),
    diffLines: d.querySelectorAll('pre.diff span').length,
  })),
  hostSections: q('details.host').map(d => ({ name: d.id, open: d.open, listVisible: d.querySelector('ul').checkVisibility() })),
  addBg: bg('pre.diff .add'), delBg: bg('pre.diff .del'), ctxBg: bg('pre.diff .ctx'),
  bodyText: document.body.innerText,
};
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"#;

#[test]
fn html_report_reads_well_in_a_real_browser() {
    let (repo, old, _) = changed_repo();
    let old_pw = old_rabbit_password(&repo, &old);
    let html_path = repo.path().join("diff.html");
    repo.run(&["diff", &old, "--env", "production", "--html", html_path.to_str().unwrap()])
        .expect(0, &["wrote "]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(!html.contains(&old_pw) && !html.contains("NEW-rabbit-Zq81"), "secret in the report");

    // The probe goes into a copy: the report itself has no scripts.
    let probed = repo.path().join("diff-probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let artifacts = crate::util::project_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("diff-report.png");
    let _ = std::fs::remove_file(&screenshot);
    let dom = load_in_chromium(&probed, &screenshot);

    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let p: serde_json::Value = serde_json::from_str(&json).unwrap();

    assert_eq!(p["scripts"], 1, "only the probe: the report itself runs no script");
    assert_eq!(p["external"], 0, "self-contained: nothing loaded from elsewhere");
    assert!(p["title"].as_str().unwrap().starts_with("diff of environment production"));
    let changes = p["changes"].as_array().unwrap();
    let chrony = changes
        .iter()
        .find(|c| c["headline"].as_str().unwrap().contains("file /etc/chrony/chrony.conf"))
        .expect("the chrony.conf change");
    assert_eq!(chrony["label"], "2 controller hosts");
    assert_eq!(chrony["hosts"], serde_json::json!(["controller01", "controller02"]));
    assert_eq!(chrony["hostsVisible"], false, "host lists start collapsed");
    assert!(chrony["diffLines"].as_u64().unwrap() >= 3);
    // Coloured diffs: added lines green, removed red, context plain.
    let rgb = |k: &str| p[k].as_str().unwrap_or("none").to_string();
    let channels = |s: &str| -> Vec<u32> {
        s.trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(", ")
            .map(|c| c.parse().unwrap())
            .collect()
    };
    let (add, del) = (channels(&rgb("addBg")), channels(&rgb("delBg")));
    assert!(add[1] > add[0] && add[1] > add[2], "added lines are green: {}", rgb("addBg"));
    assert!(del[0] > del[1] && del[0] > del[2], "removed lines are red: {}", rgb("delBg"));
    assert_eq!(rgb("ctxBg"), "rgba(0, 0, 0, 0)");
    // Every changed host has its own collapsed section.
    let hosts: Vec<&str> =
        p["hostSections"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(hosts.len(), 7, "{hosts:?}");
    assert!(p["hostSections"].as_array().unwrap().iter().all(|h| h["open"] == false));
    let text = p["bodyText"].as_str().unwrap();
    assert!(text.contains("compute05") && text.contains("added"), "{text}");
    assert!(!text.contains(&old_pw));

    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 10_000,
        "a screenshot with content, not a blank page ({} bytes)",
        png.len()
    );
}

#[test]
fn secret_edit_round_trips_quotes_backslashes_and_newlines() {
    let repo = TestRepo::shipped();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id.txt");
    let key = key.to_str().unwrap();
    let public = repo.run(&["secret", "keygen", "--out", key]).success().stdout.trim().to_string();
    repo.write(
        "pipeline.toml",
        &format!("{}\n[secrets]\nrecipients = [\"{public}\"]\n", repo.read("pipeline.toml")),
    );
    let editor = keys.path().join("editor.sh");
    std::fs::write(
        &editor,
        r#"#!/bin/sh
{ cat <<'X'; cat "$1"; } > "$1.new" && mv "$1.new" "$1"
"base::motd_extra" = "DEC[a \"q\" b\\c\nline2]"
X
"#,
    )
    .unwrap();
    let env = [("STACKDEPLOY_AGE_KEY_FILE", key)];
    fn env_with<'a>(key: &'a str, editor: &'a str) -> [(&'a str, &'a str); 2] {
        [("STACKDEPLOY_AGE_KEY_FILE", key), ("EDITOR", editor)]
    }
    let file = "hieradata/common.toml";
    repo.run_env(&["secret", "edit", file], &env_with(key, &format!("sh {}", editor.display())))
        .success();
    let stored = repo.read(file);
    assert!(stored.contains("\"base::motd_extra\" = \"ENC[AGE,"), "{stored}");
    assert!(!stored.contains("line2"));
    // Opening and closing without a change leaves the file exactly as it was.
    repo.run_env(&["secret", "edit", file], &env_with(key, "true")).expect(0, &["no changes"]);
    assert_eq!(repo.read(file), stored);
    repo.commit("an encrypted value with special characters");
    let run = repo.run_env(
        &[
            "lookup",
            "base::motd_extra",
            "--env",
            "staging",
            "--host",
            "db01",
            "--show-secrets",
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(run.success().json()["value"], "a \"q\" b\\c\nline2");
    // Redacted, the value is hidden in JSON too, escapes and all.
    let redacted = repo.run_env(
        &["lookup", "base::motd_extra", "--env", "staging", "--host", "db01", "--format", "json"],
        &env,
    );
    redacted.success().lacks("line2");
}

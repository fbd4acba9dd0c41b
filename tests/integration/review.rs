//! What reviewers read: `diff` between commits (no host contacted) and the HTML report,
//! loaded in real headless Chromium.

use std::path::PathBuf;

use crate::browser;
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

/// Jenkins' default Content-Security-Policy for archived artifacts (its documentation,
/// "Configuring Content Security Policy").
const JENKINS_CSP: &str = "sandbox; default-src 'none'; img-src 'self'; style-src 'self'";

/// Measures the report as a reader sees it. Runs in the browser through WebDriver, not in
/// the page (a sandboxed page runs no script).
const MEASURE: &str = r##"
const q = (s, root) => Array.from((root || document).querySelectorAll(s));
const css = (e, p) => e ? getComputedStyle(e)[p] : null;
const rows = (pre) => Array.from(pre.children).map(e => {
  const r = e.getBoundingClientRect();
  return { top: r.top, height: r.height, text: e.textContent };
});
return {
  origin: self.origin,
  title: document.title,
  scripts: q('script').length,
  inlineStyles: q('style, [style]').length,
  ids: q('[id]').map(e => e.id),
  links: q('a[href^="#"]').map(a => a.getAttribute('href').slice(1)),
  index: q('nav#index li').map(li => ({
    name: li.querySelector('a').textContent,
    target: li.querySelector('a').getAttribute('href'),
    groups: q('.groups a', li).map(a => ({ label: a.textContent, target: a.getAttribute('href') })),
  })),
  changes: q('details.change').map(d => ({
    id: d.id,
    section: d.parentElement.id,
    label: d.querySelector('summary .label').textContent,
    headline: d.querySelector('summary').textContent,
    hosts: q('ul.hostnames li', d).map(li => li.textContent),
    hostsVisible: d.querySelector('ul.hostnames').checkVisibility(),
    lines: q('pre.diff', d).flatMap(rows),
  })),
  marks: q('pre.diff ins, pre.diff del').map(m => ({
    tag: m.tagName.toLowerCase(), text: m.textContent, line: m.parentElement.textContent,
    bg: css(m, 'backgroundColor'), decoration: css(m, 'textDecorationLine'),
    lineBg: css(m.parentElement, 'backgroundColor'),
  })),
  hostSections: q('details.host').map(d => ({ id: d.id, open: d.open })),
  commits: q('#commits li').map(li => li.textContent),
  addBg: css(document.querySelector('pre.diff .add'), 'backgroundColor'),
  delBg: css(document.querySelector('pre.diff .del'), 'backgroundColor'),
  ctxBg: css(document.querySelector('pre.diff .ctx'), 'backgroundColor'),
  bodyText: document.body.innerText,
};
"##;

fn channels(rgb: &serde_json::Value) -> Vec<u32> {
    let s = rgb.as_str().unwrap_or("none");
    let inner = s.trim_start_matches("rgba(").trim_start_matches("rgb(").trim_end_matches(')');
    inner.split(", ").map(|c| c.parse().unwrap_or_else(|_| panic!("not a colour: {s}"))).collect()
}

/// Every diff line of every change is its own row on screen: one above the other, each one
/// text line high, as many rows as the diff has lines.
fn assert_lines_are_rows(p: &serde_json::Value) {
    let mut checked = 0;
    for change in p["changes"].as_array().unwrap() {
        let lines = change["lines"].as_array().unwrap();
        if lines.is_empty() {
            continue;
        }
        let tops: Vec<f64> = lines.iter().map(|l| l["top"].as_f64().unwrap()).collect();
        let heights: Vec<f64> = lines.iter().map(|l| l["height"].as_f64().unwrap()).collect();
        let one = heights.iter().cloned().fold(f64::MAX, f64::min);
        assert!(one > 5.0, "{}: a line with no height: {heights:?}", change["id"]);
        assert!(
            tops.windows(2).all(|w| w[1] >= w[0] + one * 0.9),
            "{}: diff lines share a row (tops {tops:?}): {lines:#?}",
            change["id"]
        );
        assert!(
            heights.iter().all(|h| *h < one * 1.6),
            "{}: a line wraps or holds several ({heights:?})",
            change["id"]
        );
        checked += lines.len();
    }
    assert!(checked >= 10, "diff lines measured: {checked}");
}

/// Ids are safe in a URL fragment and a selector, unique, and every in-page link lands.
fn assert_anchors(p: &serde_json::Value) {
    let ids: Vec<&str> = p["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate ids: {ids:?}");
    for id in &ids {
        assert!(
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "unsafe id {id:?}"
        );
    }
    for link in p["links"].as_array().unwrap() {
        assert!(ids.contains(&link.as_str().unwrap()), "a link to nothing: #{link}");
    }
}

/// The report of `changed_repo` plus a commit whose subject names both RabbitMQ passwords,
/// served next to its stylesheet. Returns (repo, old password, directory served).
fn report_to_serve() -> (TestRepo, String, PathBuf) {
    let (repo, old, _) = changed_repo();
    let old_pw = old_rabbit_password(&repo, &old);
    repo.write("NOTES.txt", "rotation done\n");
    repo.commit(&format!("Rotate the RabbitMQ password {old_pw} -> NEW-rabbit-Zq81"));
    let served = repo.path().join("artifacts");
    std::fs::create_dir_all(&served).unwrap();
    let page = served.join("diff.html");
    repo.run(&["diff", &old, "--env", "production", "--html", page.to_str().unwrap()])
        .expect(0, &["wrote ", "diff.css", "diff.html"]);
    let html = std::fs::read_to_string(&page).unwrap();
    for secret in [old_pw.as_str(), "NEW-rabbit-Zq81"] {
        assert!(!html.contains(secret), "secret {secret} in the report");
    }
    assert!(std::fs::read_to_string(served.join("diff.css")).unwrap().contains("pre.diff"));
    // The same diff, the same page: anchors (and everything else) do not change between runs.
    let again = repo.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    let again = again.join("diff.html");
    repo.run(&["diff", &old, "--env", "production", "--html", again.to_str().unwrap()]).success();
    assert!(std::fs::read_to_string(&again).unwrap() == html, "two runs, two pages");
    (repo, old_pw, served)
}

fn screenshot(browser: &browser::Browser, name: &str) {
    let artifacts = crate::util::project_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let path = artifacts.join(name);
    let _ = std::fs::remove_file(&path);
    let png = browser.screenshot(&path);
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 10_000,
        "a screenshot with content, not a blank page ({} bytes)",
        png.len()
    );
}

/// Served the way Jenkins serves artifacts: its CSP sandboxes the page (an opaque origin, no
/// script) and allows only stylesheets from `'self'`. Chromium still counts the server the
/// page came from as `'self'` (CSP matches the page's URL, not its sandboxed origin), so the
/// stylesheet next to the report applies; an inline `<style>` would be refused.
#[test]
fn html_report_reads_well_in_a_real_browser() {
    let (_repo, old_pw, served) = report_to_serve();
    let server = browser::CspServer::start(&served, JENKINS_CSP);
    let browser = browser::Browser::start();
    browser.open(&server.url("diff.html"));
    let p = browser.eval(MEASURE);
    let violations: Vec<String> =
        browser.console().into_iter().filter(|m| m.contains("Content Security Policy")).collect();

    assert_eq!(p["origin"], "null", "the CSP sandbox applies: {p:#}");
    assert!(server.requested("/diff.css"), "{:?}", server.requests.lock().unwrap());
    assert!(violations.is_empty(), "the report breaks Jenkins' CSP: {violations:#?}");
    assert_eq!(p["scripts"], 0);
    assert_eq!(p["inlineStyles"], 0);
    assert!(p["title"].as_str().unwrap().starts_with("diff of environment production"));

    // The stylesheet applies: added lines green, removed red, context plain, changed words
    // darker than their line.
    let (add, del) = (channels(&p["addBg"]), channels(&p["delBg"]));
    assert!(add[1] > add[0] && add[1] > add[2], "added lines are green: {}", p["addBg"]);
    assert!(del[0] > del[1] && del[0] > del[2], "removed lines are red: {}", p["delBg"]);
    assert_eq!(p["ctxBg"], "rgba(0, 0, 0, 0)");
    assert_lines_are_rows(&p);
    assert_anchors(&p);

    let changes = p["changes"].as_array().unwrap();
    let chrony = changes
        .iter()
        .find(|c| c["headline"].as_str().unwrap().contains("file /etc/chrony/chrony.conf"))
        .expect("the chrony.conf change");
    assert_eq!(chrony["label"], "2 controller hosts");
    assert_eq!(chrony["id"], "file-etc-chrony-chrony-conf--controller01");
    assert_eq!(chrony["section"], "file-etc-chrony-chrony-conf");
    assert_eq!(chrony["hosts"], serde_json::json!(["controller01", "controller02"]));
    assert_eq!(chrony["hostsVisible"], false, "host lists start collapsed");
    assert!(chrony["lines"].as_array().unwrap().len() >= 6);

    // The index: each changed file once, linking to its section, with its host groups.
    let index = p["index"].as_array().unwrap();
    let nova = index.iter().find(|f| f["name"] == "/etc/nova/nova.conf").expect("nova.conf");
    assert_eq!(nova["target"], "#file-etc-nova-nova-conf");
    let labels: Vec<&str> =
        nova["groups"].as_array().unwrap().iter().map(|g| g["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"4 compute hosts"), "{labels:?}");
    assert_eq!(index.iter().filter(|f| f["name"] == "/etc/nova/nova.conf").count(), 1);

    // Changed words: in the RabbitMQ password lines only the redaction marker is marked.
    let marks = p["marks"].as_array().unwrap();
    let rabbit: Vec<&serde_json::Value> =
        marks.iter().filter(|m| m["line"].as_str().unwrap().contains("default_pass = ")).collect();
    assert_eq!(rabbit.len(), 2, "{marks:#?}");
    for m in &rabbit {
        assert!(m["text"].as_str().unwrap().starts_with("<secret:rabbitmq::password#"), "{m}");
        assert_ne!(m["bg"], m["lineBg"], "a changed word stands out from its line: {m}");
        assert_eq!(m["decoration"], "none");
    }
    assert_eq!((rabbit[0]["tag"].as_str(), rabbit[1]["tag"].as_str()), (Some("del"), Some("ins")));

    // The commits between the two sides, subjects redacted.
    let commits: Vec<&str> =
        p["commits"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert!(commits[0].contains("Rotate the RabbitMQ password <secret:rabbitmq::password#"));
    assert!(commits[0].ends_with("— stackdeploy tests"), "{commits:?}");
    assert!(commits[1].contains("ntp, rabbitmq password, compute05"), "{commits:?}");

    // Every changed host has its own collapsed section.
    let hosts = p["hostSections"].as_array().unwrap();
    assert_eq!(hosts.len(), 7, "{hosts:?}");
    assert!(hosts.iter().all(|h| h["open"] == false));
    assert!(hosts.iter().any(|h| h["id"] == "host-controller01"));
    let text = p["bodyText"].as_str().unwrap();
    assert!(text.contains("compute05") && text.contains("added"), "{text}");
    for secret in [old_pw.as_str(), "NEW-rabbit-Zq81"] {
        assert!(!text.contains(secret));
    }
    screenshot(&browser, "diff-report.png");
    browser.eval(
        "document.getElementById('file-etc-rabbitmq-rabbitmq-conf').scrollIntoView(); return 0;",
    );
    screenshot(&browser, "diff-report-words.png");
}

/// With every stylesheet refused (a stricter CSP, or the CSS file not archived) the report is
/// plain HTML that still reads: each diff line on its own row, changed words struck through
/// and underlined by the browser's own styles.
#[test]
fn html_report_reads_well_with_its_stylesheet_blocked() {
    let (_repo, _, served) = report_to_serve();
    let server = browser::CspServer::start(&served, "sandbox; default-src 'none'");
    let browser = browser::Browser::start();
    browser.open(&server.url("diff.html"));
    let p = browser.eval(MEASURE);
    let refused: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") && m.contains("diff.css"))
        .collect();
    assert_eq!(refused.len(), 1, "the stylesheet is refused: {refused:#?}");
    assert_eq!(p["addBg"], "rgba(0, 0, 0, 0)", "no stylesheet applies");
    assert_lines_are_rows(&p);
    assert_anchors(&p);
    let marks = p["marks"].as_array().unwrap();
    assert!(!marks.is_empty());
    for m in marks {
        let expected = if m["tag"] == "del" { "line-through" } else { "underline" };
        assert_eq!(m["decoration"], expected, "{m}");
    }
    // Host lists still fold (a browser's own <details>), and the text reads as a diff.
    let chrony = p["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "2 controller hosts")
        .unwrap();
    assert_eq!(chrony["hostsVisible"], false);
    let text = p["bodyText"].as_str().unwrap();
    assert!(text.contains("\n+#server ntp.example.net iburst\n"), "{text}");
    screenshot(&browser, "diff-report-unstyled.png");
    browser
        .eval("document.getElementById('file-etc-chrony-chrony-conf').scrollIntoView(); return 0;");
    screenshot(&browser, "diff-report-unstyled-diff.png");
}

/// The stylesheet goes next to the page as FILE with the extension `.css`: a page named like
/// its own stylesheet is refused before anything is written.
#[test]
fn html_report_named_like_its_stylesheet_is_refused() {
    let (repo, old, _) = changed_repo();
    let css = repo.path().join("review.css");
    repo.run(&["diff", &old, "--env", "production", "--html", css.to_str().unwrap()])
        .expect(1, &["--html", "review.css", "name the page's file, e.g. review.html"]);
    assert!(!css.exists());
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

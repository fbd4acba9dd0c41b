//! Templates ported from Ansible: the corpus of tests/fixtures/jinja2-corpus rendered by
//! `stackdeploy catalog` and by Python's Jinja2 with Ansible's filters (render.py) must
//! agree byte for byte, except for the differences expected.toml documents, which are
//! asserted on both sides too; and a secret piped through the Ansible filters is redacted in
//! every form they print it in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TestRepo, project_root};

fn corpus() -> PathBuf {
    project_root().join("tests/fixtures/jinja2-corpus")
}

/// Debian's python3 with its python3-jinja2, python3-yaml and python3-netaddr (what
/// .ci/install-deps installs), else any python3 that has them.
fn python() -> &'static str {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import jinja2, yaml, netaddr"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return candidate;
        }
    }
    panic!(
        "the Jinja2 differential test needs python3 with jinja2, yaml and netaddr: \
         apt-get install python3-jinja2 python3-yaml python3-netaddr (see .ci/install-deps)"
    );
}

/// Each template's output, or its error, as Python's Jinja2 renders it.
fn render_with_jinja2() -> BTreeMap<String, Result<String, String>> {
    let out = Command::new(python())
        .arg(corpus().join("render.py"))
        .arg(corpus())
        .output()
        .expect("run render.py");
    assert!(out.status.success(), "render.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("render.py prints JSON");
    doc.as_object()
        .expect("an object")
        .iter()
        .map(|(name, r)| {
            let result = match (r["output"].as_str(), r["error"].as_str()) {
                (Some(o), _) => Ok(o.to_string()),
                (None, Some(e)) => Err(e.to_string()),
                _ => panic!("{name}: neither output nor error in {r}"),
            };
            (name.clone(), result)
        })
        .collect()
}

fn templates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".j2"))
        .collect();
    names.sort();
    names
}

/// A composition with one profile per group of templates, each a parameter per key of
/// vars.toml (set in hieradata) and a file per template, on one host per group.
fn composition(groups: &[(&str, Vec<String>)]) -> TestRepo {
    let vars: toml::Table = toml::from_str(&read(&corpus().join("vars.toml"))).unwrap();
    let repo = TestRepo::empty();
    let mut pipeline =
        String::from("[hiera]\nhierarchy = [\"common\"]\n\n[environments.test.hosts]\n");
    let mut common = toml::Table::new();
    for (i, (group, names)) in groups.iter().enumerate() {
        pipeline.push_str(&format!(
            "{group} = {{ address = \"127.0.0.{}\", role = \"{group}\" }}\n",
            i + 1
        ));
        repo.write(&format!("roles/{group}.toml"), &format!("profiles = [\"{group}\"]\n"));
        let mut profile = String::from("[params]\n");
        for (key, value) in &vars {
            profile.push_str(&format!("{key} = {{}}\n"));
            common.insert(format!("{group}::{key}"), value.clone());
        }
        for name in names {
            let stem = name.trim_end_matches(".j2");
            profile.push_str(&format!(
                "\n[[file]]\npath = \"/corpus/{stem}\"\ntemplate = \"{name}\"\n"
            ));
            repo.write(
                &format!("profiles/{group}/templates/{name}"),
                &read(&corpus().join("templates").join(name)),
            );
        }
        repo.write(&format!("profiles/{group}/profile.toml"), &profile);
    }
    repo.write("pipeline.toml", &pipeline);
    repo.write("hieradata/common.toml", &toml::to_string(&common).unwrap());
    repo.commit("corpus");
    repo
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What one side gave for a template, shown in a failure.
fn show(r: &Result<String, String>) -> String {
    match r {
        Ok(out) => format!("{out:?}"),
        Err(e) => format!("error {e:?}"),
    }
}

#[test]
fn the_corpus_renders_as_jinja2_with_ansible_filters_renders_it() {
    let expected: toml::Table = toml::from_str(&read(&corpus().join("expected.toml"))).unwrap();
    let differences = expected["differences"].as_table().unwrap();
    let errors = expected["errors"].as_table().unwrap();
    let names = templates();
    for name in differences.keys().chain(errors.keys()) {
        assert!(
            names.contains(&format!("{name}.j2")),
            "expected.toml names {name}, which is not a template"
        );
    }
    let stem = |n: &str| n.trim_end_matches(".j2").to_string();
    // Templates stackdeploy refuses go on a host of their own: one error fails its catalog.
    let fails = |n: &String| {
        errors.contains_key(&stem(n))
            || differences.get(&stem(n)).is_some_and(|d| d.get("stackdeploy_error").is_some())
    };
    let (bad, good): (Vec<String>, Vec<String>) = names.iter().cloned().partition(fails);
    let repo = composition(&[("corpus", good.clone()), ("errors", bad.clone())]);

    let mut ours: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let run = repo.run(&[
        "catalog",
        "--env",
        "test",
        "--host",
        "corpus",
        "--format",
        "json",
        "--show-secrets",
    ]);
    let doc = run.json();
    for r in doc["resources"].as_array().unwrap() {
        if let Some(path) = r["path"].as_str().and_then(|p| p.strip_prefix("/corpus/")) {
            ours.insert(format!("{path}.j2"), Ok(r["content"].as_str().unwrap().to_string()));
        }
    }
    let failed = repo.run(&["catalog", "--env", "test", "--host", "errors"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    for name in &bad {
        let lines: Vec<&str> =
            failed.stderr.lines().filter(|l| l.contains(name.as_str())).collect();
        assert!(!lines.is_empty(), "no error names {name}:\n{}", failed.stderr);
        ours.insert(name.clone(), Err(lines.join("\n")));
    }

    let python = render_with_jinja2();
    let mut problems = Vec::new();
    for name in &names {
        let mine = ours.get(name).cloned().unwrap_or_else(|| Err("not rendered".into()));
        let theirs = python.get(name).cloned().unwrap_or_else(|| Err("not rendered".into()));
        let mut problem = |what: String| problems.push(format!("{name}: {what}"));
        if let Some(d) = differences.get(&stem(name)) {
            let text = |k: &str| d.get(k).and_then(|v| v.as_str());
            assert!(text("why").is_some(), "{name}: a documented difference says why");
            match (text("stackdeploy"), text("stackdeploy_error"), &mine) {
                (Some(want), _, Ok(got)) if want == got => {}
                (None, Some(want), Err(got)) if got.contains(want) => {}
                _ => problem(format!(
                    "stackdeploy gave {} (expected.toml says otherwise)",
                    show(&mine)
                )),
            }
            match (text("jinja2"), &theirs) {
                (Some(want), Ok(got)) if want == got => {}
                _ => {
                    problem(format!("Jinja2 gave {} (expected.toml says otherwise)", show(&theirs)))
                }
            }
            if mine == theirs {
                problem("both sides agree now: remove it from expected.toml".into());
            }
        } else if let Some(e) = errors.get(&stem(name)) {
            let want = e.get("stackdeploy_error").and_then(|v| v.as_str()).unwrap_or_default();
            match &mine {
                Err(got) if got.contains(want) => {}
                _ => {
                    problem(format!("stackdeploy should fail with {want:?}, gave {}", show(&mine)))
                }
            }
            if theirs.is_ok() {
                problem(format!("Jinja2 should fail too, gave {}", show(&theirs)));
            }
        } else if mine != theirs {
            problem(format!("\n  stackdeploy: {}\n  Jinja2:      {}", show(&mine), show(&theirs)));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} templates differ:\n{}",
        problems.len(),
        names.len(),
        problems.join("\n")
    );
}

/// The template of the redaction test: one `label=` line per filter a secret may pass
/// through, multi-line outputs joined with `⏎`.
const SECRET_LINES: &str = r#"to_json={{ params.pw | to_json }}
to_json_list={{ [params.pw, 1] | to_json }}
to_json_ascii={{ params.pw | to_json(ensure_ascii=false) }}
to_nice_json={{ {'k': params.pw} | to_nice_json | replace('\n', '⏎') }}
to_yaml={{ params.pw | to_yaml | replace('\n', '⏎') }}
to_yaml_list={{ [params.pw] | to_yaml | replace('\n', '⏎') }}
to_nice_yaml={{ {'k': params.pw} | to_nice_yaml | replace('\n', '⏎') }}
pem_to_yaml={{ params.pem | to_yaml | replace('\n', '⏎') }}
pem_to_nice_yaml={{ {'key': params.pem} | to_nice_yaml | replace('\n', '⏎') }}
pem_to_json={{ params.pem | to_json }}
b64encode={{ params.pw | b64encode }}
b64encode_urlsafe={{ params.pw | b64encode(urlsafe=true) }}
b64encode_utf16={{ params.pw | b64encode(encoding='utf-16-le') }}
quote={{ params.pw | quote }}
regex_escape={{ params.pw | regex_escape }}
md5={{ params.pw | hash('md5') }}
sha1={{ params.pw | hash('sha1') }}
sha224={{ params.pw | hash('sha224') }}
sha256={{ params.pw | hash('sha256') }}
sha384={{ params.pw | hash('sha384') }}
sha512={{ params.pw | hash('sha512') }}
md5_filter={{ params.pw | md5 }}
checksum={{ params.pw | checksum }}
ternary={{ true | ternary(params.pw, 'no') }}
mandatory={{ params.pw | mandatory }}
default={{ params.nothing | default(params.pw) }}
combine={{ {'a': params.pw} | combine({'b': 1}) | to_json }}
strip={{ params.pw.strip() }}
"#;

fn secret_repo(pw: &str, pem: &str) -> TestRepo {
    let repo = TestRepo::empty();
    repo.write(
        "pipeline.toml",
        "[hiera]\nhierarchy = [\"common\"]\n\n[environments.test.hosts]\nweb01 = { address = \"127.0.0.1\", role = \"web\" }\n",
    );
    repo.write("roles/web.toml", "profiles = [\"app\"]\n");
    repo.write(
        "profiles/app/profile.toml",
        "[params]\npw = { secret = true }\npem = { secret = true }\nnothing = { required = false }\n\n[[file]]\npath = \"/etc/app/filters\"\ntemplate = \"filters.j2\"\n\n[[exec]]\nname = \"login\"\ncommand = \"login --password {{ params.pw | quote }}\"\n",
    );
    repo.write("profiles/app/templates/filters.j2", SECRET_LINES);
    set_secrets(&repo, pw, pem);
    repo.commit("secrets through filters");
    repo
}

fn set_secrets(repo: &TestRepo, pw: &str, pem: &str) {
    let mut common = toml::Table::new();
    common.insert("app::pw".into(), toml::Value::from(pw));
    common.insert("app::pem".into(), toml::Value::from(pem));
    repo.write("hieradata/common.toml", &toml::to_string(&common).unwrap());
}

/// The rendered filter file: label → the filter's output.
fn filter_lines(repo: &TestRepo, rev: &str, show: bool) -> BTreeMap<String, String> {
    let mut args =
        vec!["catalog", "--env", "test", "--host", "web01", "--rev", rev, "--format", "json"];
    if show {
        args.push("--show-secrets");
    }
    let doc = repo.run(&args).json();
    let file = doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/etc/app/filters")
        .expect("the filter file");
    file["content"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| {
            let (label, value) = l.split_once('=').expect("label=value");
            (label.to_string(), value.to_string())
        })
        .collect()
}

/// Every 8-character window of `s` (what a partial leak would show), or `s` when shorter.
fn windows(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 8 {
        return vec![s.to_string()];
    }
    chars.windows(8).map(|w| w.iter().collect()).collect()
}

/// What the secret became in a filter's output: `shown` less what it shares with the
/// redacted line at the start and at the end (quotes, `k: `, brackets).
fn secret_part(shown: &str, hidden: &str) -> String {
    let (s, h): (Vec<char>, Vec<char>) = (shown.chars().collect(), hidden.chars().collect());
    let prefix = s.iter().zip(&h).take_while(|(a, b)| a == b).count();
    let suffix =
        s[prefix..].iter().rev().zip(h[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    s[prefix..s.len() - suffix].iter().collect()
}

/// No window of any part shows in `output` outside the markers (a marker's hash is the
/// start of the value's SHA-256, which the `hash('sha256')` line also starts with).
fn assert_no_part(output: &str, parts: &[String]) {
    let rest = without_markers(output);
    for w in parts.iter().flat_map(|p| windows(p)) {
        assert!(!rest.contains(&w), "{w:?} shows in:\n{output}");
    }
}

fn without_markers(s: &str) -> String {
    let re = regex::Regex::new(r"<secret:[^#>]+#[0-9a-f]{8}>").unwrap();
    re.replace_all(s, "").into_owned()
}

#[test]
fn a_secret_through_any_ansible_filter_is_redacted_in_catalogs_and_diffs() {
    let (pw, pem) = (
        "Zq9'Xv\"é\\Kp w7$(id)",
        "-----BEGIN KEY-----\nQm9ndXNLZXlNYXRlcmlhbA==\n-----END KEY-----\n",
    );
    let repo = secret_repo(pw, pem);
    let first = repo.commit("again");
    let revealed = filter_lines(&repo, &first, true);
    let redacted = filter_lines(&repo, &first, false);
    assert_eq!(revealed.len(), SECRET_LINES.lines().count(), "{revealed:?}");
    let mut problems = Vec::new();
    let mut parts = Vec::new();
    for (label, shown) in &revealed {
        let hidden = &redacted[label];
        if !hidden.contains("<secret:app::") {
            problems.push(format!("{label}: {hidden:?} has no marker"));
            continue;
        }
        let part = secret_part(shown, hidden);
        let rest = without_markers(hidden);
        if let Some(w) = windows(&part).into_iter().find(|w| rest.contains(w.as_str())) {
            problems.push(format!("{label}: {w:?} of {shown:?} left in {hidden:?}"));
        }
        parts.push(part);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The text catalog and the exec's command (`quote`'s form) too.
    let text = repo.run(&["catalog", "--env", "test", "--host", "web01"]);
    text.expect(0, &["login --password '<secret:app::pw#"]);
    assert_no_part(&text.stdout, &parts);

    // A rotated secret: the diff shows two markers and neither value, in any form.
    set_secrets(
        &repo,
        "Rt5'Yw\"ü\\Mn x8`id`",
        "-----BEGIN KEY-----\nT3RoZXJLZXlNYXRlcmlhbA==\n-----END KEY-----\n",
    );
    let second = repo.commit("rotate");
    let rotated = filter_lines(&repo, &second, true);
    let diff = repo.run(&["diff", "--env", "test", &first, &second]);
    diff.success();
    assert!(diff.stdout.contains("<secret:app::pw#"), "{}", diff.stdout);
    let redacted_now = filter_lines(&repo, &second, false);
    for (label, shown) in &rotated {
        parts.push(secret_part(shown, &redacted_now[label]));
    }
    assert_no_part(&diff.stdout, &parts);
}

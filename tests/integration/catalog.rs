//! `stackdeploy catalog`: apply order, rendered files, secrets redacted, JSON.

use crate::util::TestRepo;

const WEB02: [&str; 5] = ["catalog", "--env", "test", "--host", "web02"];

#[test]
fn resources_in_apply_order_with_rendered_content() {
    let repo = TestRepo::fixture("minimal");
    let run = repo.run(&WEB02);
    run.success();
    let out = &run.stdout;
    // The role lists app before base, but app requires base, so base comes first; inside a
    // profile directories come before files and services last.
    let order: Vec<usize> =
        ["file /etc/motd", "directory /etc/app", "file /etc/app/app.conf", "service app"]
            .iter()
            .map(|needle| out.find(needle).unwrap_or_else(|| panic!("{needle} missing in\n{out}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "wrong order {order:?} in\n{out}");
    // Node level beats common; unique merge of servers across role and common levels.
    assert!(out.contains("  | port = 9090\n"), "{out}");
    assert!(out.contains("  | server = web.example\n  | server = common.example\n"), "{out}");
    assert!(out.contains("  | cache = 127.0.0.3\n"), "{out}");
    assert!(out.contains("  | hello to web02 (r1)\n"), "{out}");
    assert!(out.contains("file /etc/app/app.conf (unmanaged):(unmanaged) 0640"), "{out}");
    assert!(out.contains("  notify: service:app"), "{out}");
    assert!(out.contains("  start: app --port 9090"), "{out}");
}

#[test]
fn secrets_are_redacted_unless_asked() {
    let repo = TestRepo::fixture("minimal");
    let run = repo.run(&WEB02);
    run.expect(0, &["password = <secret:app::password#"]).lacks("hunter2-secret");
    let json = repo.run(&[&WEB02[..], &["--format", "json"]].concat());
    json.success().lacks("hunter2-secret");
    let mut shown = WEB02.to_vec();
    shown.push("--show-secrets");
    repo.run(&shown).expect(0, &["password = hunter2-secret"]);
}

#[test]
fn changed_secret_shows_as_changed_hash() {
    let repo = TestRepo::fixture("minimal");
    let before = repo.run(&WEB02).stdout.clone();
    repo.edit("hieradata/common.toml", "hunter2-secret", "correct-horse");
    repo.commit("rotate");
    let after = repo.run(&WEB02);
    after.success().lacks("correct-horse");
    let marker = |s: &str| s.lines().find(|l| l.contains("password =")).unwrap().to_string();
    assert_ne!(marker(&before), marker(&after.stdout));
}

#[test]
fn json_catalog_has_schema_and_resources() {
    let repo = TestRepo::fixture("minimal");
    let run = repo.run(&[&WEB02[..], &["--format", "json"]].concat());
    let doc = run.json();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["host"], "web02");
    assert_eq!(doc["role"], "web");
    assert!(doc["commit"]["id"].as_str().unwrap().len() == 40);
    let types: Vec<&str> =
        doc["resources"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["file", "directory", "file", "service"]);
    assert_eq!(doc["resources"][2]["mode"], "0640");
    assert_eq!(doc["resources"][2]["notify"][0], "service:app");
}

#[test]
fn when_leaves_resources_out_and_drops_notify_to_them() {
    let repo = TestRepo::fixture("minimal");
    repo.edit(
        "profiles/app/profile.toml",
        "provider = \"command\"",
        "provider = \"command\"\nwhen = \"params.workers > 8\"",
    );
    repo.commit("service only for big hosts");
    let run = repo.run(&WEB02);
    run.success().lacks("service app").lacks("notify: service:app");
    repo.write("hieradata/nodes/web02.toml", "\"app::port\" = 9090\n\"app::workers\" = 16\n");
    repo.commit("big web02");
    repo.run(&WEB02).expect(0, &["service app", "notify: service:app"]);
}

#[test]
fn a_profile_when_leaves_the_whole_profile_out_and_its_data_unasked() {
    let repo = TestRepo::fixture("minimal");
    repo.edit(
        "profiles/app/profile.toml",
        "requires = [\"base\"]\n",
        "requires = [\"base\"]\nwhen = \"params.workers > 8\"\n",
    );
    // Only web02 has its own port: on web01 the required parameter is missing.
    repo.edit("hieradata/common.toml", "\"app::port\" = 8080\n", "");
    repo.commit("the app only on big hosts");
    let web01 = ["catalog", "--env", "test", "--host", "web01"];
    repo.run(&web01).success().lacks("/etc/app").lacks("service app");
    repo.run(&WEB02).success().lacks("/etc/app").lacks("service app");
    repo.run(&["check"]).expect(0, &["ok: "]);

    // Where the profile applies, its required data is asked for again.
    repo.write("hieradata/nodes/web01.toml", "\"app::workers\" = 16\n");
    repo.commit("big web01");
    repo.run(&web01).expect(
        1,
        &["profiles/app/profile.toml:6: profile 'app' needs parameter 'port' on host web01"],
    );
    repo.write("hieradata/nodes/web02.toml", "\"app::port\" = 9090\n\"app::workers\" = 16\n");
    repo.commit("big web02");
    repo.run(&WEB02).expect(0, &["file /etc/app/app.conf", "service app"]);
}

#[test]
fn unknown_host_and_environment_list_the_known_ones() {
    let repo = TestRepo::fixture("minimal");
    repo.run(&["catalog", "--env", "test", "--host", "web09"])
        .expect(1, &["no host 'web09' in environment 'test' (hosts: db01, web01, web02)"]);
    repo.run(&["catalog", "--env", "prod", "--host", "web01"])
        .expect(1, &["no environment 'prod' in pipeline.toml (known: test)"]);
}

#[test]
fn templates_named_like_yaml_or_html_are_not_escaped() {
    // minijinja escapes by template extension by default; config files must come out verbatim.
    let repo = TestRepo::fixture("minimal");
    let profile = repo.read("profiles/app/profile.toml").replace("app.conf.j2", "app.yaml.j2");
    repo.write("profiles/app/profile.toml", &profile);
    let template = repo.read("profiles/app/templates/app.conf.j2");
    repo.write(
        "profiles/app/templates/app.yaml.j2",
        &format!("{template}name: {{{{ host.name }}}} <&>\n"),
    );
    repo.commit("yaml-named template");
    repo.run(&WEB02).expect(0, &["  | name: web02 <&>\n"]).lacks("\"web02\"").lacks("&lt;");
}

/// A secret printed through a filter (JSON, URL, HTML, shell quoting) is redacted in every
/// output that shows the catalog, like the value itself.
#[test]
fn secrets_printed_through_filters_are_redacted_too() {
    let repo = TestRepo::fixture("minimal");
    let secret = "hun\"ter's&2<x>/";
    repo.edit(
        "hieradata/common.toml",
        "\"app::password\" = \"hunter2-secret\"",
        &format!("\"app::password\" = {}", toml::Value::from(secret)),
    );
    let profile = "profiles/app/profile.toml";
    repo.write(
        profile,
        &(repo.read(profile)
            + "\n[[file]]\npath = \"/etc/app/encoded\"\ncontent = \"{{ params.password | tojson }} {{ params.password | urlencode }} {{ params.password | e }}\"\n\n[[exec]]\nname = \"login\"\ncommand = \"login --password {{ params.password }}\"\n"),
    );
    repo.commit("secret printed through filters");
    let shown = repo.run(&[&WEB02[..], &["--show-secrets"]].concat());
    shown.expect(0, &["hun%22ter%27s%262%3Cx%3E/", "login --password 'hun\"ter'\"'\"'s&2<x>/'"]);
    for format in ["text", "json"] {
        let run = repo.run(&[&WEB02[..], &["--format", format]].concat());
        run.success();
        for form in [
            "ter\\\"s",
            "ter\\u0027s",
            "hun%22ter",
            "hun&quot;ter",
            "ter'\\''s",
            "ter'\"'\"'s",
            "s&2<x>",
        ] {
            run.lacks(form);
        }
        assert!(run.stdout.matches("<secret:app::password#").count() >= 4, "{}", run.stdout);
    }
}

//! `stackdeploy check`: a clean composition passes; each kind of bad input is one clear
//! `path:line: message` problem and a non-zero exit.

use crate::util::TestRepo;

/// Breaks the fixture with `edit`, commits, runs check, and returns its output for assertions.
fn broken(edit: impl FnOnce(&TestRepo)) -> (TestRepo, crate::util::Run) {
    let repo = TestRepo::fixture("minimal");
    edit(&repo);
    repo.commit("break it");
    let run = repo.run(&["check"]);
    (repo, run)
}

#[test]
fn clean_fixture_passes() {
    let repo = TestRepo::fixture("minimal");
    repo.run(&["check"]).expect(0, &["ok: 1 environment(s), 3 host(s), 2 role(s), 3 profile(s)"]);
}

#[test]
fn malformed_toml_names_file_and_line() {
    let (_r, run) = broken(|r| {
        r.edit("profiles/cache/profile.toml", "size = { type", "size = { type =");
    });
    run.expect(1, &["profiles/cache/profile.toml:2: "]);
}

#[test]
fn malformed_hieradata_names_file_and_line() {
    let (_r, run) = broken(|r| {
        r.write("hieradata/roles/db.toml", "\"cache::size\" = 1\n\"cache::size\" = 2\n");
    });
    run.expect(1, &["hieradata/roles/db.toml:2: ", "duplicate key"]);
}

#[test]
fn unknown_role() {
    let (_r, run) = broken(|r| {
        r.edit("pipeline.toml", "role = \"db\"", "role = \"dbx\"");
    });
    run.expect(
        1,
        &[
            "pipeline.toml:20: host 'db01' of environment 'test' has unknown role 'dbx'",
            "add roles/dbx.toml",
        ],
    );
}

#[test]
fn unknown_profile() {
    let (_r, run) = broken(|r| {
        r.edit("roles/db.toml", "\"cache\"", "\"cashe\"");
    });
    run.expect(1, &["roles/db.toml:2: role 'db' includes unknown profile 'cashe'"]);
}

/// A profile or role whose file does not load is reported once, for what is wrong in it; the
/// roles and hosts that use it are not told it is unknown (it exists).
#[test]
fn a_broken_profile_or_role_is_not_also_unknown() {
    let (_r, run) = broken(|r| {
        r.edit(
            "profiles/cache/profile.toml",
            "notify = [\"cache\"]",
            "notify = [\"cache\"]\nstrip = 1",
        );
        r.write("roles/db.toml", "profiles = [\"base\", \"cache\"]\nsize = 12\n");
    });
    run.expect(1, &["profiles/cache/profile.toml:", "roles/db.toml:2:"])
        .lacks("unknown profile")
        .lacks("unknown role");
}

#[test]
fn role_with_parameters_is_refused() {
    let (_r, run) = broken(|r| {
        r.write("roles/db.toml", "profiles = [\"base\", \"cache\"]\nsize = 12\n");
    });
    run.expect(1, &["roles/db.toml:2: role 'db' sets 'size', but roles only list profiles and take no parameters"]);
}

#[test]
fn notify_with_a_typo_or_a_resource_kind_says_what_was_meant() {
    let (_r, run) = broken(|r| {
        r.edit("profiles/cache/profile.toml", "notify = [\"cache\"]", "notify = [\"cahce\"]");
    });
    run.expect(1, &["notify 'cahce': no profile of role", "did you mean 'cache'?"]);
    let (_r, run) = broken(|r| {
        r.edit(
            "profiles/cache/profile.toml",
            "notify = [\"cache\"]",
            "notify = [\"package:memcached\"]",
        );
    });
    run.expect(1, &["notify takes a service's name or exec:NAME"]);
}

#[test]
fn notify_to_missing_service() {
    let (_r, run) = broken(|r| {
        r.edit("profiles/cache/profile.toml", "notify = [\"cache\"]", "notify = [\"memcached\"]");
    });
    run.expect(1, &["profiles/cache/profile.toml:7: notify 'memcached': no profile of role 'db' declares service:memcached"]);
}

#[test]
fn template_syntax_error_names_template_and_line() {
    let (_r, run) = broken(|r| {
        r.write("profiles/cache/templates/cache.conf.j2", "# cache\nsize = {{ params.size }\n");
    });
    run.expect(1, &["profiles/cache/templates/cache.conf.j2:2: template error: syntax error"]);
}

#[test]
fn undefined_template_variable_names_template_line_and_expression() {
    let (_r, run) = broken(|r| {
        r.write("profiles/cache/templates/cache.conf.j2", "# cache\n\nsize = {{ params.sise }}\n");
    });
    run.expect(
        1,
        &[
            "profiles/cache/templates/cache.conf.j2:3: template error: undefined value",
            "params.sise",
        ],
    );
}

#[test]
fn missing_required_parameter_names_key_and_files_searched() {
    let (_r, run) = broken(|r| {
        r.edit("hieradata/common.toml", "\"app::port\" = 8080\n", "");
    });
    run.expect(
        1,
        &[
            "profiles/app/profile.toml:5: profile 'app' needs parameter 'port' on host web01: set 'app::port' in hieradata",
            "searched hieradata/nodes/web01.toml (missing), hieradata/roles/web.toml, hieradata/environments/test.toml, hieradata/common.toml",
        ],
    )
    // web02 has its own port in nodes/web02.toml, so only web01 is reported.
    .lacks("on host web02");
}

#[test]
fn parameter_of_wrong_type() {
    let (_r, run) = broken(|r| {
        r.write("hieradata/nodes/web02.toml", "\"app::port\" = \"9090\"\n");
    });
    run.expect(1, &["parameter 'app::port' must be an integer but is a string on host web02"]);
}

#[test]
fn interpolation_cycle_is_reported_with_chain() {
    let (_r, run) = broken(|r| {
        r.write(
            "hieradata/environments/test.toml",
            "\"cache::size\" = 128\n\"a\" = \"%{lookup('b')}\"\n\"b\" = \"%{lookup('a')}\"\n\"app::password\" = \"%{lookup('a')}\"\n",
        );
    });
    run.expect(
        1,
        &["hieradata/environments/test.toml:", "interpolation cycle: app::password -> a -> b -> a"],
    );
}

#[test]
fn unknown_fact_in_hierarchy_level() {
    let (_r, run) = broken(|r| {
        r.edit("pipeline.toml", "  \"common\",", "  \"zones/%{facts.zone}\",\n  \"common\",");
    });
    run.expect(
        1,
        &["pipeline.toml:11: hierarchy level 'zones/%{facts.zone}': unknown fact 'zone' for host"],
    );
}

#[test]
fn unknown_fact_in_value() {
    let (_r, run) = broken(|r| {
        r.write("hieradata/roles/db.toml", "\"cache::size\" = \"%{facts.memory}\"\n");
    });
    run.expect(1, &["hieradata/roles/db.toml:1: unknown fact 'memory' for host db01"]);
}

#[test]
fn relative_file_path_is_refused() {
    let (_r, run) = broken(|r| {
        r.edit(
            "profiles/cache/profile.toml",
            "path = \"/etc/cache.conf\"",
            "path = \"etc/cache.conf\"",
        );
    });
    run.expect(1, &["profiles/cache/profile.toml:", "path \"etc/cache.conf\" is not absolute"]);
}

#[test]
fn two_profiles_managing_one_path() {
    let (_r, run) = broken(|r| {
        r.edit("profiles/cache/profile.toml", "path = \"/etc/cache.conf\"", "path = \"/etc/motd\"");
    });
    run.expect(
        1,
        &["path /etc/motd is managed by both profile 'base' and profile 'cache' on host db01"],
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let (_r, run) = broken(|r| {
        r.edit("roles/db.toml", "\"cache\"", "\"cashe\"");
        r.write("hieradata/common.toml", "\"app::port\" = [\n");
    });
    run.expect(1, &["roles/db.toml:2:", "hieradata/common.toml:"]);
}

#[test]
fn json_output_lists_problems_with_locations() {
    let (_r, run) = {
        let repo = TestRepo::fixture("minimal");
        repo.edit("roles/db.toml", "\"cache\"", "\"cashe\"");
        repo.commit("break");
        let run = repo.run(&["check", "--format", "json"]);
        (repo, run)
    };
    run.expect(1, &[]);
    let doc = run.json();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["errors"][0]["path"], "roles/db.toml");
    assert_eq!(doc["errors"][0]["line"], 2);
}

#[test]
fn typo_in_hiera_key_is_a_warning() {
    let repo = TestRepo::fixture("minimal");
    repo.write("hieradata/roles/db.toml", "\"cache::sise\" = 12\n");
    repo.commit("typo");
    repo.run(&["check"]).expect(0, &["warning: hieradata/roles/db.toml:1: key 'cache::sise': profile 'cache' has no parameter 'sise'"]);
}

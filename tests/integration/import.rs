//! `stackdeploy import hiera` on a Hiera 5 tree (tests/fixtures/hiera-import/puppet: path,
//! paths, glob, mapped_paths, eyaml and JSON levels, a vault backend; anchors, merge keys,
//! nulls, eyaml values and lookup_options in the data), then lookups in a composition that
//! uses what it wrote.

use std::path::Path;

use crate::util::{Run, TestRepo, copy_tree, project_root};

/// A repository holding the fixture's composition and, beside it, its Puppet tree.
fn workspace() -> TestRepo {
    let repo = TestRepo::empty();
    let fixture = project_root().join("tests/fixtures/hiera-import");
    copy_tree(&fixture.join("composition"), repo.path());
    copy_tree(&fixture.join("puppet"), &repo.path().join("puppet"));
    repo
}

fn import(repo: &TestRepo, extra: &[&str]) -> Run {
    let mut args = vec!["import", "hiera", "--config", "puppet/hiera.yaml", "--out", "."];
    args.extend_from_slice(extra);
    repo.run(&args)
}

fn toml_file(repo: &TestRepo, rel: &str) -> toml::Table {
    let text = repo.read(rel);
    toml::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not TOML: {e}\n{text}"))
}

/// The `[hiera]` block of the text report, as printed.
fn hierarchy_block(stdout: &str) -> String {
    let start = stdout.find("[hiera]\n").expect("a [hiera] block");
    let end = start + stdout[start..].find("\n]\n").expect("its end") + 3;
    stdout[start..end].to_string()
}

const HIERARCHY: &str = "[hiera]
hierarchy = [
  \"nodes/%{host.name}\",
  \"os/%{facts.os.family}\",
  \"environments/%{environment}\",
  \"secrets/common\",
  \"json/platform\",
  \"common\",
]
";

#[test]
fn a_hiera_5_tree_converts_and_lookups_return_what_puppet_had() {
    let repo = workspace();
    let run = import(&repo, &[]);
    // Written, but some things were left out: exit 2.
    run.expect(
        2,
        &[
            "wrote 8 files:",
            "puppet/data/common.yaml -> ./hieradata/common.toml",
            "puppet/json/platform.json -> ./hieradata/json/platform.toml",
            "puppet/data/secrets/common.eyaml -> ./hieradata/secrets/common.toml",
            "not converted (11):",
            "puppet/hiera.yaml:11: level \"Per-role data\": glob \"roles/*.yaml\" is not converted — ",
            "puppet/hiera.yaml:17: level \"Per-service data\": mapped_paths is not converted — ",
            "puppet/hiera.yaml:29: level \"Vault\": backend lookup_key: hiera_vault is not converted — ",
            "puppet/data/common.yaml:20: `app::removed` is null (~) — left out",
            "puppet/data/common.yaml:23: `app::options.legacy` is null (~) — left out of its hash",
            "puppet/data/common.yaml:25: `app::role_name`: %{trusted.extensions.pp_role} has no stackdeploy equivalent — ",
            "puppet/data/common.yaml:34: lookup_options `app::settings`: merge option `merge_hash_arrays` is not converted — ",
            "puppet/data/common.yaml:38: lookup_options `app::password`: convert_to is not converted — mark the profile parameter `secret = true`",
            "puppet/data/secrets/common.eyaml:3: `app::password` is eyaml-encrypted (ENC[PKCS7,...]) — `app::password` is left out, so a lookup fails",
            "| stackdeploy secret encrypt 'app::password'` and paste the printed `\"app::password\" = \"ENC[AGE,...]\"` line into hieradata/secrets/common.toml",
            "puppet/data/secrets/common.eyaml:8: `app::db.password` is eyaml-encrypted (ENC[PKCS7,...])",
            "puppet/json/platform.json:4: `platform::retired` is null (~)",
            "%{environment} (puppet/hiera.yaml:15) is now the stackdeploy environment's name",
            "the imported data uses the facts ipaddress, os.family:",
            "puppet/data/common.yaml:24: `app::mode`: 0644 is the integer 420 in YAML 1.1",
        ],
    );
    assert_eq!(hierarchy_block(&run.stdout), HIERARCHY, "{}", run.stdout);
    // The key a merge key brought in and the hash overrode is no duplicate.
    run.lacks("written twice");

    let common = toml_file(&repo, "hieradata/common.toml");
    assert_eq!(common["app::port"].as_integer(), Some(8080));
    assert_eq!(common["app::listen"].as_str(), Some("%{facts.ipaddress}"));
    assert_eq!(common["app::fqdn"].as_str(), Some("%{host.name}.example.com"));
    assert_eq!(common["app::db_url"].as_str(), Some("mysql://app@%{lookup('database::host')}/app"));
    assert_eq!(common["app::mode"].as_integer(), Some(420));
    // The anchor and the merge key, resolved.
    let settings = common["app::settings"].as_table().unwrap();
    assert_eq!(settings.keys().collect::<Vec<_>>(), ["timeout", "retries", "log_dir"]);
    assert_eq!(settings["retries"].as_integer(), Some(5));
    assert_eq!(common["app::options"].as_table().unwrap().keys().collect::<Vec<_>>(), ["debug"]);
    for gone in ["app::removed", "app::role_name"] {
        assert!(!common.contains_key(gone), "{gone} in {common:?}");
    }
    let options = common["lookup_options"].as_table().unwrap();
    assert_eq!(options.keys().collect::<Vec<_>>(), ["app::servers", "app::settings", "^ntp::.*"]);
    assert_eq!(options["app::settings"]["merge"]["knockout_prefix"].as_str(), Some("--"));
    let secrets = toml_file(&repo, "hieradata/secrets/common.toml");
    assert_eq!(secrets.keys().collect::<Vec<_>>(), ["app::admin_user"]);
    assert!(!repo.read("hieradata/secrets/common.toml").contains("ENC["));
    // Files no level names today are converted too (a fact may select them later).
    assert_eq!(toml_file(&repo, "hieradata/roles/web.toml")["app::workers"].as_integer(), Some(4));
    let platform = toml_file(&repo, "hieradata/json/platform.toml");
    assert_eq!(platform.keys().collect::<Vec<_>>(), ["platform::name", "platform::zones"]);

    // Paste the hierarchy into pipeline.toml and look keys up.
    let pipeline = repo.read("pipeline.toml");
    repo.write("pipeline.toml", &format!("{pipeline}\n{}", hierarchy_block(&run.stdout)));
    repo.commit("import from Puppet");
    let lookup = |key: &str| {
        repo.run(&["lookup", key, "--env", "production", "--host", "web01", "--format", "json"])
    };
    let value = |key: &str| {
        let run = lookup(key);
        run.expect(0, &[]);
        run.json()["value"].clone()
    };
    use serde_json::json;
    assert_eq!(value("app::port"), json!(9090));
    assert_eq!(value("app::servers"), json!(["web01.example", "common.example"]));
    // Deep merge with the knockout of the node level: timeout is gone.
    assert_eq!(value("app::settings"), json!({"retries": 5, "log_dir": "/srv/log"}));
    assert_eq!(value("app::fqdn"), json!("web01.example.com"));
    assert_eq!(value("app::listen"), json!("10.0.0.5"));
    assert_eq!(value("app::db_url"), json!("mysql://app@db.example.com/app"));
    assert_eq!(value("app::backends"), json!(["web01.example", "common.example"]));
    assert_eq!(value("app::discount"), json!("50% off"));
    assert_eq!(value("ntp::servers"), json!(["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]));
    assert_eq!(value("app::log_level"), json!("warn"));
    assert_eq!(value("platform::zones"), json!(["az1", "az2"]));
    assert_eq!(value("app::admin_user"), json!("admin"));
    // What was left out fails loudly instead of returning ciphertext or a wrong value.
    for key in ["app::password", "app::db", "app::role_name"] {
        lookup(key).expect(1, &[&format!("'{key}' has no value for host web01")]);
    }
    repo.run(&["lookup", "app::settings", "--env", "production", "--host", "web01", "--explain"])
        .expect(
            0,
            &[
                "hieradata/nodes/web01.toml",
                "(level nodes/%{host.name})",
                "hieradata/json/platform.toml",
            ],
        );
    repo.run(&["check"]).expect(0, &["ok: 1 environment(s), 1 host(s)"]).lacks("has no parameter");
}

#[test]
fn an_existing_output_file_is_refused_and_nothing_is_written() {
    let repo = workspace();
    repo.write("hieradata/os/Debian.toml", "# mine\n");
    let run = import(&repo, &[]);
    run.expect(
        1,
        &["refusing to overwrite ./hieradata/os/Debian.toml; nothing was written", "--force"],
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(repo.read("hieradata/os/Debian.toml"), "# mine\n");
    let mut left = Vec::new();
    collect(&repo.path().join("hieradata"), &mut left);
    assert_eq!(left, vec!["Debian.toml".to_string()]);
    // --force replaces it (atomically: no temporary file stays behind).
    import(&repo, &["--force"]).expect(2, &["wrote 8 files:"]);
    assert!(repo.read("hieradata/os/Debian.toml").contains("\"ntp::servers\""));
    let mut all = Vec::new();
    collect(&repo.path().join("hieradata"), &mut all);
    assert_eq!(all.len(), 8, "{all:?}");
}

fn collect(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn json_report_syntax_errors_and_old_hiera_versions() {
    let repo = workspace();
    repo.write("puppet/data/broken.yaml", "---\nkey: [1, 2\nother: 3\n");
    let run = import(&repo, &["--format", "json"]);
    run.expect(1, &[]);
    let doc = run.json();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["hierarchy"][0], "nodes/%{host.name}");
    assert_eq!(doc["hierarchy"].as_array().unwrap().len(), 6);
    // The broken file converts nothing; the others still convert.
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 8);
    assert!(files.iter().all(|f| f["from"] != "puppet/data/broken.yaml"));
    assert_eq!(files[0]["from"], "puppet/data/common.yaml");
    assert_eq!(files[0]["to"], "./hieradata/common.toml");
    assert!(!repo.path().join("hieradata/broken.toml").exists());
    let glob = &doc["not_converted"][0];
    assert_eq!(glob["file"], "puppet/hiera.yaml");
    assert_eq!(glob["line"], 11);
    assert!(glob["what"].as_str().unwrap().contains("glob"));
    assert!(glob["advice"].as_str().unwrap().contains("%{host.role}"));
    let error = &doc["errors"][0];
    assert_eq!(error["path"], "puppet/data/broken.yaml");
    assert!(error["line"].as_u64().unwrap() >= 2, "{error}");
    assert!(
        doc["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("%{environment}"))
    );

    // Text: the error names the file and line, after the report.
    let run = import(&repo, &["--force"]);
    run.expect(
        1,
        &[
            "error: puppet/data/broken.yaml:",
            "nothing of this file was converted",
            "wrote 8 files:",
        ],
    );

    // Hiera 3 and 4 configurations are refused, saying why.
    repo.write(
        "puppet/hiera.yaml",
        "---\n:backends:\n  - yaml\n:hierarchy:\n  - \"nodes/%{::trusted.certname}\"\n  - common\n",
    );
    import(&repo, &["--force"]).expect(
        1,
        &[
            "puppet/hiera.yaml:2: this hiera.yaml has a Hiera 3 configuration",
            "only Hiera 5 (version: 5) is imported",
        ],
    );
    repo.write(
        "puppet/hiera.yaml",
        "---\nversion: 4\ndatadir: data\nhierarchy:\n  - name: common\n    backend: yaml\n",
    );
    import(&repo, &["--force"])
        .expect(1, &["puppet/hiera.yaml:2: this is a Hiera 4 configuration"]);
    // With --format json, that error is JSON on stdout too.
    let run = import(&repo, &["--format", "json"]);
    run.expect(1, &["this is a Hiera 4 configuration"]);
    assert_eq!(run.json()["errors"][0]["path"], "puppet/hiera.yaml");
    assert_eq!(run.json()["errors"][0]["line"], 2);
}

#[test]
fn everything_converted_exits_0() {
    let repo = TestRepo::empty();
    repo.write("hiera.yaml", "version: 5\nhierarchy:\n  - name: common\n    path: common.yaml\n");
    repo.write("data/common.yaml", "ntp::servers: [a, b]\n");
    let run = repo.run(&["import", "hiera", "--config", "hiera.yaml", "--out", "out"]);
    run.expect(
        0,
        &[
            "everything was converted",
            "  \"common\",\n",
            "data/common.yaml -> out/hieradata/common.toml",
        ],
    );
    // A node file holding only `---` (as puppetlabs/control-repo ships one) is an empty file;
    // a file that cannot be parsed is an error, and the report does not claim otherwise.
    repo.write("data/nodes/example.yaml", "---\n");
    repo.run(&["import", "hiera", "--config", "hiera.yaml", "--out", "empty"])
        .expect(0, &["data/nodes/example.yaml -> empty/hieradata/nodes/example.toml"]);
    repo.write("data/broken.yaml", "a: [1,\n");
    let run = repo.run(&["import", "hiera", "--config", "hiera.yaml", "--out", "broken"]);
    run.expect(1, &["1 file could not be converted (below)", "data/broken.yaml:2: YAML"])
        .lacks("everything was converted");
    std::fs::remove_file(repo.path().join("data/broken.yaml")).unwrap();
    // --datadir overrides the configuration's.
    repo.write("other/common.yaml", "x: 1\n");
    repo.run(&["import", "hiera", "--config", "hiera.yaml", "--datadir", "other", "--out", "out2"])
        .expect(0, &["other/common.yaml -> out2/hieradata/common.toml"]);
    repo.run(&[
        "import",
        "hiera",
        "--config",
        "hiera.yaml",
        "--datadir",
        "nowhere",
        "--out",
        "out3",
    ])
    .expect(1, &["no data directory nowhere (--datadir)"]);
}

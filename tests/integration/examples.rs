//! The examples under `examples/`: the two-region composition (`examples/multi-region`) checks
//! clean from a commit and keeps each region's data, clusters and optional services to itself;
//! the CI files (`examples/jenkins/Jenkinsfile`, `examples/gitlab/.gitlab-ci.yml`) call
//! stackdeploy only in ways the real command line accepts, with the gates and artifacts a
//! deployment pipeline needs.

use crate::util::{Run, TestRepo, project_root};

/// The multi-region example, copied into a fresh repository and committed.
fn multi_region() -> TestRepo {
    TestRepo::from_dir(&project_root().join("examples/multi-region"))
}

fn catalog_json(repo: &TestRepo, host: &str, show_secrets: bool) -> serde_json::Value {
    let mut args = vec!["catalog", "--env", "production", "--host", host, "--format", "json"];
    if show_secrets {
        args.push("--show-secrets");
    }
    let run = repo.run(&args);
    run.success();
    run.json()
}

/// `type name` of every resource of the host's catalog, in apply order.
fn resources(repo: &TestRepo, host: &str) -> Vec<String> {
    let doc = catalog_json(repo, host, false);
    doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            let name = r["path"].as_str().or(r["name"].as_str()).unwrap_or("?");
            format!("{} {}", r["type"].as_str().unwrap_or("?"), name)
        })
        .collect()
}

/// The rendered content of the file `path` in the host's catalog.
fn file_content(repo: &TestRepo, host: &str, path: &str, show_secrets: bool) -> String {
    let doc = catalog_json(repo, host, show_secrets);
    let file = doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "file" && r["path"] == path)
        .unwrap_or_else(|| panic!("{host} has no file {path}"));
    file["content"].as_str().unwrap_or_else(|| panic!("{host}: {path} has no content")).to_string()
}

fn lookup(repo: &TestRepo, key: &str, host: &str, extra: &[&str]) -> Run {
    let mut args = vec!["lookup", key, "--env", "production", "--host", host];
    args.extend_from_slice(extra);
    repo.run(&args)
}

/// The 1-based line of the first line of `rel` (in the example) containing `needle`.
fn line_of(rel: &str, needle: &str) -> usize {
    let path = project_root().join("examples/multi-region").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{} has no line containing {needle:?}", path.display()))
        + 1
}

const TOKYO_CONTROLLERS: [&str; 2] = ["tokyo-ctl1", "tokyo-ctl2"];

// --- the multi-region composition ---------------------------------------------------------------

#[test]
fn multi_region_checks_clean_from_a_commit() {
    let repo = multi_region();
    repo.run(&["check"])
        .expect(0, &["ok: 1 environment(s), 10 host(s), 3 role(s), 10 profile(s)", "from commit"])
        .lacks("warning")
        .lacks("working tree");
}

#[test]
fn designate_runs_only_on_tokyo_controllers() {
    let repo = multi_region();
    for host in TOKYO_CONTROLLERS {
        let res = resources(&repo, host);
        for wanted in ["file /etc/designate/designate.conf", "file /etc/designate/pools.yaml"] {
            assert!(res.iter().any(|r| r == wanted), "{host} lacks {wanted}: {res:#?}");
        }
        let haproxy = file_content(&repo, host, "/etc/haproxy/haproxy.cfg", false);
        assert!(haproxy.contains("listen designate\n"), "{host}: no designate listener\n{haproxy}");
        // mdns masters of the pool: Tokyo's controllers, not Osaka's.
        let pools = file_content(&repo, host, "/etc/designate/pools.yaml", false);
        assert!(pools.contains("description: Default pool of region RegionTokyo\n"), "{pools}");
        for addr in ["host: 127.0.30.21\n", "host: 127.0.30.22\n", "host: 127.0.30.53\n"] {
            assert!(pools.contains(addr), "{host}: pools.yaml lacks {addr:?}\n{pools}");
        }
        assert!(!pools.contains("127.0.31."), "{host}: Osaka address in pools.yaml\n{pools}");
    }
    // Osaka's controller has the same role, but nothing of designate: no resource, no listener.
    let osaka = repo.run(&["catalog", "--env", "production", "--host", "osaka-ctl1"]);
    osaka.expect(0, &["file /etc/haproxy/haproxy.cfg", "file /etc/keystone/keystone.conf"]);
    osaka.lacks("designate");
    let res = resources(&repo, "osaka-ctl1");
    assert!(res.iter().all(|r| !r.contains("designate")), "osaka-ctl1: {res:#?}");
}

#[test]
fn region_data_resolves_per_region_and_explain_names_the_region_file() {
    let repo = multi_region();
    for (host, region, file) in [
        ("tokyo-cmp1", "RegionTokyo", "hieradata/regions/tokyo.toml"),
        ("osaka-cmp1", "RegionOsaka", "hieradata/regions/osaka.toml"),
    ] {
        let json = lookup(&repo, "openstack::region", host, &["--format", "json"]);
        assert_eq!(json.json()["value"], region, "{}", json.stdout);
        let other =
            if region == "RegionTokyo" { "regions/osaka.toml" } else { "regions/tokyo.toml" };
        lookup(&repo, "openstack::region", host, &["--explain"])
            .expect(0, &[file, &format!("found: \"{region}\""), "regions/%{facts.region}"])
            .lacks(other);
    }
    // Time servers: each region's own first, then the pool of common.toml (merged `unique`).
    for (host, first) in [("tokyo-db1", "ntp.nict.jp"), ("osaka-db1", "ntp.jst.mfeed.ad.jp")] {
        let run = lookup(&repo, "ntp::servers", host, &["--format", "json"]);
        let value = &run.json()["value"];
        assert_eq!(
            *value,
            serde_json::json!([first, "0.jp.pool.ntp.org", "1.jp.pool.ntp.org"]),
            "{}",
            run.stdout
        );
    }
    // The region level outranks the environment: Osaka's smaller buffer pool wins there only.
    for (host, size) in [("tokyo-db1", "1G"), ("osaka-db1", "512M")] {
        let run = lookup(&repo, "mariadb::innodb_buffer_pool_size", host, &["--format", "json"]);
        assert_eq!(run.json()["value"], size, "{host}: {}", run.stdout);
    }
}

#[test]
fn clusters_and_time_servers_stay_inside_their_region() {
    let repo = multi_region();
    // haproxy on Osaka balances over Osaka's controller only; Tokyo's over both of Tokyo's.
    let osaka = file_content(&repo, "osaka-ctl1", "/etc/haproxy/haproxy.cfg", false);
    assert!(osaka.contains("server osaka-ctl1 127.0.31.21:15000"), "{osaka}");
    assert!(!osaka.contains("127.0.30."), "Tokyo backend in Osaka's haproxy\n{osaka}");
    let tokyo = file_content(&repo, "tokyo-ctl1", "/etc/haproxy/haproxy.cfg", false);
    for backend in ["server tokyo-ctl1 127.0.30.21:15000", "server tokyo-ctl2 127.0.30.22:15000"] {
        assert!(tokyo.contains(backend), "{backend} missing\n{tokyo}");
    }
    assert!(!tokyo.contains("127.0.31."), "Osaka backend in Tokyo's haproxy\n{tokyo}");
    // One Galera cluster per region.
    for (host, cluster) in [
        ("tokyo-db1", "wsrep_cluster_address    = gcomm://127.0.30.11\n"),
        ("osaka-db1", "wsrep_cluster_address    = gcomm://127.0.31.11\n"),
    ] {
        let galera = file_content(&repo, host, "/etc/mysql/mariadb.conf.d/60-galera.cnf", false);
        assert!(galera.contains(cluster), "{host}\n{galera}");
    }
    // Compute hosts follow their own region's controllers for time.
    let chrony = file_content(&repo, "osaka-cmp2", "/etc/chrony/chrony.conf", false);
    assert!(chrony.contains("server 127.0.31.21 iburst\n"), "{chrony}");
    assert!(!chrony.contains("127.0.30."), "Tokyo time server on an Osaka host\n{chrony}");
    let chrony = file_content(&repo, "tokyo-cmp3", "/etc/chrony/chrony.conf", false);
    assert!(chrony.contains("server 127.0.30.21 iburst\nserver 127.0.30.22 iburst\n"), "{chrony}");
}

#[test]
fn keystone_database_is_shared_and_lives_in_tokyo() {
    let repo = multi_region();
    // Both regions' keystones use the keystone database on tokyo-db1.
    for host in ["tokyo-ctl2", "osaka-ctl1"] {
        let conf = file_content(&repo, host, "/etc/keystone/keystone.conf", true);
        assert!(conf.contains("@127.0.30.11/keystone\n"), "{host}\n{conf}");
    }
    // Only Tokyo's cluster creates the keystone and designate databases; both create nova's.
    let tokyo = file_content(&repo, "tokyo-db1", "/etc/mysql/openstack.sql", true);
    let osaka = file_content(&repo, "osaka-db1", "/etc/mysql/openstack.sql", true);
    for db in ["`keystone`", "`designate`", "`nova_api`"] {
        assert!(tokyo.contains(&format!("CREATE DATABASE IF NOT EXISTS {db}")), "{db}\n{tokyo}");
    }
    assert!(osaka.contains("CREATE DATABASE IF NOT EXISTS `nova_api`"), "{osaka}");
    for db in ["`keystone`", "`designate`"] {
        assert!(!osaka.contains(db), "{db} on osaka-db1\n{osaka}");
    }
}

#[test]
fn limit_selects_hosts_by_region_fact() {
    let repo = multi_region();
    let old = repo.commit("unchanged");
    repo.edit(
        "hieradata/roles/compute.toml",
        "\"nova_compute::cpu_allocation_ratio\" = 4.0",
        "\"nova_compute::cpu_allocation_ratio\" = 8.0",
    );
    repo.commit("overcommit CPUs on every compute host");
    let run = repo.run(&[
        "diff",
        &old,
        "--env",
        "production",
        "--limit",
        "role:compute & fact:region=osaka",
    ]);
    run.expect(
        0,
        &[
            "2 compute hosts: osaka-cmp1, osaka-cmp2\n",
            "+cpu_allocation_ratio = 8.0",
            "Diff: 2 host(s) change, 0 unchanged",
        ],
    )
    .lacks("tokyo-");
    // A fact alone selects the whole region: its four hosts, two of them computes.
    let region = repo.run(&["diff", &old, "--env", "production", "--limit", "fact:region=osaka"]);
    region.expect(0, &["Diff: 2 host(s) change, 2 unchanged"]).lacks("tokyo-");
}

/// The packages of the host's catalog: name → ensure.
fn packages(repo: &TestRepo, host: &str) -> std::collections::BTreeMap<String, String> {
    let doc = catalog_json(repo, host, false);
    doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["type"] == "package")
        .map(|r| {
            (r["name"].as_str().unwrap().to_string(), r["ensure"].as_str().unwrap().to_string())
        })
        .collect()
}

const ZED_NOVA: &str = "2:26.2.2-1~deb12u5";
const YOGA_NOVA: &str = "2:25.2.1-1~bpo11+1";
const PCI_SPEC: &str = r#" = { "vendor_id": "8086", "product_id": "10ed" }"#;

#[test]
fn each_region_renders_its_own_release_data() {
    let repo = multi_region();
    for (host, release, option, other) in [
        ("tokyo-cmp1", "zed", "device_spec", "passthrough_whitelist"),
        ("osaka-cmp1", "yoga", "passthrough_whitelist", "device_spec"),
    ] {
        let file = format!("hieradata/releases/{release}.toml");
        lookup(&repo, "nova_compute::pci_device_option", host, &["--explain"])
            .expect(
                0,
                &[&file, &format!("found: \"{option}\""), "releases/%{facts.openstack_release}"],
            )
            .lacks(if release == "zed" { "releases/yoga.toml" } else { "releases/zed.toml" });
        let conf = file_content(&repo, host, "/etc/nova/nova-compute.conf", false);
        assert!(conf.contains(&format!("\n[pci]\n{option}{PCI_SPEC}\n")), "{host}:\n{conf}");
        assert!(!conf.contains(other), "{host} renders {other}:\n{conf}");
    }
}

#[test]
fn moving_a_host_to_another_release_changes_exactly_the_release_data() {
    let repo = multi_region();
    let before = catalog_json(&repo, "tokyo-cmp1", false);
    repo.edit(
        "pipeline.toml",
        "region = \"tokyo\", openstack_release = \"zed\",  az = \"tokyo-a\" } }\ntokyo-cmp2",
        "region = \"tokyo\", openstack_release = \"yoga\", az = \"tokyo-a\" } }\ntokyo-cmp2",
    );
    repo.commit("tokyo-cmp1 back to yoga");
    let after = catalog_json(&repo, "tokyo-cmp1", false);
    let (before, after) =
        (before["resources"].as_array().unwrap(), after["resources"].as_array().unwrap());
    assert_eq!(before.len(), after.len());
    let changed: Vec<_> = before.iter().zip(after).filter(|(b, a)| b != a).collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    let (b, a) = changed[0];
    assert_eq!(b["path"], "/etc/nova/nova-compute.conf");
    let (b, a) = (b["content"].as_str().unwrap(), a["content"].as_str().unwrap());
    let lines: Vec<_> = b.lines().zip(a.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(
        lines,
        [(
            format!("device_spec{PCI_SPEC}").as_str(),
            format!("passthrough_whitelist{PCI_SPEC}").as_str()
        )]
    );
    assert_eq!(b.lines().count(), a.lines().count());
}

#[test]
fn package_versions_are_pinned_per_release_where_packages_are_managed() {
    let repo = multi_region();
    // On the lab platform no OpenStack package is managed, so no pin shows.
    assert!(!packages(&repo, "tokyo-cmp1").contains_key("nova-compute"));
    // A platform that installs nova-compute: each region gets its release's version.
    repo.edit("hieradata/platforms/lab.toml", "\"nova_compute::manage_packages\" = false\n", "");
    repo.commit("install nova-compute");
    for (host, version) in [("tokyo-cmp1", ZED_NOVA), ("osaka-cmp1", YOGA_NOVA)] {
        let pkgs = packages(&repo, host);
        for name in ["nova-compute", "nova-compute-kvm"] {
            assert_eq!(pkgs.get(name).map(String::as_str), Some(version), "{host}: {pkgs:?}");
        }
        // Packages the release data does not pin stay as they were.
        assert_eq!(pkgs.get("chrony").map(String::as_str), Some("present"), "{host}: {pkgs:?}");
    }
}

/// `git` in the repository, its stdout.
fn git(repo: &TestRepo, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .args(args)
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn status_by_release_shows_what_each_region_runs_mid_upgrade() {
    let repo = multi_region();
    let released = git(&repo, &["rev-parse", "HEAD"], None);
    // Osaka moves to Zed; only its controller runs that commit yet (as a canary would).
    let pipeline = repo.read("pipeline.toml");
    let upgraded = pipeline.replace(
        "region = \"osaka\", openstack_release = \"yoga\"",
        "region = \"osaka\", openstack_release = \"zed\"",
    );
    assert_ne!(pipeline, upgraded);
    repo.write("pipeline.toml", &upgraded);
    let upgrade = repo.commit("Osaka to Zed");
    git(&repo, &["update-ref", "refs/stackdeploy/envs/production", &released], None);
    let hosts = format!("{{\"osaka-ctl1\": \"{upgrade}\"}}");
    let blob = git(&repo, &["hash-object", "-w", "--stdin"], Some(&hosts));
    git(&repo, &["update-ref", "refs/stackdeploy/hosts/production", &blob], None);

    // Each host's release as the commit it runs declares it: Osaka's other hosts still Yoga.
    let (old, new) = (&released[..12], &upgrade[..12]);
    let run = repo.run(&["status", "--by", "region", "--by", "openstack_release"]);
    run.expect(
        0,
        &[&format!(
            "production: {old}\n  osaka-ctl1 runs {new}\n\
             \x20 region=osaka openstack_release=yoga  {old}  3 host(s)\n\
             \x20 region=osaka openstack_release=zed   {new}  1 host(s)\n\
             \x20 region=tokyo openstack_release=zed   {old}  6 host(s)\n"
        )],
    );
    let doc = repo.run(&["status", "--by", "openstack_release", "--format", "json"]).json();
    let groups: Vec<(String, String, Vec<String>)> = doc["environments"]["production"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let hosts = g["hosts"].as_array().unwrap().iter();
            (
                g["facts"]["openstack_release"].as_str().unwrap().to_string(),
                g["commit"]["id"].as_str().unwrap()[..12].to_string(),
                hosts.map(|h| h.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let names = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        groups,
        [
            ("yoga".into(), old.into(), names("osaka-cmp1 osaka-cmp2 osaka-db1")),
            (
                "zed".into(),
                old.into(),
                names("tokyo-cmp1 tokyo-cmp2 tokyo-cmp3 tokyo-ctl1 tokyo-ctl2 tokyo-db1")
            ),
            ("zed".into(), new.into(), names("osaka-ctl1")),
        ]
    );
    // Without --by the document and the text are as before.
    let plain = repo.run(&["status", "--format", "json"]).json();
    assert!(plain["environments"]["production"].get("groups").is_none(), "{plain}");
    // A fact no host has is named, with the facts there are.
    repo.run(&["status", "--by", "release"]).expect(
        1,
        &[
            "status --by release: no host in pipeline.toml has the fact 'release'",
            "openstack_release, platform, region",
        ],
    );
}

#[test]
fn missing_region_file_is_reported_with_file_and_line() {
    let repo = multi_region();
    std::fs::remove_file(repo.path().join("hieradata/regions/osaka.toml")).unwrap();
    repo.commit("drop the Osaka region data");
    let line = line_of("profiles/ntp/profile.toml", "allow = {");
    let run = repo.run(&["check"]);
    for host in ["osaka-db1", "osaka-ctl1", "osaka-cmp1"] {
        run.expect(
            1,
            &[&format!(
                "profiles/ntp/profile.toml:{line}: profile 'ntp' needs parameter 'allow' on host \
                 {host}: set 'ntp::allow' in hieradata"
            )],
        );
    }
    // The message marks the missing level's file among those searched; Tokyo is unaffected.
    run.expect(1, &["hieradata/regions/osaka.toml (missing), hieradata/releases/yoga.toml, hieradata/platforms/lab.toml,"])
        .lacks("tokyo-");
}

/// The release level is required: a release fact with no data (a typo, a release nobody
/// wrote data for) is an error at the host's line, not the other release's settings.
#[test]
fn a_release_fact_without_release_data_is_an_error_at_the_host() {
    let repo = multi_region();
    let cmp1 = "\"127.0.31.31\", role = \"compute\",    facts = { region = \"osaka\", openstack_release = ";
    repo.edit("pipeline.toml", &format!("{cmp1}\"yoga\""), &format!("{cmp1}\"Yoga\""));
    repo.commit("a release fact with a capital");
    let line = line_of("pipeline.toml", "osaka-cmp1 = {");
    repo.run(&["check"]).expect(
        1,
        &[&format!(
            "pipeline.toml:{line}: host 'osaka-cmp1': the hierarchy level \
             'releases/%{{facts.openstack_release}}' is required ([hiera] required), and for this \
             host it is hieradata/releases/Yoga.toml, which does not exist (there are: yoga, zed)"
        )],
    );
    // A required level must be one of the hierarchy's.
    repo.edit(
        "pipeline.toml",
        "required = [\"releases/%{facts.openstack_release}\"]",
        "required = [\"release/%{facts.openstack_release}\"]",
    );
    repo.commit("a required level that is none");
    repo.run(&["check"]).expect(1, &["which is no level of the hierarchy; did you mean 'releases/%{facts.openstack_release}'?"]);
}

#[test]
fn region_only_data_left_out_is_a_missing_parameter_where_the_profile_applies() {
    let repo = multi_region();
    repo.edit(
        "hieradata/regions/tokyo.toml",
        "\"designate::bind_address\" = \"%{host.address}\"\n",
        "",
    );
    repo.commit("forget designate's address");
    let line = line_of("profiles/designate/profile.toml", "bind_address = {");
    // designate's `when` holds on Tokyo's controllers only: there its parameters are required;
    // Osaka, where the profile manages nothing, is not asked for them.
    repo.run(&["check"])
        .expect(
            1,
            &[
                &format!(
                    "profiles/designate/profile.toml:{line}: profile 'designate' needs parameter \
                     'bind_address' on host tokyo-ctl1: set 'designate::bind_address' in hieradata"
                ),
                "[same on 2 hosts: production/tokyo-ctl1, production/tokyo-ctl2]",
            ],
        )
        .lacks("osaka");
}

#[test]
fn enabling_a_region_only_profile_asks_for_its_data() {
    let repo = multi_region();
    // Osaka turns designate on without its data: every missing parameter is named.
    repo.write(
        "hieradata/regions/osaka.toml",
        &(repo.read("hieradata/regions/osaka.toml") + "\n\"designate::enabled\" = true\n"),
    );
    repo.commit("designate in Osaka, data forgotten");
    repo.run(&["check"])
        .expect(1, &["needs parameter 'bind_address' on host osaka-ctl1", "'designate::region'"]);
}

// --- the CI examples ----------------------------------------------------------------------------

const CI_FILES: [&str; 2] = ["examples/jenkins/Jenkinsfile", "examples/gitlab/.gitlab-ci.yml"];

const PULL_STATE: &str = "stackdeploy state pull";

/// One `stackdeploy ...` command line found in a CI file.
#[derive(Debug)]
struct Invocation {
    file: &'static str,
    line: usize,
    /// Byte offset of the command in the file.
    offset: usize,
    text: String,
    argv: Vec<String>,
}

impl Invocation {
    fn flag(&self, name: &str) -> Option<&str> {
        let i = self.argv.iter().position(|a| a == name)?;
        self.argv.get(i + 1).map(String::as_str)
    }

    fn has(&self, words: &[&str]) -> bool {
        words.iter().all(|w| self.argv.iter().any(|a| a == w))
    }

    fn subcommand(&self) -> String {
        self.argv.iter().skip(1).take(2).cloned().collect::<Vec<_>>().join(" ")
    }
}

/// Every `stackdeploy` command in a CI file: in a shell line (YAML list item, after `&&`, `;`,
/// `||`, `|`, `(`, env assignments) or a Jenkins `sh '...'` / `sh(script: '...')` string. Line
/// continuations are joined, shell quoting is undone, variables become placeholders.
fn invocations(file: &'static str, text: &str) -> Vec<Invocation> {
    let mut found = Vec::new();
    // Logical lines: (number and byte offset of their first physical line, joined text).
    let mut logical: Vec<(usize, usize, String)> = Vec::new();
    let mut pending: Option<(usize, usize, String)> = None;
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches('\n');
        let start = offset;
        offset += raw.len();
        let (num, off, mut acc) = pending.take().unwrap_or((i + 1, start, String::new()));
        let piece = if acc.is_empty() { line } else { line.trim_start() };
        if let Some(stripped) = piece.trim_end().strip_suffix('\\') {
            acc.push_str(stripped);
            acc.push(' ');
            pending = Some((num, off, acc));
        } else {
            acc.push_str(piece);
            logical.push((num, off, acc));
        }
    }
    logical.extend(pending);
    for (num, off, line) in logical {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = line[from..].find("stackdeploy") {
            let at = from + pos;
            from = at + "stackdeploy".len();
            if !line[from..].starts_with(' ') || !starts_a_command(&line[..at]) {
                continue;
            }
            let quote = line[..at].chars().last().filter(|c| *c == '\'' || *c == '"');
            let mut segment = &line[at..];
            if let Some(q) = quote {
                // A Groovy string: the command ends where the string does.
                if let Some(end) = segment.find(q) {
                    segment = &segment[..end];
                }
            }
            let (argv, consumed) = shell_words(segment);
            found.push(Invocation {
                file,
                line: num,
                offset: off + at,
                text: segment[..consumed].trim_end().to_string(),
                argv,
            });
        }
    }
    found
}

/// Whether a command starts right after `before` (the text of the line before `stackdeploy`).
fn starts_a_command(before: &str) -> bool {
    let mut rest = before.trim_end();
    // Drop `NAME=value` environment assignments in front of the command.
    loop {
        let (head, last) = match rest.rfind(char::is_whitespace) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => ("", rest),
        };
        let is_assignment = last.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        });
        if !is_assignment || last.is_empty() {
            break;
        }
        rest = head.trim_end();
    }
    rest.is_empty()
        || [
            "-",
            "&&",
            "||",
            ";",
            "|",
            "(",
            "$(",
            "then",
            "do",
            "sh '",
            "sh \"",
            "sh '''",
            "sh \"\"\"",
        ]
        .iter()
        .any(|m| rest.ends_with(m))
        || rest.ends_with("script: '")
        || rest.ends_with("script: \"")
}

/// Splits a shell command into words until the first unquoted operator, redirection or
/// comment; `$VAR`, `${...}` and `$(...)` become placeholders. Returns the words and how many
/// bytes of `s` they span.
fn shell_words(s: &str) -> (Vec<String>, usize) {
    fn placeholder(name: &str) -> String {
        let upper = name.to_ascii_uppercase();
        if upper.contains("SHA") || upper.contains("COMMIT") || upper.contains("REV") {
            "0123456789abcdef0123456789abcdef01234567".into()
        } else {
            "placeholder".into()
        }
    }
    fn expansion(chars: &[char], i: &mut usize) -> String {
        // chars[*i] == '$'
        *i += 1;
        match chars.get(*i) {
            Some('{') | Some('(') => {
                let (open, close) = if chars[*i] == '{' { ('{', '}') } else { ('(', ')') };
                let mut depth = 0;
                let start = *i + 1;
                while *i < chars.len() {
                    if chars[*i] == open {
                        depth += 1;
                    } else if chars[*i] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    *i += 1;
                }
                let inner: String = chars[start..(*i).min(chars.len())].iter().collect();
                *i += 1;
                placeholder(&inner)
            }
            Some(c) if c.is_ascii_alphanumeric() || *c == '_' => {
                let start = *i;
                while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
                    *i += 1;
                }
                placeholder(&chars[start..*i].iter().collect::<String>())
            }
            _ => "$".into(),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut i = 0;
    let mut end = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                words.extend(word.take());
                i += 1;
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    w.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                word.get_or_insert_with(String::new);
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        word.as_mut().unwrap().push(chars[i + 1]);
                        i += 2;
                    } else if chars[i] == '$' {
                        let value = expansion(&chars, &mut i);
                        word.as_mut().unwrap().push_str(&value);
                    } else {
                        word.as_mut().unwrap().push(chars[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            '\\' => {
                if let Some(next) = chars.get(i + 1) {
                    word.get_or_insert_with(String::new).push(*next);
                }
                i += 2;
            }
            '$' => {
                let value = expansion(&chars, &mut i);
                word.get_or_insert_with(String::new).push_str(&value);
            }
            ';' | '&' | '|' | ')' | '<' | '>' => {
                // `2>/dev/null`: the descriptor number is not a word.
                if word.as_deref().is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())) {
                    word = None;
                }
                break;
            }
            '#' if word.is_none() => break,
            _ => {
                word.get_or_insert_with(String::new).push(c);
                i += 1;
            }
        }
        end = i.min(chars.len());
    }
    words.extend(word);
    let consumed = chars[..end].iter().collect::<String>().len();
    (words, consumed)
}

fn ci_invocations() -> Vec<(&'static str, String, Vec<Invocation>)> {
    CI_FILES
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(project_root().join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let found = invocations(file, &text);
            (*file, text, found)
        })
        .collect()
}

#[test]
fn command_extraction_handles_quoting_continuations_and_variables() {
    let text = "# stackdeploy check is a comment\n\
                - stackdeploy plan --env \"$ENV\" \\\n    --out plan.json || test $? -eq 2\n\
                sh(script: 'stackdeploy approve ${GIT_COMMIT} --stage release', returnStatus: true)\n\
                - STACKDEPLOY_USER=\"$USER\" stackdeploy status -n 3 2>/dev/null\n\
                error(\"stackdeploy plan failed\")\n\
                label 'stackdeploy' ; git push origin 'refs/notes/stackdeploy'\n";
    let found = invocations("inline", text);
    let argvs: Vec<Vec<&str>> =
        found.iter().map(|i| i.argv.iter().map(String::as_str).collect()).collect();
    assert_eq!(
        argvs,
        [
            vec!["stackdeploy", "plan", "--env", "placeholder", "--out", "plan.json"],
            vec![
                "stackdeploy",
                "approve",
                "0123456789abcdef0123456789abcdef01234567",
                "--stage",
                "release"
            ],
            vec!["stackdeploy", "status", "-n", "3"],
        ],
        "{found:#?}"
    );
    assert_eq!(found.iter().map(|i| i.line).collect::<Vec<_>>(), [2, 4, 5]);
}

#[test]
fn ci_examples_invoke_stackdeploy_as_the_cli_accepts() {
    use clap::Parser as _;
    let mut failures = Vec::new();
    let mut parsed = 0;
    for (file, _, found) in ci_invocations() {
        assert!(
            found.len() >= 6,
            "{file}: only {} stackdeploy commands found: {found:#?}",
            found.len()
        );
        for inv in &found {
            match stackdeploy::cli::Cli::try_parse_from(&inv.argv) {
                Ok(_) => parsed += 1,
                Err(e) => failures.push(format!(
                    "{}:{}: {}\n    argv: {:?}\n    {}",
                    inv.file,
                    inv.line,
                    inv.text,
                    inv.argv,
                    e.render().to_string().trim_end().replace('\n', "\n    ")
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} stackdeploy command line(s) in the CI examples are refused by the CLI:\n\n{}",
        failures.len(),
        failures.len() + parsed,
        failures.join("\n\n")
    );
}

#[test]
fn ci_examples_gate_the_release_and_keep_their_reports() {
    let root_pipeline: toml::Table =
        toml::from_str(&std::fs::read_to_string(project_root().join("pipeline.toml")).unwrap())
            .unwrap();
    let stages: Vec<&str> = root_pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let environments = root_pipeline["environments"].as_table().unwrap();
    let release = stages.iter().position(|s| *s == "release").expect("a release stage");

    let mut report = Vec::new();
    for (file, text, found) in ci_invocations() {
        let mut problems: Vec<String> = Vec::new();
        let find = |pred: &dyn Fn(&Invocation) -> bool, what: &str, problems: &mut Vec<String>| {
            let hit = found.iter().find(|i| pred(i)).map(|i| i.offset);
            if hit.is_none() {
                problems.push(format!("no {what}"));
            }
            hit
        };
        // Every stage and environment named exists in the repository's pipeline.toml.
        for inv in &found {
            for flag in ["--to", "--from", "--stage"] {
                if let Some(stage) = inv.flag(flag)
                    && !stages.contains(&stage)
                {
                    problems.push(format!(
                        "{}:{}: {flag} {stage}: no such stage {stages:?}",
                        file, inv.line
                    ));
                }
            }
            if let Some(env) = inv.flag("--env").or(inv.flag("-e"))
                && !environments.contains_key(env)
            {
                problems.push(format!("{}:{}: --env {env}: no such environment", file, inv.line));
            }
        }
        find(&|i| i.subcommand().starts_with("check"), "`stackdeploy check`", &mut problems);
        find(
            &|i| i.subcommand().starts_with("diff") && i.flag("--html").is_some(),
            "`stackdeploy diff --html`",
            &mut problems,
        );
        // Up to the release, excluding it: `--to` names the stage just before release.
        let before_release = find(
            &|i| i.subcommand() == "pipeline run" && i.flag("--to") == Some(stages[release - 1]),
            &format!("`pipeline run --to {}`", stages[release - 1]),
            &mut problems,
        );
        let approve = find(
            &|i| i.subcommand().starts_with("approve") && i.flag("--stage") == Some("release"),
            "`approve ... --stage release`",
            &mut problems,
        );
        let release_run = find(
            &|i| i.subcommand() == "pipeline run" && i.flag("--from") == Some("release"),
            "`pipeline run --from release`",
            &mut problems,
        );
        find(
            &|i| {
                i.subcommand().starts_with("plan")
                    && i.flag("--out").is_some()
                    && i.flag("--html").is_some()
            },
            "`plan --out FILE --html FILE`",
            &mut problems,
        );
        let plan_out = found.iter().find_map(|i| i.flag("--out").map(str::to_string));
        find(
            &|i| {
                i.subcommand().starts_with("apply")
                    && i.has(&["--yes"])
                    && plan_out
                        .as_deref()
                        .is_some_and(|p| i.argv.last().map(String::as_str) == Some(p))
            },
            "`apply --yes PLANFILE` of the saved plan",
            &mut problems,
        );
        for inv in found.iter().filter(|i| i.subcommand() == "pipeline run") {
            if !inv.has(&["--yes"]) || inv.flag("--junit").is_none() {
                problems
                    .push(format!("{}:{}: pipeline run without --yes and --junit", file, inv.line));
            }
        }

        // The manual gate sits between the canary and the approval, the approval before the release.
        let gate = if file.ends_with("Jenkinsfile") {
            text.find("input {")
        } else {
            text.find("when: manual")
        };
        let line = |offset: usize| text[..offset].lines().count() + 1;
        match (before_release, gate, approve, release_run) {
            (Some(b), Some(g), Some(a), Some(r)) if !(b < g && g < a && a < r) => {
                problems.push(format!(
                    "out of order: want pipeline run --to (line {}) < manual gate (line {}) < \
                     approve (line {}) < pipeline run --from release (line {})",
                    line(b),
                    line(g),
                    line(a),
                    line(r)
                ));
            }
            (_, None, _, _) => problems.push("no manual approval gate".into()),
            _ => {}
        }

        // Reports are kept: JUnit for the test-report UI, HTML for reviewers.
        for inv in &found {
            if let Some(junit) = inv.flag("--junit") {
                let archived = if file.ends_with("Jenkinsfile") {
                    text.contains(&format!("junit testResults: '{junit}'"))
                } else {
                    // A name with a variable in it (one report per parallel job) is archived
                    // by a pattern: `junit-release-$CI_NODE_INDEX.xml` by `junit-release-*.xml`.
                    text.lines().filter_map(|l| l.trim().strip_prefix("junit: ")).any(|kept| {
                        kept == junit
                            || kept.split_once('*').is_some_and(|(a, b)| {
                                junit.contains("placeholder")
                                    && junit.starts_with(a)
                                    && junit.ends_with(b)
                            })
                    })
                };
                if !archived {
                    problems.push(format!(
                        "{}:{}: JUnit report {junit} is not archived",
                        file, inv.line
                    ));
                }
            }
            if let Some(html) = inv.flag("--html") {
                // The page and the stylesheet written next to it, which CI servers' CSP
                // allows where it refuses inline styles.
                let css = std::path::Path::new(html).with_extension("css");
                for artifact in [html, css.to_str().unwrap()] {
                    let archived = if file.ends_with("Jenkinsfile") {
                        text.lines().any(|l| l.contains("archiveArtifacts") && l.contains(artifact))
                    } else {
                        text.lines().any(|l| l.trim() == format!("- {artifact}"))
                    };
                    if !archived {
                        problems.push(format!(
                            "{}:{}: HTML report file {artifact} is not archived",
                            file, inv.line
                        ));
                    }
                }
            }
        }

        // Promotion state: pulled before the first stage runs; pushed by the engine itself
        // (STACKDEPLOY_STATE_REMOTE), so a failed push fails the job, never a plain `git push`
        // (refused for the refs a rollback moves back) and never a token in a URL.
        let pull = text.find(PULL_STATE);
        if pull.is_none() {
            problems.push(format!("no `{PULL_STATE}`"));
        }
        if let (Some(f), Some(b)) = (pull, before_release)
            && f > b
        {
            problems.push("promotion state pulled only after the first pipeline run".into());
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with('#') || code.starts_with("//") {
                continue;
            }
            if line.contains("git push") || line.contains("after_script") {
                problems.push(format!("{file}:{}: pushes state outside the engine: {code}", n + 1));
            }
            if line.contains("TOKEN}@") || line.contains("TOKEN@") {
                problems.push(format!("{file}:{}: a token in a URL ends up in .git/config", n + 1));
            }
        }
        for needle in ["STACKDEPLOY_STATE_REMOTE", "STACKDEPLOY_AGE_KEY_FILE"] {
            if !text.contains(needle) {
                problems.push(format!("{needle} is not mentioned"));
            }
        }
        if !problems.is_empty() {
            report.push(format!("{file}:\n- {}", problems.join("\n- ")));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}

/// The nightly drift check of each CI system: one `stackdeploy drift` of an environment that
/// exists, run on a schedule (GitLab: a job only scheduled pipelines run; Jenkins: a job of its
/// own with a cron trigger), keeping its HTML report and stylesheet. Under gitlab-ci-local,
/// tests/integration/drift.rs runs the GitLab job.
#[test]
fn ci_examples_check_for_drift_nightly_and_keep_the_report() {
    use clap::Parser as _;
    let root_pipeline: toml::Table =
        toml::from_str(&std::fs::read_to_string(project_root().join("pipeline.toml")).unwrap())
            .unwrap();
    let environments = root_pipeline["environments"].as_table().unwrap();
    let jobs = [
        ("examples/gitlab/.gitlab-ci.yml", "- if: $CI_PIPELINE_SOURCE == \"schedule\"\n"),
        ("examples/jenkins/Jenkinsfile.drift", "cron('"),
    ];
    let mut problems = Vec::new();
    for (file, schedule) in jobs {
        let text = std::fs::read_to_string(project_root().join(file)).unwrap();
        let drift: Vec<Invocation> = invocations(file, &text)
            .into_iter()
            .filter(|i| i.subcommand().starts_with("drift"))
            .collect();
        let [inv] = drift.as_slice() else {
            problems.push(format!("{file}: want one `stackdeploy drift`, found {drift:?}"));
            continue;
        };
        if let Err(e) = stackdeploy::cli::Cli::try_parse_from(&inv.argv) {
            problems.push(format!("{file}:{}: refused by the CLI: {}", inv.line, e.render()));
        }
        match inv.flag("--env") {
            Some(env) if environments.contains_key(env) => {}
            other => {
                problems.push(format!("{file}:{}: --env {other:?}: no such environment", inv.line))
            }
        }
        if !text.contains(schedule) {
            problems.push(format!("{file}: not run on a schedule (no {schedule:?})"));
        }
        let Some(html) = inv.flag("--html") else {
            problems.push(format!("{file}:{}: no --html report", inv.line));
            continue;
        };
        let css = std::path::Path::new(html).with_extension("css");
        for artifact in [html, css.to_str().unwrap()] {
            let archived = if file.contains("Jenkinsfile") {
                text.lines().any(|l| l.contains("archiveArtifacts") && l.contains(artifact))
            } else {
                text.lines().any(|l| l.trim() == format!("- {artifact}"))
            };
            if !archived {
                problems.push(format!("{file}: the report file {artifact} is not archived"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

//! The shipped OpenStack composition at the repository root: it checks clean, and the
//! rendered catalogs of one host per role are pinned as snapshots.

use crate::util::TestRepo;

#[test]
fn shipped_composition_checks_clean() {
    let repo = TestRepo::shipped();
    repo.run(&["check"])
        .expect(0, &["ok: 2 environment(s), 11 host(s), 3 role(s)"])
        .lacks("warning");
}

fn catalog(repo: &TestRepo, env: &str, host: &str) -> String {
    let run = repo.run(&["catalog", "--env", env, "--host", host]);
    run.success();
    // The commit id changes with every edit of the composition; the catalog is what is pinned.
    run.stdout.lines().filter(|l| !l.starts_with("# from commit")).collect::<Vec<_>>().join("\n")
}

#[test]
fn shipped_catalogs_one_host_per_role() {
    let repo = TestRepo::shipped();
    for host in ["db01", "controller01", "compute01"] {
        insta::assert_snapshot!(format!("staging_{host}"), catalog(&repo, "staging", host));
    }
}

#[test]
fn haproxy_balances_over_every_controller() {
    let repo = TestRepo::shipped();
    let cat = catalog(&repo, "production", "controller02");
    for port in [5000, 9292, 8774, 9696, 80] {
        assert!(cat.contains(&format!(":{port}")), "no listener on port {port}\n{cat}");
    }
    for addr in ["127.0.20.21", "127.0.20.22"] {
        assert!(cat.contains(addr), "controller {addr} missing from haproxy\n{cat}");
    }
}

#[test]
fn shipped_catalogs_never_show_secret_values() {
    let repo = TestRepo::shipped();
    let mut checked = 0;
    for (env, host, secrets) in crate::util::compiled_secrets(repo.path()) {
        assert!(!secrets.is_empty(), "{host} has no secret parameters");
        for format in ["text", "json"] {
            let run = repo.run(&["catalog", "--env", &env, "--host", &host, "--format", format]);
            run.success();
            for secret in &secrets {
                run.lacks(secret);
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} secret checks");
}

/// Every package the shipped catalogs install exists in Debian 12, on the lab platform and on
/// real hosts (no platform file: the nova-compute and Open vSwitch packages). Debian names some
/// packages differently from upstream's guides (nova-consoleproxy, not nova-novncproxy; no
/// neutron-plugin-ml2): this is where such a name is caught before a host's apt is asked.
#[test]
fn every_shipped_package_exists_in_debian() {
    let repo = TestRepo::shipped();
    let real = repo.read("pipeline.toml").replace("platform = \"lab\"", "platform = \"real\"");
    repo.write("pipeline.toml", &real);
    repo.commit("real hosts");
    let mut packages = std::collections::BTreeSet::new();
    for rev in ["HEAD~1", "HEAD"] {
        for (env, host) in
            [("staging", "db01"), ("staging", "controller01"), ("staging", "compute01")]
        {
            let run = repo
                .run(&["--rev", rev, "catalog", "--env", env, "--host", host, "--format", "json"]);
            run.success();
            for r in run.json()["resources"].as_array().unwrap() {
                if r["type"] == "package" {
                    packages.insert(r["name"].as_str().unwrap().to_string());
                }
            }
        }
    }
    for expected in ["python3-nova", "nova-compute-kvm", "placement-api", "nova-consoleproxy"] {
        assert!(packages.contains(expected), "{expected} not among {packages:?}");
    }
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| {
            let out = std::process::Command::new("apt-cache")
                .args(["show", "--no-all-versions", "--", p])
                .output()
                .expect("apt-cache (Debian)");
            !out.status.success() || out.stdout.is_empty()
        })
        .collect();
    assert!(missing.is_empty(), "not in this machine's Debian archive: {missing:?}");
}

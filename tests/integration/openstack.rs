//! The shipped composition deploys a real OpenStack (Debian 12's Zed packages) on lab hosts of
//! both environments, and the shipped pipeline's checks test the running cloud: then commits
//! that break it in ways an operator breaks clouds are stopped where they should be.
//!
//! One test, one pair of labs (staging 127.78.40.0/24, production 127.79.40.0/24): each step
//! builds on the cloud the previous one left, and two clouds are what one machine can run next
//! to the rest of the suite. Every claim is checked on the hosts themselves (processes, files,
//! applied records, what the OpenStack client says), not only through the pipeline's own
//! report.

use std::collections::BTreeMap;

use crate::converge::Lab;
use crate::pipeline::{applied_commit, env_ref, head};

const NET: u8 = 40;

const PRODUCTION: [&str; 7] =
    ["db01", "controller01", "controller02", "compute01", "compute02", "compute03", "compute04"];

/// The pid in each pid file on a host (missing files are left out).
fn pids(lab: &Lab, env: &str, host: &str, files: &[&str]) -> BTreeMap<String, String> {
    files
        .iter()
        .filter_map(|f| {
            let out = lab.sh_in(env, host, &format!("cat {f} 2>/dev/null || true"));
            let pid = out.trim();
            (!pid.is_empty()).then(|| (f.to_string(), pid.to_string()))
        })
        .collect()
}

const CONTROLLER_PIDS: [&str; 6] = [
    "/run/keystone/keystone-public.pid",
    "/run/glance/glance-api.pid",
    "/run/placement/placement-api.pid",
    "/run/nova/nova-api.pid",
    "/run/nova/nova-conductor.pid",
    "/run/neutron/neutron-server.pid",
];

/// Runs `command` on a controller with the cloud administrator's credentials.
fn openstack(lab: &Lab, env: &str, host: &str, command: &str) -> String {
    lab.sh_in(env, host, &format!(". /root/admin-openrc && {command}"))
}

#[test]
fn a_real_openstack_is_deployed_tested_and_guarded_by_the_pipeline() {
    let lab = Lab::openstack(NET);

    // 1. Empty lab hosts to a tested cloud in both environments, with no secret of either on
    //    any process's command line meanwhile (bootstraps, database setup, checks).
    let watch = crate::util::ProcessWatch::start();
    let run = lab.run(&["pipeline", "run", "--yes", "--format", "json"]);
    // Those long enough to mean something when found in a command line.
    let secrets: std::collections::BTreeSet<String> =
        crate::util::compiled_secrets(lab.repo.path())
            .into_iter()
            .flat_map(|(_, _, secrets)| secrets)
            .filter(|s| s.len() >= 8)
            .collect();
    assert!(secrets.len() > 10, "only {} secrets", secrets.len());
    let seen = watch.stop(&secrets.iter().map(String::as_str).collect::<Vec<_>>(), 1000);
    assert!(seen.is_empty(), "secrets on process lists: {seen:?}");
    run.success();
    let doc = run.json();
    let good = head(&lab);
    for stage in doc["stages"].as_array().unwrap() {
        for check in stage["checks"].as_array().unwrap() {
            assert_eq!(check["passed"], true, "{check}");
        }
    }
    let names = |stage: usize| -> Vec<String> {
        doc["stages"][stage]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} on {}", c["name"].as_str().unwrap(), c["on"].as_str().unwrap()))
            .collect()
    };
    assert!(
        names(2)
            .contains(&"a server becomes ACTIVE on every compute host on controller01".to_string()),
        "{:?}",
        names(2)
    );
    assert!(
        names(4).contains(
            &"a token of one controller validates on every other on controller02".to_string()
        ),
        "{:?}",
        names(4)
    );
    // Seen from the hosts, not the report: every production compute host registered, the
    // catalog has placement's endpoint, and both controllers hold the same fernet keys.
    let c02 = lab.address_in("production", "controller02");
    let services = openstack(
        &lab,
        "production",
        "controller02",
        &format!(
            "openstack --os-auth-url http://{c02}:15000/v3 compute service list \
             --service nova-compute -f value -c Host -c State"
        ),
    );
    for host in ["compute01", "compute02", "compute03", "compute04"] {
        assert!(services.lines().any(|l| l == format!("{host} up")), "{services}");
    }
    let endpoint_list = |env: &str| {
        let list = "openstack endpoint list -f value -c 'Service Type' -c Interface";
        openstack(&lab, env, "controller01", list)
    };
    let endpoints = endpoint_list("production");
    assert!(endpoints.lines().any(|l| l == "placement public"), "{endpoints}");
    let keys = |host: &str| lab.sh_in("production", host, "cat /etc/keystone/fernet-keys/*");
    assert_eq!(keys("controller01"), keys("controller02"));
    // Masakari is on in staging's data and off in production's: staging's check made a segment
    // of its compute hosts through haproxy (names(2) above passed), and its catalog and
    // processes are there; production has neither.
    assert!(
        names(2).contains(
            &"masakari takes a failover segment of every compute host on controller01".to_string()
        ),
        "{:?}",
        names(2)
    );
    let staging_endpoints = endpoint_list("staging");
    assert!(staging_endpoints.lines().any(|l| l == "instance-ha public"), "{staging_endpoints}");
    assert!(!endpoints.contains("instance-ha"), "{endpoints}");
    let running = |env: &str, host: &str, pid: &str| {
        lab.sh_in(
            env,
            host,
            &format!("kill -0 $(cat {pid} 2>/dev/null) 2>/dev/null && echo up || echo down"),
        )
        .trim()
        .to_string()
    };
    assert_eq!(running("staging", "controller01", "/run/masakari/masakari-engine.pid"), "up");
    assert_eq!(running("staging", "compute02", "/run/masakari/masakari-processmonitor.pid"), "up");
    assert_eq!(running("production", "controller01", "/run/masakari/masakari-api.pid"), "down");
    assert_eq!(
        running("production", "compute01", "/run/masakari/masakari-processmonitor.pid"),
        "down"
    );

    // 2. A second apply changes nothing and restarts nothing.
    let before = pids(&lab, "production", "controller01", &CONTROLLER_PIDS);
    assert_eq!(before.len(), CONTROLLER_PIDS.len(), "{before:?}");
    lab.run(&["apply", "--env", "production", "--yes"])
        .expect(0, &["Apply: 0 changed, 7 unchanged, 0 failed"]);
    assert_eq!(pids(&lab, "production", "controller01", &CONTROLLER_PIDS), before);

    // 3. A keystone setting restarts keystone and nothing else, and tokens are issued again.
    let staging_before = pids(&lab, "staging", "controller01", &CONTROLLER_PIDS);
    lab.repo.write("hieradata/nodes/staging/controller01.toml", "\"keystone::workers\" = 2\n");
    lab.repo.commit("two keystone workers on the staging controller");
    lab.run(&["pipeline", "run", "--yes", "--to", "integration"]).success();
    let staging_after = pids(&lab, "staging", "controller01", &CONTROLLER_PIDS);
    for (file, pid) in &staging_before {
        let restarted = staging_after[file] != *pid;
        assert_eq!(
            restarted,
            file.contains("keystone"),
            "{file}: {staging_before:?} -> {staging_after:?}"
        );
    }

    // 4. A wrong database password for keystone in staging: keystone starts (its API answers
    // without the database), the integration stage's token check fails and shows why, from
    // keystone's log, and production never sees the commit.
    let db = lab.address_in("staging", "db01");
    lab.repo.write(
        "hieradata/nodes/staging/controller01.toml",
        &format!(
            "\"keystone::workers\" = 2\n\"keystone::database_connection\" = \
             \"mysql+pymysql://keystone:not-the-password@{db}/keystone\"\n"
        ),
    );
    let bad = lab.repo.commit("keystone with a wrong database password");
    let run = lab.run(&["pipeline", "run", "--yes"]);
    run.expect(
        1,
        &[
            "integration",
            "FAILED",
            "check 'keystone issues a token through haproxy' on controller01 failed",
            "keystone's last errors",
            "Access denied for user 'keystone'",
        ],
    );
    run.lacks("not-the-password");
    assert_eq!(env_ref(&lab, "staging").as_deref(), Some(bad.as_str()));
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(good.as_str()));
    for host in PRODUCTION {
        assert_eq!(applied_commit(&lab, "production", host), good, "{host}");
    }

    // 5. Staging repaired, but a production-only setting breaks nova-compute on the canary
    // compute host: it dies at start, the canary fails at once, and the canary hosts go back to
    // the released commit, where nova-compute runs and reports again; no other host saw it.
    std::fs::remove_file(lab.repo.path().join("hieradata/nodes/staging/controller01.toml"))
        .unwrap();
    lab.repo.write(
        "hieradata/nodes/production/compute01.toml",
        "\"nova_compute::compute_driver\" = \"fake.NoSuchDriver\"\n",
    );
    lab.repo.commit("a compute driver production does not have");
    let run = lab.run(&["pipeline", "run", "--yes"]);
    run.expect(
        1,
        &[
            "canary",
            "FAILED",
            "service:nova-compute: stopped running after restart, before it was ready",
            "canary hosts rolled back to",
        ],
    );
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(good.as_str()));
    for host in PRODUCTION {
        assert_eq!(applied_commit(&lab, "production", host), good, "{host}");
    }
    let conf = lab.sh_in("production", "compute01", "cat /etc/nova/nova-compute.conf");
    assert!(conf.contains("compute_driver = fake.FakeDriver"), "{conf}");
    lab.sh_in("production", "compute01", "kill -0 $(cat /run/nova/nova-compute.pid)");
    // Each start begins a fresh log and keeps the previous one: the failed start's is the one
    // before, and the rollback's start got as far as the ready check asks.
    let failed_log = lab.sh_in("production", "compute01", "cat /var/log/nova/nova-compute.log.1");
    assert!(failed_log.contains("NoSuchDriver"), "{failed_log}");
    let log = lab.sh_in("production", "compute01", "cat /var/log/nova/nova-compute.log");
    assert!(log.contains("Looking for unclaimed instances stuck in BUILDING"), "{log}");
    assert!(!log.contains("NoSuchDriver"), "{log}");
}

//! plan and apply end to end: the shipped composition converged on real lab hosts (real sshd,
//! real files, real daemons started by the engine).
//!
//! Each test owns the networks 127.78.N.0/24 (staging) and 127.79.N.0/24 (production), N unique
//! per test (table below), so tests run in parallel and never touch a user's own lab; the
//! [`Lab`] guard brings the hosts down when the test ends, also when it fails.
//!
//! | N | test |
//! |---|------|
//! | 1 | first_apply_converges_and_second_changes_nothing |
//! | 2 | one_hiera_change_plans_that_diff_and_restarts_only_notified |
//! | 3 | changed_host_key_is_refused_and_nothing_is_written |
//! | 4 | failed_validate_keeps_the_old_file_and_others_converge |
//! | 5 | killed_sshd_mid_run_leaves_no_partial_file |
//! | 6 | a_locked_host_names_the_holder |
//! | 7 | failure_budget_stops_the_rollout |
//! | 8 | restart_interrupted_after_the_renames_is_owed_to_the_next_run |
//! | 9 | a_saved_plan_applies_what_was_reviewed_and_refuses_drifted_hosts |
//! | 10 | progress_bar_on_a_terminal_plain_lines_in_ci |
//! | 11-17 | (pipeline.rs) |
//! | 18 | a_plan_never_shows_what_the_running_commit_kept_secret |
//! | 19 | a_host_with_many_files_converges |
//! | 20 | no_secret_shows_in_the_process_list_of_a_host |
//! | 21 | a_killed_client_leaves_no_locked_host_and_no_hung_command |
//! | 22 | (pipeline.rs) |
//! | 23 | (junit.rs) a_failed_run_with_control_characters_is_a_junit_file_ci_tools_read |
//! | 24 | (gitlab.rs) the_gitlab_example_runs_under_gitlab_ci_local_and_publishes_what_the_hosts_run |
//! | 26 | (json.rs) ci_reads_counts_statuses_and_commit_objects_from_every_json_document |
//! | 28 | a_plan_shows_a_change_of_many_hosts_once_and_quiet_keeps_the_summary |
//! | 29 | (free) |
//! | 30 | (junit.rs) an_unreachable_host_is_an_error_and_a_refused_change_a_failure |
//! | 38 | (hooks.rs) a_release_adding_and_removing_hosts_tells_the_cmdb_once |
//! | 39 | (hooks.rs, spare) |
//! | 41 | (drift.rs) drift_reports_exactly_what_was_changed_by_hand_and_a_reapply_clears_it (staging); the_gitlab_example_runs_drift_alone_in_a_scheduled_pipeline_and_keeps_the_report (production) |
//! | 42 | (drift.rs) drift_compares_each_host_with_the_commit_it_runs_not_with_head |
//! | 43 | (patch.rs) a_patch_applies_once_refuses_an_upgraded_file_and_comes_out_again |
//! | 44 | (patch.rs) a_patch_of_a_file_the_same_apply_installs_goes_in_with_its_package |

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use stackdeploy::{Output, Session, Target};

use crate::util::{Run, TestRepo};

/// The shipped composition on private addresses, with its staging lab up.
pub struct Lab {
    pub repo: TestRepo,
    pub net: u8,
    envs: Vec<&'static str>,
}

impl Lab {
    pub fn staging(net: u8) -> Lab {
        Lab::up(net, &["staging"])
    }

    /// The shipped composition with the lab of each of `envs` up, on the `lab-files` platform
    /// (tests/fixtures/lab-files): every file is rendered and written as on the `lab` platform,
    /// but of the daemons only memcached, haproxy and chrony run, and the stages' checks ask
    /// those. Starting a real OpenStack is minutes and a gigabyte per environment; these tests
    /// are about the engine (files, plans, restarts, promotion), many labs at once. The real
    /// OpenStack is tests/integration/openstack.rs.
    pub fn up(net: u8, envs: &[&'static str]) -> Lab {
        let repo = TestRepo::shipped();
        let fixture = crate::util::project_root().join("tests/fixtures/lab-files");
        let read = |name: &str| std::fs::read_to_string(fixture.join(name)).unwrap();
        let pipeline = repo.read("pipeline.toml");
        let stages = pipeline.find("# --- pipeline").expect("the stage section of pipeline.toml");
        let pipeline = pipeline[..stages].replace("platform = \"lab\"", "platform = \"lab-files\"");
        repo.write("pipeline.toml", &(pipeline + &read("stages.toml")));
        repo.write("hieradata/platforms/lab-files.toml", &read("platform.toml"));
        Lab::on_private_addresses(repo, net, envs)
    }

    /// The shipped composition as it is (platform `lab`: the real OpenStack, the shipped
    /// stages), with both environments' labs up.
    pub fn openstack(net: u8) -> Lab {
        Lab::on_private_addresses(TestRepo::shipped(), net, &["staging", "production"])
    }

    fn on_private_addresses(repo: TestRepo, net: u8, envs: &[&'static str]) -> Lab {
        for file in [
            "pipeline.toml",
            "hieradata/environments/staging.toml",
            "hieradata/environments/production.toml",
        ] {
            let text = repo
                .read(file)
                .replace("127.0.10.", &format!("127.78.{net}."))
                .replace("127.0.20.", &format!("127.79.{net}."));
            repo.write(file, &text);
        }
        repo.commit("private lab addresses");
        let lab = Lab { repo, net, envs: envs.to_vec() };
        for env in envs {
            lab.run(&["lab", "up", "--env", env]).success();
        }
        lab
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.repo.run(args)
    }

    pub fn address(&self, host: &str) -> String {
        self.address_in("staging", host)
    }

    pub fn address_in(&self, env: &str, host: &str) -> String {
        let last = match host {
            "db01" => 11,
            "controller01" => 21,
            "controller02" => 22,
            "compute01" => 31,
            "compute02" => 32,
            "compute03" => 33,
            "compute04" => 34,
            _ => panic!("unknown host {host}"),
        };
        let net = if env == "staging" { 78 } else { 79 };
        format!("127.{net}.{}.{last}", self.net)
    }

    pub fn session(&self, host: &str) -> Session {
        self.session_in("staging", host)
    }

    pub fn session_in(&self, env: &str, host: &str) -> Session {
        let dir = self.repo.path().join(".stackdeploy/lab").join(env);
        Session::connect(&Target {
            host: host.into(),
            address: self.address_in(env, host),
            port: 2222,
            user: "root".into(),
            identity: Some(dir.join("id_ed25519")),
            known_hosts: dir.join("known_hosts"),
            sudo: false,
            trust_new_host_keys: false,
            connect_timeout: Duration::from_secs(5),
            jump: None,
        })
        .unwrap_or_else(|e| panic!("connect to {host}: {e}"))
    }

    /// Runs a command on a staging lab host, asserting it succeeds; returns stdout.
    pub fn sh(&self, host: &str, command: &str) -> String {
        self.sh_in("staging", host, command)
    }

    pub fn sh_in(&self, env: &str, host: &str, command: &str) -> String {
        let out: Output = self.session_in(env, host).exec(command, b"").unwrap();
        assert!(
            out.success(),
            "{host}: `{command}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The catalog of a host as JSON, secrets shown (to compare with what is on the host).
    pub fn catalog(&self, host: &str) -> serde_json::Value {
        let run = self.run(&[
            "catalog",
            "--env",
            "staging",
            "--host",
            host,
            "--format",
            "json",
            "--show-secrets",
        ]);
        run.success();
        run.json()
    }

    pub fn apply(&self) -> Run {
        self.run(&["apply", "--env", "staging", "--yes"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for env in &self.envs {
            let run = self.repo.run(&["lab", "down", "--env", env]);
            if run.code != 0 {
                eprintln!("lab down failed: {}{}", run.stdout, run.stderr);
            }
        }
    }
}

const HOSTS: [&str; 4] = ["db01", "controller01", "compute01", "compute02"];

/// The owner and group of every file of the host's catalog as the host has them now (before an
/// apply): what an unmanaged owner or group must keep.
fn owners(lab: &Lab, host: &str) -> std::collections::BTreeMap<String, String> {
    let catalog = lab.catalog(host);
    let mut found = std::collections::BTreeMap::new();
    for r in catalog["resources"].as_array().unwrap() {
        if r["type"] == "file" {
            let path = r["path"].as_str().unwrap();
            let out = lab.sh(host, &format!("stat -L -c '%U %G' {path} 2>/dev/null || true"));
            if !out.trim().is_empty() {
                found.insert(path.to_string(), out.trim().to_string());
            }
        }
    }
    found
}

/// Every file of the host's catalog is on the host with exactly the rendered content, owner,
/// group and mode (where links lead, for a file that follows them, such as my.cnf). An owner
/// or group the catalog leaves unmanaged is what the file had `before` (a package's
/// rabbitmq:rabbitmq), or root's for a new file.
fn assert_converged(lab: &Lab, host: &str, before: &std::collections::BTreeMap<String, String>) {
    let catalog = lab.catalog(host);
    let mut checked = 0;
    for r in catalog["resources"].as_array().unwrap() {
        if r["type"] != "file" {
            continue;
        }
        let path = r["path"].as_str().unwrap();
        let out = lab.sh(host, &format!("stat -L -c '%a %U %G' {path} && sha256sum < {path}"));
        let mut lines = out.lines();
        let stat = lines.next().unwrap();
        let hash = lines.next().unwrap().split_whitespace().next().unwrap();
        let mode = u32::from_str_radix(r["mode"].as_str().unwrap(), 8).unwrap();
        let had = before.get(path).map(String::as_str).unwrap_or("root root");
        let (had_owner, had_group) = had.split_once(' ').unwrap();
        let owner = r["owner"].as_str().unwrap_or(had_owner);
        let group = r["group"].as_str().unwrap_or(had_group);
        assert_eq!(stat, format!("{mode:o} {owner} {group}"), "{host}:{path}");
        assert_eq!(
            hash,
            r["sha256"].as_str().unwrap(),
            "{host}:{path} content differs from the catalog"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{host}: only {checked} files checked");
}

fn memcached_stats(address: &str) -> String {
    let mut s = TcpStream::connect_timeout(
        &format!("{address}:11211").parse().unwrap(),
        Duration::from_secs(3),
    )
    .expect("memcached answers");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"stats\r\nquit\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn http_status(address: &str, port: u16) -> String {
    let mut s = TcpStream::connect_timeout(
        &format!("{address}:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )
    .expect("haproxy answers");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or("").to_string()
}

fn pid_of(lab: &Lab, host: &str, pidfile: &str) -> String {
    lab.sh(host, &format!("cat {pidfile}")).trim().to_string()
}

#[test]
fn first_apply_converges_and_second_changes_nothing() {
    let lab = Lab::staging(1);
    let before: Vec<_> = HOSTS.iter().map(|h| owners(&lab, h)).collect();
    let first = lab.apply();
    first.expect(0, &["Apply: 4 changed, 0 unchanged, 0 failed"]);
    // Rollout order: database, then controller, then compute.
    let pos = |h: &str| {
        first
            .stderr
            .find(&format!("{h}: applying"))
            .unwrap_or_else(|| panic!("{h} not applied\n{}", first.stderr))
    };
    assert!(
        pos("db01") < pos("controller01") && pos("controller01") < pos("compute01"),
        "{}",
        first.stderr
    );
    for (host, before) in HOSTS.iter().zip(&before) {
        assert_converged(&lab, host, before);
    }
    // Real daemons, started by the engine with their rendered configs, answer on their hosts.
    assert!(memcached_stats(&lab.address("db01")).contains("STAT pid"));
    let status = http_status(&lab.address("controller01"), 5000);
    assert!(status.contains(" 503 "), "keystone frontend answers, with no backend yet: {status:?}");
    lab.sh("compute01", "kill -0 $(cat /run/chrony/chronyd.pid)");
    // Nothing leaks the composition's secrets.
    let catalog = lab.catalog("controller01").to_string();
    assert!(catalog.contains("stg-"), "staging passwords expected in the shown catalog");
    for word in catalog
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("stg-") && w.len() > 8)
    {
        first.lacks(word);
    }
    // Each host records what it applied.
    let record: serde_json::Value =
        serde_json::from_str(&lab.sh("db01", "cat /var/lib/stackdeploy/applied.json")).unwrap();
    assert_eq!(record["commit"].as_str().unwrap().len(), 40);
    assert!(record["files"]["/etc/memcached.conf"].as_str().is_some());

    lab.run(&["plan", "--env", "staging"]).expect(0, &["Plan: 0 host(s) to change, 4 unchanged"]);
    lab.apply().expect(0, &["Apply: 0 changed, 4 unchanged, 0 failed"]);

    // The lab's filesystems, keys and sockets and the facts cache live in the composition's
    // repository but stay out of git: the operator's tree is clean.
    let git = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(lab.repo.path())
        .output()
        .unwrap();
    assert!(git.status.success(), "{}", String::from_utf8_lossy(&git.stderr));
    assert_eq!(String::from_utf8_lossy(&git.stdout), "", "git status after lab up and apply");

    // `lab down` stops the daemons the engine started too, chrooted haproxy included.
    lab.run(&["lab", "down", "--env", "staging"]).success();
    for (host, port) in [("controller01", 5000), ("db01", 11211)] {
        let addr = format!("{}:{port}", lab.address(host)).parse().unwrap();
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "{host}:{port} still answers after lab down"
        );
    }
}

#[test]
fn one_hiera_change_plans_that_diff_and_restarts_only_notified() {
    let lab = Lab::staging(2);
    lab.apply().success();
    let memcached_before = pid_of(&lab, "db01", "/run/memcached/memcached.pid");
    let haproxy_before = pid_of(&lab, "controller01", "/run/haproxy.pid");
    lab.repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 128\n");
    lab.repo.commit("more memory for memcached on db01");

    let plan = lab.run(&["plan", "--env", "staging"]);
    plan.expect(
        2,
        &[
            "db01 (database, ",
            "~ file /etc/memcached.conf",
            "-m 64\n",
            "+-m 128\n",
            "! restart service:memcached (after /etc/memcached.conf)",
            "Plan: 1 host(s) to change, 3 unchanged",
        ],
    );
    for other in ["controller01", "compute01", "compute02"] {
        assert!(
            plan.stdout.lines().any(|l| l.starts_with(other) && l.ends_with("no changes")),
            "{other} should have no changes\n{}",
            plan.stdout
        );
    }
    let changed_lines: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("      +") && !l.starts_with("      +++"))
        .collect();
    assert_eq!(changed_lines, vec!["      +-m 128"], "exactly one line changes\n{}", plan.stdout);

    lab.apply().expect(0, &["Apply: 1 changed, 3 unchanged"]);
    assert_ne!(
        pid_of(&lab, "db01", "/run/memcached/memcached.pid"),
        memcached_before,
        "memcached restarted"
    );
    assert_eq!(
        pid_of(&lab, "controller01", "/run/haproxy.pid"),
        haproxy_before,
        "haproxy not restarted"
    );
    assert!(memcached_stats(&lab.address("db01")).contains("STAT limit_maxbytes 134217728"));
}

#[test]
fn changed_host_key_is_refused_and_nothing_is_written() {
    let lab = Lab::staging(3);
    let known_hosts = lab.repo.path().join(".stackdeploy/lab/staging/known_hosts");
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    // Give compute02's address the key of compute01: a changed key, as after a reinstall or in
    // a man-in-the-middle attack.
    let key_of = |host: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("[{}]", lab.address(host))))
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
            .to_string()
    };
    let forged: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[{}]", lab.address("compute02"))) {
                format!("[{}]:2222 {}", lab.address("compute02"), key_of("compute01"))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&known_hosts, forged + "\n").unwrap();

    let run = lab.apply();
    run.expect(1, &["compute02", "CHANGED", "SHA256:", "Apply: 3 changed, 0 unchanged, 1 failed"]);
    // Nothing reached compute02 (checked with the right key).
    std::fs::write(&known_hosts, text).unwrap();
    assert_eq!(
        lab.sh("compute02", "test -e /var/lib/stackdeploy && echo yes || echo no").trim(),
        "no"
    );
    // (A file only the composition makes: the machine's packages put a nova.conf in /etc.)
    assert_eq!(
        lab.sh("compute02", "test -e /etc/stackdeploy/role && echo yes || echo no").trim(),
        "no"
    );
}

#[test]
fn failed_validate_keeps_the_old_file_and_others_converge() {
    let lab = Lab::staging(4);
    lab.apply().success();
    let before = lab.sh("controller01", "sha256sum < /etc/haproxy/haproxy.cfg");
    // A timeout haproxy cannot parse: the config renders, but `haproxy -c` refuses it.
    lab.repo.write(
        "hieradata/nodes/staging/controller01.toml",
        "[\"haproxy::timeouts\"]\nclient = \"ten minutes\"\n",
    );
    lab.repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 96\n");
    // A budget of one failed host, so the compute hosts after the controller still converge.
    lab.repo.edit("pipeline.toml", "failure_budget = 0", "failure_budget = 1");
    lab.repo.commit("broken haproxy timeout, more memcached memory");
    let run = lab.apply();
    run.expect(1, &["FAILED controller01: file:/etc/haproxy/haproxy.cfg: validate failed, the old file is kept", "Apply: 1 changed, 2 unchanged, 1 failed"]);
    assert_eq!(
        lab.sh("controller01", "sha256sum < /etc/haproxy/haproxy.cfg"),
        before,
        "haproxy.cfg must be untouched"
    );
    assert_eq!(
        lab.sh("controller01", "ls -a /etc/haproxy | grep -c stackdeploy-tmp || true").trim(),
        "0",
        "no staged file left behind"
    );
    assert!(lab.sh("db01", "cat /etc/memcached.conf").contains("-m 96"), "db01 converged");
}

#[test]
fn killed_sshd_mid_run_leaves_no_partial_file() {
    let lab = Lab::staging(5);
    lab.apply().success();
    // Make compute01's next apply slow inside its staging phase: a validate that sleeps.
    let profile = "profiles/nova_compute/profile.toml";
    let text = lab.repo.read(profile);
    let slowed = text.replace("[[file]]\n", "[[file]]\nvalidate = \"sleep 20 && test -s %\"\n");
    assert_ne!(text, slowed);
    lab.repo.write(profile, &slowed);
    lab.repo.write(
        "hieradata/nodes/staging/compute01.toml",
        "\"nova_compute::cpu_allocation_ratio\" = 3.0\n",
    );
    lab.repo.commit("slow validate on compute, changed ratio");
    let before: Vec<String> = ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"]
        .iter()
        .map(|p| lab.sh("compute01", &format!("sha256sum < {p}")))
        .collect();

    // Wait for the sleeping validate inside compute01, then kill everything of that host
    // (its sshd and the session running the apply), as a crashed host would.
    let (child, _, ns) = apply_until(&lab, "compute01", "sleep\u{0}20");
    kill_all(&processes_in(&ns));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAILED compute01"), "{stderr}");
    // Said for what it is: the connection, and the state the host was left in.
    assert!(
        stderr.contains("compute01: the connection broke before anything was changed on it"),
        "{stderr}"
    );

    // Bring the host back (same filesystem) and look: every file old, no staged leftovers
    // that a reader could mistake for config.
    lab.run(&["lab", "up", "--env", "staging"]).success();
    let after: Vec<String> = ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"]
        .iter()
        .map(|p| lab.sh("compute01", &format!("sha256sum < {p}")))
        .collect();
    assert_eq!(before, after, "files must be old (the kill came before the renames)");
    // The next apply clears what the killed run left and converges.
    let again = lab.run(&["apply", "--env", "staging", "--yes", "--limit", "compute01"]);
    again.expect(0, &["Apply: 1 changed"]);
    assert_eq!(lab.sh("compute01", "find /etc -name '*.stackdeploy-tmp.*' | wc -l").trim(), "0");
    assert!(
        lab.sh("compute01", "cat /etc/nova/nova-compute.conf")
            .contains("cpu_allocation_ratio = 3.0")
    );
}

/// Starts `apply --limit host` in the background and waits until a process whose command line
/// starts with `marker` runs on that host. Returns the apply, the host's sshd pid and its mount
/// namespace, so the caller can cut the run off there.
fn apply_until(
    lab: &Lab,
    host: &str,
    marker: &str,
) -> (std::process::Child, u32, std::path::PathBuf) {
    let child = std::process::Command::new(crate::util::BIN)
        .args(["apply", "--env", "staging", "--yes", "--limit", host])
        .current_dir(lab.repo.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sshd = lab_sshd_pid(lab, host);
    let ns = std::fs::read_link(format!("/proc/{sshd}/ns/mnt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_in(&ns).into_iter().any(|p| cmdline(p).starts_with(marker)) {
        assert!(Instant::now() < deadline, "apply never reached {marker:?} on {host}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, sshd, ns)
}

fn cmdline(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// Kills `pids` as a crash would: all stopped first, then all killed, so that none of them
/// reacts to another's death (killed one by one in pid order, a validate whose pid had
/// wrapped around below its sshd's died first and reported a failed validate over the
/// still-open connection).
fn kill_all(pids: &[u32]) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    for signal in ["-STOP", "-KILL"] {
        let _ = std::process::Command::new("kill").arg(signal).args(&pids).status();
    }
}

pub(crate) fn kill9(pid: u32) {
    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
}

pub(crate) fn lab_sshd_pid(lab: &Lab, host: &str) -> u32 {
    let run = lab.run(&["lab", "status", "--env", "staging"]);
    run.success();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(host))
        .unwrap_or_else(|| panic!("{host} missing in\n{}", run.stdout));
    line.split('\t')
        .nth(3)
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

fn processes_in(ns: &std::path::Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|l| l == ns))
        .collect()
}

#[test]
fn a_locked_host_names_the_holder() {
    let lab = Lab::staging(6);
    let holder = "run 42 by alice@ops (pid 7)";
    let mut session = lab.session("db01");
    // Hold the lock from another session for the length of the apply.
    let background = format!(
        "mkdir -p /var/lib/stackdeploy && echo '{holder}' > /var/lib/stackdeploy/lock.owner && (flock /var/lib/stackdeploy/lock sleep 30 >/dev/null 2>&1 &) ; sleep 0.5"
    );
    assert!(session.exec(&background, b"").unwrap().success());
    let run = lab.run(&["apply", "--env", "staging", "--yes", "--limit", "db01"]);
    run.expect(1, &["FAILED db01: is locked by another run: run 42 by alice@ops (pid 7)"]);
    // Nothing was written while the lock was held elsewhere.
    assert_eq!(
        lab.sh("db01", "grep -c 'Managed by stackdeploy' /etc/memcached.conf || true").trim(),
        "0"
    );
}

#[test]
fn failure_budget_stops_the_rollout() {
    let lab = Lab::staging(7);
    // Break every compute host's config validation, one compute host per batch, no budget.
    // The first `batches` in pipeline.toml is staging's.
    lab.repo.edit("pipeline.toml", "batches = [\"100%\"]", "batches = [1, \"100%\"]");
    let profile = "profiles/nova_compute/profile.toml";
    lab.repo.write(
        profile,
        &lab.repo.read(profile).replace("[[file]]\n", "[[file]]\nvalidate = \"false\"\n"),
    );
    lab.repo.commit("compute configs that never validate, one-host batches");
    let run = lab.apply();
    run.expect(
        1,
        &[
            "FAILED compute01",
            "compute02: skipped: the rollout stopped",
            "Apply: 2 changed, 0 unchanged, 1 failed, 1 skipped",
        ],
    );
    // nova-compute.conf: no package of the machine has one.
    assert_eq!(
        lab.sh("compute02", "test -e /etc/nova/nova-compute.conf && echo yes || echo no").trim(),
        "no"
    );
}

#[test]
fn restart_interrupted_after_the_renames_is_owed_to_the_next_run() {
    let lab = Lab::staging(8);
    lab.apply().success();
    // memcached's stop gets slow, so the run can be cut off between writing the new config and
    // restarting the service: the operator's SSH connection dies, the host stays up.
    lab.repo.edit(
        "profiles/memcached/profile.toml",
        "stop = \"start-stop-daemon",
        "stop = \"sleep 21 && start-stop-daemon",
    );
    lab.repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 80\n");
    lab.repo.commit("slow memcached stop, more memory");
    let old_pid = pid_of(&lab, "db01", "/run/memcached/memcached.pid");

    let (child, sshd, ns) = apply_until(&lab, "db01", "sleep\u{0}21");
    // Kill the session running the apply (not the host's sshd, not its daemons).
    for pid in processes_in(&ns) {
        let cmd = cmdline(pid);
        if pid != sshd && !cmd.starts_with("memcached") && !cmd.starts_with("chronyd") {
            kill9(pid);
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));

    // The new file is in place, memcached still runs the old config, and the restart is owed.
    assert!(lab.sh("db01", "cat /etc/memcached.conf").contains("-m 80"));
    assert_eq!(pid_of(&lab, "db01", "/run/memcached/memcached.pid"), old_pid);
    lab.repo.edit(
        "profiles/memcached/profile.toml",
        "stop = \"sleep 21 && start-stop-daemon",
        "stop = \"start-stop-daemon",
    );
    lab.repo.commit("normal stop again");
    lab.run(&["plan", "--env", "staging", "--limit", "db01"])
        .expect(2, &["! restart service:memcached (owed by an interrupted run)"]);
    lab.run(&["apply", "--env", "staging", "--yes", "--limit", "db01"])
        .expect(0, &["db01: done: 1 change(s); restarted service:memcached"])
        .lacks("FAILED");
    assert_ne!(pid_of(&lab, "db01", "/run/memcached/memcached.pid"), old_pid);
    assert!(memcached_stats(&lab.address("db01")).contains("STAT limit_maxbytes 83886080"));
    lab.run(&["plan", "--env", "staging", "--limit", "db01"]).expect(0, &["no changes"]);
}

#[test]
fn a_saved_plan_applies_what_was_reviewed_and_refuses_drifted_hosts() {
    let lab = Lab::staging(9);
    lab.apply().success();
    lab.repo.edit(
        "hieradata/common.toml",
        "\"base::organisation\" = \"Example Cloud\"",
        "\"base::organisation\" = \"Reviewed Cloud\"",
    );
    let planned = lab.repo.commit("organisation in the motd");
    let plan = lab.repo.path().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    lab.run(&["plan", "--env", "staging", "--out", plan_arg])
        .expect(2, &["~ file /etc/motd", "+  Reviewed Cloud", "stackdeploy apply "]);
    let text = std::fs::read_to_string(&plan).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["commit"], planned.as_str());
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 4);
    // Hashes only: none of the environment's passwords is in the file.
    let staging = lab.repo.read("hieradata/environments/staging.toml");
    let passwords: Vec<&str> =
        staging.split('"').filter(|v| v.starts_with("stg-") && v.len() > 8).collect();
    assert!(passwords.len() >= 5, "{passwords:?}");
    for pw in &passwords {
        assert!(!text.contains(pw), "plan file holds the secret {pw}");
    }

    // HEAD moves on, and someone edits compute02 by hand after the review.
    lab.repo.edit("hieradata/common.toml", "Reviewed Cloud", "Later Cloud");
    lab.repo.commit("not reviewed yet");
    lab.sh("compute02", "echo hand-edited > /etc/motd");

    lab.run(&["apply", plan_arg, "--yes"]).expect(
        1,
        &[
            "compute02: REFUSED: /etc/motd changed since the plan",
            "nothing was applied",
            "--skip-drifted",
        ],
    );
    assert!(!lab.sh("compute01", "cat /etc/motd").contains("Reviewed Cloud"));

    lab.run(&["apply", plan_arg, "--yes", "--skip-drifted"]).expect(1, &["compute02: REFUSED"]);
    for host in ["db01", "controller01", "compute01"] {
        let motd = lab.sh(host, "cat /etc/motd");
        assert!(motd.contains("Reviewed Cloud") && !motd.contains("Later"), "{host}: {motd}");
        let record = lab.sh(host, "cat /var/lib/stackdeploy/applied.json");
        assert!(record.contains(&planned), "{host} records the plan's commit: {record}");
    }
    assert_eq!(lab.sh("compute02", "cat /etc/motd"), "hand-edited\n");

    // Applied hosts no longer match the plan: applying it again refuses them too.
    lab.run(&["apply", plan_arg, "--yes"]).expect(1, &["compute01: REFUSED: it now runs commit"]);
}

/// Runs `stackdeploy ARGS` on a pseudo-terminal (util-linux `script`), returning everything
/// the terminal received.
fn on_terminal(lab: &Lab, args: &str, ci: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{} {args}", crate::util::BIN), "/dev/null"])
        .current_dir(lab.repo.path())
        .env_remove("CI")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    if let Some(v) = ci {
        cmd.env("CI", v);
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_bar_on_a_terminal_plain_lines_in_ci() {
    let lab = Lab::staging(10);
    lab.apply().success();
    lab.sh("db01", "echo drift >> /etc/motd");
    let tty = on_terminal(&lab, "apply --env staging --yes", None);
    assert!(tty.contains("applying [") && tty.contains("/4 hosts"), "no progress bar:\n{tty}");
    assert!(tty.contains("db01: done: 1 change(s)"), "{tty}");
    lab.sh("db01", "echo drift >> /etc/motd");
    let ci = on_terminal(&lab, "apply --env staging --yes", Some("true"));
    assert!(!ci.contains("applying [") && !ci.contains("hosts"), "a bar in CI:\n{ci}");
    assert!(ci.contains("db01: done: 1 change(s)"), "{ci}");
    // Off a terminal (every other test): the same plain lines.
    lab.sh("db01", "echo drift >> /etc/motd");
    let piped = lab.apply();
    piped.expect(0, &["db01: done: 1 change(s)"]).lacks("applying [");
}

/// The commit the hosts run kept a file secret and a value plain; the next commit stops marking
/// the file secret and marks the value secret, changing both. The live plan shows neither the
/// file's old content nor the value's old text, in any of its outputs.
#[test]
fn a_plan_never_shows_what_the_running_commit_kept_secret() {
    let lab = Lab::staging(18);
    let profile = "profiles/base/profile.toml";
    let text = lab.repo.read(profile);
    lab.repo.write(
        profile,
        &format!(
            "{text}\n[[file]]\npath = \"/etc/stackdeploy/break-glass\"\n\
             content = \"console password: Glass-Kw81-unlock\\n\"\nmode = \"0600\"\nsecret = true\n"
        ),
    );
    lab.repo.commit("break-glass note, secret");
    lab.apply().expect(0, &["Apply: 4 changed"]);
    assert!(lab.sh("db01", "cat /etc/stackdeploy/break-glass").contains("Glass-Kw81-unlock"));

    lab.repo.edit(
        profile,
        "content = \"console password: Glass-Kw81-unlock\\n\"\nmode = \"0600\"\nsecret = true\n",
        "content = \"console password: in the vault since the rotation\\n\"\nmode = \"0600\"\n",
    );
    lab.repo.edit(
        profile,
        "organisation = { type = \"string\", default",
        "organisation = { type = \"string\", secret = true, default",
    );
    lab.repo.edit(
        "hieradata/common.toml",
        "\"base::organisation\" = \"Example Cloud\"",
        "\"base::organisation\" = \"Acme Sovereign Cloud\"",
    );
    lab.repo.commit("break-glass note moved to the vault; organisation is secret now");

    let html = lab.repo.path().join("plan.html");
    let saved = lab.repo.path().join("plan.json");
    let text = lab.run(&[
        "plan",
        "--env",
        "staging",
        "--html",
        html.to_str().unwrap(),
        "--out",
        saved.to_str().unwrap(),
    ]);
    text.expect(
        2,
        &[
            "~ file /etc/stackdeploy/break-glass",
            "/etc/stackdeploy/break-glass (on host: secret there, not shown)",
            "+console password: in the vault since the rotation",
            "~ file /etc/motd",
            "-  <secret:base::organisation#",
            "+  <secret:base::organisation#",
        ],
    );
    let json = lab.run(&["plan", "--env", "staging", "--format", "json"]);
    json.expect(2, &["in the vault since the rotation"]);
    for run in [&text, &json] {
        run.lacks("Glass-Kw81-unlock").lacks("Example Cloud").lacks("Acme Sovereign Cloud");
    }
    for file in [&html, &saved] {
        let written = std::fs::read_to_string(file).unwrap();
        for plaintext in ["Glass-Kw81-unlock", "Example Cloud", "Acme Sovereign Cloud"] {
            assert!(!written.contains(plaintext), "{} shows {plaintext}", file.display());
        }
    }
}

/// A host with many managed files: the apply script (which grows with every staged file) is
/// far longer than one SSH packet, and the host still converges in one run.
#[test]
fn a_host_with_many_files_converges() {
    let lab = Lab::staging(19);
    let profile = "profiles/base/profile.toml";
    let mut text = lab.repo.read(profile);
    text.push_str("\n[[directory]]\npath = \"/etc/many\"\nmode = \"0755\"\n");
    for i in 0..80 {
        text.push_str(&format!(
            "\n[[file]]\npath = \"/etc/many/part{i:02}.conf\"\n\
             content = \"# part {i} of {{{{ host.name }}}}\\nvalue = {i}\\n\"\nmode = \"0644\"\n"
        ));
    }
    lab.repo.write(profile, &text);
    lab.repo.commit("80 small config files on every host");
    lab.run(&["apply", "--env", "staging", "--yes", "--limit", "db01"])
        .expect(0, &["Apply: 1 changed, 0 unchanged, 0 failed"]);
    assert_eq!(lab.sh("db01", "ls /etc/many | wc -l").trim(), "80");
    assert_eq!(lab.sh("db01", "cat /etc/many/part79.conf"), "# part 79 of db01\nvalue = 79\n");
    // Content, owner and mode of all of them as the catalog says.
    lab.run(&["plan", "--env", "staging", "--limit", "db01"])
        .expect(0, &["Plan: 0 host(s) to change, 1 unchanged"]);
}

/// While an apply runs, nothing on the host's process list shows a secret of the catalog: the
/// scripts travel on stdin, not as the shell's arguments (they used to be `bash -c SCRIPT`).
#[test]
fn no_secret_shows_in_the_process_list_of_a_host() {
    let lab = Lab::staging(20);
    lab.apply().success();
    let profile = "profiles/base/profile.toml";
    lab.repo.edit(
        profile,
        "[params]\n",
        "[params]\ntoken = { type = \"string\", secret = true, default = \"Tok-9f3a-argv\" }\n",
    );
    let text = lab.repo.read(profile);
    lab.repo.write(
        profile,
        &format!(
            "{text}\n[[exec]]\nname = \"slow-secret\"\n\
             command = \"sleep 6 && : {{{{ params.token }}}}\"\n\
             unless = \"test {{{{ params.token }}}} = none\"\n"
        ),
    );
    lab.repo.commit("an exec holding a secret");
    let (child, _, ns) = apply_until(&lab, "db01", "sleep\u{0}6");
    let mut seen = Vec::new();
    for pid in processes_in(&ns) {
        let cmd = cmdline(pid);
        if cmd.contains("Tok-9f3a-argv") {
            seen.push(cmd.replace('\0', " "));
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen.is_empty(), "the secret is on the host's process list: {seen:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Tok-9f3a-argv"));
}

/// The client dies while a host runs a command that hangs (a restart that never returns): the
/// host ends the run by itself, with the command, and the next apply is not refused as locked.
/// (The orphaned run used to hold the lock until the command ended.)
#[test]
fn a_killed_client_leaves_no_locked_host_and_no_hung_command() {
    let lab = Lab::staging(21);
    lab.apply().success();
    lab.repo.edit(
        "profiles/memcached/profile.toml",
        "stop = \"start-stop-daemon",
        "restart = \"sleep 3000\"\nstop = \"start-stop-daemon",
    );
    lab.repo.write("hieradata/nodes/staging/db01.toml", "\"memcached::memory\" = 72\n");
    lab.repo.commit("a restart that hangs");
    let (mut child, _, ns) = apply_until(&lab, "db01", "sleep\u{0}3000");
    kill9(child.id());
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_in(&ns).into_iter().any(|p| cmdline(p).starts_with("sleep\u{0}3000")) {
        assert!(Instant::now() < deadline, "the hung command outlived its client");
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.repo.edit("profiles/memcached/profile.toml", "restart = \"sleep 3000\"\n", "");
    lab.repo.commit("a restart that returns");
    lab.run(&["apply", "--env", "staging", "--yes", "--limit", "db01"])
        .expect(0, &["db01: done:", "restarted service:memcached"])
        .lacks("locked");
}

/// One hiera change for every compute host: the text plan shows its diff once under "2 compute
/// hosts", as `diff` does, and `-q` keeps only the summary lines. Run from a subdirectory, the
/// saved plan lands where the operator stands and applies from there.
#[test]
fn a_plan_shows_a_change_of_many_hosts_once_and_quiet_keeps_the_summary() {
    let lab = Lab::staging(28);
    lab.apply().success();
    lab.repo.edit(
        "hieradata/roles/compute.toml",
        "\"nova_compute::cpu_allocation_ratio\" = 4.0",
        "\"nova_compute::cpu_allocation_ratio\" = 8.0",
    );
    lab.repo.commit("more vCPUs per core");

    let plan = lab.run(&["plan", "--env", "staging"]);
    plan.expect(
        2,
        &[
            "compute01 (compute, ",
            "db01 (database, ",
            "\n2 compute hosts: compute01, compute02\n",
            "+cpu_allocation_ratio = 8.0\n",
            "Plan: 2 host(s) to change, 2 unchanged, 0 failed; ",
        ],
    );
    assert_eq!(
        plan.stdout.matches("+cpu_allocation_ratio = 8.0").count(),
        1,
        "the change is shown once for both hosts:\n{}",
        plan.stdout
    );
    let staging = lab.repo.read("hieradata/environments/staging.toml");
    for secret in staging.split('"').filter(|w| w.starts_with("stg-") && w.len() > 8) {
        plan.lacks(secret);
    }

    let quiet = lab.run(&["-q", "plan", "--env", "staging"]);
    quiet.expect(2, &[]);
    assert!(
        quiet.stdout.starts_with("Plan: 2 host(s) to change, 2 unchanged, 0 failed (commit ")
            && quiet.stdout.lines().count() == 1
            && quiet.stderr.is_empty(),
        "-q plan: the summary line alone\n{}{}",
        quiet.stdout,
        quiet.stderr
    );

    let subdir = lab.repo.path().join("profiles/nova_compute");
    Run::new(&subdir, &["-q", "plan", "--env", "staging", "--out", "reviewed.json"]).expect(2, &[]);
    assert!(subdir.join("reviewed.json").is_file(), "--out is relative to where plan ran");
    let apply = Run::new(&subdir, &["-q", "apply", "reviewed.json", "--yes"]);
    apply.expect(0, &["Apply: 2 changed, "]);
    assert!(
        apply.stdout.is_empty() && apply.stderr.lines().count() == 1,
        "-q apply: the result line alone, no plan or per-host lines\n{}{}",
        apply.stdout,
        apply.stderr
    );
    lab.run(&["plan", "--env", "staging"]).expect(0, &["Plan: 0 host(s) to change, 4 unchanged"]);
}

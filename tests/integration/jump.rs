//! Hosts behind a bastion: jump hosts (ProxyJump) and OpenSSH client configs, against lab
//! hosts that only the bastion can reach.
//!
//! The bastion and the hosts behind it run in a network namespace of their own. The bastion
//! listens on one end of a veth pair, the only address the machine can reach; the hosts listen
//! on loopback addresses inside the namespace, which from the machine are nobody's. So a
//! connection that reaches them went through the bastion. Uses 127.77.32.0/24 (inside the
//! namespace; see the table in lab.rs) and 10.250.32.0/30.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackdeploy::{Session, Target};

use crate::util::{BIN, TestRepo};

/// A network namespace joined to the machine by a veth pair, removed (with the labs started
/// in it) when dropped.
struct Netns {
    name: String,
    link: String,
    repo_dir: std::path::PathBuf,
    envs: Vec<&'static str>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (Debian package iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// `name` with `outside`/30 on the machine's end and `inside` on the namespace's.
    fn new(name: &str, outside: &str, inside: &str, repo_dir: &Path) -> Netns {
        let link = format!("{name}a");
        // A namespace left by an earlier, killed run of this test.
        let _ = Command::new("ip").args(["link", "del", &link]).output();
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        let ns = Netns {
            name: name.into(),
            link: link.clone(),
            repo_dir: repo_dir.into(),
            envs: vec![],
        };
        let peer = format!("{name}b");
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", name]);
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&["-n", name, "addr", "add", &format!("{inside}/30"), "dev", &peer]);
        ip(&["-n", name, "link", "set", &peer, "up"]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// `stackdeploy lab up --env env`, run inside the namespace.
    fn lab_up(&mut self, env: &'static str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, BIN, "lab", "up", "--env", env])
            .current_dir(&self.repo_dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab up --env {env} in {}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.envs.push(env);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for env in &self.envs {
            let _ = Command::new(BIN)
                .args(["lab", "down", "--env", env])
                .current_dir(&self.repo_dir)
                .output();
        }
        let _ = Command::new("ip").args(["link", "del", &self.link]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

const PIPELINE: &str = r#"
[project]
name = "behind-a-bastion"

[hiera]
hierarchy = ["nodes/%{host.name}", "roles/%{host.role}", "environments/test", "common"]

# The bastion, as a lab of its own (its own key and known_hosts).
[environments.jumpbox]
facts = { region = "r1" }
ssh = { port = 2222, identity = ".stackdeploy/lab/jumpbox/id_ed25519", known_hosts = ".stackdeploy/lab/jumpbox/known_hosts" }
[environments.jumpbox.hosts]
bastion = { address = "10.250.32.2", role = "db" }

# The hosts behind it: everything about how to reach them comes from an OpenSSH config.
[environments.edge]
facts = { region = "r1" }
ssh = { ssh_config = "ssh_config", known_hosts = "known_hosts.all" }
[environments.edge.hosts]
web01 = { address = "127.77.32.11", role = "web" }
web02 = { address = "127.77.32.12", role = "web" }
"#;

#[test]
fn hosts_only_a_bastion_reaches_converge_through_it() {
    crate::lab::require_root();
    let repo = TestRepo::fixture("minimal");
    repo.write("pipeline.toml", PIPELINE);
    repo.write("roles/web.toml", "description = \"web\"\nprofiles = [\"base\"]\n");
    repo.commit("two environments: a bastion and the hosts behind it");
    let mut ns = Netns::new("sdjump32", "10.250.32.1", "10.250.32.2", repo.path());
    ns.lab_up("jumpbox");
    ns.lab_up("edge");
    let lab = repo.path().join(".stackdeploy/lab");
    let known = [lab.join("jumpbox/known_hosts"), lab.join("edge/known_hosts")]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    repo.write("known_hosts.all", &known);
    let config = |proxy: &str| {
        format!(
            "# as an operator's ~/.ssh/config would say it\n\
             Host bastion\n  HostName 10.250.32.2\n  Port 2222\n  User root\n  IdentityFile {jump_key}\n\
             Host 127.77.32.*\n  IdentityFile {edge_key}\n{proxy}",
            jump_key = lab.join("jumpbox/id_ed25519").display(),
            edge_key = lab.join("edge/id_ed25519").display(),
        )
    };

    // Without the jump the hosts are out of reach: the namespace is what keeps them there.
    repo.write("ssh_config", &config(""));
    repo.run(&["plan", "--env", "edge"]).expect(1, &["web01", "cannot connect to 127.77.32.11:22"]);

    repo.write("ssh_config", &config("  ProxyJump bastion\n"));
    repo.run(&["apply", "--env", "edge", "--yes"]).success();
    repo.run(&["plan", "--env", "edge"]).expect(0, &["no changes"]);

    // What was applied is on the hosts, read through the bastion with the library's own
    // session, the way a user's tooling would.
    let target = |address: &str, port: u16, jump: Option<Box<Target>>, key: &str| Target {
        host: address.into(),
        address: address.into(),
        port,
        user: "root".into(),
        identity: Some(lab.join(key).join("id_ed25519")),
        known_hosts: repo.path().join("known_hosts.all"),
        sudo: false,
        trust_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        jump,
    };
    let bastion = || Some(Box::new(target("10.250.32.2", 2222, None, "jumpbox")));
    let mut web02 = Session::connect(&target("127.77.32.12", 22, bastion(), "edge"))
        .unwrap_or_else(|e| panic!("connect through the bastion: {e}"));
    let out = web02.exec("hostname; cat /etc/motd", b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "web02\nhello to web02 (r1)\n");
    // A command with megabytes each way crosses the tunnel intact.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let out = web02.exec("cat; head -c 2000000 /dev/zero >&2", &big).unwrap();
    assert!(out.stdout == big, "stdout through the tunnel differs ({} bytes)", out.stdout.len());
    assert_eq!(out.stderr.len(), 2_000_000);
    drop(web02);

    // A jump host that cannot reach the target says so, naming both.
    let Err(e) = Session::connect(&target("127.77.32.99", 22, bastion(), "edge")) else {
        panic!("connected to an address where nothing listens")
    };
    let text = e.to_string();
    assert!(text.contains("10.250.32.2:2222 did not open a tunnel to 127.77.32.99:22"), "{text}");
}

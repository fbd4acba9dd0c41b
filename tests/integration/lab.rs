//! The lab (sshd in namespaces) and the SSH transport, against real OpenSSH servers.
//!
//! Each test owns the loopback network 127.77.N.0/24 (N unique per test, see the table below) and
//! a temporary state directory, and its [`TestLab`] guard brings its hosts down when the test
//! ends, also when it fails. Needs root and openssh-server, like the lab itself.
//!
//! | N | test |
//! |---|------|
//! | 1 | hosts_are_reachable_and_isolated |
//! | 2 | up_twice_is_harmless |
//! | 3 | down_stops_sshd_and_everything_started_on_the_host |
//! | 4 | changed_host_key_is_refused |
//! | 5 | unknown_host_key_needs_explicit_trust |
//! | 6 | address_in_use_is_a_clear_error |
//! | 7 | exec_streams_and_reports_status |
//! | 8 | key_errors_are_explained |
//! | 9 | up_restarts_a_host_whose_sshd_died |
//! | 10 | other_users_and_sudo |
//! | 11 | a_lab_whose_state_was_deleted_is_named_and_can_be_stopped |
//! | 32 | (jump.rs) hosts_only_a_bastion_reaches_converge_through_it, inside its own network namespace |
//! | 33 | (host_certificates.rs) a_host_certificate_from_a_trusted_ca_is_accepted_and_a_bad_one_refused |

use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use stackdeploy::lab::{HostState, HostStatus, Lab, LabHost};
use stackdeploy::{Output, Session, Target};

const PORT: u16 = 2222;

/// A lab in a temporary state directory, brought down when dropped.
struct TestLab {
    lab: Lab,
    hosts: Vec<LabHost>,
    dir: tempfile::TempDir,
}

impl TestLab {
    /// Hosts `names` at 127.77.`net`.1, .2, ... port 2222.
    fn new(net: u8, names: &[&str]) -> TestLab {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let hosts = names
            .iter()
            .enumerate()
            .map(|(i, name)| LabHost {
                name: name.to_string(),
                address: IpAddr::V4(Ipv4Addr::new(127, 77, net, i as u8 + 1)),
                port: PORT,
            })
            .collect();
        TestLab { lab: Lab::new(dir.path().join("state")), hosts, dir }
    }

    fn up(&self) -> Vec<HostStatus> {
        self.lab.up(&self.hosts).unwrap_or_else(|e| panic!("lab up failed: {e}"))
    }

    fn target(&self, i: usize) -> Target {
        let h = &self.hosts[i];
        Target {
            host: h.name.clone(),
            address: h.address.to_string(),
            port: h.port,
            user: "root".into(),
            identity: Some(self.lab.identity_file()),
            known_hosts: self.lab.known_hosts_file(),
            sudo: false,
            trust_new_host_keys: false,
            connect_timeout: Duration::from_secs(5),
            jump: None,
        }
    }

    fn connect(&self, i: usize) -> Session {
        Session::connect(&self.target(i)).unwrap_or_else(|e| panic!("connect failed: {e}"))
    }

    /// A scratch path outside the lab state.
    fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Err(e) = self.lab.down() {
            eprintln!("lab down failed: {e}");
        }
    }
}

pub(crate) fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    assert_eq!(
        euid.split_whitespace().nth(1),
        Some("0"),
        "the lab tests need root (the lab mounts overlays in namespaces)"
    );
}

/// Runs `command`, asserting success, and returns its stdout.
fn run(session: &mut Session, command: &str) -> String {
    let out = session.exec(command, b"").unwrap();
    assert_ok(&out, command);
    String::from_utf8(out.stdout).unwrap()
}

fn assert_ok(out: &Output, command: &str) {
    assert!(
        out.success(),
        "`{command}` exited with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a process exists and has not exited (zombies count as exited).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').unwrap().1.trim_start().starts_with(['Z', 'X']),
        Err(_) => false,
    }
}

/// The OpenSSH fingerprint (`SHA256:...`) of the first key in a known_hosts or .pub file.
fn fingerprint(file: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(file).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn hosts_are_reachable_and_isolated() {
    let lab = TestLab::new(1, &["web1", "db1"]);
    let statuses = lab.up();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|s| s.state == HostState::Started && s.pid.is_some()));

    let mut web = lab.connect(0);
    let mut db = lab.connect(1);
    assert_eq!(run(&mut web, "hostname"), "web1\n");
    assert_eq!(run(&mut db, "hostname"), "db1\n");
    assert_eq!(run(&mut web, "cat /etc/hostname"), "web1\n");
    assert!(run(&mut db, "getent hosts db1").starts_with("127.77.1.2"));
    // A fresh host has root's usual mode and Debian's stock dotfiles, not this machine's.
    assert_eq!(run(&mut web, "stat -c %a /root"), "700\n");
    run(&mut web, "cmp /root/.bashrc /usr/share/base-files/dot.bashrc");

    // Each host has its own /etc, /var, /opt, /srv, /root, /run and /tmp.
    let marker = format!("lab-test-{}", std::process::id());
    let dirs = ["/etc", "/var/lib", "/opt", "/srv", "/root", "/run", "/tmp"];
    for dir in dirs {
        let path = format!("{dir}/{marker}");
        let out = web.exec(&format!("cat > {path} && cat {path}"), b"only on web1").unwrap();
        assert_ok(&out, "write");
        assert_eq!(out.stdout, b"only on web1");
        let out = db.exec(&format!("test -e {path}"), b"").unwrap();
        assert_eq!(out.status, 1, "{path} is visible on db1");
        assert!(!Path::new(&path).exists(), "{path} leaked to the real machine");
    }

    // Sessions can move to worker threads.
    let worker = std::thread::spawn(move || run(&mut db, "hostname"));
    assert_eq!(worker.join().unwrap(), "db1\n");
}

#[test]
fn up_twice_is_harmless() {
    let lab = TestLab::new(2, &["web1"]);
    let first = lab.up();
    assert_eq!(first[0].state, HostState::Started);
    let known_hosts = fs::read_to_string(lab.lab.known_hosts_file()).unwrap();
    let mut session = lab.connect(0);
    run(&mut session, "echo kept > /etc/lab-kept");

    let second = lab.up();
    assert_eq!(second[0].state, HostState::Running);
    assert_eq!(second[0].pid, first[0].pid);
    assert_eq!(fs::read_to_string(lab.lab.known_hosts_file()).unwrap(), known_hosts);
    assert_eq!(lab.lab.status(&lab.hosts).unwrap()[0].state, HostState::Running);
    // The old session still works, and so does a new one; the host kept its files.
    assert_eq!(run(&mut session, "cat /etc/lab-kept"), "kept\n");
    assert_eq!(run(&mut lab.connect(0), "cat /etc/lab-kept"), "kept\n");
}

#[test]
fn down_stops_sshd_and_everything_started_on_the_host() {
    let lab = TestLab::new(3, &["web1"]);
    let sshd = lab.up()[0].pid.unwrap();
    let mut session = lab.connect(0);
    // A daemon detached from the session, and one that ignores SIGTERM (needs SIGKILL).
    let daemon: u32 = run(&mut session, "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
        .trim()
        .parse()
        .unwrap();
    let stubborn: u32 = run(
        &mut session,
        "setsid sh -c 'trap \"\" TERM; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 & \
         echo $!",
    )
    .trim()
    .parse()
    .unwrap();
    assert!(alive(sshd) && alive(daemon) && alive(stubborn));
    drop(session);

    assert_eq!(lab.lab.down().unwrap(), vec!["web1".to_string()]);
    for pid in [sshd, daemon, stubborn] {
        assert!(!alive(pid), "process {pid} survived lab down");
    }
    assert!(!lab.lab.state_dir().exists(), "state directory left behind");
    assert_eq!(lab.lab.status(&lab.hosts).unwrap()[0].state, HostState::Stopped);
    let err = Session::connect(&lab.target(0)).expect_err("connected after down");
    assert!(err.to_string().contains("127.77.3.1:2222"), "{err}");
    // A second down has nothing left to do.
    assert!(lab.lab.down().unwrap().is_empty());
}

#[test]
fn changed_host_key_is_refused() {
    let lab = TestLab::new(4, &["web1"]);
    lab.up();
    let real = fingerprint(&lab.lab.known_hosts_file());

    // Record another key for the host, as if it had been replaced.
    let other = lab.scratch("other_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_pub = fs::read_to_string(other.with_extension("pub")).unwrap();
    let key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let known_hosts = lab.scratch("known_hosts");
    let text = format!("# header\n[127.77.4.1]:2222 {} {}\n", key[0], key[1]);
    fs::write(&known_hosts, &text).unwrap();

    for trust in [false, true] {
        let target = Target {
            known_hosts: known_hosts.clone(),
            trust_new_host_keys: trust,
            ..lab.target(0)
        };
        let err = Session::connect(&target).expect_err("connected despite a changed key");
        let message = err.to_string();
        assert!(message.starts_with("web1: "), "{message}");
        assert!(message.contains("CHANGED"), "{message}");
        assert!(message.contains("man-in-the-middle"), "{message}");
        assert!(message.contains(&real), "{message} lacks {real}");
        assert!(message.contains(&format!("{}:2", known_hosts.display())), "{message}");
    }
    assert_eq!(fs::read_to_string(&known_hosts).unwrap(), text, "a changed key was recorded");
}

#[test]
fn unknown_host_key_needs_explicit_trust() {
    let lab = TestLab::new(5, &["web1"]);
    lab.up();
    let real = fingerprint(&lab.lab.known_hosts_file());
    let known_hosts = lab.scratch("known_hosts");
    let target = Target { known_hosts: known_hosts.clone(), ..lab.target(0) };

    let err = Session::connect(&target).expect_err("connected to an unknown host");
    let message = err.to_string();
    assert!(message.starts_with("web1: "), "{message}");
    assert!(message.contains("127.77.5.1:2222"), "{message}");
    assert!(message.contains("not known"), "{message}");
    assert!(message.contains("ssh-ed25519"), "{message}");
    assert!(message.contains(&real), "{message} lacks {real}");
    assert!(message.contains("--trust-new-host-keys"), "{message}");
    assert!(!known_hosts.exists());

    let trusting = Target { trust_new_host_keys: true, ..target.clone() };
    assert_eq!(run(&mut Session::connect(&trusting).unwrap(), "hostname"), "web1\n");
    let recorded = fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(recorded, fs::read_to_string(lab.lab.known_hosts_file()).unwrap());
    assert!(recorded.starts_with("[127.77.5.1]:2222 ssh-ed25519 "), "{recorded}");

    // From now on the key is known, without the flag.
    assert_eq!(run(&mut Session::connect(&target).unwrap(), "hostname"), "web1\n");
}

#[test]
fn address_in_use_is_a_clear_error() {
    let lab = TestLab::new(6, &["web1", "db1"]);
    let _squatter = TcpListener::bind("127.77.6.2:2222").unwrap();
    let err = lab.lab.up(&lab.hosts).expect_err("up succeeded on a taken address");
    let message = err.to_string();
    assert!(message.starts_with("db1: "), "{message}");
    assert!(message.contains("127.77.6.2:2222 is already in use"), "{message}");
    // Nothing was started, not even the host whose address was free.
    let statuses = lab.lab.status(&lab.hosts).unwrap();
    assert!(statuses.iter().all(|s| s.state == HostState::Stopped), "{statuses:?}");

    let err = Session::connect(&lab.target(0)).expect_err("connected to nothing");
    assert!(err.to_string().contains("no SSH server listens"), "{err}");
}

#[test]
fn exec_streams_and_reports_status() {
    let lab = TestLab::new(7, &["web1"]);
    lab.up();
    let mut session = lab.connect(0);

    // Megabytes of stdin.
    let input: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = session.exec("sha256sum", &input).unwrap();
    assert_ok(&out, "sha256sum");
    let expected: String = Sha256::digest(&input).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{expected}  -\n"));

    // Megabytes on stdout and stderr before the command reads its stdin: no deadlock.
    let out = session
        .exec(
            "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; wc -c",
            &input[..3_000_000],
        )
        .unwrap();
    assert_ok(&out, "interleaved");
    assert_eq!(out.stdout.len(), 3_000_000 + "3000000\n".len());
    assert!(out.stdout.ends_with(b"3000000\n"));
    assert_eq!(out.stderr.len(), 3_000_000);

    // A command far longer than one SSH packet (an apply script grows with every file it
    // stages) runs whole, with its exit code, and still reads exactly its own stdin.
    let mut long = String::new();
    for i in 0..5000 {
        long.push_str(&format!("v{i}='value number {i}'\n"));
    }
    long.push_str("printf '%s|' \"$v0\" \"$v4999\"; wc -c; exit 4\n");
    assert!(long.len() > 100_000);
    let out = session.exec(&long, &input[..1000]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(
        (out.status, String::from_utf8_lossy(&out.stdout).as_ref()),
        (4, "value number 0|value number 4999|1000\n")
    );

    // A command that ignores its stdin, exit codes, signals, and a command timeout.
    let out = session.exec("echo ignored; exit 3", &input).unwrap();
    assert_eq!((out.status, out.stdout.as_slice()), (3, &b"ignored\n"[..]));
    assert_eq!(session.exec("kill -TERM $$", b"").unwrap().status, 143);
    let err = session.exec_timeout("sleep 5", b"", Some(Duration::from_millis(300))).unwrap_err();
    assert!(err.to_string().contains("did not finish in time"), "{err}");
    // The session survives all of that.
    assert_eq!(run(&mut session, "echo still here"), "still here\n");
}

#[test]
fn key_errors_are_explained() {
    let lab = TestLab::new(8, &["web1"]);
    lab.up();

    let locked = lab.scratch("locked_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&locked)
        .status()
        .unwrap();
    assert!(status.success());
    let target = Target { identity: Some(locked), ..lab.target(0) };
    let err = Session::connect(&target).expect_err("a locked key worked");
    assert!(err.to_string().contains("passphrase"), "{err}");
    assert!(err.to_string().contains("ssh-add"), "{err}");

    // A readable key the host does not accept.
    let stranger = lab.scratch("stranger_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(status.success());
    let target = Target { identity: Some(stranger), ..lab.target(0) };
    let err = Session::connect(&target).expect_err("a stranger's key worked");
    assert!(err.to_string().contains("refused the key"), "{err}");
}

#[test]
fn up_restarts_a_host_whose_sshd_died() {
    let lab = TestLab::new(9, &["web1"]);
    let first = lab.up()[0].pid.unwrap();
    let mut session = lab.connect(0);
    run(&mut session, "echo kept > /srv/kept");
    let daemon: u32 = run(&mut session, "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
        .trim()
        .parse()
        .unwrap();
    drop(session);
    assert!(Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(first) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lab.lab.status(&lab.hosts).unwrap()[0].state, HostState::Stopped);

    let second = lab.up();
    assert_eq!(second[0].state, HostState::Started);
    assert_ne!(second[0].pid, Some(first));
    // What lived in the old namespaces is gone; the filesystem and host key are kept.
    assert!(!alive(daemon), "the old host's daemon survived the restart");
    assert_eq!(run(&mut lab.connect(0), "cat /srv/kept"), "kept\n");
}

#[test]
fn other_users_and_sudo() {
    let lab = TestLab::new(10, &["web1"]);
    lab.up();
    // A user that exists on this host only; sshd without PAM refuses locked accounts ("!").
    let mut root = lab.connect(0);
    run(
        &mut root,
        "useradd -m -d /srv/deploy -s /bin/sh deploy && usermod -p '*' deploy && \
         mkdir -p /etc/sudoers.d && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy",
    );
    assert!(!Path::new("/srv/deploy").exists(), "the user's home leaked to the real machine");

    let plain = Target { user: "deploy".into(), ..lab.target(0) };
    assert_eq!(run(&mut Session::connect(&plain).unwrap(), "id -un"), "deploy\n");

    let mut sudo = Session::connect(&Target { sudo: true, ..plain }).unwrap();
    let out = sudo.exec("id -un; printf '%s\\n' \"it's\" | cat", b"").unwrap();
    if Path::new("/usr/bin/sudo").exists() {
        assert_ok(&out, "sudo");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "root\nit's\n");
        // A command longer than one SSH packet goes through sudo too, stdin after it.
        let long = format!("{}id -un; cat\n", ": 'padding'\n".repeat(4000));
        let out = sudo.exec(&long, b"input\n").unwrap();
        assert_ok(&out, "long sudo");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "root\ninput\n");
    } else {
        // No sudo on this machine: at least the command went through it.
        assert_eq!(out.status, 127, "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("sudo"), "{out:?}");
    }
}

#[test]
fn a_lab_whose_state_was_deleted_is_named_and_can_be_stopped() {
    let lab = TestLab::new(11, &["web1"]);
    let sshd = lab.up()[0].pid.unwrap();
    // The checkout holding the state is deleted without `lab down`.
    fs::remove_dir_all(lab.lab.state_dir()).unwrap();

    let other = TestLab::new(11, &["web1"]);
    let message = other.lab.up(&other.hosts).expect_err("up on a taken address").to_string();
    assert!(message.contains("127.77.11.1:2222 is already in use"), "{message}");
    assert!(message.contains("deleted without `lab down`"), "{message}");
    assert!(message.contains(&format!("pid {sshd}")), "{message}");

    // `down` with the same (deleted) state directory still finds and stops the host.
    assert_eq!(lab.lab.down().unwrap(), vec!["web1".to_string()]);
    assert!(!alive(sshd));
    assert_eq!(other.up()[0].state, HostState::Started);
}

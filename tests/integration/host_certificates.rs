//! Host certificates: real sshd servers presenting host certificates made by ssh-keygen,
//! trusted through `@cert-authority` lines in known_hosts. Uses 127.77.33.0/24 (see the table
//! in lab.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stackdeploy::{Session, Target};

fn keygen(path: &Path, kind: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An sshd of its own (not a lab host: only the handshake matters here), killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    client: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        crate::lab::require_root();
        let dir = tempfile::tempdir().unwrap();
        let client = dir.path().join("id_client");
        keygen(&client, "ed25519");
        for ca in ["ca", "other-ca"] {
            keygen(&dir.path().join(ca), "ed25519");
        }
        Fixture { dir, client }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An sshd on 127.77.33.`n`:2222 whose ECDSA host key is certified by `ca` with the
    /// ssh-keygen arguments `args` (principals, validity).
    fn server(&self, n: u8, ca: &str, args: &[&str]) -> Server {
        let address = format!("127.77.33.{n}");
        let key = self.path(&format!("host{n}"));
        keygen(&key, "ecdsa");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(self.path(ca))
            .args(["-I", &format!("host{n}"), "-h"])
            .args(args)
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let config = self.path(&format!("sshd{n}.conf"));
        std::fs::copy(self.client.with_extension("pub"), self.path("authorized_keys")).unwrap();
        std::fs::write(
            &config,
            format!(
                "ListenAddress {address}\nPort 2222\nHostKey {key}\nHostCertificate {key}-cert.pub\n\
                 PidFile {dir}/sshd{n}.pid\nAuthorizedKeysFile {dir}/authorized_keys\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUseDNS no\n",
                key = key.display(),
                dir = self.dir.path().display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((address.as_str(), 2222)).is_err() {
            assert!(Instant::now() < deadline, "sshd on {address} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, address }
    }

    fn public(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(&format!("{name}.pub"))).unwrap();
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    fn connect(&self, server: &Server, known_hosts: &str) -> Result<Session, String> {
        let file = self.path("known_hosts");
        std::fs::write(&file, known_hosts).unwrap();
        Session::connect(&Target {
            host: "db01".into(),
            address: server.address.clone(),
            port: 2222,
            user: "root".into(),
            identity: Some(self.client.clone()),
            known_hosts: file,
            sudo: false,
            trust_new_host_keys: false,
            connect_timeout: Duration::from_secs(5),
            jump: None,
        })
        .map_err(|e| e.to_string())
    }
}

#[test]
fn a_host_certificate_from_a_trusted_ca_is_accepted_and_a_bad_one_refused() {
    let f = Fixture::new();
    let ca_line = format!("@cert-authority [127.77.33.*]:2222 {}\n", f.public("ca"));
    let valid = "-V-1d:+1d";

    let good = f.server(1, "ca", &["-n", "127.77.33.1,db01", valid]);
    let mut session = f.connect(&good, &ca_line).expect("a certificate from the trusted CA");
    let out = session.exec("echo through a certified host key", b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through a certified host key\n");
    // The same CA trusted for other names only does not count for this host.
    let e =
        f.connect(&good, &format!("@cert-authority [10.*]:2222 {}\n", f.public("ca"))).unwrap_err();
    assert!(e.contains("is not known"), "{e}");

    let wrong_name = f.server(2, "ca", &["-n", "db02", valid]);
    let e = f.connect(&wrong_name, &ca_line).unwrap_err();
    assert!(e.contains("certificate 'host2' (serial 0) does not count: 127.77.33.2 is not one of its principals (db02)"), "{e}");
    assert!(e.contains("known_hosts:1"), "names the CA's line: {e}");

    let expired = f.server(3, "ca", &["-n", "127.77.33.3", "-V", "20200101:20210101"]);
    let e = f.connect(&expired, &ca_line).unwrap_err();
    assert!(e.contains("expired on 2021-01-01"), "{e}");

    // Signed by a CA nobody trusts: the certificate counts for nothing, and the key is
    // looked up as a plain key, as ssh does: unknown, so refused; known, so accepted.
    let stranger = f.server(4, "other-ca", &["-n", "127.77.33.4", valid]);
    let e = f.connect(&stranger, &ca_line).unwrap_err();
    assert!(e.contains("is not known"), "{e}");
    let plain = format!("{ca_line}[127.77.33.4]:2222 {}\n", f.public("host4"));
    f.connect(&stranger, &plain).expect("its own key is known");

    // A revoked host key is refused even with a valid certificate.
    let revoked = format!("{ca_line}@revoked * {}\n", f.public("host1"));
    let e = f.connect(&good, &revoked).unwrap_err();
    assert!(e.contains("@revoked"), "{e}");
    let e = f.connect(&good, &format!("{ca_line}@revoked * {}\n", f.public("ca"))).unwrap_err();
    assert!(e.contains("@revoked"), "a revoked CA signs nothing: {e}");
}

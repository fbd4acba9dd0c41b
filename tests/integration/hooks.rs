//! Hooks end to end: an HTTP receiver in the test (a real listener on loopback) is the CMDB,
//! the shipped composition on the lab-files platform is the cloud (real lab hosts for staging
//! and production), and the pipeline releases a commit that adds a compute host and removes
//! another. The receiver gets exactly the expected events, in order, with the token from the
//! environment and no secret; a retried run sends nothing; a rollback sends the change back.
//!
//! Networks: 127.78.38.0/24 and 127.79.38.0/24 (the table in converge.rs); the receiver listens
//! on 127.79.38.1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::converge::Lab;
use crate::pipeline::{env_ref, head, note};

/// One request the receiver got: its request line, headers (lower-case names) and JSON body.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

/// An HTTP server answering every POST with 204, keeping what it got; stops when dropped.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(address: &str) -> Receiver {
        let listener = TcpListener::bind((address, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (got, stop) = (got.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            if let Some(r) = read_request(&mut s) {
                                got.lock().unwrap().push(r);
                            }
                            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Receiver { port, got, stop, thread: Some(thread) }
    }

    /// `stage event [host]` of every request so far, and forgets them.
    fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(s: &mut std::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.iter().find(|(k, _)| k == "content-length")?.1.parse().unwrap();
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(body.len(), length, "Content-Length {length} for a body of {}", body.len());
    Some(Request { line, headers, body: serde_json::from_slice(&body).unwrap() })
}

fn events(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let b = &r.body;
            let what = format!("{} {}", b["stage"].as_str().unwrap(), b["event"].as_str().unwrap());
            match b.get("host") {
                Some(h) => format!("{what} {}", h.as_str().unwrap()),
                None => what,
            }
        })
        .collect()
}

const TOKEN: &str = "hook-token-Jq7Rw2Zx";
/// A secret of production (keystone's admin password), put in a host's fact by mistake.
const SECRET: &str = "prd-admin-Wz3Ht8Lq5Nb";

#[test]
fn a_release_adding_and_removing_hosts_tells_the_cmdb_once() {
    let lab = Lab::up(38, &["staging", "production"]);
    let receiver = Receiver::start("127.79.38.1");
    lab.repo.write(
        "pipeline.toml",
        &format!(
            "{}\n[[hooks]]\nname = \"cmdb\"\nevents = [\"host_added\", \"host_removed\", \
             \"host_deployed\", \"stage_passed\", \"stage_failed\", \"release_done\"]\n\
             environments = [\"production\"]\nurl = \"http://127.79.38.1:{}/cmdb/events\"\n\
             headers = {{ Authorization = \"Bearer ${{CMDB_TOKEN}}\" }}\ntimeout = 5\n",
            lab.repo.read("pipeline.toml"),
            receiver.port
        ),
    );
    lab.repo.commit("tell the CMDB");
    let env = [("CMDB_TOKEN", TOKEN)];
    let pipeline = || {
        let run = lab.repo.run_env(&["pipeline", "run", "--yes"], &env);
        run.success();
        run
    };
    let first = pipeline();
    // The first release of production adds every host.
    let got = receiver.take();
    let added: Vec<String> =
        events(&got).into_iter().filter(|e| e.contains("host_added")).collect();
    assert_eq!(added.len(), 7, "{:?}", events(&got));

    // compute05 joins production, compute04 leaves.
    lab.repo.edit(
        "pipeline.toml",
        "compute04    = { address = \"127.79.38.34\", role = \"compute\",    facts = { az = \"az2\" } }",
        &format!(
            "compute05    = {{ address = \"127.79.38.35\", role = \"compute\", facts = {{ az = \"az2\", asset = \"{SECRET}\" }} }}"
        ),
    );
    let commit = lab.repo.commit("compute05 replaces compute04");
    let previous = env_ref(&lab, "production").unwrap();
    lab.run(&["lab", "up", "--env", "production"]).success();
    let second = pipeline();
    let got = receiver.take();
    assert_eq!(
        events(&got),
        [
            "canary host_deployed compute01",
            "canary host_deployed controller01",
            "canary host_deployed db01",
            "canary stage_passed",
            "release host_added compute05",
            "release host_removed compute04",
            "release host_deployed compute02",
            "release host_deployed compute03",
            "release host_deployed compute05",
            "release host_deployed controller02",
            "release stage_passed",
            "release release_done",
        ]
    );
    for r in &got {
        assert_eq!(r.line, "POST /cmdb/events HTTP/1.1");
        let header =
            |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(r.body["commit"], commit.as_str());
        assert_eq!(r.body["environment"], "production");
        assert_eq!(r.body["result"], "passed");
    }
    let added = &got[4].body;
    assert_eq!(added["address"], "127.79.38.35");
    assert_eq!(added["role"], "compute");
    assert_eq!(added["previous_commit"], previous.as_str());
    assert_eq!(added["facts"]["az"], "az2");
    assert!(
        added["facts"]["asset"].as_str().unwrap().starts_with("<secret:keystone::admin_password#"),
        "{added}"
    );
    let removed = &got[5].body;
    assert_eq!(removed["address"], "127.79.38.34", "described as the previous release had it");
    assert_eq!(got[11].body["hosts"].as_array().unwrap().len(), 7, "the release's hosts");
    let bodies: String = got.iter().map(|r| r.body.to_string()).collect();
    assert!(!bodies.contains(SECRET), "a payload holds the secret: {bodies}");
    assert!(!bodies.contains("prd-") && !bodies.contains("stg-"), "{bodies}");

    // The deliveries are on the stage's note; the outputs never show the token.
    let release = &note(&lab, &commit)["stages"]["release"];
    assert_eq!(release["status"], "passed");
    let fired = release["hooks_fired"].as_array().unwrap();
    assert!(fired.iter().any(|k| k.as_str().unwrap().starts_with("cmdb/host_added:compute05:")));
    for run in [&first, &second] {
        assert!(!format!("{}{}", run.stdout, run.stderr).contains(TOKEN));
    }
    second.expect(0, &["hook cmdb: host_added compute05: delivered"]);

    // A retried run: nothing is news.
    pipeline();
    assert_eq!(events(&receiver.take()), Vec::<String>::new());
    assert_eq!(head(&lab), commit);

    // Rolled back to the release before: the CMDB hears the inventory change back, under the
    // stage name `rollback`, and every host now running the old commit.
    let rollback = lab.repo.run_env(&["rollback", "--env", "production", "--yes"], &env);
    rollback.expect(0, &["hook cmdb: host_added compute04: delivered"]);
    let got = receiver.take();
    assert_eq!(
        events(&got),
        [
            "rollback host_added compute04",
            "rollback host_removed compute05",
            "rollback host_deployed compute01",
            "rollback host_deployed compute02",
            "rollback host_deployed compute03",
            "rollback host_deployed compute04",
            "rollback host_deployed controller01",
            "rollback host_deployed controller02",
            "rollback host_deployed db01",
            "rollback stage_passed",
            "rollback release_done",
        ]
    );
    for r in &got {
        assert_eq!(r.body["commit"], previous.as_str());
        assert_eq!(r.body["previous_commit"], commit.as_str(), "{}", r.body);
    }
    assert_eq!(got[0].body["address"], "127.79.38.34");
    assert_eq!(env_ref(&lab, "production").as_deref(), Some(previous.as_str()));
    // Rolling back to where it is already is no change: nothing is sent.
    let again =
        lab.repo.run_env(&["rollback", "--env", "production", "--to", &previous, "--yes"], &env);
    again.success();
    assert_eq!(events(&receiver.take()), Vec::<String>::new());
}

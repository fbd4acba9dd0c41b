//! Real Chromium for the HTML report: a small HTTP server that serves a directory with a
//! Content-Security-Policy header (as a CI server serves artifacts), and chromedriver driven
//! over WebDriver's HTTP protocol to load pages, measure them with scripts that run in the
//! browser (not in the page: a sandboxed page runs none), read the browser's console and take
//! screenshots.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// Serves the files of one directory on a loopback port, each response with the given
/// Content-Security-Policy; records the paths asked for.
pub struct CspServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CspServer {
    pub fn start(dir: &Path, csp: &str) -> CspServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let (requests, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (dir, csp) = (dir.to_path_buf(), csp.to_string());
        let (seen, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &dir, &csp, &seen);
                }
            }
        });
        CspServer { addr, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn requested(&self, path: &str) -> bool {
        self.requests.lock().unwrap().iter().any(|p| p == path)
    }
}

impl Drop for CspServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    dir: &Path,
    csp: &str,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(path.clone());
    let name = path.trim_start_matches('/');
    let file = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
        .then(|| std::fs::read(dir.join(name)).ok())
        .flatten();
    let (status, body, kind) = match file {
        Some(body) => {
            let kind = match name.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                _ => "application/octet-stream",
            };
            ("200 OK", body, kind)
        }
        None => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {csp}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(&body)?;
    conn.flush()
}

/// One chromedriver process with one headless Chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _home: tempfile::TempDir,
}

fn chromium() -> PathBuf {
    let bin = PathBuf::from("/usr/lib/chromium/chromium");
    assert!(
        bin.exists(),
        "Chromium is not installed: run `bash .ci/install-deps` (Debian package chromium)"
    );
    bin
}

impl Browser {
    pub fn start() -> Browser {
        let chromium = chromium();
        let home = tempfile::tempdir().unwrap();
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            // Chromium writes crash-report and dconf files under $HOME whatever the profile dir.
            .env("HOME", home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver is not installed: run `bash .ci/install-deps` (Debian package \
                 chromium-driver)",
            );
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split_once("started successfully on port ")
                    .and_then(|(_, p)| p.trim_end_matches('.').parse::<u16>().ok())
            })
            .expect("chromedriver says which port it listens on");
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let mut browser = Browser { driver, port, session: String::new(), _home: home };
        let profile = browser._home.path().join("profile");
        let created = browser.call(
            "POST",
            "/session",
            &json!({"capabilities": {"alwaysMatch": {
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                        format!("--user-data-dir={}", profile.display())],
                },
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`, panicking with the driver's answer on an
    /// error.
    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        self.request(method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn request(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        let body =
            if method == "GET" || method == "DELETE" { String::new() } else { body.to_string() };
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request says: read exactly the
        // body its Content-Length announces.
        let mut reader = BufReader::new(conn);
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| format!("bad header {line:?}"))?;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|e| format!("{e} after {head}"))?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("{head}\n{doc:#}"));
        }
        Ok(doc["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}/{rest}", self.session)
    }

    pub fn open(&self, url: &str) {
        self.call("POST", &self.session_path("url"), &json!({ "url": url }));
    }

    /// Runs `body` (a function body; `return` its result) in the page's document and returns
    /// the result as JSON.
    pub fn eval(&self, body: &str) -> Value {
        self.call("POST", &self.session_path("execute/sync"), &json!({"script": body, "args": []}))
    }

    /// The console messages since the last call (CSP violations among them).
    pub fn console(&self) -> Vec<String> {
        let log = self.call("POST", &self.session_path("se/log"), &json!({"type": "browser"}));
        log.as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["message"].as_str().map(str::to_string))
            .collect()
    }

    /// A PNG of the window, written to `path` and returned.
    pub fn screenshot(&self, path: &Path) -> Vec<u8> {
        let png = self.call("GET", &self.session_path("screenshot"), &Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a base64 PNG");
        std::fs::write(path, &png).unwrap();
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends Chromium too; errors are ignored, the test may be failing already.
            let _ = self.request("DELETE", &format!("/session/{}", self.session), &Value::Null);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

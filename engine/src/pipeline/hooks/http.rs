//! An HTTP/1.1 POST over a plain TCP connection, for hooks: one request per connection
//! (`Connection: close`), the whole exchange within one deadline, 2xx is success. Small on
//! purpose: hooks post a few hundred bytes of JSON to an endpoint of the operator's own, and a
//! client crate would be the largest dependency of the engine for that. No TLS, no redirects,
//! no proxies (docs/design.md, "Hooks").

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::model::hooks::HttpTarget;

/// How much of a response is read: the headers and the start of the body, for messages.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY_SHOWN: usize = 200;

/// The environment variables header values read (`std::env::var` but in tests).
pub type Vars<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Posts `body` as JSON to `target` within `timeout`; Ok is the 2xx status. Err says why in
/// words that hold no header value (they may hold tokens).
pub fn post(
    target: &HttpTarget,
    body: &[u8],
    timeout: Duration,
    vars: &Vars<'_>,
) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stackdeploy/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        target.path,
        authority(target),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in &target.headers {
        let value = expand(value, vars).map_err(|e| format!("header '{name}': {e}"))?;
        if value.contains(['\r', '\n']) {
            return Err(format!("header '{name}': its value holds a line break"));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = connect(target, deadline)?;
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    set_timeouts(&stream, deadline)?;
    stream.write_all(&bytes).map_err(|e| io_error("sending the request", &e, timeout))?;
    let (status, reason, rest) = read_response(&mut stream, deadline, timeout)?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        let shown: String = String::from_utf8_lossy(&rest)
            .chars()
            .filter(|c| !c.is_control() || *c == ' ')
            .take(MAX_BODY_SHOWN)
            .collect();
        let shown = shown.trim();
        Err(if shown.is_empty() {
            format!("{} answered {status} {reason}", target.url)
        } else {
            format!("{} answered {status} {reason}: {shown}", target.url)
        })
    }
}

fn authority(t: &HttpTarget) -> String {
    let host = if t.host.contains(':') { format!("[{}]", t.host) } else { t.host.clone() };
    if t.port == 80 { host } else { format!("{host}:{}", t.port) }
}

/// `${NAME}` is the environment variable NAME; `$$` is a `$`.
pub fn expand(value: &str, vars: &Vars<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').ok_or("an unclosed ${ (write $$ for a literal $)")?;
            let name = &inner[..end];
            match vars(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "the environment variable {name} is not set (export it where the \
                         pipeline runs, e.g. from the CI server's credentials)"
                    ));
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

fn connect(target: &HttpTarget, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last = format!("{} resolves to no address", target.host);
    for addr in addrs {
        let Some(left) = remaining(deadline) else { break };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr} ({}): {e}", target.url),
        }
    }
    if remaining(deadline).is_none() {
        return Err(format!("{}: no connection within the timeout", target.url));
    }
    Err(last)
}

fn set_timeouts(stream: &TcpStream, deadline: Instant) -> Result<(), String> {
    let left = remaining(deadline).ok_or("the timeout passed")?;
    stream
        .set_read_timeout(Some(left))
        .and_then(|_| stream.set_write_timeout(Some(left)))
        .map_err(|e| format!("socket: {e}"))
}

fn io_error(doing: &str, e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("timed out after {} s {doing}", timeout.as_secs())
        }
        _ => format!("{doing}: {e}"),
    }
}

/// The final response's status and reason (1xx interim answers skipped), and what of its body
/// was read.
fn read_response(
    stream: &mut TcpStream,
    deadline: Instant,
    timeout: Duration,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Err(format!("the response headers are longer than {MAX_HEAD} bytes"));
            }
            if read_some(stream, &mut buf, deadline, timeout)? == 0 {
                return Err(if buf.is_empty() {
                    "the server closed the connection without an answer".into()
                } else {
                    "the server closed the connection within the response headers".into()
                });
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let (status, reason) = parse_status(status_line)?;
        let rest = buf.split_off(head_end + 4);
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| {
                v.trim().parse::<usize>().map_err(|_| format!("bad Content-Length '{}'", v.trim()))
            })
            .transpose()?;
        let mut body = rest;
        let wanted = length.unwrap_or(MAX_BODY_SHOWN).min(MAX_BODY_SHOWN);
        // The body only explains a failure: read what is there up to the shown size, and stop
        // at the deadline rather than fail a delivered event on a slow tail.
        while body.len() < wanted && remaining(deadline).is_some() {
            match read_some(stream, &mut body, deadline, timeout) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        return Ok((status, reason, body));
    }
}

fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    timeout: Duration,
) -> Result<usize, String> {
    set_timeouts(stream, deadline)
        .map_err(|_| format!("timed out after {} s waiting for the answer", timeout.as_secs()))?;
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).map_err(|e| io_error("waiting for the answer", &e, timeout))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// `HTTP/1.1 204 No Content` → (204, "No Content").
fn parse_status(line: &str) -> Result<(u16, String), String> {
    let bad = || format!("not an HTTP response: '{}'", line.chars().take(60).collect::<String>());
    let rest = line.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let (minor, rest) = rest.split_once(' ').ok_or_else(bad)?;
    if minor != "0" && minor != "1" {
        return Err(bad());
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 {
        return Err(bad());
    }
    let code: u16 = code.parse().map_err(|_| bad())?;
    Ok((code, reason.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn vars(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("tok-123".into()),
            "X" => Some("v".into()),
            _ => None,
        }
    }

    fn target(port: u16, headers: &[(&str, &str)]) -> HttpTarget {
        HttpTarget {
            url: format!("http://127.0.0.1:{port}/hook"),
            host: "127.0.0.1".into(),
            port,
            path: "/hook?x=1".into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// A server answering one connection with `answer` (raw bytes, possibly in pieces), after
    /// reading the whole request; returns the request it read.
    fn serve(answer: Vec<&'static [u8]>) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut chunk = [0u8; 1024];
            // Headers, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap();
                req.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if req.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            for piece in answer {
                s.write_all(piece).unwrap();
                s.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            req
        });
        (port, handle)
    }

    #[test]
    fn posts_json_with_length_and_headers_from_the_environment() {
        let (port, server) =
            serve(vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 20", b"4 No Content\r\n\r\n"]);
        let t = target(port, &[("Authorization", "Bearer ${TOKEN}")]);
        let status = post(&t, br#"{"event":"host_added"}"#, Duration::from_secs(5), &vars).unwrap();
        assert_eq!(status, 204);
        let req = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(req.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "{req}");
        for line in [
            &format!("Host: 127.0.0.1:{port}\r\n"),
            "Content-Type: application/json\r\n",
            "Content-Length: 22\r\n",
            "Authorization: Bearer tok-123\r\n",
        ] {
            assert!(req.contains(line), "{line:?} in {req}");
        }
        assert!(req.ends_with("\r\n\r\n{\"event\":\"host_added\"}"), "{req}");
    }

    #[test]
    fn a_refusal_says_the_status_and_never_the_header_values() {
        let (port, server) = serve(vec![
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 13\r\n\r\n",
            b"cmdb is down\n",
        ]);
        let t = target(port, &[("X-Token", "${TOKEN}")]);
        let e = post(&t, b"{}", Duration::from_secs(5), &vars).unwrap_err();
        assert_eq!(
            e,
            format!("http://127.0.0.1:{port}/hook answered 503 Service Unavailable: cmdb is down")
        );
        server.join().unwrap();
        assert!(!e.contains("tok-123"));
        let t = target(port, &[("X-Token", "${UNSET}")]);
        let e = post(&t, b"{}", Duration::from_secs(5), &vars).unwrap_err();
        assert!(e.contains("UNSET is not set"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out_and_garbage_is_no_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        let e = post(&target(port, &[]), b"{}", Duration::from_secs(1), &vars).unwrap_err();
        assert!(e.contains("timed out after 1 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(listener);
        let (port, server) = serve(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]);
        let e = post(&target(port, &[]), b"{}", Duration::from_secs(5), &vars).unwrap_err();
        assert!(e.starts_with("not an HTTP response: 'SSH-2.0-OpenSSH'"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn expansion() {
        assert_eq!(expand("a ${X} $$ $b", &vars).unwrap(), "a v $ $b");
        assert!(expand("${X", &vars).is_err());
    }
}

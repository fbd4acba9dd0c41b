//! An HTTP/1.1 POST over TCP, or TLS for `https://` (OpenSSL, which libssh2 links already),
//! for hooks: one request per connection (`Connection: close`), the whole exchange within one
//! deadline, 2xx is success. Small on purpose: hooks post a few hundred bytes of JSON to an
//! endpoint of the operator's own, and a client crate would be the largest dependency of the
//! engine for that. No redirects, no proxies (docs/design.md, "Hooks").

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslStream};

use crate::model::hooks::{HttpTarget, expand_header};

/// The connection a request goes over.
enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

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
    // What the headers carry from the environment (tokens): an answer that echoes them back
    // is shown without them.
    let carried = std::cell::RefCell::new(Vec::new());
    let recording = |name: &str| {
        let value = vars(name);
        carried.borrow_mut().extend(value.clone());
        value
    };
    for (name, value) in &target.headers {
        let value =
            expand_header(value, &recording).map_err(|e| format!("header '{name}': {e}"))?;
        carried.borrow_mut().push(value.clone());
        if value.contains(['\r', '\n']) {
            return Err(format!("header '{name}': its value holds a line break"));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let tcp = connect(target, deadline)?;
    set_timeouts(&tcp, deadline)?;
    let mut stream = if target.tls {
        Stream::Tls(Box::new(tls(target, tcp, timeout)?))
    } else {
        Stream::Plain(tcp)
    };
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    set_timeouts(stream.tcp(), deadline)?;
    stream.write_all(&bytes).map_err(|e| io_error("sending the request", &e, timeout))?;
    let (status, reason, rest) = read_response(&mut stream, deadline, timeout)?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        let mut answer = String::from_utf8_lossy(&rest).into_owned();
        let mut reason = reason;
        let mut carried = carried.into_inner();
        // Longest first, so a header's whole value goes before the token inside it.
        carried.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for value in carried.iter().filter(|v| v.len() >= 4) {
            answer = answer.replace(value.as_str(), "<header value>");
            reason = reason.replace(value.as_str(), "<header value>");
        }
        let shown: String =
            answer.chars().filter(|c| !c.is_control() || *c == ' ').take(MAX_BODY_SHOWN).collect();
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
    if t.port == if t.tls { 443 } else { 80 } { host } else { format!("{host}:{}", t.port) }
}

/// The TLS session over `tcp`: the server's certificate must chain to the system's CAs (which
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` can point elsewhere) or `ca_file`'s, and name the URL's
/// host (DNS name or IP address). `SslConnector` verifies the peer and the name by default.
fn tls(
    target: &HttpTarget,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<SslStream<TcpStream>, String> {
    let url = &target.url;
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| format!("{url}: cannot set up TLS: {e}"))?;
    if let Some(ca) = &target.ca_file {
        // OpenSSL's own errors name its source files; say what is wrong with the file instead.
        let fix = "point ca_file at the PEM file of the CA that signed the endpoint's certificate";
        let pem = std::fs::read(ca).map_err(|e| {
            format!("{url}: ca_file {ca} cannot be read on this machine ({e}); {fix}")
        })?;
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
            return Err(format!("{url}: ca_file {ca} holds no PEM certificate; {fix}"));
        }
        builder
            .set_ca_file(ca)
            .map_err(|e| format!("{url}: ca_file {ca} is not a usable CA file ({e}); {fix}"))?;
    }
    let connector = builder.build();
    match connector.connect(&target.host, tcp) {
        Ok(s) => Ok(s),
        Err(HandshakeError::Failure(mid)) => {
            let verify = mid.ssl().verify_result();
            Err(if verify.as_raw() != 0 {
                let trust = if target.ca_file.is_some() {
                    "check that ca_file holds the CA that signed the endpoint's certificate"
                } else {
                    "if it is signed by a private CA, name that CA's PEM file with `ca_file` on \
                     the hook"
                };
                format!(
                    "{url}: the server's certificate is not trusted ({}); {trust}",
                    verify.error_string()
                )
            } else {
                format!("{url}: the TLS handshake failed: {}", mid.error())
            })
        }
        Err(HandshakeError::WouldBlock(_)) => {
            Err(format!("{url}: timed out after {} s in the TLS handshake", timeout.as_secs()))
        }
        Err(HandshakeError::SetupFailure(e)) => Err(format!("{url}: cannot set up TLS: {e}")),
    }
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
    stream: &mut Stream,
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
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    timeout: Duration,
) -> Result<usize, String> {
    set_timeouts(stream.tcp(), deadline)
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
            tls: false,
            ca_file: None,
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
        // A server that echoes the credentials it got back: shown without them.
        let (port, server) = serve(vec![
            b"HTTP/1.1 401 Bad tok-123\r\nContent-Length: 60\r\n\r\n",
            b"invalid credentials: Bearer tok-123 (token tok-123 expired)\n",
        ]);
        let t = target(port, &[("Authorization", "Bearer ${TOKEN}")]);
        let e = post(&t, b"{}", Duration::from_secs(5), &vars).unwrap_err();
        server.join().unwrap();
        assert_eq!(
            e,
            format!(
                "http://127.0.0.1:{port}/hook answered 401 Bad <header value>: invalid \
                 credentials: <header value> (token <header value> expired)"
            )
        );
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

    /// A self-signed certificate for `names` (DNS names, or IP addresses) and its key.
    fn certificate(
        names: &[&str],
    ) -> (openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>) {
        use openssl::asn1::Asn1Time;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509, X509NameBuilder};
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "stackdeploy test CA").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        let mut san = SubjectAlternativeName::new();
        for n in names {
            if n.parse::<std::net::IpAddr>().is_ok() {
                san.ip(n);
            } else {
                san.dns(n);
            }
        }
        let san = san.build(&b.x509v3_context(None, None)).unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    /// A TLS server with a certificate for `names`, answering one request 204; returns its
    /// port, the CA file (the certificate itself) and what it read, `None` when the handshake
    /// failed.
    fn serve_tls(
        names: &[&str],
    ) -> (u16, tempfile::NamedTempFile, std::thread::JoinHandle<Option<Vec<u8>>>) {
        use openssl::ssl::{SslAcceptor, SslMethod};
        let (cert, key) = certificate(names);
        let mut ca = tempfile::NamedTempFile::new().unwrap();
        ca.write_all(&cert.to_pem().unwrap()).unwrap();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&cert).unwrap();
        let acceptor = acceptor.build();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut s = acceptor.accept(s).ok()?;
            let mut req = Vec::new();
            let mut chunk = [0u8; 1024];
            while !String::from_utf8_lossy(&req).contains("}") {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").ok()?;
            let _ = s.shutdown();
            Some(req)
        });
        (port, ca, handle)
    }

    fn https(port: u16, host: &str, ca: Option<&std::path::Path>) -> HttpTarget {
        HttpTarget {
            url: format!("https://{host}:{port}/hook"),
            tls: true,
            ca_file: ca.map(|p| p.display().to_string()),
            host: host.into(),
            ..target(port, &[("Authorization", "Bearer ${TOKEN}")])
        }
    }

    #[test]
    fn https_posts_over_tls_to_a_server_whose_certificate_is_trusted_and_names_it() {
        let (port, ca, server) = serve_tls(&["127.0.0.1", "localhost"]);
        let t = https(port, "127.0.0.1", Some(ca.path()));
        let status = post(&t, br#"{"event":"host_added"}"#, Duration::from_secs(5), &vars);
        assert_eq!(status, Ok(201));
        let req = String::from_utf8(server.join().unwrap().unwrap()).unwrap();
        assert!(req.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("Host: 127.0.0.1:{port}\r\n")), "{req}");
        assert!(req.contains("Authorization: Bearer tok-123\r\n"), "{req}");
        assert!(req.ends_with("{\"event\":\"host_added\"}"), "{req}");
    }

    #[test]
    fn a_ca_file_missing_or_without_a_certificate_is_named_with_what_to_do() {
        // A listener that never answers: the CA file is read before any byte is sent.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        for (ca, says) in [
            (missing, "ca_file /nonexistent/ca.pem cannot be read on this machine"),
            (not_pem.path(), "holds no PEM certificate"),
        ] {
            let e = post(&https(port, "127.0.0.1", Some(ca)), b"{}", Duration::from_secs(5), &vars)
                .unwrap_err();
            assert!(e.contains(says) && e.contains("point ca_file at the PEM file"), "{e}");
            assert!(!e.contains(".c:"), "OpenSSL's source file in the message: {e}");
        }
    }

    #[test]
    fn https_refuses_an_untrusted_certificate_or_one_for_another_name_and_says_what_to_do() {
        // Self-signed and no ca_file: the system's CAs do not know it.
        let (port, _ca, server) = serve_tls(&["127.0.0.1"]);
        let e = post(&https(port, "127.0.0.1", None), b"{}", Duration::from_secs(5), &vars)
            .unwrap_err();
        assert!(
            e.starts_with(&format!(
                "https://127.0.0.1:{port}/hook: the server's certificate is not trusted ("
            )),
            "{e}"
        );
        assert!(e.contains("name that CA's PEM file with `ca_file`"), "{e}");
        assert_eq!(server.join().unwrap(), None, "nothing was sent");
        // Trusted, but issued for another name.
        let (port, ca, server) = serve_tls(&["cmdb.example"]);
        let e =
            post(&https(port, "127.0.0.1", Some(ca.path())), b"{}", Duration::from_secs(5), &vars)
                .unwrap_err();
        assert!(e.contains("not trusted") && e.to_lowercase().contains("mismatch"), "{e}");
        assert_eq!(server.join().unwrap(), None, "nothing was sent");
    }
}

//! One SSH connection and the commands run on it.
//!
//! Commands run in libssh2's non-blocking mode: a single loop writes stdin, reads stdout and
//! stderr as they come and only then waits, so a command that writes megabytes before reading its
//! stdin cannot deadlock against us. Waiting uses the session's socket: when libssh2 needs more
//! input, a `peek` with a read timeout (on a blocking view of the socket) sleeps until data
//! arrives. Keepalives (with replies) run while a command is silent, so a host that dies mid-run
//! is reported after [`DEAD_AFTER`] instead of hanging the run.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use super::certificate::{self, Certificate};
use super::known_hosts::{self, HostKey, KnownHosts, Verdict};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::Target;
use crate::error::{self, Error, Result};
use crate::shell::quote as shell_quote;

/// Silence after which a running command's connection is checked with keepalives (at most one
/// per interval, answered by the server).
const KEEPALIVE_SECS: u32 = 10;
pub(super) const KEEPALIVE: Duration = Duration::from_secs(KEEPALIVE_SECS as u64);
/// A host that sends nothing (not even keepalive replies) for this long is given up.
pub(super) const DEAD_AFTER: Duration = Duration::from_secs(3 * KEEPALIVE_SECS as u64);
/// How much stdin is handed to libssh2 per write call.
const WRITE_CHUNK: usize = 256 * 1024;

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; 128 + N when the command was killed by signal N (as shells report it).
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Set when the connection broke while the command ran: why. `stdout` and `stderr` then
    /// hold what arrived until then, and `status` is -1.
    pub lost: Option<String>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// An authenticated SSH connection to one host, reused for every command of a run.
pub struct Session {
    host: String,
    /// `address:port` for messages.
    pub(super) endpoint: String,
    user: String,
    sudo: bool,
    pub(super) ssh: ssh2::Session,
    /// A second handle on the socket libssh2 uses, to sleep until it is readable.
    pub(super) socket: TcpStream,
    /// Bound on one protocol round trip (opening a channel, sending the command).
    request_timeout: Duration,
}

/// Handshakes that timed out are tried this often in all: a busy host or a busy machine gets
/// another chance, a refused key does not (it would be refused again).
const HANDSHAKE_TRIES: u32 = 3;

/// How many handshakes run at once in this process. Key exchange is CPU-bound on both ends:
/// two hundred at once on two cores made libssh2 time out mid-handshake while the hosts were
/// fine, so the forks connect a few at a time and then all work at once.
fn handshake_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 8
}

/// A counting gate (std has no semaphore).
struct Gate {
    busy: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

static HANDSHAKES: Gate = Gate { busy: std::sync::Mutex::new(0), freed: std::sync::Condvar::new() };

struct Slot;

impl Gate {
    fn enter(&'static self, limit: usize) -> Slot {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= limit {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *HANDSHAKES.busy.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        HANDSHAKES.freed.notify_one();
    }
}

/// libssh2's LIBSSH2_ERROR_TIMEOUT: the session's timeout ran out waiting for the server.
fn timed_out(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(-9)
}

/// A failed connection attempt, and whether trying again may help.
struct Attempt {
    error: Error,
    timed_out: bool,
}

impl From<Error> for Attempt {
    fn from(error: Error) -> Attempt {
        Attempt { error, timed_out: false }
    }
}

impl Session {
    /// Connects, verifies the host key and authenticates. A handshake or authentication that
    /// timed out is tried again (up to [`HANDSHAKE_TRIES`] in all, with a growing pause).
    pub fn connect(t: &Target) -> Result<Session> {
        let mut tries = 1;
        loop {
            match Session::connect_once(t) {
                Ok(s) => return Ok(s),
                Err(a) if a.timed_out && tries < HANDSHAKE_TRIES => {
                    tracing::info!(host = %t.host, try_ = tries, "SSH handshake timed out; trying again");
                    std::thread::sleep(Duration::from_millis(250 * u64::from(tries * tries)));
                    tries += 1;
                }
                Err(a) if a.timed_out => {
                    return Err(a.error.map_detail(|d| format!("{d} ({tries} tries)")));
                }
                Err(a) => return Err(a.error),
            }
        }
    }

    fn connect_once(t: &Target) -> std::result::Result<Session, Attempt> {
        let started = Instant::now();
        let endpoint = if t.address.contains(':') {
            format!("[{}]:{}", t.address, t.port)
        } else {
            format!("{}:{}", t.address, t.port)
        };
        let fail = |detail: String| error::host(detail).at_host(&t.host);
        let (tcp, endpoint) = match &t.jump {
            Some(jump) => {
                let bastion = Session::connect(jump).map_err(|e| {
                    e.map_detail(|d| format!("through the jump host {}: {d}", jump.address))
                })?;
                let via = format!("{endpoint} via {}", bastion.endpoint);
                (bastion.tunnel(&t.host, &t.address, t.port)?, via)
            }
            None => (direct(t, &endpoint)?, endpoint),
        };
        let _ = tcp.set_nodelay(true);
        let socket = tcp
            .try_clone()
            .map_err(|e| fail(format!("cannot use the socket to {endpoint}")).with_source(e))?;

        let mut ssh = ssh2::Session::new()
            .map_err(|e| fail("cannot create an SSH session".into()).with_source(e))?;
        ssh.set_tcp_stream(tcp);
        ssh.set_timeout(millis(t.connect_timeout));

        let known = KnownHosts::load(&t.known_hosts).map_err(|e| {
            fail(format!("cannot read the known_hosts file {}", t.known_hosts.display()))
                .with_source(e)
        })?;
        let name = known_hosts::host_name(&t.address, t.port);
        prefer_known_key_types(
            &ssh,
            &known.key_types(&ssh, &name),
            known.has_cert_authority(&ssh, &name),
        );

        let slot = HANDSHAKES.enter(handshake_slots());
        if let Err(e) = ssh.handshake() {
            let timed_out = timed_out(&e);
            let detail = if timed_out {
                format!(
                    "the SSH handshake with {endpoint} timed out after {:?} (the server accepted \
                     the connection but did not finish the key exchange: a busy host or a busy \
                     machine here; raise the environment's connect_timeout or lower --forks)",
                    t.connect_timeout
                )
            } else {
                format!("SSH handshake with {endpoint} failed")
            };
            return Err(Attempt { error: fail(detail).with_source(e), timed_out });
        }
        verify_host_key(t, &ssh, &known, &name, &endpoint)?;
        authenticate(t, &ssh, &endpoint)?;
        drop(slot);
        ssh.set_keepalive(true, KEEPALIVE_SECS);
        tracing::debug!(host = %t.host, %endpoint, elapsed = ?started.elapsed(), "connected");

        Ok(Session {
            host: t.host.clone(),
            endpoint,
            user: t.user.clone(),
            sudo: t.sudo,
            ssh,
            socket,
            request_timeout: t.connect_timeout.max(Duration::from_secs(1)),
        })
    }

    /// The inventory name of the host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `command` through the login shell of the user (through `sudo -n sh -c` when the target
    /// asks for sudo and the user is not root), feeding it `stdin`, and collects its output. A
    /// non-zero exit is an [`Output`], not an error; errors are about the connection.
    pub fn exec(&mut self, command: &str, stdin: &[u8]) -> Result<Output> {
        self.exec_timeout(command, stdin, None)
    }

    /// Like [`Session::exec`], but gives up when the command has not finished within `timeout`.
    /// The remote command is then left to the SSH server, which closes its pipes.
    pub fn exec_timeout(
        &mut self,
        command: &str,
        stdin: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Output> {
        let (out, lost) = self.exec_partial(command, stdin, timeout)?;
        match lost {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Like [`Session::exec_timeout`], but when the connection breaks while the command runs,
    /// gives what the command printed until then (with [`Output::lost`] saying why) and the
    /// error; only a command that could not be started is an `Err`.
    pub fn exec_partial(
        &mut self,
        command: &str,
        stdin: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(Output, Option<Error>)> {
        let started = Instant::now();
        let (command, stdin) = on_stdin(command, stdin);
        let command = if self.sudo && self.user != "root" {
            format!("sudo -n sh -c {}", shell_quote(&command))
        } else {
            command
        };
        self.ssh.set_blocking(true);
        self.ssh.set_timeout(millis(self.request_timeout));
        let mut channel = self.ssh.channel_session().map_err(|e| {
            self.error(format!("cannot open an SSH channel to {}", self.endpoint)).with_source(e)
        })?;
        if let Err(e) = channel.exec(&command) {
            return Err(self
                .error(format!("could not start a command over SSH ({})", e.message()))
                .with_source(e));
        }

        self.ssh.set_blocking(false);
        let deadline = timeout.map(|t| started + t);
        let mut out = Output { status: -1, stdout: Vec::new(), stderr: Vec::new(), lost: None };
        let result = self.pump(&mut channel, &stdin, deadline, &mut out);
        self.ssh.set_blocking(true);
        match result {
            Ok(status) => {
                out.status = status;
                tracing::trace!(host = %self.host, status, elapsed = ?started.elapsed(), "exec");
                Ok((out, None))
            }
            Err(e) => {
                // Dropping the channel closes it; do not let that wait long on a broken link.
                self.ssh.set_timeout(1000);
                let _ = channel.close();
                let cause =
                    std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
                out.lost = Some(format!("{}{cause}", e.detail()));
                Ok((out, Some(e)))
            }
        }
    }

    fn pump(
        &self,
        channel: &mut ssh2::Channel,
        stdin: &[u8],
        deadline: Option<Instant>,
        out: &mut Output,
    ) -> Result<i32> {
        let Output { stdout, stderr, .. } = out;
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0;
        let mut eof_sent = false;
        let mut last_inbound = Instant::now();
        let mut stdout_stream = channel.stream(0);
        let mut stderr_stream = channel.stderr();

        // Phase 1: until the command's output has ended and all of stdin is sent.
        loop {
            let mut progress = false;
            if !eof_sent {
                if written < stdin.len() {
                    let end = stdin.len().min(written + WRITE_CHUNK);
                    match channel.write(&stdin[written..end]) {
                        Ok(n) => {
                            written += n;
                            progress |= n > 0;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // The command no longer takes input (it exited or closed stdin).
                        Err(_) => written = stdin.len(),
                    }
                }
                if written == stdin.len() {
                    match channel.send_eof() {
                        Ok(()) => {
                            eof_sent = true;
                            progress = true;
                        }
                        Err(e) if would_block(&e) => {}
                        Err(_) => eof_sent = true,
                    }
                }
            }
            progress |= self.drain(&mut stdout_stream, stdout, &mut buf)?;
            progress |= self.drain(&mut stderr_stream, stderr, &mut buf)?;
            if progress {
                last_inbound = Instant::now();
                continue;
            }
            if channel.eof() {
                if eof_sent {
                    break;
                }
                // The output ended before all of stdin was sent: go on sending unless the
                // command is gone (the server closed the channel).
                match channel.wait_close() {
                    Ok(()) => break,
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(self.broken(e)),
                }
                if channel.write_window().remaining > 0 {
                    continue;
                }
            }
            if channel.read_window().available > 0 {
                continue;
            }
            self.wait(deadline, &mut last_inbound)?;
        }

        // Phase 2: the server sends the exit status, then closes the channel once the command
        // has exited; only then do we close our side (closing first could cut the command off).
        loop {
            match channel.wait_close() {
                Ok(()) => break,
                Err(e) if would_block(&e) => self.wait(deadline, &mut last_inbound)?,
                Err(e) => return Err(self.broken(e)),
            }
        }
        loop {
            match channel.close() {
                Ok(()) => break,
                Err(e) if would_block(&e) => self.wait(deadline, &mut last_inbound)?,
                Err(e) => return Err(self.broken(e)),
            }
        }
        let mut status = channel
            .exit_status()
            .map_err(|e| self.error("no exit status from the command".into()).with_source(e))?;
        if let Ok(ssh2::ExitSignal { exit_signal: Some(signal), .. }) = channel.exit_signal() {
            status = 128 + signal_number(&signal);
        }
        Ok(status)
    }

    /// Reads what `stream` has without blocking; true when anything was read.
    fn drain(&self, stream: &mut ssh2::Stream, into: &mut Vec<u8>, buf: &mut [u8]) -> Result<bool> {
        let mut progress = false;
        loop {
            match stream.read(buf) {
                Ok(0) => return Ok(progress),
                Ok(n) => {
                    into.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(e) => {
                    return Err(self
                        .error(format!("lost the connection to {}", self.endpoint))
                        .with_source(e));
                }
            }
        }
    }

    /// Sleeps until libssh2 can make progress, sending keepalives and enforcing the deadline.
    fn wait(&self, deadline: Option<Instant>, last_inbound: &mut Instant) -> Result<()> {
        let now = Instant::now();
        if let Some(deadline) = deadline
            && now >= deadline
        {
            return Err(self.error("the command did not finish in time".into()));
        }
        if now.duration_since(*last_inbound) > DEAD_AFTER {
            return Err(self.error(format!(
                "{} stopped responding (nothing received for {} s, keepalives unanswered)",
                self.endpoint,
                DEAD_AFTER.as_secs()
            )));
        }
        let mut max = Duration::from_secs(1);
        if let Some(deadline) = deadline {
            max = max.min(deadline.saturating_duration_since(now));
        }
        let max = max.max(Duration::from_millis(1));
        match self.ssh.block_directions() {
            ssh2::BlockDirections::Inbound => {
                // Only when nothing is waiting to be sent: libssh2 can finish a partly sent
                // packet only through the call that started it, and keepalive_send is not
                // called again for an interval, which would stall every other send.
                if now.duration_since(*last_inbound) >= KEEPALIVE {
                    let _ = self.ssh.keepalive_send();
                }
                if self.wait_readable(max) {
                    *last_inbound = Instant::now();
                }
            }
            // There is no portable way to wait for writability with std alone; these are rare
            // (a full socket send buffer) and short.
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
        Ok(())
    }

    /// Blocks until the socket has data (true) or `max` passed (false). libssh2 keeps the socket
    /// non-blocking, so switch it to blocking for the peek and back.
    fn wait_readable(&self, max: Duration) -> bool {
        if self.socket.set_nonblocking(false).is_err() {
            std::thread::sleep(Duration::from_millis(1));
            return false;
        }
        let _ = self.socket.set_read_timeout(Some(max));
        let mut byte = [0u8; 1];
        // Data, or the peer closed: either way libssh2 has something to see.
        let readable = self.socket.peek(&mut byte).is_ok();
        let _ = self.socket.set_nonblocking(true);
        readable
    }

    fn broken(&self, e: ssh2::Error) -> Error {
        self.error(format!("the SSH channel to {} broke", self.endpoint)).with_source(e)
    }

    fn error(&self, detail: String) -> Error {
        error::host(detail).at_host(&self.host)
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.ssh.set_blocking(true);
        self.ssh.set_timeout(1000);
        let _ = self.ssh.disconnect(None, "stackdeploy done", None);
    }
}

pub(super) fn would_block(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(libssh2_eagain())
}

const fn libssh2_eagain() -> i32 {
    -37 // LIBSSH2_ERROR_EAGAIN
}

fn millis(d: Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

/// A TCP connection straight to the host, with advice when there is none.
fn direct(t: &Target, endpoint: &str) -> std::result::Result<TcpStream, Attempt> {
    let fail = |detail: String| error::host(detail).at_host(&t.host);

    let addrs: Vec<SocketAddr> = (t.address.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve the address {}", t.address)).with_source(e))?
        .collect();
    let mut last_error = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, t.connect_timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let tcp = match (tcp, last_error) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            let hint = match e.kind() {
                io::ErrorKind::ConnectionRefused => {
                    " (no SSH server listens there; for lab hosts run `stackdeploy lab up`)"
                }
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    " (timed out: is the host up and the address right?)"
                }
                _ => "",
            };
            return Err(fail(format!("cannot connect to {endpoint}{hint}")).with_source(e).into());
        }
        (None, None) => {
            return Err(fail(format!("the address {} resolves to nothing", t.address)).into());
        }
    };
    Ok(tcp)
}

/// Puts the key types known_hosts has for this host first in the host key algorithm list, so
/// a host with several keys presents the one we can check (OpenSSH does the same).
/// With an `@cert-authority` for the host, certificate types come first of all (libssh2 has
/// them for ECDSA and RSA host keys, not Ed25519).
fn prefer_known_key_types(ssh: &ssh2::Session, known_types: &[String], certificates: bool) {
    if known_types.is_empty() && !certificates {
        return;
    }
    let Ok(supported) = ssh.supported_algs(ssh2::MethodType::HostKey) else {
        return;
    };
    let mut order: Vec<&str> = Vec::new();
    if certificates {
        order.extend(supported.iter().filter(|s| certificate::is_certificate(s)));
    }
    for t in known_types {
        let algs: &[&str] = match t.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            other => &[other][..],
        };
        for alg in algs {
            if let Some(s) = supported.iter().find(|s| *s == alg)
                && !order.contains(s)
            {
                order.push(s);
            }
        }
    }
    for s in &supported {
        if !order.contains(s) {
            order.push(s);
        }
    }
    let _ = ssh.method_pref(ssh2::MethodType::HostKey, &order.join(","));
}

fn verify_host_key(
    t: &Target,
    ssh: &ssh2::Session,
    known: &KnownHosts,
    name: &str,
    endpoint: &str,
) -> Result<()> {
    let fail = |detail: String| error::host(detail).at_host(&t.host);
    let presented = ssh
        .host_key()
        .and_then(|(blob, _)| HostKey::from_blob(blob))
        .ok_or_else(|| fail(format!("{endpoint} sent no usable host key")))?;
    let file = t.known_hosts.display();
    let (key, verdict) = if certificate::is_certificate(&presented.key_type) {
        let cert = Certificate::parse(&presented.blob).ok_or_else(|| {
            fail(format!("{endpoint} sent a malformed {} host certificate", presented.key_type))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verdict = known.verify_certificate(ssh, name, &t.address, &cert, now);
        (HostKey { key_type: cert.key_type.clone(), blob: cert.public_key.clone() }, verdict)
    } else {
        let verdict = known.verify(ssh, name, &presented);
        (presented, verdict)
    };
    let fingerprint = key.fingerprint();
    let key_type = &key.key_type;
    match verdict {
        Verdict::Known => Ok(()),
        Verdict::CertificateRefused { line, why } => Err(fail(format!(
            "{endpoint} presents a host certificate from the CA trusted at {file}:{line}, but \
             {why}; refusing to connect. Have the host's certificate reissued (ssh-keygen -s CA \
             -h -n {} ...), or trust its key itself in {file}.",
            t.address
        ))),
        Verdict::Revoked { line } => Err(fail(format!(
            "the host key of {endpoint} ({key_type} {fingerprint}) is marked @revoked in \
             {file}:{line}; refusing to connect"
        ))),
        Verdict::Changed { line } => Err(fail(format!(
            "the host key of {endpoint} has CHANGED: it presents {key_type} {fingerprint}, but \
             {file}:{line} records a different {key_type} key. Someone may be doing something \
             nasty (a possible man-in-the-middle attack), or the host was reinstalled (lab hosts \
             get new keys after `lab down`). Refusing to connect. If the change is expected, \
             remove line {line} from {file} and trust the new key."
        ))),
        Verdict::Unknown { other_types } if !other_types.is_empty() => Err(fail(format!(
            "{endpoint} presents a {key_type} host key ({fingerprint}), but {file} knows this host \
             only by a {} key; refusing to connect. If the host really changed its keys, remove \
             its old lines from {file}.",
            other_types.join("/")
        ))),
        Verdict::Unknown { .. } if t.trust_new_host_keys => {
            let line = key.known_hosts_line(name);
            known_hosts::append(&t.known_hosts, &line).map_err(|e| {
                fail(format!("cannot record the host key of {endpoint} in {file}")).with_source(e)
            })?;
            tracing::warn!(
                host = %t.host, %endpoint, %fingerprint,
                "trusting a new host key on first use; recorded in {file}"
            );
            Ok(())
        }
        Verdict::Unknown { .. } => Err(fail(format!(
            "the host key of {endpoint} is not known: {key_type} {fingerprint} is not in {file}. \
             Refusing to connect. Check the fingerprint with the host's administrator (on the \
             host: `ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub`) and add this line to {file}:\n  \
             {}\nor trust new keys on first use explicitly (--trust-new-host-keys).",
            key_type.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519"),
            key.known_hosts_line(name)
        ))),
    }
}

fn authenticate(
    t: &Target,
    ssh: &ssh2::Session,
    endpoint: &str,
) -> std::result::Result<(), Attempt> {
    let fail = |detail: String| error::host(detail).at_host(&t.host);
    let user = &t.user;
    // A timeout is no verdict on the key: say so, and let the caller try again.
    let timeout = |e: ssh2::Error| Attempt {
        error: fail(format!(
            "{endpoint} did not answer the authentication of user {user} within {:?} (a timeout, \
             not a refused key: a busy host or a busy machine here; raise the environment's \
             connect_timeout or lower --forks)",
            t.connect_timeout
        ))
        .with_source(e),
        timed_out: true,
    };
    match &t.identity {
        Some(path) => {
            if !path.is_file() {
                return Err(
                    fail(format!("the identity file {} does not exist", path.display())).into()
                );
            }
            if let Err(e) = ssh.userauth_pubkey_file(user, None, path, None) {
                if timed_out(&e) {
                    return Err(timeout(e));
                }
                return Err(fail(explain_key_error(&e, path, user, endpoint))
                    .with_source(e)
                    .into());
            }
        }
        None => {
            if std::env::var_os("SSH_AUTH_SOCK").is_none() {
                return Err(fail(format!(
                    "no identity file is configured for {endpoint} and no ssh-agent is running \
                     (SSH_AUTH_SOCK is unset): set an identity file in the environment's SSH \
                     settings, or start ssh-agent and add your key (ssh-add)"
                ))
                .into());
            }
            if let Err(e) = ssh.userauth_agent(user) {
                if timed_out(&e) {
                    return Err(timeout(e));
                }
                if e.message().contains("no identities") {
                    return Err(fail(format!(
                        "no identity file is configured for {endpoint} and ssh-agent holds no \
                         keys: add one (ssh-add) or set an identity file in the environment's SSH \
                         settings"
                    ))
                    .into());
                }
                return Err(fail(format!(
                    "{endpoint} refused every ssh-agent key for user {user} (is one of them in \
                     that user's authorized_keys on the host?)"
                ))
                .with_source(e)
                .into());
            }
        }
    }
    if !ssh.authenticated() {
        return Err(
            fail(format!("{endpoint} did not accept the authentication of user {user}")).into()
        );
    }
    Ok(())
}

/// Turns libssh2's terse key errors into advice. Notably libssh2 reports a passphrase-protected
/// key (we pass no passphrase) as "Unsupported private key format".
fn explain_key_error(e: &ssh2::Error, path: &Path, user: &str, endpoint: &str) -> String {
    let file = path.display();
    let message = e.message();
    let unreadable = message.contains("Unsupported private key format")
        || message.contains("Wrong passphrase")
        || message.contains("Unable to extract public key")
        || message.contains("Invalid");
    if unreadable {
        if key_is_encrypted(path) {
            return format!(
                "the identity file {file} is protected by a passphrase, which stackdeploy cannot \
                 ask for: load it into ssh-agent (`ssh-add {file}`) and leave the identity file \
                 unset so the agent is used, or use a key without passphrase"
            );
        }
        return format!(
            "libssh2 cannot read the identity file {file} (it says \"{message}\", which is also \
             what it says for a key with a passphrase): use an ed25519, ecdsa or rsa key without \
             passphrase, or ssh-agent"
        );
    }
    if message.contains("Unable to open") {
        return format!("cannot read the identity file {file}");
    }
    format!(
        "{endpoint} refused the key {file} for user {user} (is its public key in that user's \
         authorized_keys on the host?)"
    )
}

/// Whether a private key file is encrypted: PEM `ENCRYPTED` headers, or an OpenSSH-format key
/// whose cipher is not "none".
fn key_is_encrypted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.contains("ENCRYPTED") {
        return true;
    }
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let Ok(bytes) = STANDARD.decode(body.trim()) else {
        return false;
    };
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let Some(len) = rest.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return false;
    };
    rest.get(4..4 + len).is_some_and(|cipher| cipher != b"none")
}

/// Every command travels on stdin, ahead of its own input: a short bootstrap reads exactly its
/// length (`head -c` never reads ahead of what it was asked for) and evals it, so the command
/// then reads its own stdin as if it had been sent inline. The exec request (which the host
/// shows in its process list as the shell's arguments) carries only the bootstrap: nothing a
/// command holds, such as a password in an exec, is visible to other users of the host. It
/// also keeps long scripts working: libssh2 refuses exec requests of about 34 KB or more.
fn on_stdin(command: &str, stdin: &[u8]) -> (String, Vec<u8>) {
    let mut all = Vec::with_capacity(command.len() + stdin.len());
    all.extend_from_slice(command.as_bytes());
    all.extend_from_slice(stdin);
    (crate::shell::read_and_eval(command.len(), false), all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts connections and then says nothing: the error is a timeout (not a
    /// refused key, as it used to read), and the handshake was tried HANDSHAKE_TRIES times.
    #[test]
    fn a_silent_server_is_a_timeout_tried_again_not_a_refused_key() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "not read: the handshake never finishes").unwrap();
        let target = Target {
            host: "busy01".into(),
            address: "127.0.0.1".into(),
            port,
            user: "root".into(),
            identity: Some(key),
            known_hosts: dir.path().join("known_hosts"),
            sudo: false,
            trust_new_host_keys: true,
            connect_timeout: Duration::from_millis(300),
            jump: None,
        };
        let Err(e) = Session::connect(&target) else { panic!("connected to a silent server") };
        let text = e.to_string();
        assert!(text.contains("timed out after 300ms"), "{text}");
        assert!(text.contains(&format!("{HANDSHAKE_TRIES} tries")), "{text}");
        assert!(!text.contains("refused"), "{text}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), HANDSHAKE_TRIES);
    }

    #[test]
    fn detects_passphrase_protected_keys() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        let locked = dir.path().join("locked");
        for (path, passphrase) in [(&plain, ""), (&locked, "secret")] {
            let status = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
                .arg(path)
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                return; // no ssh-keygen here; the lab tests cover it
            }
        }
        assert!(!key_is_encrypted(&plain));
        assert!(key_is_encrypted(&locked));
    }
}

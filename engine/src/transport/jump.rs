//! Jump hosts (OpenSSH's ProxyJump): the session to a host behind a bastion travels inside a
//! `direct-tcpip` channel of a session to the bastion, so the bastion only forwards bytes and
//! never sees the inner session's keys or commands, and the host key checked is the inner
//! host's own.
//!
//! libssh2 runs a session over a socket, not over another session's channel, so each tunnel is
//! a connected pair of loopback TCP sockets: the inner session gets one end, and a thread
//! moves bytes between the other end and the channel. That thread owns the bastion session and
//! closes it when either side closes. It sleeps in `poll` on both sockets, so an idle tunnel
//! costs nothing and a busy one adds no delay.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::session::{DEAD_AFTER, KEEPALIVE, Session, would_block};
use crate::error::{self, Result};

/// How long a tunnel whose inner session has closed waits for the far side to finish.
const LINGER: Duration = Duration::from_secs(5);

impl Session {
    /// Opens a tunnel through this (bastion) session to `address:port` and returns the socket
    /// an inner session connects over. `host` is the inventory name errors are reported for.
    pub(super) fn tunnel(self, host: &str, address: &str, port: u16) -> Result<TcpStream> {
        let bastion = self.endpoint.clone();
        let fail = |detail: String| error::host(detail).at_host(host);
        self.ssh.set_blocking(true);
        let channel = self.ssh.channel_direct_tcpip(address, port, None).map_err(|e| {
            let why = e.message().to_string();
            let hint = if why.contains("prohibited") {
                " (its sshd does not allow this forwarding: AllowTcpForwarding, PermitOpen, or \
                 a Match block for this user)"
            } else if why.contains("connect failed") || why.contains("Connection refused") {
                " (the jump host could not connect there: is the address right, seen from the \
                 jump host, and is sshd running?)"
            } else {
                ""
            };
            fail(format!(
                "the jump host {bastion} did not open a tunnel to {address}:{port}: {why}{hint}"
            ))
            .with_source(e)
        })?;
        let (inner, outer) = socket_pair().map_err(|e| {
            fail("cannot make a loopback socket pair for a tunnel".into()).with_source(e)
        })?;
        let name = format!("tunnel {host}");
        std::thread::Builder::new()
            .name(name)
            .spawn(move || pump(self, channel, outer))
            .map_err(|e| fail("cannot start a tunnel thread".into()).with_source(e))?;
        Ok(inner)
    }
}

/// Two connected loopback TCP sockets. Another local process could connect to the listener
/// in the instant it exists; such a connection is refused by checking the peer's address.
fn socket_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let inner = TcpStream::connect(listener.local_addr()?)?;
    let ours = inner.local_addr()?;
    for _ in 0..16 {
        let (outer, peer) = listener.accept()?;
        if peer == ours {
            for s in [&inner, &outer] {
                s.set_nodelay(true)?;
            }
            return Ok((inner, outer));
        }
    }
    Err(io::Error::other("other connections kept arriving at the tunnel's listener"))
}

/// Moves bytes both ways until both directions have ended (or either side broke), then closes
/// the channel and the bastion session.
fn pump(bastion: Session, mut channel: ssh2::Channel, mut local: TcpStream) {
    let ssh = &bastion.ssh;
    ssh.set_blocking(false);
    if local.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes read from one side that the other has not taken yet.
    let mut up: Vec<u8> = Vec::new();
    let mut down: Vec<u8> = Vec::new();
    let (mut local_eof, mut eof_sent, mut remote_eof, mut local_shut) =
        (false, false, false, false);
    let mut last_inbound = Instant::now();
    let mut closed_at: Option<Instant> = None;
    loop {
        let mut progress = false;
        if up.is_empty() && !local_eof {
            match local.read(&mut buf) {
                Ok(0) => local_eof = true,
                Ok(n) => up.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => local_eof = true,
            }
            progress |= local_eof || !up.is_empty();
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if local_eof && up.is_empty() && !eof_sent {
            match channel.send_eof() {
                Ok(()) => {
                    eof_sent = true;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if down.is_empty() && !remote_eof {
            match channel.read(&mut buf) {
                Ok(0) if channel.eof() => remote_eof = true,
                Ok(n) => down.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => remote_eof = true,
            }
            if remote_eof || !down.is_empty() {
                progress = true;
                last_inbound = Instant::now();
            }
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The inner session is gone: nobody wants the rest.
                Err(_) => break,
            }
        }
        if remote_eof && down.is_empty() && !local_shut {
            let _ = local.shutdown(Shutdown::Write);
            local_shut = true;
        }
        if local_eof && eof_sent && remote_eof && down.is_empty() {
            break;
        }
        if local_eof && eof_sent {
            let since = *closed_at.get_or_insert_with(Instant::now);
            if since.elapsed() > LINGER {
                break;
            }
        }
        if progress {
            continue;
        }

        let mut local_events = PollFlags::empty();
        if up.is_empty() && !local_eof {
            local_events |= PollFlags::IN;
        }
        if !down.is_empty() {
            local_events |= PollFlags::OUT;
        }
        let mut remote_events = PollFlags::IN;
        if ssh.block_directions() == ssh2::BlockDirections::Outbound
            || ssh.block_directions() == ssh2::BlockDirections::Both
        {
            remote_events |= PollFlags::OUT;
        }
        let timeout = Timespec { tv_sec: KEEPALIVE.as_secs() as i64, tv_nsec: 0 };
        let mut fds =
            [PollFd::new(&local, local_events), PollFd::new(&bastion.socket, remote_events)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => {
                if last_inbound.elapsed() > DEAD_AFTER {
                    tracing::debug!(bastion = %bastion.endpoint, "jump host stopped responding");
                    break;
                }
                let _ = ssh.keepalive_send();
            }
            Ok(_) => {
                if fds[1].revents().contains(PollFlags::IN) {
                    last_inbound = Instant::now();
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    // Dropping `local` tells the inner session; closing the channel and then the bastion
    // session (its Drop) must not wait long on a broken link.
    drop(local);
    ssh.set_blocking(true);
    ssh.set_timeout(1000);
    let _ = channel.close();
}

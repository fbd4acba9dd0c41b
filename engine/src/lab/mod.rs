//! The local lab: one real OpenSSH server per host of an environment, each in its own mount and
//! UTS namespace with copy-on-write overlays of `/etc`, `/var`, `/opt`, `/srv` and `/root`, a
//! private `/run` and `/tmp`, and its own hostname. All hosts share the machine's PID and network
//! namespaces, so each listens on its own loopback address and daemons started on one host write
//! their pidfiles to that host's private `/run`.
//!
//! This module owns starting, finding and stopping those sshd processes and everything living in
//! their namespaces, and the lab's client key and known_hosts file. Talking to the hosts is the
//! transport's job; which hosts exist is the inventory's.
//!
//! Where state lives:
//! - the state directory given to [`Lab::new`] (the CLI uses `<repo>/.stackdeploy/lab/<env>`):
//!   the client key `id_ed25519`, `known_hosts`, and per host `hosts/<name>/host.json` (address,
//!   port, sshd pid, runtime dir) and `hosts/<name>/sshd.log`;
//! - the runtime directory `/run/stackdeploy-lab/<first 16 hex of sha256(state dir)>/<name>/`:
//!   the overlay upper and work directories, the sshd config, host key and authorized_keys.
//!
//! Why not keep the overlay layers in the state directory: an upper directory inside a tree it
//! overlays (a repository under `/root` or `/var`) is a layer that contains itself. This kernel
//! (6.18) accepts such a mount, but overlayfs documents the result as undefined, so the layers
//! never live there. And sshd must still find its config, key and authorized_keys after `/tmp`
//! and `/run` are replaced by private tmpfs mounts (a state directory in `/tmp`, as in tests,
//! would vanish), so the runtime directory is bound back into the host's new `/run` at the same
//! path (see `host.rs`). `/run` is not overlaid, is root-only by convention and is on the same
//! ext4 root here (on most systems a tmpfs: the lab's filesystems then live in memory and end
//! with a reboot, like the daemons do).
//!
//! Invariants: a recorded pid is never signalled on its own word. `down` signals a process only
//! when its mount table shows this host's overlays (sshd, its sessions, every daemon started on
//! the host), or, for a host killed while starting, when it is one of the start commands and its
//! command line names this host's sshd config (see `procs.rs`). `up` leaves a running host
//! alone, and removes the runtime directories of labs whose state directory was deleted once
//! nothing runs in them (never signalling anything). `down` finds hosts through the runtime
//! directory too, so it works even after the state directory was deleted. No locking: two
//! `lab up` of the same state directory at the same time are not supported.
//!
//! A new host's `/root` starts with Debian's stock `.bashrc`/`.profile` rather than this
//! machine's (see `host.rs`): bash sources `~/.bashrc` for every command sshd runs.

mod host;
mod procs;

use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{self, Error, Result};
use host::HostRecord;

/// Parent of every lab's runtime directory.
const RUNTIME_ROOT: &str = "/run/stackdeploy-lab";
/// How long `up` waits for the started sshd servers to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `down` lets processes handle SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A host to run in the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabHost {
    /// The inventory name; also the hostname inside the host. Letters, digits, `.`, `-`, `_`.
    pub name: String,
    /// A local address sshd listens on, normally in 127.0.0.0/8.
    pub address: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Started by this call.
    Started,
    /// Was already running (left alone).
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub state: HostState,
    /// sshd's pid when started or running.
    pub pid: Option<u32>,
}

/// The lab of one environment, identified by its state directory.
#[derive(Debug, Clone)]
pub struct Lab {
    state_dir: PathBuf,
}

impl Lab {
    pub fn new(state_dir: PathBuf) -> Lab {
        Lab { state_dir }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The private key (ed25519, no passphrase) every lab host accepts for root.
    pub fn identity_file(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }

    /// A known_hosts file with the host key of every started host (`[address]:port` entries).
    pub fn known_hosts_file(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }

    /// Starts the hosts that are not running and waits until each accepts TCP connections.
    /// Running hosts are left alone; a host whose sshd died is restarted on the filesystem it had.
    pub fn up(&self, hosts: &[LabHost]) -> Result<Vec<HostStatus>> {
        preflight()?;
        validate(hosts)?;
        remove_orphaned_runtimes();
        fs::create_dir_all(self.hosts_dir()).map_err(|e| self.io_error(&self.hosts_dir(), e))?;
        let runtime = self.runtime_dir();
        create_world_readable(Path::new(RUNTIME_ROOT))?;
        create_world_readable(&runtime)?;
        let _ = fs::write(runtime.join("state-dir"), format!("{}\n", self.state_dir.display()));
        self.ensure_client_key()?;

        // First decide and check everything, so that a taken address starts nothing.
        let mut statuses = Vec::new();
        let mut to_start = Vec::new();
        for h in hosts {
            match self.load_record(&h.name)? {
                Some(rec) if rec.sshd_alive() => {
                    if rec.address != h.address || rec.port != h.port {
                        return Err(error::lab(format!(
                            "lab host {} runs on {}, but the inventory now says {}: run \
                             `stackdeploy lab down` first",
                            h.name,
                            endpoint(rec.address, rec.port),
                            endpoint(h.address, h.port)
                        ))
                        .at_host(&h.name));
                    }
                    statuses.push(status(h, HostState::Running, Some(rec.pid)));
                }
                stale => {
                    if let Some(rec) = stale {
                        // sshd died; whatever else still runs in its namespaces must go before a
                        // new overlay is mounted on the same layers.
                        stop_processes(&rec.name, &rec.runtime)?;
                    }
                    probe_free(h)?;
                    to_start.push(h);
                    statuses.push(status(h, HostState::Started, None));
                }
            }
        }

        let client_pub = self.identity_file().with_extension("pub");
        let mut started = Vec::new();
        for h in &to_start {
            let rt = runtime.join(&h.name);
            host::prepare(h, &rt, &client_pub)?;
            let dir = self.hosts_dir().join(&h.name);
            fs::create_dir_all(&dir).map_err(|e| self.io_error(&dir, e))?;
            let log = dir.join("sshd.log");
            let pid = host::spawn(h, &rt, &log)?;
            let rec = HostRecord {
                name: h.name.clone(),
                address: h.address,
                port: h.port,
                pid,
                runtime: rt,
            };
            self.save_record(&rec)?;
            tracing::debug!(host = %h.name, pid, "lab sshd started");
            started.push((rec, log));
        }

        let deadline = Instant::now() + START_TIMEOUT;
        for (rec, log) in &started {
            if let Err(e) = wait_listening(rec, log, deadline) {
                // Leave nothing half-started behind for this host; `down` handles the others.
                let _ = stop_processes(&rec.name, &rec.runtime);
                return Err(e);
            }
        }
        for s in statuses.iter_mut().filter(|s| s.state == HostState::Started) {
            s.pid = started.iter().find(|(r, _)| r.name == s.name).map(|(r, _)| r.pid);
        }
        self.write_known_hosts()?;
        Ok(statuses)
    }

    /// Stops every host this lab started (whatever the inventory says now): the sshd and every
    /// process living in the host's namespaces. Then removes the runtime and state directories.
    /// Returns the names of the hosts it found.
    pub fn down(&self) -> Result<Vec<String>> {
        let mut records = self.records()?;
        let runtime = self.runtime_dir();
        // Hosts whose record is missing (state directory damaged or deleted) still have their
        // runtime directory, which is enough to find and stop them.
        for name in subdirectories(&runtime) {
            if !records.iter().any(|(n, _)| *n == name) {
                records.push((name, None));
            }
        }
        if records.is_empty() && !runtime.exists() && !self.state_dir.exists() {
            return Ok(Vec::new());
        }
        if !procs::is_root() {
            return Err(not_root());
        }
        let mut names = Vec::new();
        let mut first_error: Option<Error> = None;
        for (name, rec) in records {
            let rt = rec.as_ref().map_or_else(|| runtime.join(&name), |r| r.runtime.clone());
            let result = stop_processes(&name, &rt).and_then(|()| {
                remove_dir_all(&rt)?;
                remove_dir_all(&self.hosts_dir().join(&name))
            });
            match result {
                Ok(()) => names.push(name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        remove_dir_all(&runtime)?;
        let _ = fs::remove_dir(RUNTIME_ROOT); // only when no other lab uses it
        for file in [
            self.identity_file(),
            self.identity_file().with_extension("pub"),
            self.known_hosts_file(),
        ] {
            match fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_error(&file, e)),
            }
        }
        let _ = fs::remove_dir(self.hosts_dir());
        let _ = fs::remove_dir(&self.state_dir); // left alone if someone put other files there
        Ok(names)
    }

    /// Whether each of `hosts` is running (its recorded sshd is alive).
    pub fn status(&self, hosts: &[LabHost]) -> Result<Vec<HostStatus>> {
        let mut out = Vec::new();
        for h in hosts {
            let running = self.load_record(&h.name)?.filter(HostRecord::sshd_alive);
            out.push(match running {
                Some(rec) => status(h, HostState::Running, Some(rec.pid)),
                None => status(h, HostState::Stopped, None),
            });
        }
        Ok(out)
    }

    fn hosts_dir(&self) -> PathBuf {
        self.state_dir.join("hosts")
    }

    /// `/run/stackdeploy-lab/<hash>`, the hash of the state directory's canonical path.
    fn runtime_dir(&self) -> PathBuf {
        let path = fs::canonicalize(&self.state_dir).unwrap_or_else(|_| {
            std::env::current_dir().map(|d| d.join(&self.state_dir)).unwrap_or_default()
        });
        let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Path::new(RUNTIME_ROOT).join(hex)
    }

    fn ensure_client_key(&self) -> Result<()> {
        let key = self.identity_file();
        if key.exists() && key.with_extension("pub").exists() {
            return Ok(());
        }
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        host::keygen(&key, "stackdeploy-lab")
    }

    /// Every host directory under `hosts/`, with its record when it is readable.
    fn records(&self) -> Result<Vec<(String, Option<HostRecord>)>> {
        let dir = self.hosts_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let rec = self.load_record(&name).ok().flatten();
            out.push((name, rec));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn load_record(&self, name: &str) -> Result<Option<HostRecord>> {
        let path = self.hosts_dir().join(name).join("host.json");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error(&path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            error::lab(format!(
                "the lab record {} is damaged; run `stackdeploy lab down` to reset the lab",
                path.display()
            ))
            .with_source(e)
        })
    }

    fn save_record(&self, rec: &HostRecord) -> Result<()> {
        let path = self.hosts_dir().join(&rec.name).join("host.json");
        let text = serde_json::to_string_pretty(rec).expect("a host record serialises");
        write_atomically(&path, text.as_bytes())
    }

    /// Rewrites known_hosts from the host keys of every recorded host.
    fn write_known_hosts(&self) -> Result<()> {
        let mut text = String::new();
        for (_, rec) in self.records()? {
            let Some(rec) = rec else { continue };
            let pub_key = rec.runtime.join("ssh_host_ed25519_key.pub");
            let Ok(line) = fs::read_to_string(&pub_key) else {
                continue;
            };
            let mut fields = line.split_whitespace();
            if let (Some(kind), Some(key)) = (fields.next(), fields.next()) {
                let name = if rec.port == 22 {
                    rec.address.to_string()
                } else {
                    format!("[{}]:{}", rec.address, rec.port)
                };
                text.push_str(&format!("{name} {kind} {key}\n"));
            }
        }
        write_atomically(&self.known_hosts_file(), text.as_bytes())
    }

    fn io_error(&self, path: &Path, e: std::io::Error) -> Error {
        error::lab(format!("cannot write {}", path.display())).with_source(e)
    }
}

fn status(h: &LabHost, state: HostState, pid: Option<u32>) -> HostStatus {
    HostStatus { name: h.name.clone(), address: h.address, port: h.port, state, pid }
}

fn endpoint(address: IpAddr, port: u16) -> String {
    SocketAddr::new(address, port).to_string()
}

fn not_root() -> Error {
    error::lab(
        "the lab needs root: it mounts overlays in new mount namespaces and runs sshd; run \
         `stackdeploy lab` as root (e.g. with sudo)",
    )
}

fn preflight() -> Result<()> {
    if !procs::is_root() {
        return Err(not_root());
    }
    if !Path::new(host::SSHD).exists() {
        return Err(error::lab(format!(
            "OpenSSH server is not installed ({} is missing): apt-get install -y openssh-server",
            host::SSHD
        )));
    }
    Ok(())
}

fn validate(hosts: &[LabHost]) -> Result<()> {
    let mut names = HashSet::new();
    let mut endpoints = HashSet::new();
    for h in hosts {
        let valid = !h.name.is_empty()
            && h.name.len() <= 63
            && h.name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && h.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(error::lab(format!(
                "`{}` cannot be a lab host name: use 1 to 63 letters, digits, `-`, `_` or `.`, \
                 starting with a letter or digit",
                h.name
            )));
        }
        if !names.insert(&h.name) {
            return Err(error::lab(format!("lab host {} is listed twice", h.name)));
        }
        if h.port == 0 {
            return Err(error::lab("a lab host needs a port other than 0").at_host(&h.name));
        }
        if !endpoints.insert((h.address, h.port)) {
            return Err(error::lab(format!(
                "two lab hosts use {}; give each host its own address (127.0.0.0/8 is large)",
                endpoint(h.address, h.port)
            ))
            .at_host(&h.name));
        }
    }
    Ok(())
}

/// Fails unless `address:port` can be bound now, naming who should act.
fn probe_free(h: &LabHost) -> Result<()> {
    let at = endpoint(h.address, h.port);
    match TcpListener::bind((h.address, h.port)) {
        Ok(_) => Ok(()),
        Err(e) => {
            let detail = match e.kind() {
                std::io::ErrorKind::AddrInUse => match lab_listening_on(h.address, h.port) {
                    Some(owner) => format!("{at} is already in use: {owner}"),
                    None => format!(
                        "{at} is already in use (by a service listening there): stop it or give \
                         this host another address in the inventory"
                    ),
                },
                std::io::ErrorKind::AddrNotAvailable => format!(
                    "{} is not an address of this machine; lab hosts listen on local addresses \
                     such as 127.0.0.0/8",
                    h.address
                ),
                _ => format!("cannot listen on {at}"),
            };
            Err(error::lab(detail).with_source(e).at_host(&h.name))
        }
    }
}

/// Names the lab host whose sshd config listens on `address:port`, if any, and how to stop it.
fn lab_listening_on(address: IpAddr, port: u16) -> Option<String> {
    for lab in subdirectories(Path::new(RUNTIME_ROOT)) {
        let lab = Path::new(RUNTIME_ROOT).join(lab);
        for name in subdirectories(&lab) {
            let config =
                fs::read_to_string(lab.join(&name).join("sshd_config")).unwrap_or_default();
            let has = |line: String| config.lines().any(|l| l == line);
            if !(has(format!("ListenAddress {address}")) && has(format!("Port {port}"))) {
                continue;
            }
            let state = fs::read_to_string(lab.join("state-dir")).unwrap_or_default();
            let state = state.trim_end();
            let pid = fs::read_to_string(lab.join(&name).join("sshd.pid")).unwrap_or_default();
            return Some(if Path::new(state).exists() {
                format!(
                    "lab host {name} of the lab in {state} listens there; bring that lab down \
                     (`stackdeploy lab down`) or give this host another address"
                )
            } else {
                format!(
                    "lab host {name} listens there, of a lab whose state directory {state} was \
                     deleted without `lab down`; stop its sshd (pid {}) and the processes of \
                     that host, or give this host another address",
                    pid.trim()
                )
            });
        }
    }
    None
}

/// Removes the runtime directories of labs whose state directory no longer exists (a checkout
/// or test directory deleted without `lab down`) once nothing runs in them. Sends no signal:
/// a lab that still runs is left for its owner (see [`lab_listening_on`]).
fn remove_orphaned_runtimes() {
    for lab in subdirectories(Path::new(RUNTIME_ROOT)) {
        let lab = Path::new(RUNTIME_ROOT).join(lab);
        // A lab being created writes its state directory before this file.
        let Ok(state) = fs::read_to_string(lab.join("state-dir")) else { continue };
        if Path::new(state.trim_end()).exists() {
            continue;
        }
        let busy = subdirectories(&lab).iter().any(|name| {
            let rt = lab.join(name);
            let config = rt.join("sshd_config").to_string_lossy().into_owned();
            !procs::processes_with_mount(&host::mount_marker(&rt)).is_empty()
                || !starting_shells(&config).is_empty()
        });
        if !busy {
            tracing::debug!(runtime = %lab.display(), "removing an orphaned lab runtime");
            let _ = fs::remove_dir_all(&lab);
        }
    }
}

/// The names of the directories in `dir` (none if it cannot be read).
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until the host's sshd accepts TCP connections; fails early if it exits.
fn wait_listening(rec: &HostRecord, log: &Path, deadline: Instant) -> Result<()> {
    let addr = SocketAddr::new(rec.address, rec.port);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        // The pid is the one we just started: no reuse to fear, and its command line is not
        // reliable yet (it execs four times on the way to sshd).
        if !procs::is_running(rec.pid) {
            return Err(error::lab(format!(
                "sshd for lab host {} exited while starting; the end of {}:\n{}",
                rec.name,
                log.display(),
                host::log_tail(log, 12)
            ))
            .at_host(&rec.name));
        }
        if Instant::now() >= deadline {
            return Err(error::lab(format!(
                "sshd for lab host {} did not accept connections on {addr} within {} s; the end \
                 of {}:\n{}",
                rec.name,
                START_TIMEOUT.as_secs(),
                log.display(),
                host::log_tail(log, 12)
            ))
            .at_host(&rec.name));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Stops everything living on a host (its sshd included): processes whose mount table shows
/// the host's overlays. The recorded pid alone is never enough to signal anything.
fn stop_processes(name: &str, runtime: &Path) -> Result<()> {
    let marker = host::mount_marker(runtime);
    let config = runtime.join("sshd_config").to_string_lossy().into_owned();
    let find = || {
        let mut pids = procs::processes_with_mount(&marker);
        // A sshd that has not mounted its overlays yet (killed while starting) still shows its
        // config on its command line; find it by scanning for that.
        if pids.is_empty() {
            pids = starting_shells(&config);
        }
        pids
    };
    procs::terminate(find, STOP_GRACE).map_err(|left| {
        error::lab(format!(
            "processes {left:?} of lab host {name} survived SIGKILL; the lab was not removed"
        ))
        .at_host(name)
    })
}

/// Processes whose command line names `config` (the start recipe before its mounts are done).
fn starting_shells(config: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| *pid != std::process::id() && procs::is_lab_process(*pid, config))
        .collect()
}

fn create_world_readable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o755)))
        .map_err(|e| error::lab(format!("cannot create {}", dir.display())).with_source(e))
}

fn remove_dir_all(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error::lab(format!("cannot remove {}", dir.display())).with_source(e)),
    }
}

/// Writes via a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| error::lab(format!("cannot write {}", path.display())).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, address: &str, port: u16) -> LabHost {
        LabHost { name: name.into(), address: address.parse().unwrap(), port }
    }

    #[test]
    fn validation() {
        assert!(validate(&[h("db1", "127.0.0.2", 22), h("web-1.lab", "127.0.0.3", 22)]).is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(64)] {
            assert!(validate(&[h(bad, "127.0.0.2", 22)]).is_err(), "{bad:?}");
        }
        assert!(validate(&[h("a", "127.0.0.2", 22), h("a", "127.0.0.3", 22)]).is_err());
        let err = validate(&[h("a", "127.0.0.2", 22), h("b", "127.0.0.2", 22)]).unwrap_err();
        assert!(err.to_string().contains("127.0.0.2:22"), "{err}");
    }

    #[test]
    fn runtime_dir_is_per_state_dir() {
        let a = Lab::new("/nonexistent/a".into()).runtime_dir();
        let b = Lab::new("/nonexistent/b".into()).runtime_dir();
        assert_ne!(a, b);
        assert!(a.starts_with(RUNTIME_ROOT));
        assert_eq!(a.file_name().unwrap().len(), 16);
    }
}

//! Finding and stopping lab processes through `/proc`, without signalling anything we cannot
//! prove is ours.
//!
//! A process belongs to a lab host when its mount table shows the host's overlays, i.e. its
//! `/proc/PID/mountinfo` contains `upperdir=<host runtime dir>/upper/`. That holds for the host's
//! sshd, every session it forks and every daemon started on the host, and for nothing else: no
//! other mount namespace can contain those mounts. Processes in our own mount namespace are
//! skipped without reading their mount table. Signals are sent with kill(1) because the crate
//! forbids `unsafe` (no libc calls).

use std::collections::HashSet;
use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Whether this process runs with effective uid 0.
pub(crate) fn is_root() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Whether `pid` is alive (not a zombie) and is a lab sshd for `config`, or one of the commands
/// that become it (`setsid`, `unshare`, `sh -c` of the start recipe): its command line starts
/// like one of those and names the config file. sshd rewrites its command line to
/// `sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ...`, which still names it.
pub(crate) fn is_lab_process(pid: u32, config: &str) -> bool {
    if is_zombie(pid) {
        return false;
    }
    let Ok(bytes) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
    let starts = ["sh ", "setsid ", "unshare ", "/usr/sbin/sshd ", "sshd: "];
    starts.iter().any(|s| text.starts_with(s)) && text.contains(config)
}

/// Whether `pid` exists and has not exited. Unlike [`is_lab_process`] this does not read the
/// command line, which is briefly empty while a process is in execve(2).
pub(crate) fn is_running(pid: u32) -> bool {
    !is_zombie(pid)
}

/// Whether `pid` is gone or a zombie (pid 1 on this machine reaps orphans only after seconds).
/// In a multi-threaded process (memcached, haproxy) the leader can be a zombie while other
/// threads still run and hold its sockets: it counts as gone only when no thread is left.
fn is_zombie(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold parentheses.
        Ok(stat) => {
            let leader_dead = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
            leader_dead && fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count()) <= 1
        }
        Err(_) => true,
    }
}

fn mount_ns(pid: &str) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// The live processes whose mount table contains `marker`.
pub(crate) fn processes_with_mount(marker: &str) -> Vec<u32> {
    let own_ns = mount_ns("self");
    let own_pid = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let pid_s = pid.to_string();
        // Zombies and kernel threads have no readable namespace link; skip them too.
        let Some(ns) = mount_ns(&pid_s) else { continue };
        if Some(&ns) == own_ns.as_ref() {
            continue;
        }
        if let Ok(mounts) = fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            && mounts.contains(marker)
            && !is_zombie(pid)
        {
            pids.push(pid);
        }
    }
    // A chrooted daemon (haproxy chroots to /var/lib/haproxy) sees only the mounts under its
    // root, so the marker is missing from its mount table; it still shares the host's mount
    // namespace, so everything in a namespace found above belongs to the host too.
    let namespaces: HashSet<std::path::PathBuf> =
        pids.iter().filter_map(|p| mount_ns(&p.to_string())).collect();
    if !namespaces.is_empty()
        && let Ok(dir) = fs::read_dir("/proc")
    {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == own_pid || pids.contains(&pid) || is_zombie(pid) {
                continue;
            }
            if mount_ns(&pid.to_string()).is_some_and(|ns| namespaces.contains(&ns)) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Stops the processes `find` reports, repeatedly (daemons may fork while dying): SIGTERM once
/// each, SIGKILL to whatever is left after `grace`. Returns the pids still alive when it gives up.
pub(crate) fn terminate(
    mut find: impl FnMut() -> Vec<u32>,
    grace: Duration,
) -> Result<(), Vec<u32>> {
    let started = Instant::now();
    let mut signalled: HashSet<u32> = HashSet::new();
    loop {
        let pids = find();
        if pids.is_empty() {
            // A process leaves its namespaces (and so `find`) a moment before it finishes
            // exiting; wait for that too, so that callers see no survivors.
            while signalled.iter().any(|p| is_running(*p)) && started.elapsed() < grace * 3 {
                thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        let elapsed = started.elapsed();
        if elapsed > grace * 3 {
            return Err(pids);
        }
        if elapsed > grace {
            signalled.extend(&pids);
            signal("KILL", &pids);
        } else {
            let new: Vec<u32> = pids.iter().copied().filter(|p| signalled.insert(*p)).collect();
            signal("TERM", &new);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn signal(name: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    tracing::debug!(signal = name, ?pids, "signalling lab processes");
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_not_a_lab_process() {
        let me = std::process::id();
        assert!(!is_zombie(me));
        assert!(is_zombie(u32::MAX));
        assert!(!is_lab_process(me, ""));
        assert!(processes_with_mount("upperdir=/nonexistent/upper/").is_empty());
    }
}

//! One lab host: its files, the shell recipe that builds its namespaces, and its record.
//!
//! The recipe, run by `setsid unshare --mount --uts --propagation private sh -c`:
//! 1. overlay `/etc`, `/var`, `/opt`, `/srv`, `/root`, `/usr` (lower: the real directory; upper
//!    and work: `<runtime>/upper/<dir>`, `<runtime>/work/<dir>`);
//! 2. mount a fresh tmpfs for `/run` at `<runtime>/newrun`, create `sshd/` and `lock/` in it, bind
//!    `<runtime>` into it at the same path, and move it onto `/run`: the host gets a private
//!    `/run` and still sees its sshd config, keys and authorized_keys at the paths the config
//!    names (they live under `/run`, which the new tmpfs would otherwise hide);
//! 3. a private tmpfs on `/tmp`;
//! 4. set the hostname, write it to the host's `/etc/hostname` and `/etc/hosts`;
//! 5. `exec sshd -D -e -f <runtime>/sshd_config`, so the pid we record is sshd's.
//!
//! `mount -n` everywhere: once `/run` is replaced, mount(8) cannot update its table in
//! `/run/mount` and would fail although the mount worked.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::LabHost;
use crate::error::{self, Result};
use crate::shell::quote as shell_quote;

/// The directories each host gets a copy-on-write view of.
/// `usr` too: a `[[patch]]` of a package's module (or a package a host installs) stays in that
/// host, and the machine's own Python is never touched.
pub(crate) const OVERLAID: [&str; 6] = ["etc", "var", "opt", "srv", "root", "usr"];

pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// What the state directory remembers about a started host (`hosts/<name>/host.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HostRecord {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// sshd's pid. Trust it only after [`HostRecord::sshd_alive`]: pids are reused.
    pub pid: u32,
    /// Where the host's overlays, config and keys live (see the lab module docs).
    pub runtime: PathBuf,
}

impl HostRecord {
    pub(crate) fn config(&self) -> PathBuf {
        self.runtime.join("sshd_config")
    }

    /// Whether the recorded pid is still our sshd (or the shell about to become it): its command
    /// line names this host's config file, which no other process's does.
    pub(crate) fn sshd_alive(&self) -> bool {
        super::procs::is_lab_process(self.pid, &self.config().to_string_lossy())
    }
}

/// The string that appears in the mount table of exactly the processes living on the host.
pub(crate) fn mount_marker(runtime: &Path) -> String {
    format!("upperdir={}/upper/", runtime.display())
}

/// Creates the runtime directory of a host: overlay dirs, host key, authorized_keys, config.
/// Existing overlay contents and host key are kept (a restarted host keeps its filesystem).
pub(crate) fn prepare(host: &LabHost, runtime: &Path, client_pub: &Path) -> Result<()> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        error::lab(format!("cannot {what} {}", path.display())).with_source(e).at_host(&host.name)
    };
    for dir in OVERLAID {
        for layer in ["upper", "work"] {
            let path = runtime.join(layer).join(dir);
            fs::create_dir_all(&path).map_err(|e| io("create", &path, e))?;
        }
        // The lower layer must exist; these are standard directories anyway.
        let lower = Path::new("/").join(dir);
        fs::create_dir_all(&lower).map_err(|e| io("create", &lower, e))?;
        // A merged directory shows the upper directory's owner and mode (/root is 0700).
        let upper = runtime.join("upper").join(dir);
        let meta = fs::metadata(&lower).map_err(|e| io("read", &lower, e))?;
        std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()))
            .and_then(|()| fs::set_permissions(&upper, meta.permissions()))
            .map_err(|e| io("set the mode of", &upper, e))?;
    }
    // A new host starts with Debian's stock dotfiles for root rather than this machine's: a
    // developer's ~/.bashrc (pyenv, cargo env...) is sourced by bash for every command sshd
    // runs, which here made each command cost ~90 ms instead of ~2 ms, and is not what a
    // deployment target has. A host keeps whatever it has once started (restarts, whiteouts).
    for (stock, name) in [("dot.bashrc", ".bashrc"), ("dot.profile", ".profile")] {
        let stock = Path::new("/usr/share/base-files").join(stock);
        let target = runtime.join("upper/root").join(name);
        if stock.is_file() && fs::symlink_metadata(&target).is_err() {
            fs::copy(&stock, &target).map_err(|e| io("write", &target, e))?;
        }
    }
    let newrun = runtime.join("newrun");
    fs::create_dir_all(&newrun).map_err(|e| io("create", &newrun, e))?;

    let key = runtime.join("ssh_host_ed25519_key");
    if !key.exists() || !key.with_extension("pub").exists() {
        let _ = fs::remove_file(&key);
        keygen(&key, &format!("stackdeploy-lab-{}", host.name))?;
    }
    let authorized = runtime.join("authorized_keys");
    fs::copy(client_pub, &authorized).map_err(|e| io("write", &authorized, e))?;

    let config = runtime.join("sshd_config");
    let text = format!(
        "# Written by stackdeploy for lab host {name}; replaced on every `lab up`.\n\
         ListenAddress {address}\n\
         Port {port}\n\
         HostKey {key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {authorized}\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 64\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp internal-sftp\n",
        name = host.name,
        address = host.address,
        port = host.port,
        key = key.display(),
        pid = runtime.join("sshd.pid").display(),
        authorized = authorized.display(),
    );
    fs::write(&config, text).map_err(|e| io("write", &config, e))?;
    Ok(())
}

/// Starts the host's sshd in new namespaces, detached (own session, parent exits so it is
/// reparented), its output appended to `log`. Returns the pid, which is sshd's after the exec.
pub(crate) fn spawn(host: &LabHost, runtime: &Path, log: &Path) -> Result<u32> {
    let rt = runtime.display().to_string();
    // Where `runtime` appears inside the new /run tmpfs (it lives under /run, see the lab docs).
    let inside = runtime.strip_prefix("/run").map_err(|_| {
        error::lab(format!("the lab runtime directory {rt} is not under /run")).at_host(&host.name)
    })?;
    let inside = format!("{rt}/newrun/{}", inside.display());
    let mut script = String::from("set -e\n");
    for dir in OVERLAID {
        let options = format!("lowerdir=/{dir},upperdir={rt}/upper/{dir},workdir={rt}/work/{dir}");
        let name = &host.name;
        script.push_str(&format!("mount -n -t overlay lab-{name} -o {options} /{dir}\n"));
    }
    script.push_str(&format!(
        "mount -n -t tmpfs -o mode=755 lab-run {rt}/newrun\n\
         mkdir -p -m 755 {rt}/newrun/sshd {inside}\n\
         mkdir -p -m 1777 {rt}/newrun/lock\n\
         mount -n --bind {rt} {inside}\n\
         mount -n --move {rt}/newrun /run\n\
         mount -n -t tmpfs -o mode=1777 lab-tmp /tmp\n\
         hostname {name}\n\
         echo {name} > /etc/hostname\n\
         grep -qxF '{address} {name}' /etc/hosts || echo '{address} {name}' >> /etc/hosts\n\
         exec {SSHD} -D -e -f {rt}/sshd_config\n",
        name = host.name,
        address = host.address,
    ));
    let outer = format!(
        "setsid unshare --mount --uts --propagation private sh -c {} \
         </dev/null >>{} 2>&1 & echo $!",
        shell_quote(&script),
        shell_quote(&log.to_string_lossy()),
    );
    let out =
        Command::new("sh").arg("-c").arg(&outer).stdin(Stdio::null()).output().map_err(|e| {
            error::lab("cannot run sh to start sshd").with_source(e).at_host(&host.name)
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse::<u32>().map_err(|_| {
        error::lab(format!("starting sshd failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
            .at_host(&host.name)
    })
}

/// Writes a new ed25519 key pair without passphrase at `path` and `path.pub`.
pub(crate) fn keygen(path: &Path, comment: &str) -> Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            error::lab(
                "cannot run ssh-keygen (part of openssh-client): apt-get install -y openssh-server",
            )
            .with_source(e)
        })?;
    if !out.status.success() {
        return Err(error::lab(format!(
            "ssh-keygen failed to write {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n  ");
    if tail.is_empty() { "  (the log is empty)".to_string() } else { format!("  {tail}") }
}

//! The seam between the rollout and hosts: [`Connect`] opens a [`Remote`] per host, which runs
//! [`Script`]s. SSH (ssh2 sessions verified against known_hosts) is the implementation users
//! run; the tests' fake host is another.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::model::{Environment, Host, SshSettings};
use crate::remote::Script;
use crate::transport::{Output, Session, Target};

/// A connection to one host, reused for every script of a run.
pub trait Remote: Send {
    /// Runs a script. A connection that breaks while it runs is not an `Err`: the output holds
    /// what arrived until then and [`Output::lost`] says why, so the caller can tell what the
    /// host did; only a script that could not be started is an `Err`.
    fn run(&mut self, script: &Script) -> Result<Output, Error>;

    /// [`Remote::run`], where a connection lost during the script is an error too.
    fn run_whole(&mut self, script: &Script, host: &str) -> Result<Output, Error> {
        let out = self.run(script)?;
        match &out.lost {
            Some(why) => Err(crate::error::host(format!(
                "lost the connection during the {}: {why}",
                script.intent.summary()
            ))
            .at_host(host)),
            None => Ok(out),
        }
    }
}

/// Opens connections to the hosts of one environment.
pub trait Connect: Sync {
    fn connect(&self, host: &Host) -> Result<Box<dyn Remote>, Error>;
}

impl Remote for Session {
    fn run(&mut self, script: &Script) -> Result<Output, Error> {
        tracing::debug!(host = self.host(), "{}", script.intent.summary());
        let (out, _) = self.exec_partial(&script.command, &script.stdin, script.timeout)?;
        Ok(out)
    }
}

/// How SSH connections are made, beyond the environment's settings.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub trust_new_host_keys: bool,
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> SshOptions {
        SshOptions { trust_new_host_keys: false, connect_timeout: Duration::from_secs(10) }
    }
}

/// SSH to the hosts of an environment, with its SSH settings. Relative key and known_hosts
/// paths are relative to the composition directory.
pub struct Ssh {
    settings: SshSettings,
    dir: PathBuf,
    options: SshOptions,
}

impl Ssh {
    pub fn new(env: &Environment, dir: &Path, options: SshOptions) -> Ssh {
        Ssh { settings: env.ssh.clone(), dir: dir.to_path_buf(), options }
    }

    /// The SSH target of a host.
    pub fn target(&self, host: &Host) -> Target {
        let resolve = |p: &str| -> PathBuf {
            if let Some(rest) = p.strip_prefix("~/") {
                std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(rest)
            } else {
                self.dir.join(p)
            }
        };
        let ssh = &self.settings;
        Target {
            host: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: ssh.user.clone(),
            identity: ssh.identity.as_deref().map(resolve),
            known_hosts: resolve(ssh.known_hosts.as_deref().unwrap_or("~/.ssh/known_hosts")),
            sudo: ssh.sudo,
            trust_new_host_keys: self.options.trust_new_host_keys,
            connect_timeout: self.options.connect_timeout,
        }
    }
}

impl Connect for Ssh {
    fn connect(&self, host: &Host) -> Result<Box<dyn Remote>, Error> {
        Ok(Box::new(Session::connect(&self.target(host))?))
    }
}

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
/// paths in pipeline.toml are relative to the composition directory.
pub struct Ssh {
    settings: SshSettings,
    dir: PathBuf,
    options: SshOptions,
}

impl Ssh {
    /// The key and known_hosts may come from the environment instead of pipeline.toml (see
    /// [`ssh_files_from`]), so that a CI job can point at the credential files it was given.
    pub fn new(env: &Environment, dir: &Path, options: SshOptions) -> Ssh {
        let mut settings = env.ssh.clone();
        let (identity, known_hosts) = ssh_files_from(&env.name, |v| std::env::var(v).ok());
        settings.identity = identity.or(settings.identity);
        settings.known_hosts = known_hosts.or(settings.known_hosts);
        Ssh { settings, dir: dir.to_path_buf(), options }
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

/// `STACKDEPLOY_SSH_IDENTITY_<ENV>` / `STACKDEPLOY_SSH_KNOWN_HOSTS_<ENV>` (the environment's
/// name in capitals, other characters as `_`), else the same without the suffix: the private key
/// and known_hosts files to use instead of pipeline.toml's. Such paths are taken as given
/// (absolute, or relative to where the command runs), as CI systems hand them out.
pub fn ssh_files_from(
    env: &str,
    var: impl Fn(&str) -> Option<String>,
) -> (Option<String>, Option<String>) {
    let suffix: String = env
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect();
    let get = |base: &str| {
        var(&format!("{base}_{suffix}"))
            .or_else(|| var(base))
            .filter(|v| !v.is_empty())
            .map(|v| absolute(&v))
    };
    (get("STACKDEPLOY_SSH_IDENTITY"), get("STACKDEPLOY_SSH_KNOWN_HOSTS"))
}

/// A path from the environment, made absolute against the current directory, so that the
/// composition-relative resolution of pipeline.toml's paths leaves it alone.
fn absolute(p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() || p.starts_with("~/") {
        return p.to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

impl Connect for Ssh {
    fn connect(&self, host: &Host) -> Result<Box<dyn Remote>, Error> {
        Ok(Box::new(Session::connect(&self.target(host))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_files_come_from_the_environment_per_environment_first() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let both = vars(&[
            ("STACKDEPLOY_SSH_IDENTITY", "/ci/any-key"),
            ("STACKDEPLOY_SSH_IDENTITY_EU_WEST", "/ci/eu-key"),
            ("STACKDEPLOY_SSH_KNOWN_HOSTS", "/ci/known_hosts"),
        ]);
        assert_eq!(
            ssh_files_from("eu-west", both),
            (Some("/ci/eu-key".into()), Some("/ci/known_hosts".into()))
        );
        assert_eq!(ssh_files_from("staging", both).0, Some("/ci/any-key".into()));
        assert_eq!(ssh_files_from("staging", vars(&[])), (None, None));
        assert_eq!(ssh_files_from("staging", vars(&[("STACKDEPLOY_SSH_IDENTITY", "")])).0, None);
        let relative = ssh_files_from("staging", vars(&[("STACKDEPLOY_SSH_IDENTITY", "key")])).0;
        assert!(relative.unwrap().ends_with("/key"));
    }
}

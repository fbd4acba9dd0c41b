//! The seam between the rollout and hosts: [`Connect`] opens a [`Remote`] per host, which runs
//! [`Script`]s. SSH (ssh2 sessions verified against known_hosts) is the implementation users
//! run; the tests' fake host is another.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::model::{Environment, Host, JumpHost, SshSettings};
use crate::remote::Script;
use crate::transport::ssh_config::{self, HostParams, SshConfig};
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
    home: PathBuf,
    /// The environment's OpenSSH config, when it asks for one; a config that cannot be read is
    /// every connection's error (the message names the file and line).
    config: std::result::Result<Option<SshConfig>, String>,
}

/// Jump hosts of jump hosts are followed this deep; more is a loop in the configs.
const MAX_HOPS: usize = 8;

impl Ssh {
    /// The key and known_hosts may come from the environment instead of pipeline.toml (see
    /// [`ssh_files_from`]), so that a CI job can point at the credential files it was given.
    pub fn new(env: &Environment, dir: &Path, options: SshOptions) -> Ssh {
        let mut settings = env.ssh.clone();
        let (identity, known_hosts) = ssh_files_from(&env.name, |v| std::env::var(v).ok());
        settings.identity = identity.or(settings.identity);
        settings.known_hosts = known_hosts.or(settings.known_hosts);
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let config = match &settings.ssh_config {
            None => Ok(None),
            Some(path) => {
                let path = resolve(dir, &home, path);
                let read = |p: &Path| match std::fs::read_to_string(p) {
                    Ok(t) => Ok(Some(t)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                };
                let list = |d: &Path| {
                    std::fs::read_dir(d)
                        .map(|entries| {
                            entries
                                .filter_map(|e| e.ok())
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                SshConfig::load(&path, &home, &read, &list).map(Some).map_err(|e| e.to_string())
            }
        };
        Ssh { settings, dir: dir.to_path_buf(), options, home, config }
    }

    /// The SSH target of a host: pipeline.toml's settings, then what the environment's
    /// OpenSSH config says for values pipeline.toml leaves open, then the defaults.
    pub fn target(&self, host: &Host) -> Result<Target, Error> {
        let config = self.config.as_ref().map_err(|e| {
            crate::error::invalid(format!(
                "{e} (the SSH config of environment '{}')",
                host.environment
            ))
            .at_host(&host.name)
        })?;
        let hops: Vec<JumpHost> = self.settings.jump.clone();
        let given = (!hops.is_empty()).then_some(hops);
        self.hop(
            config.as_ref(),
            host,
            &host.address,
            Some(host.port).filter(|_| host.port_given),
            None,
            given,
            0,
        )
    }

    /// One target, reached by `name` (an address or a jump host as written). `jumps` is the
    /// jump list pipeline.toml gave (outermost first); without one, the config's ProxyJump.
    #[allow(clippy::too_many_arguments)]
    fn hop(
        &self,
        config: Option<&SshConfig>,
        host: &Host,
        name: &str,
        port: Option<u16>,
        user: Option<&str>,
        jumps: Option<Vec<JumpHost>>,
        depth: usize,
    ) -> Result<Target, Error> {
        let ssh = &self.settings;
        let fail = |detail: String| crate::error::invalid(detail).at_host(&host.name);
        if depth > MAX_HOPS {
            return Err(fail(format!(
                "more than {MAX_HOPS} jump hosts in a row to reach {name}: the ProxyJump settings \
                 form a loop; give one host `ProxyJump none`"
            )));
        }
        let params = match config {
            Some(c) => {
                c.check(name).map_err(|e| e.map_detail(|d| format!("{d} (for {name})")))?;
                c.lookup(name)
            }
            None => HostParams::default(),
        };
        let home = self.home.display().to_string();
        let address = match &params.host_name {
            Some(h) => ssh_config::expand_tokens(h, &[('h', name)])
                .map_err(|e| fail(format!("HostName: {e}")))?,
            None => name.to_string(),
        };
        let port = port.or(params.port).unwrap_or(ssh.port);
        let user = match user {
            Some(u) => u.to_string(),
            None if ssh.user_given => ssh.user.clone(),
            None => params.user.clone().unwrap_or_else(|| ssh.user.clone()),
        };
        let identity = match (&ssh.identity, &params.identity_file) {
            (Some(p), _) => Some(resolve(&self.dir, &self.home, p)),
            (None, Some(p)) => {
                let port_text = port.to_string();
                let local_user = std::env::var("USER").unwrap_or_default();
                let tokens = [
                    ('h', address.as_str()),
                    ('p', port_text.as_str()),
                    ('r', user.as_str()),
                    ('u', local_user.as_str()),
                    ('d', home.as_str()),
                ];
                let p = ssh_config::expand_tokens(p, &tokens)
                    .map_err(|e| fail(format!("IdentityFile: {e}")))?;
                Some(PathBuf::from(ssh_config::home_path(&p, &self.home)))
            }
            (None, None) => None,
        };
        let jumps = match jumps {
            Some(j) => j,
            None => match params.jump() {
                Some(text) => JumpHost::parse_list(text).map_err(|e| {
                    let at =
                        config.and_then(|c| c.source_of(name, "proxyjump")).unwrap_or_default();
                    fail(format!("{at}: ProxyJump {e}"))
                })?,
                None => Vec::new(),
            },
        };
        // The last hop is the one next to the host; the hops before it lead to that one.
        let jump = match jumps.split_last() {
            Some((last, before)) => {
                let before = (!before.is_empty()).then(|| before.to_vec());
                let mut t = self.hop(
                    config,
                    host,
                    &last.address,
                    last.port,
                    last.user.as_deref(),
                    before,
                    depth + 1,
                )?;
                t.sudo = false;
                Some(Box::new(t))
            }
            None => None,
        };
        Ok(Target {
            host: host.name.clone(),
            address,
            port,
            user,
            identity,
            known_hosts: resolve(
                &self.dir,
                &self.home,
                ssh.known_hosts.as_deref().unwrap_or("~/.ssh/known_hosts"),
            ),
            sudo: ssh.sudo,
            trust_new_host_keys: self.options.trust_new_host_keys,
            connect_timeout: self.options.connect_timeout,
            jump,
        })
    }
}

/// A path from pipeline.toml: `~/` is the home directory, a relative path is relative to the
/// composition directory.
fn resolve(dir: &Path, home: &Path, p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => dir.join(p),
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
        Ok(Box::new(Session::connect(&self.target(host)?)?))
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

    fn pipeline(ssh: &str, dir: &Path) -> (Environment, Ssh) {
        let text = format!(
            "[project]\nname = \"t\"\n[hiera]\nhierarchy = [\"common\"]\n\
             [environments.e]\nssh = {ssh}\n[environments.e.hosts]\n\
             db01 = {{ address = \"10.0.0.5\", role = \"db\" }}\n\
             db02 = {{ address = \"db02.internal\", role = \"db\", port = 2022 }}\n"
        );
        let p = crate::model::Pipeline::parse(&text).unwrap();
        let env = p.environments["e"].clone();
        let ssh = Ssh::new(&env, dir, SshOptions::default());
        (env, ssh)
    }

    /// The chain as `user@address:port` from the host outwards.
    fn chain(t: &Target) -> Vec<String> {
        let mut out = vec![format!("{}@{}:{}", t.user, t.address, t.port)];
        let mut hop = &t.jump;
        while let Some(j) = hop {
            assert!(!j.sudo, "jump hosts run no commands, so never through sudo");
            out.push(format!("{}@{}:{}", j.user, j.address, j.port));
            hop = &j.jump;
        }
        out
    }

    #[test]
    fn a_jump_list_is_a_chain_with_the_last_hop_next_to_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let (env, ssh) = pipeline(
            r#"{ user = "deploy", sudo = true, jump = "ops@outer:2200, inner" }"#,
            dir.path(),
        );
        let t = ssh.target(env.host("db01").unwrap()).unwrap();
        assert!(t.sudo);
        assert_eq!(chain(&t), ["deploy@10.0.0.5:22", "deploy@inner:22", "ops@outer:2200"]);
        assert_eq!(t.jump.as_ref().unwrap().host, "db01", "errors on a hop name the host");
    }

    #[test]
    fn an_ssh_config_fills_what_pipeline_toml_leaves_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ssh_config"),
            "Host db02.internal\n  HostName 192.168.7.2\n  Port 2222\n  User dba\n  ProxyJump gw\n\
             Host 10.0.0.*\n  User ops\n  Port 2200\n  IdentityFile /keys/%r-%h\n  ProxyJump gw\n\
             Host gw\n  HostName gw.example.com\n  User jump\n  ProxyJump none\n",
        )
        .unwrap();
        let (env, ssh) = pipeline(r#"{ ssh_config = "ssh_config" }"#, dir.path());
        let t = ssh.target(env.host("db01").unwrap()).unwrap();
        assert_eq!(chain(&t), ["ops@10.0.0.5:2200", "jump@gw.example.com:22"]);
        assert_eq!(t.identity.as_deref(), Some(Path::new("/keys/ops-10.0.0.5")));
        // The host's own port in pipeline.toml wins over the config's, as a flag wins in ssh.
        let t = ssh.target(env.host("db02").unwrap()).unwrap();
        assert_eq!(chain(&t), ["dba@192.168.7.2:2022", "jump@gw.example.com:22"]);

        let (env, ssh) =
            pipeline(r#"{ ssh_config = "ssh_config", user = "root", identity = "k" }"#, dir.path());
        let t = ssh.target(env.host("db01").unwrap()).unwrap();
        assert_eq!(chain(&t), ["root@10.0.0.5:2200", "root@gw.example.com:22"]);
        assert_eq!(t.identity, Some(dir.path().join("k")));
    }

    #[test]
    fn jump_loops_and_bad_configs_are_errors_that_say_where() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loop"), "Host *\n  ProxyJump gw\n").unwrap();
        let (env, ssh) = pipeline(r#"{ ssh_config = "loop" }"#, dir.path());
        let e = ssh.target(env.host("db01").unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("db01:") && e.contains("loop"), "{e}");

        std::fs::write(dir.path().join("bad"), "Host *\n  ProxyJump gw:http\n").unwrap();
        let (env, ssh) = pipeline(r#"{ ssh_config = "bad" }"#, dir.path());
        let e = ssh.target(env.host("db01").unwrap()).unwrap_err().to_string();
        assert!(e.contains("bad:2: ProxyJump 'gw:http'"), "{e}");

        std::fs::write(dir.path().join("quote"), "Host \"db\n").unwrap();
        let (env, ssh) = pipeline(r#"{ ssh_config = "quote" }"#, dir.path());
        let e = ssh.target(env.host("db01").unwrap()).unwrap_err().to_string();
        assert!(e.contains("quote:1") && e.contains("unclosed quote"), "{e}");
    }
}

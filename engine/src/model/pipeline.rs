//! `pipeline.toml`: the hiera hierarchy, the environments with their inventory, SSH settings and
//! rollout policy.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{self, Result};
use crate::text::{Lines, parse_toml};

pub const PIPELINE_FILE: &str = "pipeline.toml";

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    /// A git remote the pipeline pushes its state (notes, environment refs) to after each stage.
    pub state_remote: Option<String>,
    /// `[secrets] recipients`: age public keys that `secret encrypt` encrypts to.
    pub secret_recipients: Vec<String>,
    /// Hierarchy levels, highest priority first, each with its line in pipeline.toml.
    pub hierarchy: Vec<(String, usize)>,
    /// `[hiera] required`: levels whose data file every host must have (its line).
    pub required_levels: Vec<(String, usize)>,
    pub environments: BTreeMap<String, Environment>,
    /// `[[stages]]` in order.
    pub stages: Vec<super::stages::Stage>,
    /// `[[hooks]]` in order: the order they are sent each event in.
    pub hooks: Vec<super::hooks::Hook>,
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub description: String,
    pub ssh: SshSettings,
    pub rollout: Rollout,
    /// How many runs' backups of replaced files each host keeps (older ones are pruned by every
    /// apply): `keep_backups`, default [`DEFAULT_KEEP_BACKUPS`].
    pub keep_backups: usize,
    /// Sorted by name; names are unique (they are TOML keys).
    pub hosts: Vec<Host>,
}

/// Backups of replaced files are kept for this many runs unless an environment says otherwise.
pub const DEFAULT_KEEP_BACKUPS: usize = 5;

impl Environment {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// One host of an environment's inventory.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub environment: String,
    pub address: String,
    /// The host's SSH port (its own, else the environment's).
    pub port: u16,
    /// Whether pipeline.toml wrote that port (for the host or its environment); an OpenSSH
    /// config's `Port` applies only when it did not.
    pub port_given: bool,
    pub role: String,
    /// Line of the host's entry in pipeline.toml.
    pub line: usize,
    /// Static facts: the environment's `facts` overlaid with the host's own.
    pub facts: toml::Table,
}

#[derive(Debug, Clone, Default)]
pub struct SshSettings {
    pub user: String,
    /// Whether pipeline.toml wrote `user` (else it is root, or what an OpenSSH config says).
    pub user_given: bool,
    pub port: u16,
    /// Private key file; relative paths are relative to the composition directory.
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
    pub sudo: bool,
    /// Jump hosts (OpenSSH's ProxyJump), outermost first: every host of the environment is
    /// reached through a tunnel across all of them.
    pub jump: Vec<JumpHost>,
    /// An OpenSSH client config to read HostName, User, Port, IdentityFile and ProxyJump from
    /// for every host (and jump host), as `ssh` would; pipeline.toml's own values win.
    pub ssh_config: Option<String>,
}

/// One hop of a `jump` list: `[user@]host[:port]`, as OpenSSH's `-J` takes it. Unset parts
/// come from the environment (or the OpenSSH config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub user: Option<String>,
    pub address: String,
    pub port: Option<u16>,
}

impl JumpHost {
    /// Parses a comma-separated ProxyJump list.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<JumpHost>, String> {
        text.split(',').map(|hop| JumpHost::parse(hop.trim())).collect()
    }

    fn parse(hop: &str) -> std::result::Result<JumpHost, String> {
        let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
        let (user, rest) = match hop.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, hop),
        };
        let (address, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, tail) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{hop}': an IPv6 address in [ ] has no closing ]"))?;
            (addr, tail.strip_prefix(':'))
        } else if rest.matches(':').count() == 1 {
            let (a, p) = rest.split_once(':').expect("one colon");
            (a, Some(p))
        } else {
            (rest, None)
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("'{hop}': the port '{p}' is not a number from 1 to 65535")
            })?),
            None => None,
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '@' || c == '/';
        if address.is_empty() || address.starts_with('-') || address.contains(bad) {
            return Err(format!("'{hop}' is not [user@]host[:port]"));
        }
        if user.as_deref().is_some_and(|u| u.is_empty() || u.starts_with('-') || u.contains(bad)) {
            return Err(format!("'{hop}': the user name is not usable"));
        }
        Ok(JumpHost { user, address: address.to_string(), port })
    }
}

#[derive(Debug, Clone)]
pub struct Rollout {
    /// Roles in apply order; roles not listed come after, in name order.
    pub order: Vec<String>,
    pub batches: Vec<Batch>,
    /// How many hosts may fail before the rollout stops starting new batches.
    pub failure_budget: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Count(usize),
    Percent(u32),
}

impl Batch {
    /// The batch size for a group of `total` hosts (at least 1).
    pub fn size(self, total: usize) -> usize {
        match self {
            Batch::Count(n) => n.max(1),
            Batch::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    #[serde(default)]
    project: ProjectDef,
    hiera: HieraDef,
    #[serde(default)]
    secrets: SecretsDef,
    #[serde(default)]
    environments: BTreeMap<String, EnvDef>,
    #[serde(default)]
    stages: Vec<Spanned<super::stages::StageDef>>,
    #[serde(default)]
    hooks: Vec<Spanned<super::hooks::HookDef>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProjectDef {
    #[serde(default)]
    name: String,
    state_remote: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SecretsDef {
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HieraDef {
    hierarchy: Vec<Spanned<String>>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvDef {
    #[serde(default)]
    description: String,
    #[serde(default)]
    facts: toml::Table,
    #[serde(default)]
    ssh: SshDef,
    #[serde(default)]
    rollout: RolloutDef,
    keep_backups: Option<usize>,
    #[serde(default)]
    hosts: BTreeMap<String, Spanned<HostDef>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SshDef {
    user: Option<String>,
    port: Option<u16>,
    identity: Option<String>,
    known_hosts: Option<String>,
    #[serde(default)]
    sudo: bool,
    jump: Option<Spanned<String>>,
    ssh_config: Option<SshConfigDef>,
}

/// `ssh_config = true` reads ~/.ssh/config; a string names the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum SshConfigDef {
    Default(bool),
    Path(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RolloutDef {
    #[serde(default)]
    order: Vec<String>,
    batches: Option<Vec<Spanned<toml::Value>>>,
    #[serde(default)]
    failure_budget: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostDef {
    address: String,
    role: String,
    port: Option<u16>,
    #[serde(default)]
    facts: toml::Table,
}

impl Pipeline {
    pub fn parse(text: &str) -> Result<Pipeline> {
        let path = PIPELINE_FILE;
        let file: PipelineFile = parse_toml(path, text)?;
        let lines = Lines::new(text);
        let hierarchy: Vec<(String, usize)> = file
            .hiera
            .hierarchy
            .into_iter()
            .map(|l| (l.get_ref().clone(), lines.line(l.span().start)))
            .collect();
        if hierarchy.is_empty() {
            return Err(error::invalid(
                "[hiera] hierarchy is empty; list at least one level, e.g. \"common\"",
            )
            .at_file(path, None));
        }
        let mut required_levels = Vec::new();
        for level in file.hiera.required {
            let line = lines.line(level.span().start);
            let level = level.into_inner();
            if !hierarchy.iter().any(|(l, _)| *l == level) {
                return Err(error::invalid(format!(
                    "[hiera] required names '{level}', which is no level of the hierarchy{}",
                    crate::suggest::hint(&level, hierarchy.iter().map(|(l, _)| l.as_str()))
                ))
                .at_file(path, Some(line)));
            }
            required_levels.push((level, line));
        }
        let mut environments = BTreeMap::new();
        for (name, def) in file.environments {
            check_name("environment", &name).map_err(|e| e.at_file(path, None))?;
            let jump = match &def.ssh.jump {
                Some(j) => JumpHost::parse_list(j.get_ref()).map_err(|e| {
                    error::invalid(format!(
                        "environment '{name}': ssh.jump {e}; write jump hosts as OpenSSH's \
                         ProxyJump does: \"[user@]host[:port]\", several separated by commas"
                    ))
                    .at_file(path, Some(lines.line(j.span().start)))
                })?,
                None => Vec::new(),
            };
            let port_given = def.ssh.port.is_some();
            let ssh = SshSettings {
                user_given: def.ssh.user.is_some(),
                user: def.ssh.user.unwrap_or_else(|| "root".into()),
                port: def.ssh.port.unwrap_or(22),
                identity: def.ssh.identity,
                known_hosts: def.ssh.known_hosts,
                sudo: def.ssh.sudo,
                jump,
                ssh_config: match def.ssh.ssh_config {
                    Some(SshConfigDef::Default(true)) => Some("~/.ssh/config".into()),
                    Some(SshConfigDef::Default(false)) | None => None,
                    Some(SshConfigDef::Path(p)) => Some(p),
                },
            };
            let mut batches = Vec::new();
            for b in def
                .rollout
                .batches
                .unwrap_or_else(|| vec![Spanned::new(0..0, toml::Value::from("100%"))])
            {
                let line = lines.line(b.span().start);
                batches.push(parse_batch(b.get_ref()).map_err(|e| e.at_file(path, Some(line)))?);
            }
            let mut hosts = Vec::new();
            for (host_name, spanned) in def.hosts {
                let line = lines.line(spanned.span().start);
                check_name("host", &host_name).map_err(|e| e.at_file(path, Some(line)))?;
                let h = spanned.into_inner();
                if h.address.trim().is_empty() {
                    return Err(error::invalid(format!("host '{host_name}' has an empty address"))
                        .at_file(path, Some(line)));
                }
                let mut facts = def.facts.clone();
                facts.extend(h.facts);
                hosts.push(Host {
                    name: host_name,
                    environment: name.clone(),
                    address: h.address,
                    port_given: port_given || h.port.is_some(),
                    port: h.port.unwrap_or(ssh.port),
                    role: h.role,
                    line,
                    facts,
                });
            }
            environments.insert(
                name.clone(),
                Environment {
                    name,
                    description: def.description,
                    ssh,
                    rollout: Rollout {
                        order: def.rollout.order,
                        batches,
                        failure_budget: def.rollout.failure_budget,
                    },
                    keep_backups: def.keep_backups.unwrap_or(DEFAULT_KEEP_BACKUPS).max(1),
                    hosts,
                },
            );
        }
        let stages: Vec<super::stages::Stage> = file
            .stages
            .into_iter()
            .map(|s| {
                let line = lines.line(s.span().start);
                s.into_inner().build(line)
            })
            .collect();
        super::stages::validate(&stages, &environments, path)?;
        let mut hooks = Vec::new();
        for h in file.hooks {
            let line = lines.line(h.span().start);
            hooks.push(h.into_inner().build(line).map_err(|e| e.at_file(path, Some(line)))?);
        }
        super::hooks::validate(&hooks, &environments, &stages, path)?;
        Ok(Pipeline {
            name: file.project.name,
            state_remote: file.project.state_remote,
            secret_recipients: file.secrets.recipients,
            hierarchy,
            required_levels,
            environments,
            stages,
            hooks,
        })
    }

    /// pipeline.toml alone from a snapshot: for commands that need the inventory or the stages
    /// but must work while profiles do not compile (lab, pipeline, status).
    pub fn from_snapshot(snapshot: &crate::source::Snapshot) -> Result<Pipeline> {
        let bytes = snapshot.get(PIPELINE_FILE).ok_or_else(|| {
            error::invalid("no pipeline.toml at the composition root").at_file(PIPELINE_FILE, None)
        })?;
        crate::text::utf8(PIPELINE_FILE, bytes).and_then(Pipeline::parse)
    }

    /// The environment called `name`, or a usage error listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            error::usage(format!(
                "no environment '{name}' in pipeline.toml (known: {}){}",
                if known.is_empty() { "none".to_string() } else { known.join(", ") },
                crate::suggest::hint(name, known.iter().copied())
            ))
        })
    }
}

fn parse_batch(value: &toml::Value) -> Result<Batch> {
    let bad = || {
        error::invalid(format!(
            "rollout batch {value} must be a host count (e.g. 1) or a percent (e.g. \"25%\")"
        ))
    };
    match value {
        toml::Value::Integer(n) if *n > 0 => Ok(Batch::Count(*n as usize)),
        toml::Value::String(s) => {
            let p: u32 = s.strip_suffix('%').and_then(|n| n.trim().parse().ok()).ok_or_else(bad)?;
            if p == 0 || p > 100 {
                return Err(bad());
            }
            Ok(Batch::Percent(p))
        }
        _ => Err(bad()),
    }
}

/// Host and environment names end up in paths and refs, so they are kept to a safe alphabet.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(error::invalid(format!(
            "{what} name '{name}' may only use letters, digits, '-', '_' and '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hosts_parse_as_proxyjump_writes_them() {
        let hop = |u: Option<&str>, a: &str, p: Option<u16>| JumpHost {
            user: u.map(String::from),
            address: a.into(),
            port: p,
        };
        assert_eq!(
            JumpHost::parse_list("ops@bastion.example.com:2222, [fd00::1]:22,gw").unwrap(),
            [
                hop(Some("ops"), "bastion.example.com", Some(2222)),
                hop(None, "fd00::1", Some(22)),
                hop(None, "gw", None)
            ]
        );
        assert_eq!(JumpHost::parse_list("ssh://a@b").unwrap(), [hop(Some("a"), "b", None)]);
        assert_eq!(JumpHost::parse_list("fd00::2").unwrap(), [hop(None, "fd00::2", None)]);
        for bad in ["", "gw:0", "gw:x", "-oProxyCommand=sh", "@gw", "a b", "gw,,x"] {
            assert!(JumpHost::parse_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_jump_names_the_line() {
        let text = "[project]\nname = \"t\"\n[hiera]\nhierarchy = [\"common\"]\n\
                    [environments.e.ssh]\nuser = \"x\"\njump = \"gw:99999\"\n";
        let e = Pipeline::parse(text).unwrap_err().to_string();
        assert!(e.starts_with("pipeline.toml:7:") && e.contains("'gw:99999'"), "{e}");
    }

    const SAMPLE: &str = r#"
[hiera]
hierarchy = ["nodes/%{host.name}", "common"]

[environments.staging]
facts = { region = "one" }
ssh = { port = 2222 }
rollout = { order = ["db", "web"], batches = [1, "50%"], failure_budget = 1 }

[environments.staging.hosts]
web01 = { address = "127.0.0.2", role = "web", facts = { region = "two" } }
db01 = { address = "127.0.0.1", role = "db", port = 22 }
"#;

    #[test]
    fn parses_environments_hosts_and_facts() {
        let p = Pipeline::parse(SAMPLE).unwrap();
        assert_eq!(
            p.hierarchy,
            vec![("nodes/%{host.name}".to_string(), 3), ("common".to_string(), 3)]
        );
        let env = p.environment("staging").unwrap();
        let names: Vec<_> = env.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db01", "web01"]);
        assert_eq!(env.host("db01").unwrap().port, 22);
        assert_eq!(env.host("web01").unwrap().port, 2222);
        assert_eq!(env.host("web01").unwrap().facts["region"].as_str(), Some("two"));
        assert_eq!(env.host("db01").unwrap().facts["region"].as_str(), Some("one"));
        assert_eq!(env.host("web01").unwrap().line, 11);
        assert_eq!(env.rollout.batches, vec![Batch::Count(1), Batch::Percent(50)]);
    }

    #[test]
    fn batch_sizes_round_up() {
        assert_eq!(Batch::Percent(25).size(7), 2);
        assert_eq!(Batch::Percent(100).size(7), 7);
        assert_eq!(Batch::Percent(1).size(3), 1);
        assert_eq!(Batch::Count(0).size(3), 1);
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let e = Pipeline::parse("[hiera]\nhierarchy = [\"common\"\n[environments]\n").unwrap_err();
        assert!(e.to_string().starts_with("pipeline.toml:"), "{e}");
        assert!(matches!(e.location(), Some(crate::error::Location::File { line: Some(_), .. })));
    }

    #[test]
    fn unknown_environment_lists_known_ones() {
        let p = Pipeline::parse(SAMPLE).unwrap();
        let e = p.environment("prod").unwrap_err();
        assert_eq!(e.to_string(), "no environment 'prod' in pipeline.toml (known: staging)");
    }
}

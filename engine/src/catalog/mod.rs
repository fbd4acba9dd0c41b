//! The compiled catalog of one host: every resource in apply order with rendered contents,
//! and the compiler that produces it from a composition.
//!
//! A catalog holds real secret values (apply needs them); everything that shows a catalog to a
//! person or writes it somewhere goes through [`Catalog::redacted`] first. Which values are
//! secret is decided here (declared `secret` parameters, decrypted values); how they are hidden
//! is `secrets`'.

mod compile;
#[cfg(test)]
pub(crate) mod fixtures;
mod secret_values;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use compile::{Compiler, EnvContext, compile_all};
pub use secret_values::{lookup_secrets, parameter_secrets};

pub use crate::model::Links;
use crate::secrets::Secrets;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Catalog {
    pub host: String,
    pub environment: String,
    pub role: String,
    pub address: String,
    pub port: u16,
    /// Resources in apply order.
    pub resources: Vec<Resource>,
    /// The secret values this catalog contains, for redaction. Never serialised.
    #[serde(skip)]
    pub secrets: Secrets,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Resource {
    Package(Package),
    Directory(Directory),
    File(File),
    Exec(Exec),
    Service(Service),
    Patch(Patch),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Package {
    pub profile: String,
    pub name: String,
    pub ensure: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Seconds its commands may run on the host; `None`: the default
    /// (`remote::DEFAULT_TIMEOUT`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Directory {
    pub profile: String,
    pub path: String,
    /// `None`: unmanaged (see [`File::owner`]).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct File {
    pub profile: String,
    pub path: String,
    /// Shared between hosts whose template inputs are the same (fleet-wide files are large).
    #[serde(with = "shared_text")]
    #[schemars(with = "String")]
    pub content: Arc<str>,
    /// Hex SHA-256 of `content` (of the real content, also in a redacted catalog).
    pub sha256: String,
    /// `None`: unmanaged, as Puppet and Ansible leave it: a new file is root's, an existing
    /// one keeps the owner it has (a package's `root:nova`).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate: Option<String>,
    /// Ids (`service:NAME`, `exec:NAME`) of resources to refresh when this file changes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notify: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub secret: bool,
    /// Seconds its commands may run on the host; `None`: the default
    /// (`remote::DEFAULT_TIMEOUT`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<u64>,
    /// What to do when the path is a symlink on the host.
    #[serde(skip_serializing_if = "Links::is_refuse", default)]
    pub links: Links,
}

/// A unified diff applied to a file something else installed (a package's module). The
/// file keeps its owner, group and mode; what is written is the host's current file with the
/// patch applied, computed when the host is planned (`plan::patch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Patch {
    pub profile: String,
    pub path: String,
    /// The patch file as the composition names it: `profiles/<p>/patches/<name>`.
    pub source: String,
    /// Its text, a unified diff that parsed when the composition was loaded.
    #[serde(with = "shared_text")]
    #[schemars(with = "String")]
    pub patch: Arc<str>,
    /// Hex SHA-256 of `patch`.
    pub sha256: String,
    /// Ids (`service:NAME`, `exec:NAME`) of resources to refresh when the file changes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Exec {
    pub profile: String,
    pub name: String,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub refreshonly: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notify: Vec<String>,
    /// Seconds its commands may run on the host; `None`: the default
    /// (`remote::DEFAULT_TIMEOUT`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Service {
    pub profile: String,
    pub name: String,
    pub ensure: String,
    pub enable: bool,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload: Option<String>,
    /// Seconds its commands may run on the host; `None`: the default
    /// (`remote::DEFAULT_TIMEOUT`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<u64>,
    /// Exits 0 once a started service does its job; a start or restart is done only then.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ready: Option<String>,
    /// Seconds `ready` may take to pass after a start or restart; `None`: the default
    /// (60 s, `DEFAULT_READY_TIMEOUT` in `remote`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ready_timeout: Option<u64>,
    /// The service's log file, whose last lines a failed start shows (systemd: its journal).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log: Option<String>,
}

/// A file mode, shown and serialised as four octal digits (`"0644"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for Mode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A file mode as four octal digits.",
            "type": "string",
            "pattern": "^[0-7]{4}$",
        })
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let s = String::deserialize(d)?;
        u32::from_str_radix(&s, 8).map(Mode).map_err(serde::de::Error::custom)
    }
}

impl Resource {
    /// The resource's identity: `file:/etc/x`, `service:haproxy`, ...
    pub fn id(&self) -> String {
        match self {
            Resource::Package(p) => format!("package:{}", p.name),
            Resource::Directory(d) => format!("directory:{}", d.path),
            Resource::File(f) => format!("file:{}", f.path),
            Resource::Exec(x) => format!("exec:{}", x.name),
            Resource::Service(s) => format!("service:{}", s.name),
            Resource::Patch(p) => format!("patch:{}", p.path),
        }
    }

    pub fn profile(&self) -> &str {
        match self {
            Resource::Package(p) => &p.profile,
            Resource::Directory(d) => &d.profile,
            Resource::File(f) => &f.profile,
            Resource::Exec(x) => &x.profile,
            Resource::Service(s) => &s.profile,
            Resource::Patch(p) => &p.profile,
        }
    }
}

/// Owner and group as outputs show them: `root:nova`, `(unmanaged):nova`.
pub fn ownership(owner: Option<&str>, group: Option<&str>) -> String {
    const UNMANAGED: &str = "(unmanaged)";
    format!("{}:{}", owner.unwrap_or(UNMANAGED), group.unwrap_or(UNMANAGED))
}

impl Catalog {
    /// The managed file at `path`.
    pub fn file(&self, path: &str) -> Option<&File> {
        self.files().find(|f| f.path == path)
    }

    pub fn patches(&self) -> impl Iterator<Item = &Patch> {
        self.resources.iter().filter_map(|r| match r {
            Resource::Patch(p) => Some(p),
            _ => None,
        })
    }

    /// The patch of the file at `path`.
    pub fn patch(&self, path: &str) -> Option<&Patch> {
        self.patches().find(|p| p.path == path)
    }

    pub fn files(&self) -> impl Iterator<Item = &File> {
        self.resources.iter().filter_map(|r| match r {
            Resource::File(f) => Some(f),
            _ => None,
        })
    }

    /// Ids of the execs and services in the order an apply runs their commands (runs,
    /// refreshes, restarts, starts, stops): catalog order, which is profile by profile (a
    /// profile after those it requires) and each profile's execs before its services, except
    /// that whatever an exec notifies runs after that exec. So a profile's one-off command can
    /// rely on the services of the profiles it requires running already.
    pub fn action_order(&self) -> Vec<String> {
        let actions: Vec<(String, &[String])> = self
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::Exec(x) => Some((r.id(), x.notify.as_slice())),
                Resource::Service(_) => Some((r.id(), &[][..])),
                _ => None,
            })
            .collect();
        let index = |id: &str| actions.iter().position(|(a, _)| a == id);
        let mut waiting_for = vec![0usize; actions.len()];
        for (_, notify) in &actions {
            for target in notify.iter().filter_map(|t| index(t)) {
                waiting_for[target] += 1;
            }
        }
        let mut done = vec![false; actions.len()];
        let mut order = Vec::with_capacity(actions.len());
        while order.len() < actions.len() {
            // The first action nothing still to run notifies; in a notify cycle, the first left.
            let next = (0..actions.len())
                .find(|&i| !done[i] && waiting_for[i] == 0)
                .or_else(|| (0..actions.len()).find(|&i| !done[i]))
                .expect("an action is left");
            done[next] = true;
            for target in actions[next].1.iter().filter_map(|t| index(t)) {
                waiting_for[target] = waiting_for[target].saturating_sub(1);
            }
            order.push(actions[next].0.clone());
        }
        order
    }

    /// A copy safe to show: secret values replaced by `<secret:KEY#hash>` markers everywhere,
    /// and the whole content of files marked `secret` replaced by its hash.
    pub fn redacted(&self) -> Catalog {
        let s = &self.secrets;
        let red = |t: &str| s.redact(t).into_owned();
        let red_opt = |t: &Option<String>| t.as_deref().map(red);
        let resources = self
            .resources
            .iter()
            .map(|r| match r {
                Resource::File(f) => Resource::File(File {
                    content: if f.secret {
                        format!("<secret file, sha256:{}>\n", &f.sha256[..16]).into()
                    } else {
                        red(&f.content).into()
                    },
                    validate: red_opt(&f.validate),
                    ..f.clone()
                }),
                Resource::Exec(x) => Resource::Exec(Exec {
                    command: red(&x.command),
                    creates: red_opt(&x.creates),
                    unless: red_opt(&x.unless),
                    ..x.clone()
                }),
                Resource::Service(v) => Resource::Service(Service {
                    start: red_opt(&v.start),
                    stop: red_opt(&v.stop),
                    status: red_opt(&v.status),
                    restart: red_opt(&v.restart),
                    reload: red_opt(&v.reload),
                    ready: red_opt(&v.ready),
                    ..v.clone()
                }),
                other => other.clone(),
            })
            .collect();
        Catalog { resources, ..self.clone() }
    }
}

/// Serde for shared text, as a plain string (serde's `rc` feature would rebuild every
/// dependency for one field).
mod shared_text {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

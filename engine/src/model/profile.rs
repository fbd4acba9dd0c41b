//! Profiles: `profiles/<name>/profile.toml`, parameters plus the resources they manage.
//!
//! String attributes of resources stay unrendered here (they may be templates); the compiler
//! renders them per host and checks what can only be checked then (absolute paths, notify
//! targets present on the host).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::names;
use crate::error::{self, Result};
use crate::text::{Lines, line_of, parse_toml};

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// `profiles/<name>/profile.toml`
    pub path: String,
    pub description: String,
    /// Profiles that must come earlier on the same host, with their lines.
    pub requires: Vec<(String, usize)>,
    pub params: BTreeMap<String, ParamDecl>,
    /// A minijinja expression (with its line): where it is false the profile manages nothing
    /// and its missing required parameters are not errors (a region-only service).
    pub when: Option<(String, usize)>,
    pub packages: Vec<PackageDecl>,
    pub directories: Vec<DirectoryDecl>,
    pub files: Vec<FileDecl>,
    pub execs: Vec<ExecDecl>,
    pub services: Vec<ServiceDecl>,
    pub patches: Vec<PatchDecl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Float,
    Boolean,
    Array,
    Hash,
    Any,
}

impl ParamType {
    pub fn accepts(self, v: &toml::Value) -> bool {
        use toml::Value as V;
        matches!(
            (self, v),
            (ParamType::Any, _)
                | (ParamType::String, V::String(_))
                | (ParamType::Integer, V::Integer(_))
                | (ParamType::Float, V::Float(_) | V::Integer(_))
                | (ParamType::Boolean, V::Boolean(_))
                | (ParamType::Array, V::Array(_))
                | (ParamType::Hash, V::Table(_))
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Float => "float",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Hash => "hash",
            ParamType::Any => "any",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<toml::Value>,
    /// True when there is no default and the profile did not say `required = false`.
    pub required: bool,
    pub secret: bool,
    pub line: usize,
}

/// Attributes shared by every resource declaration.
#[derive(Debug, Clone)]
pub struct Common {
    /// A minijinja expression; the resource is left out on hosts where it is false.
    pub when: Option<String>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct PackageDecl {
    pub name: String,
    pub ensure: String,
    pub provider: Option<String>,
    /// Seconds its commands may run on a host (default: `remote::DEFAULT_TIMEOUT`).
    pub timeout: Option<u64>,
    pub common: Common,
}

#[derive(Debug, Clone)]
pub struct DirectoryDecl {
    pub path: String,
    /// `None`: unmanaged (a new one is root's; an existing one keeps its owner).
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: u32,
    pub common: Common,
}

/// What a file resource does when its path is a symlink on the host.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Links {
    /// Stop with an error: replacing a link someone made (Debian's alternatives) by surprise
    /// would break what it is for.
    #[default]
    Refuse,
    /// Write the file the link points to (through any chain of links); the link stays.
    Follow,
    /// Put a regular file in place of the link.
    Replace,
}

impl Links {
    pub fn is_refuse(&self) -> bool {
        *self == Links::Refuse
    }
}

#[derive(Debug, Clone)]
pub enum FileBody {
    /// A template under `profiles/<p>/templates/`.
    Template(String),
    /// A static file under `profiles/<p>/files/`.
    Source(String),
    /// Inline content (itself a template).
    Content(String),
}

#[derive(Debug, Clone)]
pub struct FileDecl {
    pub path: String,
    pub body: FileBody,
    pub body_line: usize,
    /// `None`: unmanaged (a new one is root's; an existing one keeps its owner).
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: u32,
    pub validate: Option<String>,
    pub notify: Vec<(String, usize)>,
    pub secret: bool,
    /// Seconds its commands may run on a host (default: `remote::DEFAULT_TIMEOUT`).
    pub timeout: Option<u64>,
    pub links: Links,
    pub common: Common,
}

/// A unified diff applied to a file something else installed (a package's Python module).
#[derive(Debug, Clone)]
pub struct PatchDecl {
    /// The file patched (a template).
    pub path: String,
    /// The patch file's name under `profiles/<p>/patches/`.
    pub source: String,
    pub source_line: usize,
    pub notify: Vec<(String, usize)>,
    pub common: Common,
}

#[derive(Debug, Clone)]
pub struct ExecDecl {
    pub name: String,
    pub command: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub refreshonly: bool,
    pub notify: Vec<(String, usize)>,
    /// Seconds its commands may run on a host (default: `remote::DEFAULT_TIMEOUT`).
    pub timeout: Option<u64>,
    pub common: Common,
}

#[derive(Debug, Clone)]
pub struct ServiceDecl {
    pub name: String,
    pub ensure: String,
    pub enable: bool,
    pub provider: String,
    pub unit: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub status: Option<String>,
    pub restart: Option<String>,
    pub reload: Option<String>,
    /// Seconds its commands may run on a host (default: `remote::DEFAULT_TIMEOUT`).
    pub timeout: Option<u64>,
    /// A command that passes once the started service does its job (answers on its port).
    pub ready: Option<String>,
    /// Seconds a start or restart may take to become ready.
    pub ready_timeout: Option<u64>,
    /// The service's own log file, shown when it fails to start.
    pub log: Option<String>,
    pub common: Common,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<ParamDef>>,
    when: Option<Spanned<String>>,
    #[serde(default, rename = "package")]
    packages: Vec<Spanned<PackageDef>>,
    #[serde(default, rename = "directory")]
    directories: Vec<Spanned<DirectoryDef>>,
    #[serde(default, rename = "file")]
    files: Vec<Spanned<FileDef>>,
    #[serde(default, rename = "exec")]
    execs: Vec<Spanned<ExecDef>>,
    #[serde(default, rename = "service")]
    services: Vec<Spanned<ServiceDef>>,
    #[serde(default, rename = "patch")]
    patches: Vec<Spanned<PatchDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchDef {
    path: String,
    source: Spanned<String>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    when: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamDef {
    #[serde(rename = "type", default = "any_type")]
    ty: ParamType,
    default: Option<toml::Value>,
    required: Option<bool>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
}

fn any_type() -> ParamType {
    ParamType::Any
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageDef {
    name: String,
    #[serde(default = "present")]
    ensure: String,
    provider: Option<String>,
    timeout: Option<u64>,
    when: Option<String>,
}

fn present() -> String {
    "present".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryDef {
    path: String,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<Spanned<String>>,
    when: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    path: String,
    template: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    content: Option<Spanned<String>>,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<Spanned<String>>,
    validate: Option<String>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    secret: bool,
    timeout: Option<u64>,
    #[serde(default)]
    links: Links,
    when: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecDef {
    name: String,
    command: String,
    creates: Option<String>,
    unless: Option<String>,
    #[serde(default)]
    refreshonly: bool,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    timeout: Option<u64>,
    when: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceDef {
    name: String,
    #[serde(default = "running")]
    ensure: String,
    #[serde(default = "yes")]
    enable: bool,
    #[serde(default = "auto")]
    provider: String,
    unit: Option<String>,
    start: Option<String>,
    stop: Option<String>,
    status: Option<String>,
    restart: Option<String>,
    reload: Option<String>,
    timeout: Option<u64>,
    ready: Option<String>,
    ready_timeout: Option<u64>,
    log: Option<String>,
    when: Option<String>,
}

fn running() -> String {
    "running".into()
}
fn yes() -> bool {
    true
}
fn auto() -> String {
    "auto".into()
}

impl Profile {
    pub fn parse(name: &str, path: &str, text: &str) -> Result<Profile> {
        let file: ProfileFile = parse_toml(path, text)?;
        let lines = Lines::new(text);
        let line = |span: std::ops::Range<usize>| lines.line(span.start);
        let common =
            |when: Option<String>, span: std::ops::Range<usize>| Common { when, line: line(span) };
        let notify = |list: Vec<Spanned<String>>| -> Vec<(String, usize)> {
            list.into_iter().map(|n| (n.get_ref().clone(), line(n.span()))).collect()
        };

        let mut params = BTreeMap::new();
        for (pname, def) in file.params {
            let pline = line(def.span());
            let def = def.into_inner();
            if def.required == Some(true) && def.default.is_some() {
                return Err(error::invalid(format!(
                    "parameter '{pname}' is required and has a default; drop one of them"
                ))
                .at_file(path, Some(pline)));
            }
            if let Some(d) = &def.default
                && !def.ty.accepts(d)
            {
                return Err(error::invalid(format!(
                    "default of parameter '{pname}' is {}, but its type is {}",
                    crate::text::a_type(d),
                    def.ty.name()
                ))
                .at_file(path, Some(pline)));
            }
            let required = def.default.is_none() && def.required != Some(false);
            params.insert(
                pname.clone(),
                ParamDecl {
                    name: pname,
                    ty: def.ty,
                    default: def.default,
                    required,
                    secret: def.secret,
                    line: pline,
                },
            );
        }

        let mut packages = Vec::new();
        for p in file.packages {
            let span = p.span();
            let p = p.into_inner();
            packages.push(PackageDecl {
                name: p.name,
                ensure: p.ensure,
                provider: p.provider,
                timeout: p.timeout,
                common: common(p.when, span),
            });
        }

        let mut directories = Vec::new();
        for d in file.directories {
            let span = d.span();
            let d = d.into_inner();
            let mode = parse_mode(d.mode, 0o755, path, text)?;
            directories.push(DirectoryDecl {
                path: d.path,
                owner: d.owner,
                group: d.group,
                mode,
                common: common(d.when, span),
            });
        }

        let mut files = Vec::new();
        for f in file.files {
            let span = f.span();
            let f = f.into_inner();
            let fline = line(span.clone());
            let (body, body_line) = match (f.template, f.source, f.content) {
                (Some(t), None, None) => (FileBody::Template(t.get_ref().clone()), line(t.span())),
                (None, Some(s), None) => (FileBody::Source(s.get_ref().clone()), line(s.span())),
                (None, None, Some(c)) => (FileBody::Content(c.get_ref().clone()), line(c.span())),
                _ => {
                    return Err(error::invalid(format!(
                        "file {} needs exactly one of `template`, `source` or `content`",
                        f.path
                    ))
                    .at_file(path, Some(fline)));
                }
            };
            let mode = parse_mode(f.mode, 0o644, path, text)?;
            files.push(FileDecl {
                path: f.path,
                body,
                body_line,
                owner: f.owner,
                group: f.group,
                mode,
                validate: f.validate,
                notify: notify(f.notify),
                secret: f.secret,
                timeout: f.timeout,
                links: f.links,
                common: common(f.when, span),
            });
        }

        let mut execs = Vec::new();
        for x in file.execs {
            let span = x.span();
            let x = x.into_inner();
            names::resource("exec", &x.name)
                .map_err(|why| error::invalid(why).at_file(path, Some(line(span.clone()))))?;
            execs.push(ExecDecl {
                name: x.name,
                command: x.command,
                creates: x.creates,
                unless: x.unless,
                refreshonly: x.refreshonly,
                notify: notify(x.notify),
                timeout: x.timeout,
                common: common(x.when, span),
            });
        }

        let mut services = Vec::new();
        for s in file.services {
            let span = s.span();
            let sline = line(span.clone());
            let s = s.into_inner();
            names::resource("service", &s.name)
                .map_err(|why| error::invalid(why).at_file(path, Some(sline)))?;
            if !matches!(s.ensure.as_str(), "running" | "stopped") {
                return Err(error::invalid(format!(
                    "service {}: ensure must be \"running\" or \"stopped\", not \"{}\"",
                    s.name, s.ensure
                ))
                .at_file(path, Some(sline)));
            }
            match s.provider.as_str() {
                "auto" | "systemd" => {}
                "command" if s.start.is_some() && s.status.is_some() => {}
                "command" => {
                    return Err(error::invalid(format!(
                        "service {}: the command provider needs `start` and `status` commands",
                        s.name
                    ))
                    .at_file(path, Some(sline)));
                }
                other => {
                    return Err(error::invalid(format!(
                        "service {}: unknown provider \"{other}\" (use auto, systemd or command)",
                        s.name
                    ))
                    .at_file(path, Some(sline)));
                }
            }
            services.push(ServiceDecl {
                name: s.name,
                ensure: s.ensure,
                enable: s.enable,
                provider: s.provider,
                unit: s.unit,
                start: s.start,
                stop: s.stop,
                status: s.status,
                restart: s.restart,
                reload: s.reload,
                timeout: s.timeout,
                ready: s.ready,
                ready_timeout: s.ready_timeout,
                log: s.log,
                common: common(s.when, span),
            });
        }

        let mut patches = Vec::new();
        for p in file.patches {
            let span = p.span();
            let p = p.into_inner();
            let source_line = line(p.source.span());
            let source = p.source.into_inner();
            if source.is_empty() || source.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(error::invalid(format!(
                    "patch {}: source \"{source}\" must name a file under profiles/{name}/patches/",
                    p.path
                ))
                .at_file(path, Some(source_line)));
            }
            patches.push(PatchDecl {
                path: p.path,
                source,
                source_line,
                notify: notify(p.notify),
                common: common(p.when, span),
            });
        }

        Ok(Profile {
            name: name.to_string(),
            path: path.to_string(),
            description: file.description,
            requires: file
                .requires
                .into_iter()
                .map(|r| (r.get_ref().clone(), line(r.span())))
                .collect(),
            params,
            when: file.when.map(|w| (w.get_ref().clone(), line(w.span()))),
            packages,
            directories,
            files,
            execs,
            services,
            patches,
        })
    }

    /// Every notify target name declared by this profile's services and execs, as
    /// `service:NAME` / `exec:NAME` ids.
    pub fn declared_targets(&self) -> impl Iterator<Item = String> + '_ {
        self.services
            .iter()
            .map(|s| format!("service:{}", s.name))
            .chain(self.execs.iter().map(|x| format!("exec:{}", x.name)))
    }
}

/// Normalises a notify entry: a bare name means a service.
pub fn notify_target_id(entry: &str) -> String {
    if entry.starts_with("service:") || entry.starts_with("exec:") {
        entry.to_string()
    } else {
        format!("service:{entry}")
    }
}

fn parse_mode(mode: Option<Spanned<String>>, default: u32, path: &str, text: &str) -> Result<u32> {
    let Some(mode) = mode else { return Ok(default) };
    let s = mode.get_ref();
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 && !s.is_empty() => Ok(m),
        _ => {
            Err(error::invalid(format!("mode \"{s}\" is not an octal file mode such as \"0644\""))
                .at_file(path, Some(line_of(text, mode.span().start))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resources_with_lines_and_defaults() {
        let text = r#"
requires = ["base"]
[params]
port = { type = "integer", default = 11211 }
listen = { type = "string" }
extra = { required = false }

[[file]]
path = "/etc/memcached.conf"
template = "memcached.conf.j2"
notify = ["memcached"]

[[service]]
name = "memcached"
provider = "command"
start = "memcached -d"
status = "true"
"#;
        let p = Profile::parse("memcached", "profiles/memcached/profile.toml", text).unwrap();
        assert_eq!(p.requires, vec![("base".to_string(), 2)]);
        assert!(p.params["listen"].required);
        assert!(!p.params["port"].required);
        assert!(!p.params["extra"].required);
        assert_eq!(p.files[0].mode, 0o644);
        assert_eq!(p.files[0].notify, vec![("memcached".to_string(), 11)]);
        assert_eq!(p.services[0].ensure, "running");
    }

    #[test]
    fn bad_mode_names_its_line() {
        let text = "[[file]]\npath = \"/x\"\ncontent = \"\"\nmode = \"rw-r--r--\"\n";
        let e = Profile::parse("p", "profiles/p/profile.toml", text).unwrap_err();
        assert!(e.to_string().starts_with("profiles/p/profile.toml:4: mode"), "{e}");
    }

    #[test]
    fn default_of_wrong_type_is_refused() {
        let text = "[params]\nport = { type = \"integer\", default = \"x\" }\n";
        let e = Profile::parse("p", "profiles/p/profile.toml", text).unwrap_err();
        assert!(e.to_string().contains("is a string, but its type is integer"), "{e}");
    }

    #[test]
    fn command_provider_needs_start_and_status() {
        let text = "[[service]]\nname = \"x\"\nprovider = \"command\"\nstart = \"x\"\n";
        let e = Profile::parse("p", "profiles/p/profile.toml", text).unwrap_err();
        assert!(e.to_string().contains("needs `start` and `status`"), "{e}");
    }
}

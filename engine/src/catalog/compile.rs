//! The compiler: composition + host → catalog.
//!
//! Templates (files and templated resource attributes) are parsed once per composition into one
//! minijinja environment; per host only lookups and rendering happen, so that compiling ten
//! thousand hosts stays cheap. Errors are collected per host rather than stopping at the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, UndefinedBehavior};

use super::{
    Catalog, Directory, Exec, File, Mode, Package, Resource, Secrets, Service, sha256_hex,
};
use crate::error::{self, Error};
use crate::hiera::{HostHiera, Merge, Vars};
use crate::model::notify_target_id;
use crate::model::{Composition, Environment as Env, FileBody, Host, Profile};

/// Template names of templated attributes start with this, so errors can be mapped back.
const ATTR_PREFIX: &str = "attr#";

pub struct Compiler<'c> {
    comp: &'c Composition,
    jinja: Environment<'static>,
    /// (profile, attribute source) → template name, for attributes that contain template syntax.
    attrs: HashMap<(String, String), String>,
    /// Attribute template name → (profile.toml path, line of the resource).
    attr_origin: HashMap<String, (String, usize)>,
}

/// What every host of one environment shares in its template context.
pub struct EnvContext {
    name: String,
    hosts: Value,
    roles: Value,
}

impl EnvContext {
    /// `facts` gives each host's facts (static facts plus any cached gathered facts).
    /// `roles` has an entry (maybe empty) for every role of the composition, so templates can
    /// loop over `roles.x` even in an environment without such hosts.
    pub fn new(comp: &Composition, env: &Env, facts: &dyn Fn(&Host) -> toml::Table) -> EnvContext {
        let mut roles: BTreeMap<String, Vec<Value>> =
            comp.roles.keys().map(|r| (r.clone(), Vec::new())).collect();
        let mut hosts = Vec::with_capacity(env.hosts.len());
        for h in &env.hosts {
            let v = to_value(&HostInfo {
                name: &h.name,
                role: &h.role,
                address: &h.address,
                port: h.port,
                environment: &h.environment,
                facts: Some(facts(h)),
            });
            roles.entry(h.role.clone()).or_default().push(v.clone());
            hosts.push(v);
        }
        EnvContext { name: env.name.clone(), hosts: Value::from(hosts), roles: Value::from(roles) }
    }
}

#[derive(serde::Serialize)]
struct HostInfo<'a> {
    name: &'a str,
    role: &'a str,
    address: &'a str,
    port: u16,
    environment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<toml::Table>,
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

impl<'c> Compiler<'c> {
    /// Parses every template of the composition; returns all syntax errors at once.
    pub fn new(comp: &'c Composition) -> Result<Compiler<'c>, Vec<Error>> {
        let mut jinja = Environment::new();
        jinja.set_undefined_behavior(UndefinedBehavior::Strict);
        // Config files are line-oriented: block tags on their own lines must not leave blank
        // lines behind, and a file's final newline must survive.
        jinja.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        // Config files are not HTML: minijinja would otherwise escape (and quote) values in
        // templates named *.html.j2, *.json.j2, *.yaml.j2 by their extension.
        jinja.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let mut errors = Vec::new();
        for (path, source) in &comp.templates {
            if let Err(e) = jinja.add_template_owned(path.clone(), source.clone()) {
                errors.push(template_error(&e, path, None, Some(source)));
            }
        }
        let mut attrs = HashMap::new();
        let mut attr_origin = HashMap::new();
        for profile in comp.profiles.values() {
            for (source, line) in attribute_sources(profile) {
                let key = (profile.name.clone(), source.clone());
                if attrs.contains_key(&key) {
                    continue;
                }
                let name = format!("{ATTR_PREFIX}{}", attrs.len());
                if let Err(e) = jinja.add_template_owned(name.clone(), source) {
                    errors.push(template_error(&e, &profile.path, Some(line), None));
                    continue;
                }
                attr_origin.insert(name.clone(), (profile.path.clone(), line));
                attrs.insert(key, name);
            }
        }
        if errors.is_empty() {
            Ok(Compiler { comp, jinja, attrs, attr_origin })
        } else {
            Err(errors)
        }
    }

    pub fn composition(&self) -> &'c Composition {
        self.comp
    }

    /// The hiera view of one host (for `lookup`).
    pub fn host_hiera(&self, host: &Host, facts: toml::Table) -> Result<HostHiera, Error> {
        HostHiera::new(
            self.comp.hiera.clone(),
            &self.comp.pipeline.hierarchy,
            Arc::new(Vars::new(host, facts)),
        )
        .map(|h| h.with_keyring(self.comp.keyring.clone()))
    }

    /// Adds to `secrets` (a host's secrets at this compiler's commit) the values this commit
    /// gives the keys that `newer` (the host's secrets at a newer commit) holds and `secrets`
    /// does not. A key marked secret (or encrypted) only in the newer commit held a plain value
    /// here that is just as sensitive, and the old side of a diff must not show it. Keys that
    /// do not look up here are skipped: they hold nothing to hide. `facts` is called only when
    /// there is such a key (a diff of 1,000 hosts usually has none, and facts come from disk).
    pub fn add_newly_secret(
        &self,
        host: &Host,
        facts: impl FnOnce() -> toml::Table,
        secrets: &mut Secrets,
        newer: &Secrets,
    ) {
        let known: HashSet<&str> = secrets.keys().collect();
        let newly: Vec<&str> = newer.keys().filter(|k| !known.contains(k)).collect();
        if newly.is_empty() {
            return;
        }
        let Ok(hiera) = self.host_hiera(host, facts()) else { return };
        for key in newly {
            if let Ok(Some(value)) = hiera.lookup(key, None) {
                secrets.add(key, &value);
            }
        }
        secrets.extend(&hiera.revealed());
    }

    /// Compiles one host; on failure returns every problem found on it.
    pub fn compile(
        &self,
        env: &EnvContext,
        host: &Host,
        facts: toml::Table,
    ) -> Result<Catalog, Vec<Error>> {
        let hiera = Arc::new(self.host_hiera(host, facts.clone()).map_err(|e| vec![e])?);
        let role = self.comp.roles.get(&host.role).ok_or_else(|| {
            vec![
                error::invalid(format!("host '{}' has unknown role '{}'", host.name, host.role))
                    .at_host(&host.name),
            ]
        })?;
        let profiles = self.comp.ordered_profiles(role).map_err(|e| vec![e])?;

        let host_value = to_value(&HostInfo {
            name: &host.name,
            role: &host.role,
            address: &host.address,
            port: host.port,
            environment: &host.environment,
            facts: None,
        });
        let facts_value = to_value(&facts);
        let lookup_fn = {
            let hiera = hiera.clone();
            Value::from_function(
                move |key: String, kwargs: Kwargs| -> Result<Value, minijinja::Error> {
                    let merge: Option<String> = kwargs.get("merge")?;
                    let default: Option<Value> = kwargs.get("default")?;
                    kwargs.assert_all_used()?;
                    let bad = |e: Error| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                    };
                    let merge = merge.map(|m| Merge::parse(&m)).transpose().map_err(bad)?;
                    match hiera.lookup(&key, merge).map_err(bad)? {
                        Some(v) => Ok(to_value(&v)),
                        None => default.ok_or_else(|| {
                            minijinja::Error::new(
                                minijinja::ErrorKind::UndefinedError,
                                format!("lookup('{key}'): no value in any hierarchy level"),
                            )
                        }),
                    }
                },
            )
        };

        let mut state = HostState {
            host,
            resources: Vec::new(),
            secrets: Secrets::default(),
            errors: Vec::new(),
            paths: HashMap::new(),
            skipped: HashSet::new(),
        };
        for profile in profiles {
            let Some((params, missing)) = self.params(profile, &hiera, &mut state) else {
                continue;
            };
            let ctx = minijinja::context! {
                params,
                facts => facts_value.clone(),
                host => host_value.clone(),
                environment => env.name.as_str(),
                hosts => env.hosts.clone(),
                roles => env.roles.clone(),
                lookup => lookup_fn.clone(),
            };
            if let Some((expr, line)) = &profile.when {
                let r = Renderer { compiler: self, profile, ctx: &ctx };
                match r.when(&Some(expr.clone()), *line) {
                    Ok(true) => {}
                    Ok(false) => {
                        state.skipped.extend(profile.declared_targets());
                        continue;
                    }
                    Err(e) => {
                        state.errors.extend(missing);
                        state.errors.push(e);
                        continue;
                    }
                }
            }
            if !missing.is_empty() {
                state.errors.extend(missing);
                continue;
            }
            self.resources(profile, &ctx, &mut state);
        }
        if !state.errors.is_empty() {
            return Err(state.errors);
        }
        let declared: HashSet<String> = state.resources.iter().map(Resource::id).collect();
        for r in &mut state.resources {
            let notify = match r {
                Resource::File(f) => &mut f.notify,
                Resource::Exec(x) => &mut x.notify,
                _ => continue,
            };
            // A target left out by its `when` is declared but not managed here: nothing to refresh.
            notify.retain(|id| declared.contains(id) || !state.skipped.contains(id));
        }
        state.secrets.extend(&hiera.revealed());
        Ok(Catalog {
            host: host.name.clone(),
            environment: host.environment.clone(),
            role: host.role.clone(),
            address: host.address.clone(),
            port: host.port,
            resources: state.resources,
            secrets: state.secrets,
        })
    }

    /// Automatic parameter lookup: `<profile>::<param>` in hiera, then the default. Returns the
    /// parameters found and the errors for missing required ones, which count only where the
    /// profile's `when` holds; `None` on any other error (already recorded).
    fn params(
        &self,
        profile: &Profile,
        hiera: &HostHiera,
        state: &mut HostState,
    ) -> Option<(Value, Vec<Error>)> {
        let mut out = BTreeMap::new();
        let mut missing = Vec::new();
        let mut ok = true;
        for decl in profile.params.values() {
            let key = format!("{}::{}", profile.name, decl.name);
            let value = match hiera.lookup(&key, None) {
                Err(e) => {
                    state.errors.push(e.at_host(&state.host.name));
                    ok = false;
                    continue;
                }
                Ok(Some(v)) => v,
                Ok(None) => match &decl.default {
                    Some(d) => d.clone(),
                    None if decl.required => {
                        missing.push(
                            error::lookup(format!(
                                "profile '{}' needs parameter '{}' on host {}: set '{key}' in hieradata \
                                 (searched {})",
                                profile.name,
                                decl.name,
                                state.host.name,
                                hiera.searched_paths().join(", ")
                            ))
                            .at_file(&profile.path, Some(decl.line)),
                        );
                        continue;
                    }
                    None => continue,
                },
            };
            if !decl.ty.accepts(&value) {
                state.errors.push(
                    error::invalid(format!(
                        "parameter '{key}' must be a {} but is a {} on host {}{}",
                        decl.ty.name(),
                        value.type_str(),
                        state.host.name,
                        if value.is_str() {
                            " (to keep a non-string type, use %{alias('...')})"
                        } else {
                            ""
                        }
                    ))
                    .at_file(&profile.path, Some(decl.line)),
                );
                ok = false;
                continue;
            }
            if decl.secret {
                state.secrets.add(&key, &value);
            }
            out.insert(decl.name.clone(), to_value(&value));
        }
        ok.then(|| (Value::from(out), missing))
    }

    fn resources(&self, profile: &Profile, ctx: &Value, state: &mut HostState) {
        let r = Renderer { compiler: self, profile, ctx };
        let pname = || profile.name.clone();
        for p in &profile.packages {
            let Some(true) = state.keep(r.when(&p.common.when, p.common.line)) else {
                continue;
            };
            let (Some(name), Some(ensure)) = (
                state.ok(r.attr(&p.name, p.common.line)),
                state.ok(r.attr(&p.ensure, p.common.line)),
            ) else {
                continue;
            };
            state.push(
                Resource::Package(Package {
                    profile: pname(),
                    name,
                    ensure,
                    provider: p.provider.clone(),
                }),
                profile,
                p.common.line,
            );
        }
        let mut dirs: Vec<_> = profile.directories.iter().collect();
        dirs.sort_by_key(|d| d.path.matches('/').count());
        for d in dirs {
            let Some(true) = state.keep(r.when(&d.common.when, d.common.line)) else {
                continue;
            };
            let (Some(path), Some(owner), Some(group)) = (
                state.ok(r.path(&d.path, d.common.line)),
                state.ok(r.attr(&d.owner, d.common.line)),
                state.ok(r.attr(&d.group, d.common.line)),
            ) else {
                continue;
            };
            state.push(
                Resource::Directory(Directory {
                    profile: pname(),
                    path,
                    owner,
                    group,
                    mode: Mode(d.mode),
                }),
                profile,
                d.common.line,
            );
        }
        for f in &profile.files {
            let line = f.common.line;
            let Some(true) = state.keep(r.when(&f.common.when, line)) else {
                continue;
            };
            let content = match &f.body {
                FileBody::Template(t) => {
                    r.template(&format!("profiles/{}/templates/{t}", profile.name))
                }
                FileBody::Content(c) => r.attr(c, f.body_line),
                FileBody::Source(s) => {
                    let path = format!("profiles/{}/files/{s}", profile.name);
                    let bytes = &self.comp.static_files[&path];
                    String::from_utf8(bytes.clone()).map_err(|_| {
                        error::invalid(format!("{path} is not UTF-8 text"))
                            .at_file(&profile.path, Some(f.body_line))
                    })
                }
            };
            let (Some(path), Some(content), Some(owner), Some(group)) = (
                state.ok(r.path(&f.path, line)),
                state.ok(content),
                state.ok(r.attr(&f.owner, line)),
                state.ok(r.attr(&f.group, line)),
            ) else {
                continue;
            };
            let validate = match &f.validate {
                Some(v) => match state.ok(r.attr(v, line)) {
                    Some(v) => Some(v),
                    None => continue,
                },
                None => None,
            };
            let sha256 = sha256_hex(content.as_bytes());
            let notify = f.notify.iter().map(|(n, _)| notify_target_id(n)).collect();
            state.push(
                Resource::File(File {
                    profile: pname(),
                    path,
                    content,
                    sha256,
                    owner,
                    group,
                    mode: Mode(f.mode),
                    validate,
                    notify,
                    secret: f.secret,
                }),
                profile,
                line,
            );
        }
        for x in &profile.execs {
            let line = x.common.line;
            let keep = state.keep(r.when(&x.common.when, line));
            if keep == Some(false) {
                state.skipped.insert(format!("exec:{}", x.name));
            }
            let Some(true) = keep else { continue };
            let (Some(command), Some(creates), Some(unless)) = (
                state.ok(r.attr(&x.command, line)),
                state.ok(r.opt(&x.creates, line)),
                state.ok(r.opt(&x.unless, line)),
            ) else {
                continue;
            };
            let notify = x.notify.iter().map(|(n, _)| notify_target_id(n)).collect();
            state.push(
                Resource::Exec(Exec {
                    profile: pname(),
                    name: x.name.clone(),
                    command,
                    creates,
                    unless,
                    refreshonly: x.refreshonly,
                    notify,
                }),
                profile,
                line,
            );
        }
        for s in &profile.services {
            let line = s.common.line;
            let keep = state.keep(r.when(&s.common.when, line));
            if keep == Some(false) {
                state.skipped.insert(format!("service:{}", s.name));
            }
            let Some(true) = keep else { continue };
            let cmds = [&s.unit, &s.start, &s.stop, &s.status, &s.restart, &s.reload]
                .map(|c| state.ok(r.opt(c, line)));
            let [Some(unit), Some(start), Some(stop), Some(status), Some(restart), Some(reload)] =
                cmds
            else {
                continue;
            };
            state.push(
                Resource::Service(Service {
                    profile: pname(),
                    name: s.name.clone(),
                    ensure: s.ensure.clone(),
                    enable: s.enable,
                    provider: s.provider.clone(),
                    unit,
                    start,
                    stop,
                    status,
                    restart,
                    reload,
                }),
                profile,
                line,
            );
        }
    }
}

struct HostState<'h> {
    host: &'h Host,
    resources: Vec<Resource>,
    secrets: Secrets,
    errors: Vec<Error>,
    /// Managed path → (profile, profile.toml path, line), to refuse two profiles managing one path.
    paths: HashMap<String, (String, String, usize)>,
    /// Ids of services/execs left out by `when`.
    skipped: HashSet<String>,
}

impl HostState<'_> {
    fn ok<T>(&mut self, r: Result<T, Error>) -> Option<T> {
        r.map_err(|e| self.errors.push(e.at_host(&self.host.name))).ok()
    }

    fn keep(&mut self, r: Result<bool, Error>) -> Option<bool> {
        self.ok(r)
    }

    fn push(&mut self, resource: Resource, profile: &Profile, line: usize) {
        let id = resource.id();
        let path = match &resource {
            Resource::File(f) => Some(&f.path),
            Resource::Directory(d) => Some(&d.path),
            _ => None,
        };
        if let Some(path) = path {
            if let Some((other, _, other_line)) = self.paths.get(path) {
                let what = if other == &profile.name {
                    format!(
                        "path {path} is managed twice by profile '{other}' (also at line {other_line})"
                    )
                } else {
                    format!(
                        "path {path} is managed by both profile '{other}' and profile '{}' on host {} (role {}); \
                         a path belongs to exactly one profile",
                        profile.name, self.host.name, self.host.role
                    )
                };
                self.errors.push(error::invalid(what).at_file(&profile.path, Some(line)));
                return;
            }
            self.paths.insert(path.clone(), (profile.name.clone(), profile.path.clone(), line));
        } else if let Some(existing) = self.resources.iter().find(|r| r.id() == id) {
            // The same package declared identically by two profiles is a shared dependency;
            // anything else declared twice is a conflict.
            let same_package = matches!((existing, &resource),
                (Resource::Package(a), Resource::Package(b)) if a.ensure == b.ensure && a.provider == b.provider);
            if !same_package {
                self.errors.push(
                    error::invalid(format!(
                        "{id} is declared by profile '{}' and again by profile '{}' on host {}",
                        existing.profile(),
                        profile.name,
                        self.host.name
                    ))
                    .at_file(&profile.path, Some(line)),
                );
            }
            return;
        }
        self.resources.push(resource);
    }
}

struct Renderer<'a> {
    compiler: &'a Compiler<'a>,
    profile: &'a Profile,
    ctx: &'a Value,
}

impl Renderer<'_> {
    fn template(&self, name: &str) -> Result<String, Error> {
        let t = self
            .compiler
            .jinja
            .get_template(name)
            .map_err(|e| template_error(&e, name, None, None))?;
        t.render(self.ctx).map_err(|e| {
            template_error(
                &e,
                name,
                None,
                self.compiler.comp.templates.get(name).map(String::as_str),
            )
        })
    }

    fn attr(&self, source: &str, line: usize) -> Result<String, Error> {
        if !has_syntax(source) {
            return Ok(source.to_string());
        }
        let name = &self.compiler.attrs[&(self.profile.name.clone(), source.to_string())];
        let t = self.compiler.jinja.get_template(name).expect("registered in Compiler::new");
        t.render(self.ctx).map_err(|e| {
            let (path, line) = self
                .compiler
                .attr_origin
                .get(name)
                .cloned()
                .unwrap_or((self.profile.path.clone(), line));
            template_error(&e, &path, Some(line), Some(source))
        })
    }

    fn opt(&self, source: &Option<String>, line: usize) -> Result<Option<String>, Error> {
        source.as_deref().map(|s| self.attr(s, line)).transpose()
    }

    fn when(&self, expr: &Option<String>, line: usize) -> Result<bool, Error> {
        match expr {
            None => Ok(true),
            Some(e) => Ok(self.attr(&when_template(e), line)? == "1"),
        }
    }

    /// A rendered path must be absolute and normalised: it is where apply writes.
    fn path(&self, source: &str, line: usize) -> Result<String, Error> {
        let path = self.attr(source, line)?;
        let bad = |why: &str| {
            Err(error::invalid(format!("path \"{path}\" {why}"))
                .at_file(&self.profile.path, Some(line)))
        };
        if !path.starts_with('/') {
            return bad("is not absolute; managed paths must start with /");
        }
        if path.len() > 1 && path.ends_with('/') {
            return bad("ends with /");
        }
        if path.split('/').any(|c| c == ".." || c == ".") || path.contains("//") {
            return bad("is not normalised (no '.', '..' or '//')");
        }
        if path.chars().any(|c| c.is_control()) {
            return bad("contains control characters");
        }
        Ok(path)
    }
}

fn when_template(expr: &str) -> String {
    format!("{{% if {expr} %}}1{{% endif %}}")
}

/// Every templated string attribute of a profile, with the line of its resource.
fn attribute_sources(p: &Profile) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut add = |s: &Option<String>, line: usize| {
        if let Some(s) = s.as_deref().filter(|s| has_syntax(s)) {
            out.push((s.to_string(), line));
        }
    };
    let when = |w: &Option<String>| w.as_deref().map(when_template);
    if let Some((expr, line)) = &p.when {
        add(&Some(when_template(expr)), *line);
    }
    for x in &p.packages {
        add(&Some(x.name.clone()), x.common.line);
        add(&Some(x.ensure.clone()), x.common.line);
        add(&when(&x.common.when), x.common.line);
    }
    for d in &p.directories {
        for s in [&d.path, &d.owner, &d.group] {
            add(&Some(s.clone()), d.common.line);
        }
        add(&when(&d.common.when), d.common.line);
    }
    for f in &p.files {
        for s in [&f.path, &f.owner, &f.group] {
            add(&Some(s.clone()), f.common.line);
        }
        add(&f.validate, f.common.line);
        if let FileBody::Content(c) = &f.body {
            add(&Some(c.clone()), f.body_line);
        }
        add(&when(&f.common.when), f.common.line);
    }
    for x in &p.execs {
        add(&Some(x.command.clone()), x.common.line);
        add(&x.creates, x.common.line);
        add(&x.unless, x.common.line);
        add(&when(&x.common.when), x.common.line);
    }
    for s in &p.services {
        for c in [&s.unit, &s.start, &s.stop, &s.status, &s.restart, &s.reload] {
            add(c, s.common.line);
        }
        add(&when(&s.common.when), s.common.line);
    }
    out
}

/// Maps a minijinja error to ours: template path and line, and the failing expression's text
/// when the source is at hand (minijinja's "undefined value" alone does not say which).
fn template_error(
    e: &minijinja::Error,
    path: &str,
    line_override: Option<usize>,
    source: Option<&str>,
) -> Error {
    let kind = match e.kind() {
        minijinja::ErrorKind::SyntaxError => error::ErrorKind::Syntax,
        _ => error::ErrorKind::Render,
    };
    let mut detail = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let (Some(range), Some(src)) = (e.range(), source) {
        if let Some(snippet) = src.get(range) {
            detail.push_str(&format!(" in `{}`", snippet.trim()));
        }
    }
    let line =
        line_override.map(|base| base + e.line().unwrap_or(1).saturating_sub(1)).or(e.line());
    Error::new(kind, format!("template error: {detail}")).at_file(path, line)
}

/// Compiles `hosts` on all cores, handing each result to `f` (which may keep only what it
/// needs, so ten thousand catalogs never sit in memory at once). Results come back in host order.
pub fn compile_all<R: Send>(
    compiler: &Compiler<'_>,
    env: &EnvContext,
    hosts: &[Host],
    facts: &(dyn Fn(&Host) -> toml::Table + Sync),
    f: impl Fn(&Host, Result<Catalog, Vec<Error>>) -> R + Sync,
) -> Vec<R> {
    let workers =
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(hosts.len().max(1));
    let chunk = hosts.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || {
                    part.iter()
                        .map(|h| f(h, compiler.compile(env, h, facts(h))))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("compile worker panicked")).collect()
    })
}

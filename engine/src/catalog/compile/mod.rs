//! The compiler: composition + host → catalog.
//!
//! Templates (files and templated resource attributes) are parsed once per composition into one
//! minijinja environment; per host only lookups and rendering happen, so that compiling ten
//! thousand hosts stays cheap. Errors are collected per host rather than stopping at the first.
//!
//! Each resource kind is lowered from its declaration by its own module (`package`,
//! `directory`, `file`, `exec`, `service`): a new kind gets a new module there, a new variant of
//! [`Resource`], and its probe and apply fragments in `remote`.

mod directory;
mod exec;
mod file;
mod host_state;
mod package;
mod patch;
mod render;
mod render_cache;
mod service;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, UndefinedBehavior};

use super::{Catalog, Resource};
use crate::composition::Composition;
use crate::error::{self, Error, Errors};
use crate::hiera::{HostHiera, Merge, MergeOptions, Vars};
use crate::model::{Common, Environment as Env, Host, Profile};
use host_state::HostState;
use render::{ATTR_PREFIX, AttrKind, COMMAND_PREFIX, Renderer, attribute_sources, template_error};
use render_cache::{Inputs, Key, RenderCache, Usage};

pub struct Compiler<'c> {
    comp: &'c Composition,
    jinja: Environment<'static>,
    /// (profile, attribute source, kind) → template name, for attributes with template syntax.
    attrs: HashMap<(String, String, AttrKind), String>,
    /// Attribute template name → (profile.toml path, line of the resource).
    attr_origin: HashMap<String, (String, usize)>,
    /// File template name → what it reads, for the templates whose inputs can be told, and
    /// how often hosts shared its output.
    inputs: HashMap<String, (Inputs, Usage)>,
    /// File contents already rendered, by template and inputs, shared by all hosts.
    rendered: RenderCache,
}

/// What every host of one environment shares in its template context.
pub struct EnvContext {
    name: String,
    hosts: Value,
    roles: Value,
    /// Digests of `hosts` and `roles`, which templates that list the fleet read on every host.
    hosts_digest: Option<Key>,
    roles_digest: Option<Key>,
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
        let (hosts, roles) = (Value::from(hosts), Value::from(roles));
        EnvContext {
            name: env.name.clone(),
            hosts_digest: render_cache::digest(&hosts),
            roles_digest: render_cache::digest(&roles),
            hosts,
            roles,
        }
    }

    /// The digest of an environment-wide variable (`hosts`, `roles`).
    fn digest_of(&self, name: &str) -> Option<Key> {
        match name {
            "hosts" => self.hosts_digest,
            "roles" => self.roles_digest,
            _ => None,
        }
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

impl<'c> Compiler<'c> {
    /// Parses every template of the composition; returns all syntax errors at once.
    pub fn new(comp: &'c Composition) -> Result<Compiler<'c>, Errors> {
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
        // templates named *.html.j2, *.json.j2, *.yaml.j2 by their extension. Commands are
        // shell: a value from hieradata, facts or the inventory must never run as code there.
        jinja.set_auto_escape_callback(|name| {
            if name.starts_with(COMMAND_PREFIX) {
                crate::shell::shell_escape()
            } else {
                minijinja::AutoEscape::None
            }
        });
        jinja.set_formatter(crate::shell::jinja_formatter);
        // For values a text template puts where they would otherwise be code: a shell file
        // (`export OS_PASSWORD={{ pw | shell_quote }}`), SQL (`IDENTIFIED BY {{ pw | sql_string }}`).
        jinja.add_filter("shell_quote", |v: String| crate::shell::quote(&v));
        jinja.add_filter("sql_string", |v: String| crate::sql::string_literal(&v));
        // What templates ported from Ansible use: its filters and tests, Python methods.
        crate::template::register(&mut jinja);
        let mut errors = Errors::new();
        for (path, source) in &comp.templates {
            if let Err(e) = jinja.add_template_owned(path.clone(), source.clone()) {
                errors.push(template_error(&e, path, None, Some(source)));
            }
        }
        let mut inputs = HashMap::new();
        for path in comp.templates.keys() {
            let Ok(t) = jinja.get_template(path) else { continue };
            let is_global = |name: &str| jinja.globals().any(|(g, _)| g == name);
            if let Some(i) = Inputs::of(t.source(), t.undeclared_variables(true), is_global) {
                inputs.insert(path.clone(), (i, Usage::default()));
            }
        }
        let mut attrs = HashMap::new();
        let mut attr_origin = HashMap::new();
        for profile in comp.profiles.values() {
            for (source, line, kind) in attribute_sources(profile) {
                let key = (profile.name.clone(), source.clone(), kind);
                if attrs.contains_key(&key) {
                    continue;
                }
                let prefix = if kind == AttrKind::Command { COMMAND_PREFIX } else { ATTR_PREFIX };
                let name = format!("{prefix}{}", attrs.len());
                if let Err(e) = jinja.add_template_owned(name.clone(), source) {
                    errors.push(template_error(&e, &profile.path, Some(line), None));
                    continue;
                }
                attr_origin.insert(name.clone(), (profile.path.clone(), line));
                attrs.insert(key, name);
            }
        }
        errors.into_result()?;
        Ok(Compiler { comp, jinja, attrs, attr_origin, inputs, rendered: RenderCache::default() })
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

    /// Compiles one host; on failure returns every problem found on it.
    pub fn compile(
        &self,
        env: &EnvContext,
        host: &Host,
        facts: toml::Table,
    ) -> Result<Catalog, Errors> {
        let hiera = Arc::new(self.host_hiera(host, facts.clone())?);
        // A level whose file is missing is skipped (as Hiera does), unless it is required: a
        // misspelled release must not quietly compile with the other release's settings.
        for (template, _) in &self.comp.pipeline.required_levels {
            if let Some((name, known)) = hiera.missing_level(template) {
                return Err(error::lookup(format!(
                    "host '{}': the hierarchy level '{template}' is required ([hiera] required), \
                     and for this host it is hieradata/{name}.toml, which does not exist{}; fix \
                     the host's facts or add the file",
                    host.name,
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (there are: {})", known.join(", "))
                    }
                ))
                .at_file(crate::model::PIPELINE_FILE, Some(host.line))
                .into());
            }
        }
        let role = self.comp.roles.get(&host.role).ok_or_else(|| {
            error::invalid(format!("host '{}' has unknown role '{}'", host.name, host.role))
                .at_host(&host.name)
        })?;
        let profiles = self.comp.ordered_profiles(role)?;

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
                    let knockout_prefix: Option<String> = kwargs.get("knockout_prefix")?;
                    let default: Option<Value> = kwargs.get("default")?;
                    kwargs.assert_all_used()?;
                    let bad = |e: Error| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                    };
                    let merge = merge
                        .map(|m| Merge::parse(&m))
                        .transpose()
                        .map_err(bad)?
                        .map(|strategy| MergeOptions { strategy, knockout_prefix });
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

        let mut state = HostState::new(host);
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
                let r = Renderer { compiler: self, profile, ctx: &ctx, env };
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
            self.resources(profile, &ctx, env, &mut state);
        }
        if !state.errors.is_empty() {
            return Err(state.errors.into());
        }
        let declared: HashSet<String> = state.resources.iter().map(Resource::id).collect();
        for r in &mut state.resources {
            let notify = match r {
                Resource::File(f) => &mut f.notify,
                Resource::Patch(p) => &mut p.notify,
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
                        "parameter '{key}' must be {} but is {} on host {}{}",
                        crate::text::with_article(decl.ty.name()),
                        crate::text::a_type(&value),
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

    fn resources(&self, profile: &Profile, ctx: &Value, env: &EnvContext, state: &mut HostState) {
        let r = Renderer { compiler: self, profile, ctx, env };
        // The order inside a profile is the apply order: a package may create the users and
        // directories files need, and services start once their files are in place.
        each(&r, state, profile.packages.iter().map(|p| (p, &p.common, None)));
        let dirs = directory::in_order(&profile.directories);
        each(&r, state, dirs.into_iter().map(|d| (d, &d.common, None)));
        each(&r, state, profile.files.iter().map(|f| (f, &f.common, None)));
        // After the packages that install what they patch.
        each(&r, state, profile.patches.iter().map(|p| (p, &p.common, None)));
        // An exec or service left out by its `when` is remembered under the id notify edges
        // name it by, so edges to it are dropped rather than refused.
        let execs = profile.execs.iter();
        each(&r, state, execs.map(|x| (x, &x.common, Some(format!("exec:{}", x.name)))));
        let services = profile.services.iter();
        each(&r, state, services.map(|s| (s, &s.common, Some(format!("service:{}", s.name)))));
    }
}

/// A resource declaration, lowered to a [`Resource`] for one host.
trait Lower {
    /// Renders its attributes; `None` (errors recorded in `state`) when one does not render.
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource>;
}

/// Lowers every declaration whose `when` holds on the host and adds what it becomes; a
/// declaration with a bad attribute is left out, its errors recorded. Each comes with its
/// `when` and line, and the id to remember it by when it is left out.
fn each<'d, D: Lower + 'd>(
    r: &Renderer<'_>,
    state: &mut HostState<'_>,
    decls: impl Iterator<Item = (&'d D, &'d Common, Option<String>)>,
) {
    for (decl, common, id) in decls {
        match state.keep(r.when(&common.when, common.line)) {
            Some(true) => {}
            Some(false) => {
                state.skipped.extend(id);
                continue;
            }
            None => continue,
        }
        if let Some(resource) = decl.lower(r, state) {
            state.push(resource, r.profile, common.line);
        }
    }
}

/// Compiles `hosts` on all cores, handing each result to `f` (which may keep only what it
/// needs, so ten thousand catalogs never sit in memory at once). Results come back in host order.
pub fn compile_all<R: Send>(
    compiler: &Compiler<'_>,
    env: &EnvContext,
    hosts: &[Host],
    facts: &(dyn Fn(&Host) -> toml::Table + Sync),
    f: impl Fn(&Host, Result<Catalog, Errors>) -> R + Sync,
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

/// Tiny compositions for the lowering tests: one environment `test` with host `web01` (role
/// `web`), profile `one` (and `two`, for conflicts) with the given profile.toml, and
/// `hieradata/common.toml`.
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::source::{Origin, Snapshot};

    const PIPELINE: &str = "[hiera]\nhierarchy = [\"common\"]\n\n[environments.test.hosts]\nweb01 = { address = \"10.0.0.1\", role = \"web\" }\n";

    fn build(
        profiles: &[(&str, &str)],
        common: &str,
        extra: &[(&str, &[u8])],
    ) -> Result<Catalog, Errors> {
        let names: Vec<String> = profiles.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("pipeline.toml".into(), PIPELINE.into()),
            ("roles/web.toml".into(), format!("profiles = [{}]\n", names.join(", ")).into()),
            ("hieradata/common.toml".into(), common.into()),
        ];
        for (name, text) in profiles {
            files.push((format!("profiles/{name}/profile.toml"), text.as_bytes().to_vec()));
        }
        for (path, bytes) in extra {
            files.push((path.to_string(), bytes.to_vec()));
        }
        let snapshot = Snapshot::from_files(Origin::Worktree { path: "/t".into() }, files);
        let comp = Composition::load(&snapshot)?;
        let compiler = Compiler::new(&comp)?;
        let env = comp.pipeline.environment("test")?;
        let host = &env.hosts[0];
        compiler.compile(
            &EnvContext::new(&comp, env, &|h| h.facts.clone()),
            host,
            host.facts.clone(),
        )
    }

    pub fn compile(profile: &str, common: &str) -> Result<Catalog, Errors> {
        build(&[("one", profile)], common, &[])
    }

    pub fn compile_with(
        profile: &str,
        common: &str,
        extra: &[(&str, &[u8])],
    ) -> Result<Catalog, Errors> {
        build(&[("one", profile)], common, extra)
    }

    pub fn compile_two(one: &str, two: &str) -> Result<Catalog, Errors> {
        build(&[("one", one), ("two", two)], "", &[])
    }

    /// Each resource as one short line: id plus what distinguishes it.
    pub fn resources(c: &Catalog) -> Vec<String> {
        c.resources
            .iter()
            .map(|r| match r {
                Resource::Package(p) => format!("package:{} ensure={}", p.name, p.ensure),
                Resource::Directory(d) => {
                    let who = crate::catalog::ownership(d.owner.as_deref(), d.group.as_deref());
                    format!("directory:{} {who} {}", d.path, d.mode)
                }
                other => other.id(),
            })
            .collect()
    }

    #[test]
    fn parameters_come_from_hiera_then_defaults_and_secret_ones_are_recorded() {
        let c = compile(
            "[params]\nport = { type = \"integer\", default = 80 }\npw = { secret = true }\n\n[[file]]\npath = \"/etc/app\"\ncontent = \"port={{ params.port }} pw={{ params.pw }}\\n\"\n",
            "\"one::pw\" = \"hunter22\"\n",
        )
        .unwrap();
        assert_eq!(&*c.files().next().unwrap().content, "port=80 pw=hunter22\n");
        assert!(c.secrets.redact("hunter22").starts_with("<secret:one::pw#"));
    }

    #[test]
    fn a_missing_required_parameter_names_the_key_and_the_files_searched() {
        let e = compile("[params]\npw = {}\n", "").unwrap_err();
        assert_eq!(
            e.first().unwrap().to_string(),
            "profiles/one/profile.toml:2: profile 'one' needs parameter 'pw' on host web01: set \
             'one::pw' in hieradata (searched hieradata/common.toml)"
        );
    }

    #[test]
    fn a_profile_when_leaves_it_out_with_its_required_data() {
        let c = compile(
            "when = \"host.role == 'db'\"\n[params]\npw = {}\n\n[[package]]\nname = \"x\"\n",
            "",
        )
        .unwrap();
        assert!(c.resources.is_empty());
    }

    /// Hosts whose template inputs are the same share one rendering of it; a host whose inputs
    /// differ (its own name, a `lookup` of data that differs) gets its own, so sharing never
    /// shows one host's text on another.
    #[test]
    fn a_template_renders_once_per_distinct_input() {
        let pipeline = "[hiera]\nhierarchy = [\"nodes/%{host.name}\", \"common\"]\n\n\
            [environments.test.hosts]\n\
            a = { address = \"10.0.0.1\", role = \"web\" }\n\
            b = { address = \"10.0.0.2\", role = \"web\" }\n\
            c = { address = \"10.0.0.3\", role = \"web\", facts = { zone = \"z2\" } }\n";
        let profile = "[params]\nport = { type = \"integer\" }\n\n\
            [[file]]\npath = \"/etc/fleet\"\ntemplate = \"fleet.j2\"\n\n\
            [[file]]\npath = \"/etc/me\"\ntemplate = \"me.j2\"\n\n\
            [[file]]\npath = \"/etc/looked\"\ntemplate = \"looked.j2\"\n";
        let files: Vec<(String, Vec<u8>)> = vec![
            ("pipeline.toml".into(), pipeline.into()),
            ("roles/web.toml".into(), "profiles = [\"one\"]\n".into()),
            ("hieradata/common.toml".into(), "\"one::port\" = 80\nmotd = \"hi\"\n".into()),
            ("hieradata/nodes/c.toml".into(), "\"one::port\" = 81\nmotd = \"ho\"\n".into()),
            ("profiles/one/profile.toml".into(), profile.into()),
            (
                "profiles/one/templates/fleet.j2".into(),
                "{% for h in hosts %}{{ h.name }} {{ h.facts.zone | default('-') }}:{{ params.port }}\n{% endfor %}".into(),
            ),
            ("profiles/one/templates/me.j2".into(), "{{ host.name }}\n".into()),
            ("profiles/one/templates/looked.j2".into(), "{{ lookup('motd') }}\n".into()),
        ];
        let snapshot = Snapshot::from_files(Origin::Worktree { path: "/t".into() }, files);
        let comp = Composition::load(&snapshot).unwrap();
        let compiler = Compiler::new(&comp).unwrap();
        let env = comp.pipeline.environment("test").unwrap();
        let ctx = EnvContext::new(&comp, env, &|h| h.facts.clone());
        let catalogs: Vec<Catalog> =
            env.hosts.iter().map(|h| compiler.compile(&ctx, h, h.facts.clone()).unwrap()).collect();
        let file = |c: &Catalog, path: &str| c.file(path).unwrap().content.clone();
        let fleet = "a -:80\nb -:80\nc z2:80\n";
        let (a, b, c) = (&catalogs[0], &catalogs[1], &catalogs[2]);
        assert_eq!(&*file(a, "/etc/fleet"), fleet);
        assert!(Arc::ptr_eq(&file(a, "/etc/fleet"), &file(b, "/etc/fleet")), "rendered twice");
        assert_eq!(&*file(c, "/etc/fleet"), "a -:81\nb -:81\nc z2:81\n");
        assert_eq!(
            c.file("/etc/fleet").unwrap().sha256,
            crate::digest::sha256_hex(b"a -:81\nb -:81\nc z2:81\n")
        );
        let names: Vec<String> = catalogs.iter().map(|c| file(c, "/etc/me").to_string()).collect();
        assert_eq!(names, ["a\n", "b\n", "c\n"]);
        let motd: Vec<String> =
            catalogs.iter().map(|c| file(c, "/etc/looked").to_string()).collect();
        assert_eq!(motd, ["hi\n", "hi\n", "ho\n"]);
    }
}

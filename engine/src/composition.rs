//! A whole composition at one commit: pipeline, roles, profiles, templates and hieradata,
//! loaded from a snapshot and cross-checked (every reference resolves). The typed files are
//! `model`'s, the data files `hiera`'s; this is where they meet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::{self, Error, Errors};
use crate::hiera::HieraData;
use crate::model::{FileBody, PIPELINE_FILE, Pipeline, Profile, Role, notify_target_id};
use crate::secrets::Keyring;
use crate::source::{Origin, Snapshot};
use crate::text::utf8;

#[derive(Debug)]
pub struct Composition {
    pub origin: Origin,
    pub pipeline: Pipeline,
    pub roles: BTreeMap<String, Role>,
    pub profiles: BTreeMap<String, Profile>,
    pub hiera: Arc<HieraData>,
    /// Decrypts encrypted hiera values; none by default (they are then an error).
    pub keyring: Arc<Keyring>,
    /// Template sources by path (`profiles/<p>/templates/<name>`), and the pipeline checks'
    /// shared scripts (`checks/<name>`, which check commands `{% include %}`).
    pub templates: BTreeMap<String, String>,
    /// Static file contents by path (`profiles/<p>/files/<name>`).
    pub static_files: BTreeMap<String, Vec<u8>>,
    /// Problems that do not stop a compile (e.g. hiera keys no profile reads).
    pub warnings: Vec<Error>,
}

impl Composition {
    /// Parses and cross-checks everything; on failure returns every problem found, not just
    /// the first.
    pub fn load(snapshot: &Snapshot) -> Result<Composition, Errors> {
        let mut errors = Errors::new();

        let pipeline = match snapshot.get(PIPELINE_FILE) {
            None => {
                errors.push(error::invalid(
                    "no pipeline.toml at the composition root (is this the right directory and commit?)",
                ).at_file(PIPELINE_FILE, None));
                None
            }
            Some(bytes) => match utf8(PIPELINE_FILE, bytes).and_then(Pipeline::parse) {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };

        let mut broken = Broken::default();
        let mut roles = BTreeMap::new();
        for (path, bytes) in snapshot.under("roles") {
            let Some(name) = path.strip_prefix("roles/").and_then(|p| p.strip_suffix(".toml"))
            else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            match utf8(path, bytes).and_then(|t| Role::parse(name, path, t)) {
                Ok(r) => {
                    roles.insert(name.to_string(), r);
                }
                Err(e) => {
                    broken.roles.insert(name.to_string());
                    errors.push(e)
                }
            }
        }

        let mut profiles = BTreeMap::new();
        let mut templates = BTreeMap::new();
        let mut static_files = BTreeMap::new();
        for (path, bytes) in snapshot.under("profiles") {
            let rest = &path["profiles/".len()..];
            let Some((name, inner)) = rest.split_once('/') else {
                continue;
            };
            if inner == "profile.toml" {
                match utf8(path, bytes).and_then(|t| Profile::parse(name, path, t)) {
                    Ok(p) => {
                        profiles.insert(name.to_string(), p);
                    }
                    Err(e) => {
                        broken.profiles.insert(name.to_string());
                        errors.push(e)
                    }
                }
            } else if inner.starts_with("templates/") {
                match utf8(path, bytes) {
                    Ok(t) => {
                        templates.insert(path.to_string(), t.to_string());
                    }
                    Err(e) => errors.push(e),
                }
            } else if inner.starts_with("files/") || inner.starts_with("patches/") {
                static_files.insert(path.to_string(), bytes.to_vec());
            }
        }

        for (path, bytes) in snapshot.under("checks") {
            match utf8(path, bytes) {
                Ok(t) => {
                    templates.insert(path.to_string(), t.to_string());
                }
                Err(e) => errors.push(e),
            }
        }

        let (hiera, hiera_errors) = HieraData::load(snapshot);
        errors.extend(hiera_errors);

        let Some(pipeline) = pipeline else {
            return Err(errors);
        };
        let mut warnings = Vec::new();
        cross_check(&pipeline, &roles, &profiles, &templates, &static_files, &broken, &mut errors);
        unread_keys(&hiera, &profiles, &mut warnings);

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Composition {
            origin: snapshot.origin.clone(),
            pipeline,
            roles,
            profiles,
            hiera: Arc::new(hiera),
            keyring: Arc::new(Keyring::Missing),
            templates,
            static_files,
            warnings,
        })
    }

    /// Profiles of a role in apply order: the role's order, with `requires` moved first.
    /// Only valid after [`load`](Self::load) checked the references.
    pub fn ordered_profiles(&self, role: &Role) -> Result<Vec<&Profile>, Error> {
        let mut out: Vec<&Profile> = Vec::new();
        let mut visiting = Vec::new();
        for (name, _) in &role.profiles {
            self.visit(name, &mut out, &mut visiting)?;
        }
        Ok(out)
    }

    fn visit<'a>(
        &'a self,
        name: &str,
        out: &mut Vec<&'a Profile>,
        visiting: &mut Vec<String>,
    ) -> Result<(), Error> {
        if out.iter().any(|p| p.name == name) {
            return Ok(());
        }
        let profile = &self.profiles[name];
        if visiting.iter().any(|v| v == name) {
            visiting.push(name.to_string());
            return Err(error::invalid(format!(
                "profile requires form a cycle: {}",
                visiting.join(" -> ")
            ))
            .at_file(&profile.path, None));
        }
        visiting.push(name.to_string());
        for (req, _) in &profile.requires {
            self.visit(req, out, visiting)?;
        }
        visiting.pop();
        out.push(profile);
        Ok(())
    }
}

/// Roles and profiles whose files exist but did not load: their errors are reported, and a
/// reference to one is not an "unknown" one too.
#[derive(Default)]
struct Broken {
    roles: BTreeSet<String>,
    profiles: BTreeSet<String>,
}

fn cross_check(
    pipeline: &Pipeline,
    roles: &BTreeMap<String, Role>,
    profiles: &BTreeMap<String, Profile>,
    templates: &BTreeMap<String, String>,
    static_files: &BTreeMap<String, Vec<u8>>,
    broken: &Broken,
    errors: &mut Errors,
) {
    let role_names = || roles.keys().cloned().collect::<Vec<_>>().join(", ");
    for env in pipeline.environments.values() {
        for host in &env.hosts {
            if !roles.contains_key(&host.role) && !broken.roles.contains(&host.role) {
                let add = format!("roles/{}.toml", host.role);
                let what_to_do =
                    match crate::suggest::closest(&host.role, roles.keys().map(String::as_str)) {
                        Some(k) => format!("did you mean '{k}'? (or add {add})"),
                        None => format!("add {add}"),
                    };
                errors.push(error::invalid(format!(
                    "host '{}' of environment '{}' has unknown role '{}' (roles: {}); {what_to_do}",
                    host.name,
                    env.name,
                    host.role,
                    role_names(),
                ))
                .at_file(PIPELINE_FILE, Some(host.line)));
            }
        }
        for role in &env.rollout.order {
            if !roles.contains_key(role) && !broken.roles.contains(role) {
                errors.push(
                    error::invalid(format!(
                        "rollout order of environment '{}' names unknown role '{role}' (roles: {}){}",
                        env.name,
                        role_names(),
                        crate::suggest::hint(role, roles.keys().map(String::as_str))
                    ))
                    .at_file(PIPELINE_FILE, None),
                );
            }
        }
    }

    for role in roles.values() {
        let mut declared = BTreeSet::new();
        for (name, line) in &role.profiles {
            match profiles.get(name) {
                None if broken.profiles.contains(name) => {}
                None => errors.push(
                    error::invalid(format!(
                        "role '{}' includes unknown profile '{name}'{}",
                        role.name,
                        match crate::suggest::closest(name, profiles.keys().map(String::as_str)) {
                            Some(k) => format!(
                                "; did you mean '{k}'? (or add profiles/{name}/profile.toml)"
                            ),
                            None => format!("; add profiles/{name}/profile.toml"),
                        }
                    ))
                    .at_file(&role.path, Some(*line)),
                ),
                Some(p) => declared.extend(p.declared_targets()),
            }
        }
        let included: BTreeSet<&str> = role.profiles.iter().map(|(n, _)| n.as_str()).collect();
        for (name, _) in &role.profiles {
            let Some(profile) = profiles.get(name) else {
                continue;
            };
            for (req, line) in &profile.requires {
                if !included.contains(req.as_str()) {
                    errors.push(error::invalid(format!(
                        "profile '{name}' requires profile '{req}', which role '{}' does not include",
                        role.name
                    ))
                    .at_file(&profile.path, Some(*line)));
                }
            }
            let notifies = profile
                .files
                .iter()
                .flat_map(|f| &f.notify)
                .chain(profile.patches.iter().flat_map(|p| &p.notify))
                .chain(profile.execs.iter().flat_map(|x| &x.notify));
            for (target, line) in notifies {
                let id = notify_target_id(target);
                if !declared.contains(&id) {
                    let kind = if id.starts_with("exec:") { "exec:" } else { "service:" };
                    let same_kind = declared.iter().filter(|d| d.starts_with(kind));
                    let what_to_do = if id.matches(':').count() > 1 {
                        "; notify takes a service's name or exec:NAME".to_string()
                    } else {
                        let near = same_kind.map(|d| d.trim_start_matches("service:"));
                        crate::suggest::hint(target, near)
                    };
                    errors.push(
                        error::invalid(format!(
                            "notify '{target}': no profile of role '{}' declares {id}{what_to_do}",
                            role.name
                        ))
                        .at_file(&profile.path, Some(*line)),
                    );
                }
            }
        }
    }

    for profile in profiles.values() {
        for (req, line) in &profile.requires {
            if !profiles.contains_key(req) && !broken.profiles.contains(req) {
                errors.push(
                    error::invalid(format!(
                        "profile '{}' requires unknown profile '{req}'{}",
                        profile.name,
                        crate::suggest::hint(req, profiles.keys().map(String::as_str))
                    ))
                    .at_file(&profile.path, Some(*line)),
                );
            }
        }
        for file in &profile.files {
            let (dir, name) = match &file.body {
                FileBody::Template(t) => ("templates", t),
                FileBody::Source(s) => ("files", s),
                FileBody::Content(_) => continue,
            };
            let path = format!("profiles/{}/{dir}/{name}", profile.name);
            let exists = if dir == "templates" {
                templates.contains_key(&path)
            } else {
                static_files.contains_key(&path)
            };
            if !exists {
                errors.push(
                    error::invalid(format!("file {}: {path} does not exist", file.path))
                        .at_file(&profile.path, Some(file.body_line)),
                );
            }
        }
        // Patch files are checked once here, not per host: they are not templates.
        for patch in &profile.patches {
            let path = format!("profiles/{}/patches/{}", profile.name, patch.source);
            let Some(bytes) = static_files.get(&path) else {
                errors.push(
                    error::invalid(format!("patch {}: {path} does not exist", patch.path))
                        .at_file(&profile.path, Some(patch.source_line)),
                );
                continue;
            };
            let parsed =
                std::str::from_utf8(bytes).map_err(|_| (1, "not UTF-8 text".to_string())).and_then(
                    |t| crate::patchfile::PatchFile::parse(t).map_err(|e| (e.line, e.message)),
                );
            if let Err((line, message)) = parsed {
                errors.push(error::syntax(message).at_file(&path, Some(line)));
            }
        }
    }
}

/// Hiera keys shaped like `<profile>::<param>` for a profile that has no such parameter are
/// almost always typos; warn so they do not silently fall back to the default.
fn unread_keys(hiera: &HieraData, profiles: &BTreeMap<String, Profile>, warnings: &mut Vec<Error>) {
    for file in hiera.files.values() {
        for key in file.values.keys() {
            let Some((profile, param)) = key.split_once("::") else {
                continue;
            };
            let Some(p) = profiles.get(profile) else {
                continue;
            };
            if !p.params.contains_key(param) {
                let known: Vec<&str> = p.params.keys().map(String::as_str).collect();
                warnings.push(
                    error::invalid(format!(
                        "key '{key}': profile '{profile}' has no parameter '{param}' (it has: {})",
                        known.join(", ")
                    ))
                    .at_file(&file.path, file.line_of(key)),
                );
            }
        }
    }
}

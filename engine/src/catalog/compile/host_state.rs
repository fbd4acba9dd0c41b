//! What lowering one host collects: its resources so far, its secrets, its errors, and which
//! paths and resource ids are taken.

use std::collections::{HashMap, HashSet};

use crate::catalog::Resource;
use crate::error::{self, Error};
use crate::model::{Host, Profile};
use crate::secrets::Secrets;

/// One host being lowered. Invariant: `paths` holds every managed path of `resources`.
pub(super) struct HostState<'h> {
    pub host: &'h Host,
    pub resources: Vec<Resource>,
    pub secrets: Secrets,
    pub errors: Vec<Error>,
    /// Managed path → (profile, profile.toml path, line), to refuse two profiles managing one path.
    pub paths: HashMap<String, (String, String, usize)>,
    /// Ids of services/execs left out by `when`.
    pub skipped: HashSet<String>,
}

impl<'h> HostState<'h> {
    pub fn new(host: &'h Host) -> HostState<'h> {
        HostState {
            host,
            resources: Vec::new(),
            secrets: Secrets::default(),
            errors: Vec::new(),
            paths: HashMap::new(),
            skipped: HashSet::new(),
        }
    }

    /// Records a failed attribute and gives `None`, so a resource with any bad attribute is
    /// left out while the rest of the host still reports its own problems.
    pub fn ok<T>(&mut self, r: Result<T, Error>) -> Option<T> {
        r.map_err(|e| self.errors.push(e.at_host(&self.host.name))).ok()
    }

    pub fn keep(&mut self, r: Result<bool, Error>) -> Option<bool> {
        self.ok(r)
    }

    /// Adds a lowered resource unless it conflicts with one already there (two profiles
    /// managing one path; a resource declared twice, except an identical shared package).
    pub fn push(&mut self, resource: Resource, profile: &Profile, line: usize) {
        let id = resource.id();
        let path = match &resource {
            Resource::File(f) => Some(&f.path),
            Resource::Directory(d) => Some(&d.path),
            Resource::Patch(p) => Some(&p.path),
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

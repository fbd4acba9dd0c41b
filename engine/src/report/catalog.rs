//! A host's compiled catalog as text (every resource, rendered files) or JSON.

use std::fmt::Write;

use crate::catalog::{Catalog, Resource, ownership};
use crate::source::Origin;

pub fn text(catalog: &Catalog, origin: &Origin) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# host {} (role {}, environment {}, {}:{})\n# from {}",
        catalog.host,
        catalog.role,
        catalog.environment,
        catalog.address,
        catalog.port,
        origin.label()
    );
    for r in &catalog.resources {
        out.push('\n');
        match r {
            Resource::Package(p) => {
                let _ = writeln!(out, "package {} ensure={} [{}]", p.name, p.ensure, p.profile);
            }
            Resource::Directory(d) => {
                let _ = writeln!(
                    out,
                    "directory {} {} {} [{}]",
                    d.path,
                    ownership(d.owner.as_deref(), d.group.as_deref()),
                    d.mode,
                    d.profile
                );
            }
            Resource::File(f) => {
                let _ = writeln!(
                    out,
                    "file {} {} {} sha256:{} [{}]",
                    f.path,
                    ownership(f.owner.as_deref(), f.group.as_deref()),
                    f.mode,
                    &f.sha256[..12],
                    f.profile
                );
                if let Some(v) = &f.validate {
                    let _ = writeln!(out, "  validate: {v}");
                }
                if !f.notify.is_empty() {
                    let _ = writeln!(out, "  notify: {}", f.notify.join(", "));
                }
                for line in f.content.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
                if !f.content.is_empty() && !f.content.ends_with('\n') {
                    let _ = writeln!(out, "  \\ no newline at end of file");
                }
            }
            Resource::Patch(p) => {
                let _ = writeln!(
                    out,
                    "patch {} {} sha256:{} [{}]",
                    p.path,
                    p.source,
                    &p.sha256[..12],
                    p.profile
                );
                if !p.notify.is_empty() {
                    let _ = writeln!(out, "  notify: {}", p.notify.join(", "));
                }
            }
            Resource::Exec(x) => {
                let _ = writeln!(out, "exec {} [{}]", x.name, x.profile);
                let _ = writeln!(out, "  command: {}", x.command);
                for (k, v) in [("creates", &x.creates), ("unless", &x.unless)] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "  {k}: {v}");
                    }
                }
                if x.refreshonly {
                    let _ = writeln!(out, "  refreshonly: true");
                }
                if !x.notify.is_empty() {
                    let _ = writeln!(out, "  notify: {}", x.notify.join(", "));
                }
            }
            Resource::Service(s) => {
                let _ = writeln!(
                    out,
                    "service {} ensure={} enable={} provider={} [{}]",
                    s.name, s.ensure, s.enable, s.provider, s.profile
                );
                for (k, v) in [
                    ("unit", &s.unit),
                    ("start", &s.start),
                    ("stop", &s.stop),
                    ("status", &s.status),
                    ("restart", &s.restart),
                    ("reload", &s.reload),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(out, "  {k}: {v}");
                    }
                }
            }
        }
    }
    out
}

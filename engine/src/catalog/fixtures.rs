//! Resources for unit tests of what consumes catalogs (plan, diff): a file of profile `p`
//! that notifies `service:app`, and that service.

use super::{Catalog, File, Mode, Resource, Service};
use crate::digest::sha256_hex;

pub(crate) fn file(path: &str, content: &str) -> Resource {
    Resource::File(File {
        profile: "p".into(),
        path: path.into(),
        content: content.into(),
        sha256: sha256_hex(content.as_bytes()),
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: Mode(0o644),
        validate: None,
        notify: vec!["service:app".into()],
        secret: false,
        timeout: None,
        links: Default::default(),
    })
}

/// The `app` service, running, started by `start`.
pub(crate) fn service(start: &str) -> Resource {
    Resource::Service(Service {
        profile: "p".into(),
        name: "app".into(),
        ensure: "running".into(),
        enable: true,
        provider: "command".into(),
        unit: None,
        start: Some(start.into()),
        stop: None,
        status: Some("status".into()),
        restart: None,
        reload: None,
        timeout: None,
        ready: None,
        ready_timeout: None,
        log: None,
    })
}

/// A catalog of `resources` for `host` (environment `e`), no secrets.
pub(crate) fn catalog(host: &str, role: &str, resources: Vec<Resource>) -> Catalog {
    Catalog {
        host: host.into(),
        environment: "e".into(),
        role: role.into(),
        address: "a".into(),
        port: 22,
        resources,
        secrets: Default::default(),
    }
}

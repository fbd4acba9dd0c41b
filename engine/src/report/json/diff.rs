//! `diff --format json`: what moving an environment from one commit to another changes,
//! each distinct change once with its hosts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Commit, Problem, SchemaVersion};
use crate::plan::group::Item;
use crate::report::review::Review;

#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffDoc<'a> {
    pub schema_version: SchemaVersion,
    pub environment: &'a str,
    pub from: Commit,
    pub to: Commit,
    /// How many changes: each change on each host once, restarts included, and each host
    /// added or removed as one (`0`: nothing changes; `--exit-code` then exits 0, else 2).
    pub changes: usize,
    /// Hosts compared that do not change.
    pub unchanged: usize,
    /// Hosts that change, in inventory order.
    pub changed_hosts: Vec<HostRole<'a>>,
    /// Hosts only in `to`'s inventory.
    pub added: Vec<HostRole<'a>>,
    /// Hosts only in `from`'s inventory.
    pub removed: Vec<HostRole<'a>>,
    /// Each distinct change once, with the hosts it is made on.
    pub groups: Vec<DiffGroup<'a>>,
    /// Always empty: a diff that cannot compile a host stops, with a `Failure` document.
    pub errors: Vec<Problem>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HostRole<'a> {
    pub host: &'a str,
    pub role: &'a str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffGroup<'a> {
    /// `4 compute hosts`, `5 hosts (3 compute, 2 controller)`.
    pub label: String,
    /// The hosts' diffs differ outside the changed lines: `item` shows the first host's.
    pub varies: bool,
    pub hosts: &'a [String],
    /// Role → how many of `hosts` have it.
    pub roles: &'a BTreeMap<String, usize>,
    pub item: &'a Item,
}

pub fn document<'a>(review: &'a Review, from: Commit, to: Commit) -> DiffDoc<'a> {
    let pairs = |list: &'a [(String, String)]| {
        list.iter().map(|(h, r)| HostRole { host: h, role: r }).collect::<Vec<_>>()
    };
    let per_host: usize = review.hosts.iter().map(|(_, _, groups)| groups.len()).sum();
    DiffDoc {
        schema_version: SchemaVersion,
        environment: &review.environment,
        from,
        to,
        changes: per_host + review.added.len() + review.removed.len(),
        unchanged: review.unchanged,
        changed_hosts: review.hosts.iter().map(|(h, r, _)| HostRole { host: h, role: r }).collect(),
        added: pairs(&review.added),
        removed: pairs(&review.removed),
        groups: review
            .groups
            .iter()
            .map(|g| DiffGroup {
                label: g.label(),
                varies: g.varies,
                hosts: &g.hosts,
                roles: &g.roles,
                item: &g.item,
            })
            .collect(),
        errors: review
            .errors
            .iter()
            .map(|(h, e)| Problem::on_host(crate::error::ErrorKind::Host, h, e))
            .collect(),
    }
}

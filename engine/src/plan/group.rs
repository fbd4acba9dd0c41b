//! Grouping the same change across hosts, so a reviewer reads it once ("12 compute hosts: …")
//! in a diff or a plan.

use std::collections::BTreeMap;

use serde::Serialize;

use super::compare::{HostDiff, Redefined};
use super::{Change, Restart};

/// One change shared by a group of hosts.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    Change(Change),
    Restart(Restart),
    Redefined(Redefined),
}

impl Item {
    /// What makes two hosts' changes "the same change": the same resource, action and
    /// changed lines. Hashes and diff context may differ (a file that also names its host).
    fn key(&self) -> String {
        let mut item = self.clone();
        if let Item::Change(c) = &mut item {
            match c {
                Change::CreateFile { sha256, diff, .. } => {
                    sha256.clear();
                    *diff = changed_lines(diff);
                }
                Change::UpdateFile { from_sha256, to_sha256, diff, .. } => {
                    from_sha256.clear();
                    to_sha256.clear();
                    *diff = changed_lines(diff);
                }
                Change::RemoveFile { sha256, .. } => sha256.clear(),
                Change::PatchFile { from_sha256, to_sha256, diff, .. } => {
                    from_sha256.clear();
                    to_sha256.clear();
                    *diff = changed_lines(diff);
                }
                _ => {}
            }
        }
        serde_json::to_string(&item).expect("json")
    }
}

/// The `+`/`-` lines of a unified diff, without its `---`/`+++` header (a removed line may
/// itself start with `--`: a command-line flag, a YAML document marker).
fn changed_lines(diff: &str) -> String {
    diff.lines()
        .skip_while(|l| !l.starts_with("@@"))
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// A change made on one or more hosts, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// As on the first of `hosts`.
    pub item: Item,
    /// In the order the hosts were given.
    pub hosts: Vec<String>,
    /// Role → how many of the hosts have it.
    pub roles: BTreeMap<String, usize>,
    /// The hosts' diffs differ outside the changed lines (context, hashes): `item` shows the
    /// first host's.
    pub varies: bool,
}

impl Group {
    /// `4 compute hosts`, `1 controller host`, `5 hosts (3 compute, 2 controller)`.
    pub fn label(&self) -> String {
        let n = self.hosts.len();
        let noun = if n == 1 { "host" } else { "hosts" };
        match self.roles.len() {
            1 => format!("{n} {} {noun}", self.roles.keys().next().expect("one role")),
            _ => {
                let parts: Vec<String> =
                    self.roles.iter().map(|(role, k)| format!("{k} {role}")).collect();
                format!("{n} {noun} ({})", parts.join(", "))
            }
        }
    }
}

/// Groups the same change across hosts, in the order changes first appear.
pub fn group(diffs: &[HostDiff]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for d in diffs {
        let items = d
            .changes
            .iter()
            .cloned()
            .map(Item::Change)
            .chain(d.redefined.iter().cloned().map(Item::Redefined))
            .chain(d.restarts.iter().cloned().map(Item::Restart));
        for item in items {
            let i = match index.get(&item.key()) {
                Some(&i) => {
                    groups[i].varies |= groups[i].item != item;
                    i
                }
                None => {
                    index.insert(item.key(), groups.len());
                    groups.push(Group {
                        item,
                        hosts: Vec::new(),
                        roles: BTreeMap::new(),
                        varies: false,
                    });
                    groups.len() - 1
                }
            };
            groups[i].hosts.push(d.host.clone());
            *groups[i].roles.entry(d.role.clone()).or_default() += 1;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::{catalog, file, service};
    use crate::plan::compare::diff_host;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";

    #[test]
    fn identical_changes_are_grouped_with_a_role_label() {
        let from = |h: &str, role: &str| {
            catalog(h, role, vec![file("/etc/app.conf", "a\n"), service("go")])
        };
        let to = |h: &str, role: &str, c: &str| {
            catalog(h, role, vec![file("/etc/app.conf", c), service("go")])
        };
        let diffs: Vec<HostDiff> = [
            ("c1", "compute", "b\n"),
            ("c2", "compute", "b\n"),
            ("c3", "compute", "b\n"),
            ("k1", "controller", "b\n"),
            ("k2", "controller", "other\n"),
        ]
        .iter()
        .map(|(h, r, c)| diff_host(&from(h, r), &to(h, r, c), A, B).unwrap())
        .collect();
        let groups = group(&diffs);
        let summary: Vec<(String, Vec<String>)> = groups
            .iter()
            .filter(|g| matches!(g.item, Item::Change(_)))
            .map(|g| (g.label(), g.hosts.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "4 hosts (3 compute, 1 controller)".to_string(),
                    vec!["c1".into(), "c2".into(), "c3".into(), "k1".into()]
                ),
                ("1 controller host".to_string(), vec!["k2".into()]),
            ]
        );
        let restarts: Vec<&Group> =
            groups.iter().filter(|g| matches!(g.item, Item::Restart(_))).collect();
        assert_eq!(restarts.len(), 1, "same restart for the same reason is one group");
        assert_eq!(restarts[0].hosts.len(), 5);
    }

    #[test]
    fn removed_lines_that_look_like_headers_keep_changes_apart() {
        let from = |h: &str, flag: &str| catalog(h, "r", vec![file("/etc/app.args", flag)]);
        let to = |h: &str| catalog(h, "r", vec![file("/etc/app.args", "--port=1\n")]);
        let diffs = vec![
            diff_host(&from("h1", "--max=100\n"), &to("h1"), A, B).unwrap(),
            diff_host(&from("h2", "--max=200\n"), &to("h2"), A, B).unwrap(),
        ];
        let groups = group(&diffs);
        assert_eq!(groups.len(), 2, "different removed lines are different changes: {groups:?}");
    }
}

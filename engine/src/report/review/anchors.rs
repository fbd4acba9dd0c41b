//! Ids for the sections of the HTML report, so a reviewer can link to a file, a host or a
//! change: made from the names they stand for, unique within the page, and the same on every
//! run of the same diff.

use std::collections::BTreeSet;

/// Hands out ids; allocation order decides who gets a suffix when two names make the same id,
/// so callers allocate in a fixed order (hosts, then files, then changes).
#[derive(Default)]
pub(super) struct Anchors {
    taken: BTreeSet<String>,
}

impl Anchors {
    /// `prefix-part1--part2…`, each part made of ASCII letters, digits, `_` and `-` only (safe
    /// in a URL fragment and a CSS selector without escaping), with `-2`, `-3`… appended when
    /// that id is already taken.
    pub(super) fn id(&mut self, prefix: &str, parts: &[&str]) -> String {
        let slugs: Vec<String> = parts.iter().map(|p| slug(p)).collect();
        let base = if slugs.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}-{}", slugs.join("--"))
        };
        let mut id = base.clone();
        let mut n = 2;
        while !self.taken.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// Letters, digits and `_` kept; every run of anything else becomes one `-`, so a slug never
/// holds the `--` that separates parts.
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() { "x".to_string() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_readable_and_safe() {
        let mut a = Anchors::default();
        assert_eq!(a.id("file", &["/etc/chrony/chrony.conf"]), "file-etc-chrony-chrony-conf");
        assert_eq!(a.id("host", &["db01.example.net"]), "host-db01-example-net");
        assert_eq!(
            a.id("change", &["service:nova-api", "compute_01"]),
            "change-service-nova-api--compute_01"
        );
        assert_eq!(a.id("file", &["/ünïcode/"]), "file-n-code");
        assert_eq!(a.id("host", &["…"]), "host-x");
    }

    #[test]
    fn names_that_make_the_same_id_get_a_suffix_in_allocation_order() {
        let mut a = Anchors::default();
        assert_eq!(a.id("file", &["/etc/a.b"]), "file-etc-a-b");
        assert_eq!(a.id("file", &["/etc/a/b"]), "file-etc-a-b-2");
        assert_eq!(a.id("file", &["/etc/a b"]), "file-etc-a-b-3");
        // The same names in the same order, the same ids.
        let mut again = Anchors::default();
        let ids: Vec<String> =
            ["/etc/a.b", "/etc/a/b", "/etc/a b"].iter().map(|p| again.id("file", &[p])).collect();
        assert_eq!(ids, ["file-etc-a-b", "file-etc-a-b-2", "file-etc-a-b-3"]);
    }
}

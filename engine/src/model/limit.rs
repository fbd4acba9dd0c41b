//! `--limit`: the hosts of an environment a command works on. A limit that selects no host is
//! one error for every command that takes it (plan, apply, diff): it says which part of the
//! pattern matched nothing, what that part was matched against, the closest name when it looks
//! like a typo, and the names it could have used.

use super::pipeline::Host;
use super::stages::matches;
use crate::error::{self, Error, Result};
use crate::suggest;

/// The syntax, repeated in the error so that nobody has to look it up.
const SYNTAX: &str = "--limit takes host names or globs (compute*), role:NAME, fact:KEY=VALUE \
or fact:KEY, joined by ',' (any of) or '&' (all of)";

/// The hosts of `hosts` that `limit` selects (all without a limit), in their order; an error
/// when a limit selects none.
pub fn select<'e>(env: &str, hosts: &'e [Host], limit: Option<&str>) -> Result<Vec<&'e Host>> {
    let all: Vec<&Host> = hosts.iter().collect();
    let Some(limit) = limit else { return Ok(all) };
    let selected: Vec<&Host> = all.iter().copied().filter(|h| matches(limit, h)).collect();
    if selected.is_empty() {
        return Err(no_match(env, &all, limit));
    }
    Ok(selected)
}

/// Why `limit` selects none of `hosts` (the environment's inventory), and what would match.
pub fn no_match(env: &str, hosts: &[&Host], limit: &str) -> Error {
    let terms: Vec<&str> = limit.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let mut reasons = Vec::new();
    for term in &terms {
        let selectors: Vec<&str> = term.split('&').map(str::trim).collect();
        let before = reasons.len();
        for s in &selectors {
            if !hosts.iter().any(|h| matches(s, h)) {
                reasons.push(selector_reason(s, hosts));
            }
        }
        if reasons.len() == before && selectors.len() > 1 {
            reasons.push(format!("no host matches all of '{term}' at once"));
        }
    }
    if terms.is_empty() {
        reasons.push("the pattern is empty".to_string());
    }
    let mut roles: Vec<&str> = hosts.iter().map(|h| h.role.as_str()).collect();
    roles.sort_unstable();
    roles.dedup();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let mut why = reasons.join("; ");
    if !why.ends_with('?') {
        why.push('.');
    }
    error::usage(format!(
        "--limit '{limit}' matches no host of environment '{env}': {why} {SYNTAX}; the hosts \
         of '{env}' are {} (roles: {})",
        list(&names, 12),
        roles.join(", ")
    ))
}

/// What one selector that matches no host was compared with.
fn selector_reason(selector: &str, hosts: &[&Host]) -> String {
    if let Some(role) = selector.strip_prefix("role:") {
        let roles = hosts.iter().map(|h| h.role.as_str());
        return format!("no host has role '{role}'{}", suggest::hint(role, roles));
    }
    if let Some(fact) = selector.strip_prefix("fact:") {
        let (key, value) = match fact.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (fact.trim(), None),
        };
        let mut keys: Vec<&str> =
            hosts.iter().flat_map(|h| h.facts.keys().map(String::as_str)).collect();
        keys.sort_unstable();
        keys.dedup();
        if !keys.contains(&key) {
            let known = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            return format!(
                "no host has a fact '{key}' (static facts in pipeline.toml: {known}){}",
                suggest::hint(key, keys.iter().copied())
            );
        }
        let mut values: Vec<String> = hosts
            .iter()
            .filter_map(|h| h.facts.get(key))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        values.sort_unstable();
        values.dedup();
        let value = value.unwrap_or_default();
        return format!(
            "no host has {key}={value} (values of {key}: {}){}",
            values.join(", "),
            suggest::hint(value, values.iter().map(String::as_str))
        );
    }
    let names = hosts.iter().map(|h| h.name.as_str());
    if selector.contains('*') {
        format!("no host name matches '{selector}'")
    } else {
        format!("no host is called '{selector}'{}", suggest::hint(selector, names))
    }
}

/// `a, b, c` or, past `max` names, `a, b, … (+N more)`.
fn list(names: &[&str], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!("{}, … (+{} more)", names[..max].join(", "), names.len() - max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<Host> {
        let text = "[hiera]\nhierarchy = [\"common\"]\n[environments.p.hosts]\ndb01 = { address = \"a\", role = \"database\" }\ncompute01 = { address = \"a\", role = \"compute\", facts = { region = \"tokyo\" } }\ncompute02 = { address = \"a\", role = \"compute\", facts = { region = \"osaka\" } }\n";
        crate::model::Pipeline::parse(text).unwrap().environment("p").unwrap().hosts.clone()
    }

    fn error(limit: &str) -> String {
        select("p", &hosts(), Some(limit)).unwrap_err().to_string()
    }

    #[test]
    fn a_limit_selects_in_inventory_order() {
        let hosts = hosts();
        let names = |l| -> Vec<String> {
            select("p", &hosts, l).unwrap().iter().map(|h| h.name.clone()).collect()
        };
        assert_eq!(names(None), ["compute01", "compute02", "db01"]);
        assert_eq!(names(Some("db01, role:compute & fact:region=osaka")), ["compute02", "db01"]);
    }

    #[test]
    fn a_limit_matching_nothing_says_which_part_and_what_it_could_be() {
        let e = error("compute1");
        assert!(
            e.starts_with(
                "--limit 'compute1' matches no host of environment 'p': no host is called \
                 'compute1'; did you mean 'compute01'? --limit takes host names"
            ),
            "{e}"
        );
        assert!(
            e.ends_with(
                "the hosts of 'p' are compute01, compute02, db01 (roles: compute, database)"
            ),
            "{e}"
        );
        assert!(
            error("role:compte").contains("no host has role 'compte'; did you mean 'compute'?")
        );
        assert!(error("fact:regoin=osaka").contains(
            "no host has a fact 'regoin' (static facts in pipeline.toml: region); did you mean 'region'?"
        ));
        assert!(error("fact:region=osak").contains(
            "no host has region=osak (values of region: osaka, tokyo); did you mean 'osaka'?"
        ));
        assert!(
            error("role:database & fact:region=tokyo")
                .contains(": no host matches all of 'role:database & fact:region=tokyo' at once.")
        );
        assert!(error("web*").contains(": no host name matches 'web*'."));
        assert!(error(" , ").contains(": the pattern is empty."));
    }
}

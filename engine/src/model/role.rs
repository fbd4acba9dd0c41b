//! Roles: `roles/<name>.toml`, an ordered list of profiles and nothing else.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{self, Result};
use crate::text::{line_of, parse_toml};

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub description: String,
    /// Profile names with the line they are listed on, in the role's order.
    pub profiles: Vec<(String, usize)>,
}

/// Every key a role may have; anything else is a parameter, which roles do not take.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    #[serde(default)]
    description: String,
    profiles: Vec<Spanned<String>>,
}

impl Role {
    pub fn parse(name: &str, path: &str, text: &str) -> Result<Role> {
        // The roles-and-profiles rule gets its own message; serde's "unknown field" would not
        // tell the user where the data belongs instead.
        if let Ok(table) = text.parse::<toml::Table>()
            && let Some(key) = table.keys().find(|k| *k != "description" && *k != "profiles")
        {
            let line = find_key_line(text, key);
            return Err(error::invalid(format!(
                "role '{name}' sets '{key}', but roles only list profiles and take no \
                     parameters; put data in hieradata/roles/{name}.toml"
            ))
            .at_file(path, line));
        }
        let file: RoleFile = parse_toml(path, text)?;
        let mut seen = BTreeSet::new();
        let mut profiles = Vec::new();
        for p in file.profiles {
            let line = line_of(text, p.span().start);
            let profile = p.into_inner();
            if !seen.insert(profile.clone()) {
                return Err(error::invalid(format!(
                    "role '{name}' lists profile '{profile}' twice"
                ))
                .at_file(path, Some(line)));
            }
            profiles.push((profile, line));
        }
        Ok(Role {
            name: name.to_string(),
            path: path.to_string(),
            description: file.description,
            profiles,
        })
    }
}

/// The line of a top-level `key =` in a TOML text, if it can be found by a plain scan.
pub fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let l = line.trim_start();
            let rest = l
                .strip_prefix(&format!("\"{key}\""))
                .or_else(|| l.strip_prefix(&format!("'{key}'")))
                .or_else(|| l.strip_prefix(key));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_lists_profiles_in_order() {
        let r = Role::parse(
            "db",
            "roles/db.toml",
            "description = \"x\"\nprofiles = [\"a\",\n \"b\"]\n",
        )
        .unwrap();
        assert_eq!(r.profiles, vec![("a".into(), 2), ("b".into(), 3)]);
    }

    #[test]
    fn role_with_parameter_is_refused_with_line() {
        let e =
            Role::parse("db", "roles/db.toml", "profiles = [\"a\"]\nport = 3306\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("roles/db.toml:2: role 'db' sets 'port'"), "{msg}");
        assert!(msg.contains("hieradata/roles/db.toml"), "{msg}");
    }

    #[test]
    fn duplicate_profile_is_refused() {
        let e = Role::parse("db", "roles/db.toml", "profiles = [\"a\", \"a\"]\n").unwrap_err();
        assert!(e.to_string().contains("twice"));
    }
}

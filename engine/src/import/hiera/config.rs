//! hiera.yaml (version 5) as stackdeploy hierarchy levels: each `path`, or each of `paths`,
//! of a level whose backend reads YAML or JSON files becomes a level, in order. Everything
//! else (globs, mapped paths, URIs, other backends) is reported with its line and left out.

use super::interpolation::{Place, rewrite};
use super::yaml::{self, Kind, Node};
use super::{Collector, strip_data_extension};
use crate::error::{self, Result};

/// A parsed hiera.yaml: where its data is and the levels that convert.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `defaults.datadir`, default `data`, relative to hiera.yaml's directory.
    pub datadir: String,
    /// Every level's own `datadir`, as written (each relative to hiera.yaml's directory).
    pub level_datadirs: Vec<String>,
    pub(super) levels: Vec<Level>,
}

/// One stackdeploy level from a Hiera level.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Level {
    /// The Hiera level's own `datadir`, when it has one.
    pub datadir: Option<String>,
    /// The stackdeploy level, relative to its datadir: `nodes/%{host.name}`.
    pub path: String,
}

const FUNCTION_KEYS: &[&str] =
    &["data_hash", "lookup_key", "data_dig", "hiera3_backend", "v4_data_hash"];
const LOCATION_KEYS: &[&str] = &["path", "paths", "glob", "globs", "uri", "uris", "mapped_paths"];

impl Config {
    /// Parses hiera.yaml; what does not convert goes to `report`. An error when the file is
    /// not YAML or not a version 5 configuration.
    pub(super) fn parse(file: &str, text: &str, report: &mut Collector) -> Result<Config> {
        let doc = yaml::parse(text).map_err(|e| {
            error::syntax(format!("YAML: {}", e.message)).at_file(file, Some(e.line))
        })?;
        let Some(root) = doc.root else {
            return Err(error::invalid(
                "empty file: expected a Hiera 5 configuration (version: 5)",
            )
            .at_file(file, Some(1)));
        };
        let Kind::Map { entries, .. } = &root.kind else {
            return Err(error::invalid("expected a hash with version, defaults and hierarchy")
                .at_file(file, Some(root.line)));
        };
        let entries = yaml::mapping_entries(entries).entries;
        let get = |name: &str| entries.iter().find(|(k, _)| text_of(k) == Some(name)).copied();
        match get("version") {
            Some((_, v)) if text_of(v) == Some("5") => {}
            Some((k, v)) => {
                let version = text_of(v).unwrap_or("?");
                return Err(error::invalid(format!(
                    "this is a Hiera {version} configuration (version: {version}); only Hiera 5 \
                     (version: 5) is imported. Convert it to version 5 first (Puppet's \"Convert \
                     a version 3 hiera.yaml to version 5\"), then import again"
                ))
                .at_file(file, Some(k.line)));
            }
            None => {
                let v3 = entries.iter().any(|(k, _)| {
                    matches!(text_of(k), Some(":backends" | ":hierarchy" | "backends" | ":yaml"))
                });
                let what = if v3 {
                    "a Hiera 3 configuration (:backends, :hierarchy)"
                } else {
                    "no `version: 5`"
                };
                return Err(error::invalid(format!(
                    "this hiera.yaml has {what}; only Hiera 5 (version: 5) is imported. Convert \
                     it to version 5 first (Puppet's \"Convert a version 3 hiera.yaml to version \
                     5\"), then import again"
                ))
                .at_file(file, Some(root.line)));
            }
        }
        let mut config =
            Config { datadir: "data".into(), level_datadirs: Vec::new(), levels: Vec::new() };
        // Without `defaults`, Hiera's are datadir `data` and data_hash `yaml_data`.
        let mut default_backend = match get("defaults") {
            None => Some(("data_hash".to_string(), "yaml_data".to_string())),
            Some(_) => None,
        };
        for (key, value) in &entries {
            match text_of(key) {
                Some("version") => {}
                Some("defaults") => {
                    let Kind::Map { entries: defaults, .. } = &value.kind else {
                        return Err(
                            error::invalid("defaults must be a hash").at_file(file, Some(key.line))
                        );
                    };
                    for (k, v) in yaml::mapping_entries(defaults).entries {
                        match text_of(k) {
                            Some("datadir") => match text_of(v) {
                                Some(d) if !d.contains("%{") => config.datadir = d.to_string(),
                                _ => report.problem(
                                    file,
                                    Some(k.line),
                                    "defaults.datadir is interpolated or not a path".into(),
                                    "name the data directory with --datadir".into(),
                                ),
                            },
                            Some(f) if FUNCTION_KEYS.contains(&f) => {
                                default_backend =
                                    Some((f.to_string(), text_of(v).unwrap_or("").to_string()));
                            }
                            _ => {}
                        }
                    }
                }
                Some("hierarchy") => {}
                Some("default_hierarchy") => report.problem(
                    file,
                    Some(key.line),
                    "default_hierarchy (a module's fallback data) is not converted".into(),
                    "stackdeploy has one hierarchy: add its levels to the hierarchy (lowest \
                     priority last), or move the data into common"
                        .into(),
                ),
                other => report.problem(
                    file,
                    Some(key.line),
                    format!("unknown top-level key `{}`", other.unwrap_or("?")),
                    "Hiera 5 has version, defaults, hierarchy and default_hierarchy; ignored"
                        .into(),
                ),
            }
        }
        match get("hierarchy") {
            None => {
                report.note(format!(
                    "{file}: no hierarchy: Hiera's default one level, common.yaml, is used"
                ));
                config.levels.push(Level { datadir: None, path: "common".into() });
            }
            Some((k, v)) => {
                let Kind::Seq { items, .. } = &v.kind else {
                    return Err(error::invalid("hierarchy must be a list of levels")
                        .at_file(file, Some(k.line)));
                };
                for level in items {
                    config.level(file, level, default_backend.as_ref(), report);
                }
            }
        }
        Ok(config)
    }

    /// The stackdeploy levels of one Hiera level, or a report of why there are none.
    fn level(
        &mut self,
        file: &str,
        level: &Node,
        default_backend: Option<&(String, String)>,
        report: &mut Collector,
    ) {
        let Kind::Map { entries, .. } = &level.kind else {
            report.problem(
                file,
                Some(level.line),
                "a hierarchy level that is not a hash".into(),
                "left out".into(),
            );
            return;
        };
        let entries = yaml::mapping_entries(entries).entries;
        let get = |name: &str| entries.iter().find(|(k, _)| text_of(k) == Some(name)).copied();
        let name = get("name").and_then(|(_, v)| text_of(v)).unwrap_or("(no name)").to_string();
        let backend = FUNCTION_KEYS
            .iter()
            .find_map(|f| {
                get(f).map(|(k, v)| (f.to_string(), text_of(v).unwrap_or("").to_string(), k.line))
            })
            .or_else(|| default_backend.map(|(f, n)| (f.clone(), n.clone(), level.line)));
        let Some((kind, function, backend_line)) = backend else {
            report.problem(
                file,
                Some(level.line),
                format!(
                    "level \"{name}\" has no backend (data_hash, lookup_key) and defaults name none"
                ),
                "left out; Puppet refuses such a level too".into(),
            );
            return;
        };
        match (kind.as_str(), function.as_str()) {
            ("data_hash", "yaml_data" | "json_data") | ("lookup_key", "eyaml_lookup_key") => {}
            _ => {
                report.problem(
                    file,
                    Some(backend_line),
                    format!("level \"{name}\": backend {kind}: {function} is not converted"),
                    backend_advice(&function),
                );
                return;
            }
        }
        let datadir = match get("datadir") {
            None => None,
            Some((k, v)) => match text_of(v) {
                Some(d) if !d.contains("%{") => Some(d.to_string()),
                _ => {
                    report.problem(
                        file,
                        Some(k.line),
                        format!("level \"{name}\": its datadir is interpolated"),
                        "left out: stackdeploy's data is all under hieradata/; interpolate the \
                         level's path instead"
                            .into(),
                    );
                    return;
                }
            },
        };
        if let Some(d) = &datadir
            && !self.level_datadirs.contains(d)
        {
            self.level_datadirs.push(d.clone());
        }
        let location = LOCATION_KEYS.iter().find_map(|l| get(l).map(|(k, v)| (*l, k, v)));
        let paths: Vec<&Node> = match location {
            Some(("path", _, v)) => vec![v],
            Some(("paths", k, v)) => match &v.kind {
                Kind::Seq { items, .. } => items.iter().collect(),
                _ => {
                    report.problem(
                        file,
                        Some(k.line),
                        format!("level \"{name}\": paths is not a list"),
                        "left out".into(),
                    );
                    return;
                }
            },
            Some((what, k, v)) => {
                let shown = match text_of(v) {
                    Some(t) => format!(" \"{t}\""),
                    None => String::new(),
                };
                report.problem(
                    file,
                    Some(k.line),
                    format!("level \"{name}\": {what}{shown} is not converted"),
                    location_advice(what),
                );
                return;
            }
            None => {
                report.problem(
                    file,
                    Some(level.line),
                    format!("level \"{name}\" has no path"),
                    "left out; give it a path (Puppet requires one for file backends)".into(),
                );
                return;
            }
        };
        for node in paths {
            let Some(path) = text_of(node) else {
                report.problem(
                    file,
                    Some(node.line),
                    format!("level \"{name}\": a path that is not a string"),
                    "left out".into(),
                );
                continue;
            };
            match rewrite(path, Place::Path) {
                Ok((converted, used)) => {
                    report.used(file, node.line, &used);
                    let (stripped, known) = strip_data_extension(&converted);
                    if !known {
                        report.note(format!(
                            "{file}:{}: level \"{name}\": path \"{path}\" has no .yaml, .yml, \
                             .json or .eyaml extension; kept as \"{stripped}\", but only files \
                             with those extensions are converted",
                            node.line
                        ));
                    }
                    if stripped.starts_with('/') || stripped.split('/').any(|p| p == "..") {
                        report.problem(
                            file,
                            Some(node.line),
                            format!("level \"{name}\": path \"{path}\" leaves the datadir"),
                            "left out; levels name files under hieradata/".into(),
                        );
                        continue;
                    }
                    let stripped = stripped.strip_prefix("./").unwrap_or(stripped).to_string();
                    self.levels.push(Level { datadir: datadir.clone(), path: stripped });
                }
                Err(e) => report.problem(
                    file,
                    Some(node.line),
                    format!(
                        "level \"{name}\": {} in path \"{path}\" has no stackdeploy equivalent",
                        e.token
                    ),
                    format!("{}; the level is left out", e.advice),
                ),
            }
        }
    }
}

/// What to do about a level of another backend.
fn backend_advice(function: &str) -> String {
    let what = match function {
        "hocon_data" => "HOCON files are not read: convert them to YAML and import again",
        f if f.contains("vault") => {
            "stackdeploy reads secrets from hieradata, encrypted: put each value in hieradata \
             with `stackdeploy secret encrypt KEY`"
        }
        f if f.contains("http") => {
            "stackdeploy reads only its hieradata: fetch the data once, save it as YAML and \
             import it, or write it into hieradata"
        }
        _ => {
            "stackdeploy reads only its own TOML hieradata: export this backend's data to YAML \
             and import it (secrets: `stackdeploy secret encrypt KEY`)"
        }
    };
    format!("{what}; the level is left out")
}

/// What to do about a level located by globs, mapped paths or URIs.
fn location_advice(what: &str) -> String {
    let what = match what {
        "glob" | "globs" => {
            "a stackdeploy level names one file per host: add a level for each file the glob \
             matched (its data files are converted), or name the files after a variable \
             (roles/%{host.role})"
        }
        "mapped_paths" => {
            "a stackdeploy level interpolates one value per host: give hosts a fact for the \
             value and add a level using it (%{facts.NAME}), or one level per file"
        }
        _ => "URIs serve non-file backends, which stackdeploy does not read",
    };
    format!("{what}; the level is left out")
}

/// A scalar's text.
fn text_of(node: &Node) -> Option<&str> {
    match &node.kind {
        Kind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Result<Config>, Collector) {
        let mut c = Collector::default();
        let r = Config::parse("hiera.yaml", text, &mut c);
        (r, c)
    }

    #[test]
    fn only_version_5_is_imported() {
        let (r, _) = parse(":backends:\n  - yaml\n:hierarchy:\n  - common\n");
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("hiera.yaml:1: this hiera.yaml has a Hiera 3 configuration"), "{e}");
        assert!(e.contains("only Hiera 5"), "{e}");
        let (r, _) = parse("---\nversion: 4\nhierarchy: []\n");
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("hiera.yaml:2: this is a Hiera 4 configuration"), "{e}");
        let (r, _) = parse("version: 5\nhierarchy: [\n");
        assert!(r.unwrap_err().to_string().starts_with("hiera.yaml:"));
    }

    #[test]
    fn paths_become_levels_and_the_rest_is_reported_with_lines() {
        let text = "\
version: 5
defaults:
  datadir: hieradata
  data_hash: yaml_data
hierarchy:
  - name: nodes
    path: \"nodes/%{trusted.certname}.yaml\"
  - name: os
    paths:
      - \"os/%{facts.os.family}/%{facts.os.release.major}.yaml\"
      - \"os/%{::osfamily}.yml\"
  - name: roles
    glob: \"roles/*.yaml\"
  - name: mapped
    mapped_paths: [services, tmp, \"services/%{tmp}.yaml\"]
  - name: vault
    lookup_key: hiera_vault
    options: {}
  - name: secrets
    lookup_key: eyaml_lookup_key
    path: secrets.eyaml
  - name: json
    data_hash: json_data
    datadir: json
    path: common.json
  - name: ext
    path: \"ext/%{trusted.extensions.pp_role}.yaml\"
  - name: common
    path: common.yaml
";
        let (r, c) = parse(text);
        let config = r.unwrap();
        assert_eq!(config.datadir, "hieradata");
        assert_eq!(config.level_datadirs, vec!["json".to_string()]);
        let paths: Vec<&str> = config.levels.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "nodes/%{host.name}",
                "os/%{facts.os.family}/%{facts.os.release.major}",
                "os/%{facts.osfamily}",
                "secrets",
                "common",
                "common",
            ]
        );
        assert_eq!(config.levels[4].datadir.as_deref(), Some("json"));
        let lines: Vec<(Option<usize>, &str)> =
            c.not_converted.iter().map(|p| (p.line, p.what.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (Some(13), "level \"roles\": glob \"roles/*.yaml\" is not converted"),
                (Some(15), "level \"mapped\": mapped_paths is not converted"),
                (Some(17), "level \"vault\": backend lookup_key: hiera_vault is not converted"),
                (
                    Some(27),
                    "level \"ext\": %{trusted.extensions.pp_role} in path \
                     \"ext/%{trusted.extensions.pp_role}.yaml\" has no stackdeploy equivalent"
                ),
            ]
        );
        assert!(c.not_converted[0].advice.contains("%{host.role}"));
        assert!(c.not_converted[2].advice.contains("secret encrypt"));
    }

    #[test]
    fn defaults_and_missing_backends() {
        let (r, c) = parse("version: 5\nhierarchy:\n  - name: a\n    path: a.yaml\n");
        assert_eq!(r.unwrap().datadir, "data");
        assert!(c.not_converted.is_empty());
        let (r, c) = parse(
            "version: 5\ndefaults:\n  datadir: d\nhierarchy:\n  - name: a\n    path: a.yaml\n  - name: b\n    data_hash: hocon_data\n    path: b.conf\n",
        );
        assert!(r.unwrap().levels.is_empty());
        assert_eq!(c.not_converted[0].line, Some(5));
        assert!(c.not_converted[0].what.contains("no backend"));
        assert_eq!(c.not_converted[1].line, Some(8));
        assert!(c.not_converted[1].advice.contains("HOCON"));
        let (r, c) = parse("version: 5\n");
        assert_eq!(r.unwrap().levels, vec![Level { datadir: None, path: "common".into() }]);
        assert!(c.notes[0].contains("no hierarchy"));
    }
}

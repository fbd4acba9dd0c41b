//! `import hiera`: a Hiera 5 setup (hiera.yaml and its YAML/JSON/eyaml data files) as
//! stackdeploy hieradata: the `[hiera] hierarchy` levels for pipeline.toml, one TOML file per
//! data file, and a report of everything that did not convert, each with its file and line.
//!
//! Text in, text out: the command (`commands::import`) finds and reads the files and writes
//! the results; nothing here touches the file system. `config` reads hiera.yaml, `data` one
//! data file, `interpolation` rewrites `%{...}`, `yaml` reads YAML the way Puppet does.

mod config;
mod data;
mod interpolation;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use config::Config;
use interpolation::Used;
use yaml::Schema;

use crate::error::{self, Error, Result};

/// Extensions of the data files that are converted (and stripped from level paths).
const DATA_EXTENSIONS: &[&str] = &[".yaml", ".yml", ".json", ".eyaml"];

/// Something that did not convert: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct NotConverted {
    pub file: String,
    pub line: Option<usize>,
    pub what: String,
    pub advice: String,
}

/// One data file to convert.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as the operator names it (shown in reports): `puppet/data/common.yaml`.
    pub from: String,
    /// Its path under the output's hieradata/, extension included: `common.yaml`, or
    /// `secure/common.eyaml` for a level's own datadir (see [`datadir_prefix`]).
    pub rel: String,
    pub text: String,
}

/// A converted data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub from: String,
    /// Relative to the output directory: `hieradata/common.toml`.
    pub to: String,
    pub text: String,
}

/// Everything an import produced.
#[derive(Debug)]
pub struct Outcome {
    /// The levels for pipeline.toml's `[hiera] hierarchy`, highest priority first.
    pub hierarchy: Vec<String>,
    /// The files to write, in the order of the sources.
    pub files: Vec<Converted>,
    pub not_converted: Vec<NotConverted>,
    pub notes: Vec<String>,
    /// Files that could not be read as YAML or JSON at all: nothing of them was converted.
    pub errors: Vec<Error>,
}

/// A parsed hiera.yaml and what its parsing reported, ready to convert the data files.
#[derive(Debug)]
pub struct Import {
    config: Config,
    report: Collector,
}

impl Import {
    /// Reads hiera.yaml (`file` names it in messages). An error when it is not a Hiera 5
    /// configuration; levels that do not convert are reported, not errors.
    pub fn new(file: &str, text: &str) -> Result<Import> {
        let mut report = Collector::default();
        let config = Config::parse(file, text, &mut report)?;
        Ok(Import { config, report })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Converts the data files. `prefixes` maps each level datadir (as written in hiera.yaml)
    /// to its prefix under hieradata/ (see [`datadir_prefix`]); the default datadir has none.
    pub fn convert(mut self, prefixes: &BTreeMap<String, String>, sources: &[Source]) -> Outcome {
        let mut hierarchy: Vec<String> = Vec::new();
        for level in &self.config.levels {
            let prefix =
                level.datadir.as_ref().and_then(|d| prefixes.get(d)).map_or("", String::as_str);
            let path = if prefix.is_empty() {
                level.path.clone()
            } else {
                format!("{prefix}/{}", level.path)
            };
            if hierarchy.contains(&path) {
                self.report.note(format!(
                    "level \"{path}\" is named twice in the hierarchy; it is listed once"
                ));
            } else {
                hierarchy.push(path);
            }
        }
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let mut written: BTreeMap<String, String> = BTreeMap::new();
        for source in sources {
            let Some(to) = output_path(&source.rel) else { continue };
            if let Some(first) = written.get(&to) {
                self.report.problem(
                    &source.from,
                    None,
                    format!("converts to the same {to} as {first}"),
                    "rename one of the two files (and its level); this one is not converted".into(),
                );
                continue;
            }
            let schema = if source.rel.ends_with(".json") { Schema::Json } else { Schema::Psych };
            match data::convert(&source.from, &to, &source.text, schema, &mut self.report) {
                Ok(text) => {
                    written.insert(to.clone(), source.from.clone());
                    files.push(Converted { from: source.from.clone(), to, text });
                }
                Err(e) => errors.push(e),
            }
        }
        let Collector { not_converted, mut notes, environment, facts, clientcert } = self.report;
        if let Some(first) = environment.first() {
            notes.push(format!(
                "%{{environment}} ({}) is now the stackdeploy environment's name (an \
                 [environments.NAME] of pipeline.toml), not the Puppet environment: name such \
                 files after the stackdeploy environments",
                places(first, environment.len())
            ));
        }
        if let Some(first) = clientcert.first() {
            notes.push(format!(
                "%{{clientcert}} ({}) became %{{host.name}}, the host's name in pipeline.toml",
                places(first, clientcert.len())
            ));
        }
        if !facts.is_empty() {
            let names: Vec<&str> = facts.iter().map(String::as_str).collect();
            notes.push(format!(
                "the imported data uses the facts {}: a host's facts are what the probe \
                 gathers (hostname, os_family, os_id, os_version, kernel, init, cpus, \
                 memory_mb) and what pipeline.toml sets (facts = {{ ... }} of an environment or \
                 a host); an unknown fact is an error, so set each of these there. Facter's \
                 names and values differ (os.family = \"Debian\", gathered os_family = \"debian\")",
                names.join(", ")
            ));
        }
        Outcome { hierarchy, files, not_converted, notes, errors }
    }
}

/// "hiera.yaml:3", or "hiera.yaml:3 and 2 more places".
fn places(first: &str, count: usize) -> String {
    match count {
        1 => first.to_string(),
        n => format!("{first} and {} more place{}", n - 1, if n == 2 { "" } else { "s" }),
    }
}

/// What the conversion reports, as it goes.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub not_converted: Vec<NotConverted>,
    pub notes: Vec<String>,
    /// Where `%{environment}` is used (`file:line`).
    environment: Vec<String>,
    /// Facts used anywhere.
    facts: BTreeSet<String>,
    clientcert: Vec<String>,
}

impl Collector {
    pub(crate) fn problem(
        &mut self,
        file: &str,
        line: Option<usize>,
        what: String,
        advice: String,
    ) {
        self.not_converted.push(NotConverted { file: file.to_string(), line, what, advice });
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn used(&mut self, file: &str, line: usize, used: &[Used]) {
        for u in used {
            match u {
                Used::Environment => self.environment.push(format!("{file}:{line}")),
                Used::Clientcert => self.clientcert.push(format!("{file}:{line}")),
                Used::Fact(f) => {
                    self.facts.insert(f.clone());
                }
            }
        }
    }
}

/// Whether a file name is one of the data files an import converts.
pub fn is_data_file(name: &str) -> bool {
    DATA_EXTENSIONS.iter().any(|e| name.ends_with(e) && name.len() > e.len())
}

/// `hieradata/<rel without its extension>.toml` for a data file.
pub fn output_path(rel: &str) -> Option<String> {
    let (stem, known) = strip_data_extension(rel);
    known.then(|| format!("hieradata/{stem}.toml"))
}

/// A path without its data extension, and whether it had one.
pub(crate) fn strip_data_extension(path: &str) -> (&str, bool) {
    for e in DATA_EXTENSIONS {
        if let Some(stem) = path.strip_suffix(e).filter(|s| !s.is_empty()) {
            return (stem, true);
        }
    }
    (path, false)
}

/// Where a level's own datadir goes under hieradata/: nothing for the default datadir; the
/// path below it for a directory inside it; else its path relative to hiera.yaml's directory
/// (`secure` for `datadir: secure`), else its last name. All three paths are absolute and
/// normalised ([`normalize`]).
pub fn datadir_prefix(config_dir: &Path, default: &Path, dir: &Path) -> String {
    let rel = dir
        .strip_prefix(default)
        .or_else(|_| dir.strip_prefix(config_dir))
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| dir.file_name().map(PathBuf::from).unwrap_or_default());
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A path with `.` and `..` resolved by name (no file system access).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An error for the command to report when an output file is in the way.
pub fn refuse_existing(existing: &[String]) -> Error {
    let shown: Vec<&str> = existing.iter().take(5).map(String::as_str).collect();
    let more = if existing.len() > 5 {
        format!(" and {} more", existing.len() - 5)
    } else {
        String::new()
    };
    error::usage(format!(
        "refusing to overwrite {}{more}; nothing was written (choose another --out, or pass --force)",
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIERA: &str = "\
version: 5
defaults:
  datadir: data
  data_hash: yaml_data
hierarchy:
  - name: nodes
    path: \"nodes/%{trusted.certname}.yaml\"
  - name: env
    path: \"environments/%{environment}.yaml\"
  - name: secrets
    lookup_key: eyaml_lookup_key
    datadir: secure
    path: \"common.eyaml\"
  - name: common
    path: common.yaml
";

    fn source(from: &str, rel: &str, text: &str) -> Source {
        Source { from: from.into(), rel: rel.into(), text: text.into() }
    }

    #[test]
    fn a_whole_import() {
        let import = Import::new("hiera.yaml", HIERA).unwrap();
        assert_eq!(import.config().level_datadirs, vec!["secure".to_string()]);
        let prefixes = BTreeMap::from([("secure".to_string(), "secure".to_string())]);
        let outcome = import.convert(
            &prefixes,
            &[
                source(
                    "data/common.yaml",
                    "common.yaml",
                    "a::b: \"%{::osfamily}\"\nc::d: \"%{environment}\"\n",
                ),
                source("data/nodes/web01.yaml", "nodes/web01.yaml", "a::b: x\n"),
                source("data/nodes/web01.json", "nodes/web01.json", "{}"),
                source("data/broken.yaml", "broken.yaml", "a: [\n"),
                source("secure/common.eyaml", "secure/common.eyaml", "db::pw: ENC[PKCS7,xx]\n"),
                source("data/README.md", "README.md", "# not data"),
            ],
        );
        assert_eq!(
            outcome.hierarchy,
            vec!["nodes/%{host.name}", "environments/%{environment}", "secure/common", "common"]
        );
        let tos: Vec<&str> = outcome.files.iter().map(|f| f.to.as_str()).collect();
        assert_eq!(
            tos,
            vec![
                "hieradata/common.toml",
                "hieradata/nodes/web01.toml",
                "hieradata/secure/common.toml"
            ]
        );
        let what: Vec<String> = outcome
            .not_converted
            .iter()
            .map(|p| format!("{}:{:?}: {}", p.file, p.line, p.what))
            .collect();
        assert_eq!(
            what,
            vec![
                "data/nodes/web01.json:None: converts to the same hieradata/nodes/web01.toml as data/nodes/web01.yaml",
                "secure/common.eyaml:Some(1): `db::pw` is eyaml-encrypted (ENC[PKCS7,...])",
            ]
        );
        assert_eq!(outcome.errors.len(), 1);
        assert!(outcome.errors[0].to_string().starts_with("data/broken.yaml:"));
        assert!(
            outcome
                .notes
                .iter()
                .any(|n| n.starts_with("%{environment} (hiera.yaml:9 and 1 more place)")),
            "{:?}",
            outcome.notes
        );
        assert!(
            outcome.notes.iter().any(|n| n.contains("uses the facts osfamily:")),
            "{:?}",
            outcome.notes
        );
    }

    #[test]
    fn datadir_prefixes_and_paths() {
        let cfg = Path::new("/p");
        let default = Path::new("/p/data");
        assert_eq!(datadir_prefix(cfg, default, Path::new("/p/data")), "");
        assert_eq!(datadir_prefix(cfg, default, Path::new("/p/data/secure")), "secure");
        assert_eq!(datadir_prefix(cfg, default, Path::new("/p/secrets/x")), "secrets/x");
        assert_eq!(datadir_prefix(cfg, default, Path::new("/etc/hiera/vault")), "vault");
        assert_eq!(normalize(Path::new("/p/./a/../data")), PathBuf::from("/p/data"));
        assert_eq!(output_path("nodes/a.b.yaml").as_deref(), Some("hieradata/nodes/a.b.toml"));
        assert_eq!(output_path("x.eyaml").as_deref(), Some("hieradata/x.toml"));
        assert_eq!(output_path("x.txt"), None);
        assert!(is_data_file("common.yml") && !is_data_file(".yaml") && !is_data_file("a.toml"));
    }
}

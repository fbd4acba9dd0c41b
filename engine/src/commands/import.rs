//! `stackdeploy import hiera`: finds and reads hiera.yaml and the data files under its
//! datadirs, has `import::hiera` convert them, refuses to overwrite anything (unless
//! `--force`), writes each file atomically, and prints the report (`report::import`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{CmdResult, out};
use crate::cli::{Format, ImportAction, ImportHieraArgs};
use crate::error::{self, Error, Errors};
use crate::exit::ExitStatus;
use crate::import::hiera::{self, Import, Source};
use crate::report;

pub(super) fn run(action: &ImportAction) -> CmdResult {
    match action {
        ImportAction::Hiera(a) => match (import_hiera(a), a.format) {
            // With --format json every outcome is one JSON document on stdout, errors included.
            (Err(errors), Format::Json) => {
                out(&report::json::text(&report::json::import::failed(&errors)));
                for e in &errors {
                    eprintln!("error: {e}");
                }
                Ok(ExitStatus::Failed)
            }
            (result, _) => result,
        },
    }
}

fn import_hiera(a: &ImportHieraArgs) -> CmdResult {
    let config_file = a.config.display().to_string();
    let text = std::fs::read_to_string(&a.config)
        .map_err(|e| error::io(format!("cannot read {config_file}")).with_source(e))?;
    let import = Import::new(&config_file, &text)?;

    // Paths are shown as the operator gave them and compared absolute and normalised.
    let config_dir = a.config.parent().unwrap_or(Path::new(""));
    let config_abs =
        absolute(if config_dir.as_os_str().is_empty() { Path::new(".") } else { config_dir })?;
    let (default_shown, default_abs) = match &a.datadir {
        Some(d) => (d.clone(), absolute(d)?),
        None => {
            let d = config_dir.join(&import.config().datadir);
            let abs = hiera::normalize(&config_abs.join(&import.config().datadir));
            (d, abs)
        }
    };
    if !default_abs.is_dir() {
        let from = if a.datadir.is_some() { "--datadir" } else { "hiera.yaml's defaults.datadir" };
        return Err(error::usage(format!(
            "no data directory {} ({from}); name it with --datadir",
            default_shown.display()
        ))
        .into());
    }
    let mut dirs = vec![(default_shown, default_abs.clone(), String::new())];
    let mut prefixes = BTreeMap::new();
    for d in &import.config().level_datadirs {
        let shown = config_dir.join(d);
        let abs = hiera::normalize(&config_abs.join(d));
        let prefix = hiera::datadir_prefix(&config_abs, &default_abs, &abs);
        prefixes.insert(d.clone(), prefix.clone());
        if abs.is_dir() {
            dirs.push((shown, abs, prefix));
        } else {
            super::note(format_args!(
                "warning: no data directory {} (a level's datadir); nothing read from it",
                shown.display()
            ));
        }
    }

    let mut sources = Vec::new();
    let mut errors = Errors::new();
    let mut seen = BTreeSet::new();
    for (shown, abs, prefix) in &dirs {
        let mut found = Vec::new();
        data_files(abs, Path::new(""), &mut found).map_err(|e| e.at_file(shown, None))?;
        for rel in found {
            if !seen.insert(abs.join(&rel)) {
                continue;
            }
            let from = shown.join(&rel);
            let rel = rel.to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { rel } else { format!("{prefix}/{rel}") };
            match std::fs::read(&from).map(String::from_utf8) {
                Ok(Ok(text)) => {
                    sources.push(Source { from: from.display().to_string(), rel, text })
                }
                Ok(Err(_)) => errors
                    .push(error::invalid("not UTF-8 text; not converted").at_file(&from, None)),
                Err(e) => {
                    errors.push(error::io("cannot read it").with_source(e).at_file(&from, None))
                }
            }
        }
    }

    let mut outcome = import.convert(&prefixes, &sources);
    let targets: Vec<PathBuf> = outcome.files.iter().map(|f| a.out.join(&f.to)).collect();
    if !a.force {
        let existing: Vec<String> =
            targets.iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        if !existing.is_empty() {
            return Err(hiera::refuse_existing(&existing).into());
        }
    }
    let mut written = Vec::new();
    for (file, target) in outcome.files.iter().zip(&targets) {
        write_atomically(target, &file.text)?;
        written.push((file.from.clone(), target.display().to_string()));
    }
    errors.extend(std::mem::take(&mut outcome.errors));

    match a.format {
        Format::Text => out(&report::import::text(&outcome, &written, errors.len())),
        Format::Json => {
            let doc = report::json::import::document(&outcome, &written, &errors);
            out(&report::json::text(&doc));
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if !errors.is_empty() {
        ExitStatus::Failed
    } else if !outcome.not_converted.is_empty() {
        ExitStatus::Incomplete
    } else {
        ExitStatus::Ok
    })
}

/// `path` made absolute (against the current directory) and normalised.
fn absolute(path: &Path) -> Result<PathBuf, Errors> {
    let abs = std::path::absolute(path)
        .map_err(|e| error::io(format!("cannot resolve {}", path.display())).with_source(e))?;
    Ok(hiera::normalize(&abs))
}

/// The data files under `dir` (paths relative to it, sorted), skipping hidden entries.
fn data_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let here = dir.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error::io(format!("cannot list {}", here.display())).with_source(e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = rel.join(name);
        if dir.join(&path).is_dir() {
            data_files(dir, &path, out)?;
        } else if hiera::is_data_file(name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Writes `text` to `path` whole or not at all: a temporary file next to it, synced, renamed.
fn write_atomically(path: &Path, text: &str) -> Result<(), Errors> {
    let fail = |e: std::io::Error| -> Errors {
        error::io(format!("cannot write {}", path.display())).with_source(e).into()
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.stackdeploy-tmp.{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

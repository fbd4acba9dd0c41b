//! The layout of the engine's source as docs/architecture.md describes it: the top-level
//! modules form no import cycle, and the core (composition → catalog → plan) depends on no
//! edge (SSH, the pipeline runner, the command line, printing).
//!
//! Read from the source text: every `crate::MODULE` a module's non-test code names counts as
//! a dependency of that module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::project_root;

/// Modules whose code must not reach the edges.
const CORE: &[&str] = &[
    "model",
    "hiera",
    "import",
    "composition",
    "catalog",
    "plan",
    "state",
    "secrets",
    "precommit",
    "text",
    "digest",
    "glob",
    "sql",
    "shell",
    "template",
    "error",
];
/// The edges: hosts, the pipeline's orchestration, the command line, output.
const EDGES: &[&str] = &["transport", "rollout", "pipeline", "commands", "report", "lab", "cli"];

/// The code of a file without its test modules (from `#[cfg(test)]` on) and comments.
fn non_test(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its non-test code uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = project_root().join("engine/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let test_only = ["tests.rs", "fixtures.rs", "fake.rs", "testing.rs"];
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let name = rel.file_name().unwrap().to_str().unwrap();
        if test_only.contains(&name) || rel.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let module = rel.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = module.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        let code = non_test(&text);
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let used: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !used.is_empty() && used != module {
                deps.insert(used);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let current = path.last().unwrap().clone();
    for next in graph.get(&current).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(c) = cycle_from(graph, start, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let graph = graph();
    assert!(graph.len() > 20, "found only {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module, &mut vec![module.clone()]) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_core_depends_on_no_edge() {
    let graph = graph();
    let mut wrong = Vec::new();
    for core in CORE {
        for dep in graph.get(*core).into_iter().flatten() {
            if EDGES.contains(&dep.as_str()) {
                wrong.push(format!("{core} uses {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
    // hiera in particular knows neither catalogs nor transports.
    let hiera = &graph["hiera"];
    assert!(!hiera.contains("catalog") && !hiera.contains("transport"), "{hiera:?}");
}

//! What `import hiera` did, as text (the `[hiera]` block to paste, the files written, what was
//! not converted as `file:line: what — what to do`, notes) or as one JSON document.

use std::fmt::Write;

use crate::import::hiera::{NotConverted, Outcome};

/// `file:line: what — advice` (`file: ...` when the line is not known).
pub fn not_converted_line(p: &NotConverted) -> String {
    let place = match p.line {
        Some(line) => format!("{}:{line}", p.file),
        None => p.file.clone(),
    };
    format!("{place}: {} — {}", p.what, p.advice)
}

/// The hierarchy as pipeline.toml's `[hiera]` table, one level per line.
pub fn hierarchy_block(levels: &[String]) -> String {
    let mut out = String::from("[hiera]\nhierarchy = [\n");
    for level in levels {
        let _ = writeln!(out, "  {},", toml::Value::String(level.clone()));
    }
    out.push_str("]\n");
    out
}

/// The report as text; `written` pairs each source with the file written for it.
/// `failed`: how many files could not be read or parsed (their errors are printed after this).
pub fn text(outcome: &Outcome, written: &[(String, String)], failed: usize) -> String {
    let mut out = String::from("# for pipeline.toml:\n");
    out.push_str(&hierarchy_block(&outcome.hierarchy));
    let _ = writeln!(
        out,
        "\nwrote {} file{}:",
        written.len(),
        if written.len() == 1 { "" } else { "s" }
    );
    for (from, to) in written {
        let _ = writeln!(out, "  {from} -> {to}");
    }
    if failed > 0 {
        let _ = writeln!(
            out,
            "\n{failed} file{} could not be converted (below); nothing of {} was written",
            if failed == 1 { "" } else { "s" },
            if failed == 1 { "it" } else { "them" }
        );
    }
    if outcome.not_converted.is_empty() {
        if failed == 0 {
            out.push_str("\neverything was converted\n");
        }
    } else {
        let _ = writeln!(out, "\nnot converted ({}):", outcome.not_converted.len());
        for p in &outcome.not_converted {
            let _ = writeln!(out, "  {}", not_converted_line(p));
        }
    }
    if !outcome.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in &outcome.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_the_hierarchy_block() {
        let p = NotConverted {
            file: "hiera.yaml".into(),
            line: Some(12),
            what: "level \"roles\": glob \"roles/*.yaml\" is not converted".into(),
            advice: "add a level per file".into(),
        };
        assert_eq!(
            not_converted_line(&p),
            "hiera.yaml:12: level \"roles\": glob \"roles/*.yaml\" is not converted — add a level per file"
        );
        let block = hierarchy_block(&["nodes/%{host.name}".into(), "common".into()]);
        assert_eq!(block, "[hiera]\nhierarchy = [\n  \"nodes/%{host.name}\",\n  \"common\",\n]\n");
        let parsed: toml::Table = toml::from_str(&block).unwrap();
        assert_eq!(parsed["hiera"]["hierarchy"].as_array().unwrap().len(), 2);
    }
}

//! Entry points for the fuzz targets in `fuzz/` (`bash benches/fuzz.sh`): the parsers that read
//! what others wrote. Each takes arbitrary bytes and must neither panic nor hang; where a
//! parse succeeds, what it returns must hold together. Not part of the engine's API.

use std::sync::Arc;

use crate::hiera::{HieraData, HostHiera, Vars};
use crate::model::Pipeline;
use crate::remote::ProbeRequest;
use crate::source::{Origin, Snapshot};

/// `%{...}` interpolation: the tokenizer, and a full lookup of a value holding the input (with
/// a second key it may name, so lookups, aliases and cycles are reached).
pub fn interpolation(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::hiera::tokenize_for_fuzzing(&text);
    let value = toml::Value::String(text.into_owned());
    let mut common = toml::Table::new();
    common.insert("k".into(), value.clone());
    common.insert("other".into(), value);
    let files = [
        ("pipeline.toml", "[hiera]\nhierarchy = [\"common\"]\n".to_string()),
        ("hieradata/common.toml", toml::to_string(&common).expect("a table serialises")),
    ];
    let snapshot = Snapshot::from_files(Origin::Worktree { path: "/fuzz".into() }, files);
    let (data, _) = HieraData::load(&snapshot);
    let pipeline = Pipeline::parse("[hiera]\nhierarchy = [\"common\"]\n[environments.e.hosts]\nh = { address = \"a\", role = \"r\" }\n")
        .expect("a fixed pipeline parses");
    let host = &pipeline.environment("e").expect("its environment").hosts[0];
    let vars = Arc::new(Vars::new(host, toml::Table::new()));
    if let Ok(hiera) = HostHiera::new(Arc::new(data), &pipeline.hierarchy, vars) {
        let _ = hiera.lookup("k", None);
    }
}

/// known_hosts files, and checking a key against them.
pub fn known_hosts(data: &[u8]) {
    crate::transport::known_hosts_for_fuzzing(&String::from_utf8_lossy(data));
}

/// What probe, fetch and apply scripts print, as a broken or hostile host could.
pub fn host_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let paths = ["/etc/a", "/etc/b c", "/etc/x\ny"].map(String::from).to_vec();
    let request = ProbeRequest { paths, ..Default::default() };
    if let Ok(observed) = crate::remote::probe::parse("h", &text, &request) {
        // Only requested paths are reported.
        assert!(observed.paths.keys().all(|p| request.paths.contains(p)));
    }
    if let Ok(files) = crate::remote::probe::parse_fetch("h", data) {
        assert!(files.values().map(Vec::len).sum::<usize>() <= data.len());
    }
    let _ = crate::remote::apply::parse(&text);
}

/// `[[patch]]` files, applied to a file they may or may not fit (their own text, or the text
/// their first hunk expects), and reversed.
pub fn patch(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(patch) = crate::patchfile::PatchFile::parse(&text) else { return };
    assert!(!patch.hunks.is_empty());
    assert!(patch.hunks.iter().all(|h| h.old != h.new), "a hunk that changes nothing");
    let fitting: String = patch.hunks[0].old.concat();
    for file in [text.as_ref(), fitting.as_str()] {
        if let Ok(patched) = patch.apply(file) {
            let _ = patch.reversed().apply(&patched);
        }
    }
}

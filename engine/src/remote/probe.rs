//! The probe: one round trip that reports facts and the state of everything a catalog
//! manages, and a second, only when files differ, that fetches their current content for diffs.

use std::collections::BTreeMap;

use super::script::Sh;
use super::{Intent, Script, exec, service};
use crate::catalog::{Catalog, Links, Resource};
use crate::error::{self, Result};
use crate::state::{Applied, Observed, PackageState, PathState};

const PRELUDE: &str = include_str!("probe.sh");

/// What a probe asks about, as data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeRequest {
    /// Managed paths of the catalog plus paths the last run managed, sorted, once each.
    pub paths: Vec<String>,
    pub packages: Vec<String>,
    pub services: Vec<String>,
    /// Exec names with their guards: (name, creates, unless).
    pub execs: Vec<(String, Option<String>, Option<String>)>,
    /// Paths of files with `links = "follow"`: probed through a symlink, which is reported
    /// with the path it resolves to.
    pub follow: Vec<String>,
}

/// The probe script for a catalog. `extra_paths` are paths the last run managed that the
/// catalog may no longer have (so their removal can be planned); `state_dir` is where the
/// engine keeps its state on the host.
pub fn script(catalog: &Catalog, extra_paths: &[String], state_dir: &str) -> Script {
    let mut request = ProbeRequest::default();
    for r in &catalog.resources {
        match r {
            Resource::File(f) => {
                request.paths.push(f.path.clone());
                if f.links == Links::Follow {
                    request.follow.push(f.path.clone());
                }
            }
            Resource::Directory(d) => request.paths.push(d.path.clone()),
            Resource::Patch(p) => request.paths.push(p.path.clone()),
            Resource::Package(p) => request.packages.push(p.name.clone()),
            Resource::Service(s) => request.services.push(s.name.clone()),
            Resource::Exec(x) => {
                request.execs.push((x.name.clone(), x.creates.clone(), x.unless.clone()))
            }
        }
    }
    request.paths.extend(extra_paths.iter().cloned());
    request.paths.sort_unstable();
    request.paths.dedup();

    let mut sh = Sh::new();
    sh.code("set -u").nl().assign("SD", state_dir).nl();
    sh.prelude(PRELUDE);
    if !request.follow.is_empty() {
        // Catalog paths hold no newline (the compiler refuses control characters).
        sh.assign("FOLLOW", &request.follow.join("\n")).nl();
    }
    sh.call("probe_paths", &request.paths.iter().map(String::as_str).collect::<Vec<_>>());
    sh.call("probe_packages", &request.packages.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &catalog.resources {
        match r {
            Resource::Exec(x) => exec::probe(&mut sh, x),
            Resource::Service(s) => service::probe(&mut sh, s),
            _ => {}
        }
    }
    sh.code("echo END").nl();
    Script {
        command: sh.finish(),
        stdin: Vec::new(),
        timeout: None,
        intent: Intent::Probe(request),
    }
}

/// Reads a line of `sha256sum`: `HASH  NAME`, or `\\HASH  NAME` with `\\`, `\n` and `\r` escaped
/// in NAME when the name holds one of them (GNU coreutils). The separator is two spaces (text
/// mode) or a space and `*` (binary mode).
fn parse_sha256sum(line: &str) -> Option<(String, String)> {
    let (escaped, rest) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let hash = rest.get(..64).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let name =
        rest.get(64..).and_then(|r| r.strip_prefix("  ").or_else(|| r.strip_prefix(" *")))?;
    if !escaped {
        return Some((name.to_string(), hash.to_string()));
    }
    let mut path = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            path.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => path.push('\\'),
            'n' => path.push('\n'),
            'r' => path.push('\r'),
            _ => return None,
        }
    }
    Some((path, hash.to_string()))
}

/// Parses the probe's output for `request` (the probe's own). `host` names the host in errors.
/// A path the engine may write to: absolute, normalised, no control character (what a symlink
/// resolves to is the host's business, and a file is written next to it).
fn is_plain_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.chars().any(char::is_control)
        && !p.split('/').skip(1).any(|c| c.is_empty() || c == "." || c == "..")
}

pub fn parse(host: &str, stdout: &str, request: &ProbeRequest) -> Result<Observed> {
    let bad =
        |line: &str| error::host(format!("unexpected probe output line: {line:?}")).at_host(host);
    let path_at = |i: &str| i.parse::<usize>().ok().and_then(|i| request.paths.get(i)).cloned();
    let mut o = Observed::default();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let mut ended = false;
    for line in stdout.lines() {
        if let Some(sum) = line.strip_prefix("HASH\t") {
            let (path, hash) = parse_sha256sum(sum).ok_or_else(|| bad(line))?;
            hashes.insert(path, hash);
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["FACT", k, v] => {
                let value = match *k {
                    "cpus" | "memory_mb" => v
                        .parse::<i64>()
                        .map(toml::Value::from)
                        .unwrap_or_else(|_| toml::Value::from(*v)),
                    _ => toml::Value::from(*v),
                };
                o.facts.insert(k.to_string(), value);
            }
            ["APPLIED", json] => {
                o.applied = serde_json::from_str::<Applied>(json).ok();
            }
            ["PENDING", id] => o.pending_restarts.push(id.to_string()),
            ["LINK", i, target] => {
                let p = path_at(i).ok_or_else(|| bad(line))?;
                if !request.follow.contains(&p) || !is_plain_path(target) {
                    return Err(bad(line));
                }
                o.links.insert(p, target.to_string());
            }
            ["PATH", i, "missing"] => {
                o.paths.insert(path_at(i).ok_or_else(|| bad(line))?, PathState::Missing);
            }
            ["PATH", i, "other", what] => {
                let state = PathState::Other { what: what.to_string() };
                o.paths.insert(path_at(i).ok_or_else(|| bad(line))?, state);
            }
            ["PATH", i, kind @ ("file" | "dir"), mode, owner, group] => {
                let p = path_at(i).ok_or_else(|| bad(line))?;
                let mode = u32::from_str_radix(mode, 8).map_err(|_| bad(line))?;
                let (owner, group) = (owner.to_string(), group.to_string());
                let state = if *kind == "file" {
                    PathState::File { sha256: String::new(), mode, owner, group }
                } else {
                    PathState::Directory { mode, owner, group }
                };
                o.paths.insert(p, state);
            }
            ["PKG", p, "installed", v] => {
                o.packages.insert(p.to_string(), PackageState::Installed(v.to_string()));
            }
            ["PKG", p, "absent"] => {
                o.packages.insert(p.to_string(), PackageState::Absent);
            }
            ["SVC", s, state] => {
                o.services.insert(s.to_string(), *state == "running");
            }
            ["EXEC", x, state] => {
                o.execs.insert(x.to_string(), *state == "needed");
            }
            ["END"] => ended = true,
            _ => return Err(bad(line)),
        }
    }
    if !ended {
        return Err(
            error::host("the probe did not finish (connection lost or shell error)").at_host(host)
        );
    }
    for (path, state) in o.paths.iter_mut() {
        if let PathState::File { sha256, .. } = state {
            *sha256 = hashes.remove(path).ok_or_else(|| {
                error::host(format!("the probe reported no hash for {path}")).at_host(host)
            })?;
        }
    }
    Ok(o)
}

/// A script printing the content of `paths`, each framed as `CONTENT\t<path>\t<length>\n`
/// followed by exactly that many bytes.
pub fn fetch_script(paths: &[&str]) -> Script {
    let mut sh = Sh::new();
    sh.code("set -u").nl();
    for p in paths {
        sh.assign("p", p);
        sh.code(
            "; n=$(wc -c < \"$p\"); printf 'CONTENT\\t%s\\t%s\\n' \"$p\" \"$n\"; cat -- \"$p\"",
        )
        .nl();
    }
    Script {
        command: sh.finish(),
        stdin: Vec::new(),
        timeout: None,
        intent: Intent::Fetch(paths.iter().map(|p| p.to_string()).collect()),
    }
}

pub fn parse_fetch(host: &str, mut out: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let bad = || error::host("malformed file content from the host").at_host(host);
    while !out.is_empty() {
        let nl = out.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
        let header = std::str::from_utf8(&out[..nl]).map_err(|_| bad())?;
        let mut parts = header.split('\t');
        let (Some("CONTENT"), Some(path), Some(len)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let len: usize = len.trim().parse().map_err(|_| bad())?;
        let body = out.get(nl + 1..nl + 1 + len).ok_or_else(bad)?;
        files.insert(path.to_string(), body.to_vec());
        out = &out[nl + 1 + len..];
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_probe_report() {
        let h = "ab".repeat(32);
        let out = format!(
            "FACT\thostname\tdb01\nFACT\tcpus\t2\nPATH\t0\tfile\t644\troot\troot\nPATH\t1\tdir\t755\troot\tadm\nPATH\t2\tmissing\nHASH\t{h}  /etc/a\nPKG\tx\tinstalled\t1.0\nPKG\ty\tabsent\nSVC\tmemcached\trunning\nEXEC\tsync\tneeded\nPENDING\tservice:x\nEND\n"
        );
        let out = out.as_str();
        let paths = ["/etc/a", "/etc/d", "/etc/m"].map(String::from).to_vec();
        let o = parse("db01", out, &ProbeRequest { paths, ..Default::default() }).unwrap();
        assert_eq!(o.facts["hostname"].as_str(), Some("db01"));
        assert_eq!(o.facts["cpus"].as_integer(), Some(2));
        assert_eq!(
            o.paths["/etc/a"],
            PathState::File {
                sha256: h.clone(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into()
            }
        );
        assert_eq!(
            o.paths["/etc/d"],
            PathState::Directory { mode: 0o755, owner: "root".into(), group: "adm".into() }
        );
        assert_eq!(o.paths["/etc/m"], PathState::Missing);
        assert_eq!(o.packages["x"], PackageState::Installed("1.0".into()));
        assert!(o.services["memcached"]);
        assert!(o.execs["sync"]);
        assert_eq!(o.pending_restarts, vec!["service:x".to_string()]);
    }

    #[test]
    fn sha256sum_lines_are_read_back_with_their_escapes() {
        let h = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_sha256sum(&format!("{h}  /etc/a b")),
            Some(("/etc/a b".into(), h.clone()))
        );
        assert_eq!(parse_sha256sum(&format!("{h} */bin")), Some(("/bin".into(), h.clone())));
        assert_eq!(
            parse_sha256sum(&format!("\\{h}  /etc/back\\\\slash\\nnext")),
            Some(("/etc/back\\slash\nnext".into(), h.clone()))
        );
        assert_eq!(parse_sha256sum("short  /x"), None);
        assert_eq!(parse_sha256sum(&format!("{h}/x")), None);
    }

    #[test]
    fn truncated_probe_is_an_error() {
        let e = parse("db01", "FACT\thostname\tdb01\n", &ProbeRequest::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "db01: the probe did not finish (connection lost or shell error)"
        );
    }

    #[test]
    fn fetch_frames_round_trip() {
        let out = b"CONTENT\t/a\t3\nab\nCONTENT\t/b\t0\n";
        let files = parse_fetch("h", out).unwrap();
        assert_eq!(files["/a"], b"ab\n");
        assert_eq!(files["/b"], b"");
    }
}

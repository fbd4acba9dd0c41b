//! The probe: one round trip that reports facts and the state of everything a catalog
//! manages, and a second, only when files differ, that fetches their current content for diffs.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::q;
use crate::catalog::{Catalog, Resource};
use crate::error::{self, Result};
use crate::state::{Applied, Observed, PackageState, PathState};

/// Service status check for a catalog service: its `status` command (command provider) or
/// `systemctl is-active` (systemd). Chosen on the host, from its init system.
pub(crate) fn service_status_cmd(s: &crate::catalog::Service) -> String {
    let unit = s.unit.clone().unwrap_or_else(|| format!("{}.service", s.name));
    let systemd = format!("systemctl is-active --quiet {}", q(&unit));
    match (s.provider.as_str(), &s.status) {
        ("systemd", _) => systemd,
        (_, Some(status)) if s.provider == "command" => status.clone(),
        (_, Some(status)) => {
            format!("if [ \"$SD_INIT\" = systemd ]; then {systemd}; else {status}; fi")
        }
        (_, None) => systemd,
    }
}

/// The probe script for a catalog. `extra_paths` are paths the last run managed that the
/// catalog may no longer have (so their removal can be planned).
pub fn script(catalog: &Catalog, extra_paths: &[String]) -> String {
    let mut s = String::from(PRELUDE);
    let mut paths: Vec<&str> = catalog
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::File(f) => Some(f.path.as_str()),
            Resource::Directory(d) => Some(d.path.as_str()),
            _ => None,
        })
        .collect();
    paths.extend(extra_paths.iter().map(String::as_str));
    paths.sort_unstable();
    paths.dedup();
    if !paths.is_empty() {
        s.push_str("probe_paths");
        for p in &paths {
            let _ = write!(s, " {}", q(p));
        }
        s.push('\n');
    }
    let packages: Vec<&str> = catalog
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Package(p) => Some(p.name.as_str()),
            _ => None,
        })
        .collect();
    if !packages.is_empty() {
        s.push_str("probe_packages");
        for p in &packages {
            let _ = write!(s, " {}", q(p));
        }
        s.push('\n');
    }
    for r in &catalog.resources {
        match r {
            Resource::Service(svc) => {
                let _ = writeln!(
                    s,
                    "if ( set +u; {} ) >/dev/null 2>&1 </dev/null; then printf 'SVC\\t%s\\trunning\\n' {n}; else printf 'SVC\\t%s\\tstopped\\n' {n}; fi",
                    service_status_cmd(svc),
                    n = q(&svc.name),
                );
            }
            Resource::Exec(x) => {
                let mut guard = String::from("true");
                if let Some(c) = &x.creates {
                    let _ = write!(guard, " && [ ! -e {} ]", q(c));
                }
                if let Some(u) = &x.unless {
                    let _ = write!(guard, " && ! ( set +u; {u} ) >/dev/null 2>&1 </dev/null");
                }
                let _ = writeln!(
                    s,
                    "if {guard}; then printf 'EXEC\\t%s\\tneeded\\n' {n}; else printf 'EXEC\\t%s\\tsatisfied\\n' {n}; fi",
                    n = q(&x.name),
                );
            }
            _ => {}
        }
    }
    s.push_str("echo END\n");
    s
}

/// Facts, the applied record and pending restarts, plus helpers the generated lines call.
/// Output is one record per line, tab-separated; paths never contain tabs or newlines (the
/// compiler refuses control characters).
const PRELUDE: &str = r#"set -u
SD=/var/lib/stackdeploy
export LC_ALL=C
fact() { printf 'FACT\t%s\t%s\n' "$1" "$2"; }
fact hostname "$(hostname)"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
fact os_id "${ID:-unknown}"
fact os_version "${VERSION_ID:-unknown}"
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) fact os_family debian ;;
  *" rhel "*|*" fedora "*|*" centos "*) fact os_family redhat ;;
  *) fact os_family unknown ;;
esac
if [ -d /run/systemd/system ]; then SD_INIT=systemd; else SD_INIT=other; fi
fact init "$SD_INIT"
fact kernel "$(uname -r)"
fact cpus "$(nproc 2>/dev/null || echo 1)"
fact memory_mb "$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo 2>/dev/null)"
if [ -r "$SD/applied.json" ]; then printf 'APPLIED\t%s\n' "$(tr -d '\n' < "$SD/applied.json")"; fi
if [ -r "$SD/pending-restarts" ]; then sort -u "$SD/pending-restarts" | while IFS= read -r l; do [ -n "$l" ] && printf 'PENDING\t%s\n' "$l"; done; fi
probe_paths() {
  files=""
  for p in "$@"; do
    if [ -L "$p" ]; then printf 'PATH\t%s\tother\tsymlink\n' "$p"
    elif [ -f "$p" ]; then printf 'PATH\t%s\tfile\t%s\n' "$p" "$(stat -c '%a	%U	%G' "$p")"; files=1
    elif [ -d "$p" ]; then printf 'PATH\t%s\tdir\t%s\n' "$p" "$(stat -c '%a	%U	%G' "$p")"
    elif [ -e "$p" ]; then printf 'PATH\t%s\tother\t%s\n' "$p" "$(stat -c '%F' "$p")"
    else printf 'PATH\t%s\tmissing\n' "$p"; fi
  done
  if [ -n "$files" ]; then
    for p in "$@"; do [ -f "$p" ] && [ ! -L "$p" ] && printf '%s\0' "$p"; done | xargs -0 sha256sum -- | while read -r h f; do printf 'HASH\t%s\t%s\n' "$f" "$h"; done
  fi
}
probe_packages() {
  if command -v dpkg-query >/dev/null 2>&1; then
    for p in "$@"; do
      v=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$p" 2>/dev/null)
      case "$v" in ii*) printf 'PKG\t%s\tinstalled\t%s\n' "$p" "${v#*|}" ;; *) printf 'PKG\t%s\tabsent\n' "$p" ;; esac
    done
  elif command -v rpm >/dev/null 2>&1; then
    for p in "$@"; do
      if v=$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$p" 2>/dev/null); then printf 'PKG\t%s\tinstalled\t%s\n' "$p" "$v"; else printf 'PKG\t%s\tabsent\n' "$p"; fi
    done
  else
    for p in "$@"; do printf 'PKG\t%s\tabsent\n' "$p"; done
  fi
}
"#;

/// Parses the probe's output. `host` names the host in errors.
pub fn parse(host: &str, stdout: &str) -> Result<Observed> {
    let bad =
        |line: &str| error::host(format!("unexpected probe output line: {line:?}")).at_host(host);
    let mut o = Observed::default();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let mut ended = false;
    for line in stdout.lines() {
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
            ["PATH", p, "missing"] => {
                o.paths.insert(p.to_string(), PathState::Missing);
            }
            ["PATH", p, "other", what] => {
                o.paths.insert(p.to_string(), PathState::Other { what: what.to_string() });
            }
            ["PATH", p, kind @ ("file" | "dir"), mode, owner, group] => {
                let mode = u32::from_str_radix(mode, 8).map_err(|_| bad(line))?;
                let (owner, group) = (owner.to_string(), group.to_string());
                let state = if *kind == "file" {
                    PathState::File { sha256: String::new(), mode, owner, group }
                } else {
                    PathState::Directory { mode, owner, group }
                };
                o.paths.insert(p.to_string(), state);
            }
            ["HASH", p, h] => {
                hashes.insert(p.to_string(), h.to_string());
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
pub fn fetch_script(paths: &[&str]) -> String {
    let mut s = String::from("set -u\n");
    for p in paths {
        let _ = writeln!(
            s,
            "p={}; n=$(wc -c < \"$p\"); printf 'CONTENT\\t%s\\t%s\\n' \"$p\" \"$n\"; cat -- \"$p\"",
            q(p)
        );
    }
    s
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
        let out = "FACT\thostname\tdb01\nFACT\tcpus\t2\nPATH\t/etc/a\tfile\t644\troot\troot\nPATH\t/etc/d\tdir\t755\troot\tadm\nPATH\t/etc/m\tmissing\nHASH\t/etc/a\tabc\nPKG\tx\tinstalled\t1.0\nPKG\ty\tabsent\nSVC\tmemcached\trunning\nEXEC\tsync\tneeded\nPENDING\tservice:x\nEND\n";
        let o = parse("db01", out).unwrap();
        assert_eq!(o.facts["hostname"].as_str(), Some("db01"));
        assert_eq!(o.facts["cpus"].as_integer(), Some(2));
        assert_eq!(
            o.paths["/etc/a"],
            PathState::File {
                sha256: "abc".into(),
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
    fn truncated_probe_is_an_error() {
        let e = parse("db01", "FACT\thostname\tdb01\n").unwrap_err();
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

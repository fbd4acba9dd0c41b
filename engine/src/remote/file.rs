//! Files on hosts: written by staging the new content next to the target, validating and
//! syncing it, backing up every old file, and only then renaming it into place. (Paths are
//! probed by `probe_paths` in `probe.sh`.)

use super::script::Sh;
use crate::catalog::{Mode, ownership};

/// The temporary name a file is staged under: same directory (so the rename is atomic),
/// hidden, and recognisable so a later run can clear what a killed run left behind.
pub fn staging_path(path: &str, run_id: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.stackdeploy-tmp.{run_id}")
}

/// The directory a path is in.
pub(super) fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// A `validate` command with its placeholder replaced by the staged file. The placeholder is a
/// `%` standing as a word of its own (`-f %`), or as a value after `=` or `:` (`--file=%`);
/// any other `%` (`date +%s`, `printf '%s'`, `%%`) is part of the command and stays.
pub(super) fn validate_command(validate: &str, staged: &str) -> String {
    let chars: Vec<char> = validate.chars().collect();
    let mut out = String::with_capacity(validate.len() + staged.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let opens = before.is_none_or(|b| b.is_whitespace() || b == '=' || b == ':');
        let closes = after.is_none_or(|a| a.is_whitespace() || ";|&)<>".contains(a));
        if c == '%' && opens && closes {
            out.push_str(&crate::shell::quote(staged));
        } else {
            out.push(c);
        }
    }
    out
}

/// A file to stage: the next `len` bytes of stdin become `staged`, next to `path`.
pub(super) struct Staging<'a> {
    pub id: &'a str,
    pub path: &'a str,
    pub staged: &'a str,
    pub len: usize,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub mode: Mode,
    pub validate: Option<(&'a str, u64)>,
}

/// Stages `files`: writes each one's bytes of stdin next to it, checks that all of them
/// arrived (the end marker `END <run>` follows the last), sets owners and modes, runs each
/// `validate`, and syncs them. Nothing visible changes yet.
///
/// The programs a file costs are a small constant per host, not per file (a first apply writes
/// dozens of files, and launching programs on busy cores is what it costs): one `head` per file
/// (a shell cannot split its input without a program), one `chown` per owner, one `chmod` per
/// mode and one `sync` for them all; directories that exist are tested by the shell itself.
pub(super) fn render_stage_all(sh: &mut Sh, files: &[Staging<'_>]) {
    if files.is_empty() {
        return;
    }
    sh.code("umask 077").nl();
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let dir = parent(f.path);
        if dirs.insert(dir) {
            sh.code("[ -d").path(dir).code(" ] || mkdir -p --").path(dir);
            sh.code(" 2>\"$SD/err\" || fail").arg(f.id);
            sh.code(" \"cannot create its directory: $(cat \"$SD/err\")\"").nl();
        }
        sh.code("head -c").int(f.len).code(" >").path(f.staged).code(" 2>\"$SD/err\" || fail");
        sh.arg(f.id).code(" \"cannot write a temporary file next to it: $(cat \"$SD/err\")\"").nl();
    }
    sh.code("umask 022\nreceived").nl();
    // Managed owner and group: one chown for all files of each. Unmanaged ones are those of
    // the file each replaces, so looked up per file.
    let mut owners: Vec<((&str, &str), Vec<&Staging<'_>>)> = Vec::new();
    for f in files {
        match (f.owner, f.group) {
            (Some(o), Some(g)) => match owners.iter_mut().find(|(k, _)| *k == (o, g)) {
                Some((_, group)) => group.push(f),
                None => owners.push(((o, g), vec![f])),
            },
            _ => {
                sh.code("own").path(f.staged).arg(f.owner.unwrap_or("")).arg(f.group.unwrap_or(""));
                sh.path(f.path).code(" || fail_owner").arg(f.id);
                sh.arg(&ownership(f.owner, f.group)).nl();
            }
        }
    }
    for ((o, g), group) in &owners {
        sh.code("chown --").arg(&format!("{o}:{g}"));
        for f in group {
            sh.path(f.staged);
        }
        sh.code(" || fail_owner").arg(group[0].id).arg(&ownership(Some(o), Some(g))).nl();
    }
    let mut modes: Vec<Mode> = files.iter().map(|f| f.mode).collect();
    modes.sort_unstable_by_key(|m| m.0);
    modes.dedup();
    for mode in modes {
        let group: Vec<&Staging<'_>> = files.iter().filter(|f| f.mode == mode).collect();
        sh.code("chmod").mode(mode);
        for f in &group {
            sh.path(f.staged);
        }
        sh.code(" || fail_owner").arg(group[0].id).arg(&ownership(group[0].owner, group[0].group));
        sh.nl();
    }
    for f in files {
        if let Some((v, timeout)) = f.validate {
            sh.code("if ! run_cmd").command(&validate_command(v, f.staged)).int(timeout);
            sh.code("; then say VALIDATE");
            sh.arg(f.id).code(" \"$(tail_out)\"; exit 1; fi").nl();
        }
    }
    sh.code("sync --");
    for f in files {
        sh.path(f.staged);
    }
    sh.code(" 2>/dev/null || true").nl();
}

/// The end marker that follows the staged files' bytes on stdin.
pub(super) fn end_marker(run_id: &str) -> String {
    format!("END {run_id}\n")
}

/// Renames the staged file over the old one (backed up before).
pub(super) fn render_place(sh: &mut Sh, id: &str, path: &str, staged: &str) {
    sh.code("mv -f --").path(staged).path(path).code(" 2>\"$SD/err\" || fail").arg(id);
    sh.code(" \"cannot move the new file into place: $(cat \"$SD/err\")\"").nl();
    sh.code("say OK").arg(id).code(" written").nl();
}

/// Removes a file the catalog no longer manages (backed up before).
pub(super) fn render_remove(sh: &mut Sh, id: &str, path: &str) {
    sh.code("err=$(rm -f --").path(path).code(" 2>&1) || fail").arg(id);
    sh.code(" \"cannot remove it: $err\"").nl();
    sh.code("say OK").arg(id).code(" removed").nl();
}

/// Owner, group and mode of an existing file or directory whose content stays.
pub(super) fn render_fix(
    sh: &mut Sh,
    id: &str,
    path: &str,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Mode,
) {
    sh.code("own").path(path).arg(owner.unwrap_or("")).arg(group.unwrap_or(""));
    sh.code(" && chmod").mode(mode).path(path).code(" || fail").arg(id);
    sh.code(" \"cannot set owner/mode\"").nl();
    sh.code("say OK").arg(id).code(" fixed").nl();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_path_is_in_the_same_directory() {
        assert_eq!(
            staging_path("/etc/haproxy/haproxy.cfg", "r1"),
            "/etc/haproxy/.haproxy.cfg.stackdeploy-tmp.r1"
        );
        assert_eq!(parent("/motd"), "/");
    }

    #[test]
    fn only_the_placeholder_becomes_the_staged_file() {
        let v = |cmd: &str| validate_command(cmd, "/etc/.x.tmp");
        assert_eq!(v("haproxy -c -q -f %"), "haproxy -c -q -f /etc/.x.tmp");
        assert_eq!(v("chronyd -p -f % >/dev/null"), "chronyd -p -f /etc/.x.tmp >/dev/null");
        assert_eq!(
            v("check --config=% --at=$(date +%s)"),
            "check --config=/etc/.x.tmp --at=$(date +%s)"
        );
        assert_eq!(
            v("test -s %&& printf '%s 100%%\\n' ok"),
            "test -s /etc/.x.tmp&& printf '%s 100%%\\n' ok"
        );
        assert_eq!(v("x %;y"), "x /etc/.x.tmp;y");
        assert_eq!(validate_command("t %", "/a b"), "t '/a b'");
    }
}

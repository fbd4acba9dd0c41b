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

/// Writes the next `len` bytes of stdin to `staged` with the file's owner and mode, runs its
/// `validate` on it and syncs it. Nothing visible changes yet.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_stage(
    sh: &mut Sh,
    id: &str,
    path: &str,
    staged: &str,
    len: usize,
    owner: Option<&str>,
    group: Option<&str>,
    mode: Mode,
    validate: Option<(&str, u64)>,
) {
    sh.code("mkdir -p --").path(parent(path)).code(" || fail").arg(id);
    sh.code(" \"cannot create its directory\"").nl();
    sh.code("err=$( { ( umask 077; head -c").int(len).code(" >").path(staged);
    sh.code(" ); } 2>&1 ) || fail")
        .arg(id)
        .code(" \"cannot write a temporary file next to it: $err\"");
    sh.nl();
    sh.code("[ \"$(wc -c <").path(staged).code(")\" -eq").int(len).code(" ] || fail").arg(id);
    sh.code(" \"short write (connection lost?)\"").nl();
    // Unmanaged owner and group are those of the file it replaces.
    sh.code("own").path(staged).arg(owner.unwrap_or("")).arg(group.unwrap_or("")).path(path);
    sh.code(" && chmod").mode(mode).path(staged);
    sh.code(" || fail_owner").arg(id).arg(&ownership(owner, group)).nl();
    if let Some((v, timeout)) = validate {
        sh.code("if ! run_cmd").command(&validate_command(v, staged)).int(timeout);
        sh.code("; then say VALIDATE");
        sh.arg(id).code(" \"$(tail_out)\"; exit 1; fi").nl();
    }
    sh.code("sync").path(staged).code(" 2>/dev/null || true").nl();
}

/// Renames the staged file over the old one (backed up before).
pub(super) fn render_place(sh: &mut Sh, id: &str, path: &str, staged: &str) {
    sh.code("err=$(mv -f").path(staged).path(path).code(" 2>&1) || fail").arg(id);
    sh.code(" \"cannot move the new file into place: $err\"").nl();
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

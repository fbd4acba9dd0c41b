//! Quoting for POSIX shells, for everything the engine hands to `sh` (remote scripts, the lab's
//! start commands, `sudo -n sh -c`), and for values templates interpolate into commands.

/// Quotes `s` as one word for a POSIX shell, exactly as Python's `shlex.quote` does (which is
/// Ansible's `quote` filter, so templates written for Ansible render the same): unchanged when
/// it is non-empty and only `[A-Za-z0-9_@%+=:,./-]`, else in single quotes, each `'` as
/// `'"'"'`. One quoting for scripts and templates also means one quoted form of a secret to
/// redact.
pub(crate) fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r#"'"'"'"#))
    }
}

/// A one-line script that reads the next `len` bytes of its stdin and evals them: how commands
/// travel without showing in a process list (only this line is a shell's argument). `head -c`
/// never reads past what it was asked for, so what follows on stdin stays for the command; with
/// `null_stdin` the command gets `/dev/null` instead. The `.` keeps the command's trailing
/// newlines from `$(...)`, which strips them.
pub(crate) fn read_and_eval(len: usize, null_stdin: bool) -> String {
    let redirect = if null_stdin { "exec </dev/null && " } else { "" };
    format!("s=$(head -c {len}; echo .) && {redirect}eval \"${{s%.}}\"")
}

/// The name of the auto-escape mode of templates that render shell commands.
const SHELL: &str = "sh";

/// The auto-escape mode of templates that render shell commands.
pub(crate) fn shell_escape() -> minijinja::AutoEscape {
    minijinja::AutoEscape::Custom(SHELL.into())
}

/// A minijinja formatter: in templates whose auto-escape mode is [`shell_escape`] every value
/// a template prints is quoted as one shell word, unless the template marked it `| safe` (a
/// trusted shell fragment). Other templates print values as they are.
pub(crate) fn jinja_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if !matches!(state.auto_escape(), minijinja::AutoEscape::Custom(name) if name == SHELL) {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    if value.is_safe() {
        out.write_str(&text)?;
    } else {
        out.write_str(&quote(&text))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $HOME"), r#"'it'"'"'s $HOME'"#);
    }

    /// The same bytes as Python's `shlex.quote`, so Ansible's `quote` renders as in Ansible.
    #[test]
    fn quoting_is_pythons_shlex_quote() {
        let words =
            ["plain", "", "a b", "it's", "''", "é", "-n", "a=b,c:d@e%f+g/h.i_j", "$x", "~", "!"];
        let script =
            "import json, shlex, sys\nfor w in json.load(sys.stdin): print(shlex.quote(w))";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let input = serde_json::to_string(&words).unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let python: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        let ours: Vec<String> = words.iter().map(|w| quote(w)).collect();
        assert_eq!(ours, python);
    }

    #[test]
    fn a_quoted_word_reaches_the_shell_unchanged() {
        for s in
            ["plain", "a b", "it's", "$(touch /tmp/x)", "`id`", "back\\slash", "new\nline", "*"]
        {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }
}

//! Quoting for POSIX shells, for everything the engine hands to `sh` (remote scripts, the lab's
//! start commands, `sudo -n sh -c`).

/// Quotes `s` as one word for a POSIX shell: unchanged when that is safe, else in single quotes.
pub(crate) fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r#"'\''"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $HOME"), r#"'it'\''s $HOME'"#);
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

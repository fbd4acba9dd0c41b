//! The part of an OpenSSH client config (`~/.ssh/config`, ssh_config(5)) that says how to reach
//! a host: HostName, User, Port, IdentityFile and ProxyJump, found the way `ssh` finds them.
//! Blocks apply in file order and the first value found for a keyword wins; `Host` patterns
//! (with `*`, `?` and `!`) are matched against the name the host is reached by (its inventory
//! address, or a jump host as written). `Include` is followed. Everything else is ignored,
//! since it is about ssh's own behaviour; a `Match` block other than `Match all` cannot be
//! judged without running ssh, so it is skipped with a warning rather than guessed.
//!
//! Pure: files are read through the `read` function the caller passes.

use std::path::{Path, PathBuf};

use crate::error::{self, Result};
use crate::glob;

/// What a config says for one host; `None` where it says nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostParams {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    /// `ProxyJump` as written, `none` included (see [`HostParams::jump`]).
    pub proxy_jump: Option<String>,
}

impl HostParams {
    /// The ProxyJump list, unless the config says `none`.
    pub fn jump(&self) -> Option<&str> {
        self.proxy_jump.as_deref().filter(|j| !j.eq_ignore_ascii_case("none"))
    }
}

#[derive(Debug, Clone)]
struct Line {
    file: PathBuf,
    line: usize,
    keyword: String,
    args: Vec<String>,
}

/// A parsed config, with its includes spliced in where they stand.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    lines: Vec<Line>,
}

/// How deep `Include`s may nest (OpenSSH stops at 16 as well).
const MAX_DEPTH: usize = 16;

impl SshConfig {
    /// Reads `path` and what it includes. `read` returns a file's text (`None`: no such file,
    /// which for the top file means an empty config, as for ssh) and `list` a directory's
    /// file names, for `Include` patterns. `home` resolves `~`.
    pub fn load(
        path: &Path,
        home: &Path,
        read: &dyn Fn(&Path) -> std::io::Result<Option<String>>,
        list: &dyn Fn(&Path) -> Vec<String>,
    ) -> Result<SshConfig> {
        let mut config = SshConfig::default();
        config.read_file(path, home, read, list, 0)?;
        Ok(config)
    }

    fn read_file(
        &mut self,
        path: &Path,
        home: &Path,
        read: &dyn Fn(&Path) -> std::io::Result<Option<String>>,
        list: &dyn Fn(&Path) -> Vec<String>,
        depth: usize,
    ) -> Result<()> {
        let text = read(path)
            .map_err(|e| {
                error::invalid(format!("cannot read the SSH config {}", path.display()))
                    .with_source(e)
            })?
            .unwrap_or_default();
        let at = |line: usize| (path.display().to_string(), line);
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let Some((keyword, args)) = split(raw).map_err(|e| {
                let (file, line) = at(number);
                error::invalid(format!("{e}; fix the line or stop reading this file (ssh_config)"))
                    .at_file(file, Some(line))
            })?
            else {
                continue;
            };
            if keyword == "include" {
                if depth >= MAX_DEPTH {
                    let (file, line) = at(number);
                    return Err(error::invalid(format!(
                        "Include nests deeper than {MAX_DEPTH} files (a loop?)"
                    ))
                    .at_file(file, Some(line)));
                }
                // Relative includes are relative to ~/.ssh, as for a user's config.
                let base = home.join(".ssh");
                for pattern in &args {
                    let full = expand_tilde(pattern, home);
                    let full =
                        if Path::new(&full).is_absolute() { full.into() } else { base.join(full) };
                    for file in expand_glob(&full, list) {
                        self.read_file(&file, home, read, list, depth + 1)?;
                    }
                }
                continue;
            }
            self.lines.push(Line { file: path.to_path_buf(), line: number, keyword, args });
        }
        Ok(())
    }

    /// The parameters for `name`: the first value of each keyword in a block that matches.
    pub fn lookup(&self, name: &str) -> HostParams {
        let mut params = HostParams::default();
        let mut active = true;
        for l in &self.lines {
            match l.keyword.as_str() {
                "host" => active = host_matches(&l.args, name),
                "match" => {
                    active = l.args.len() == 1 && l.args[0].eq_ignore_ascii_case("all");
                    if !active {
                        tracing::warn!(
                            "{}:{}: skipping a `Match {}` block: stackdeploy judges only `Match \
                             all`; write the settings in a `Host` block to use them",
                            l.file.display(),
                            l.line,
                            l.args.join(" ")
                        );
                    }
                }
                _ if !active => {}
                "hostname" => set(&mut params.host_name, l),
                "user" => set(&mut params.user, l),
                "identityfile" => set(&mut params.identity_file, l),
                "proxyjump" => set(&mut params.proxy_jump, l),
                "port" if params.port.is_none() => {
                    params.port = l.args.first().and_then(|p| p.parse().ok());
                }
                _ => {}
            }
        }
        params
    }

    /// A keyword's line, for messages: `file:line` of the value [`SshConfig::lookup`] used.
    pub fn source_of(&self, name: &str, keyword: &str) -> Option<String> {
        let mut active = true;
        for l in &self.lines {
            match l.keyword.as_str() {
                "host" => active = host_matches(&l.args, name),
                "match" => active = l.args.len() == 1 && l.args[0].eq_ignore_ascii_case("all"),
                k if active && k == keyword => {
                    return Some(format!("{}:{}", l.file.display(), l.line));
                }
                _ => {}
            }
        }
        None
    }

    /// Checks what [`SshConfig::lookup`] would use for `name` and says what is wrong, at the
    /// line it came from: a Port that is not a port.
    pub fn check(&self, name: &str) -> Result<()> {
        let mut active = true;
        let mut port_seen = false;
        for l in &self.lines {
            match l.keyword.as_str() {
                "host" => active = host_matches(&l.args, name),
                "match" => active = l.args.len() == 1 && l.args[0].eq_ignore_ascii_case("all"),
                "port" if active && !port_seen => {
                    port_seen = true;
                    let ok =
                        l.args.first().and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| p > 0);
                    if !ok {
                        return Err(error::invalid(format!(
                            "Port '{}' is not a number from 1 to 65535",
                            l.args.join(" ")
                        ))
                        .at_file(l.file.display().to_string(), Some(l.line)));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn set(slot: &mut Option<String>, l: &Line) {
    if slot.is_none()
        && let Some(v) = l.args.first()
    {
        *slot = Some(v.clone());
    }
}

/// A `Host` line matches when one of its patterns matches and none of its `!` patterns does.
fn host_matches(patterns: &[String], name: &str) -> bool {
    let mut any = false;
    for p in patterns {
        if let Some(negated) = p.strip_prefix('!') {
            if glob::matches(negated.as_bytes(), name.as_bytes(), true) {
                return false;
            }
        } else if glob::matches(p.as_bytes(), name.as_bytes(), true) {
            any = true;
        }
    }
    any
}

/// Splits a config line into its lower-cased keyword and arguments (`Keyword args`,
/// `Keyword=args`, double-quoted arguments); `None` for blank lines and comments.
fn split(line: &str) -> std::result::Result<Option<(String, Vec<String>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut arg = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => arg.push(ch),
                    None => return Err(format!("`{keyword}` has an unclosed quote")),
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                arg.push(ch);
                chars.next();
            }
        }
        args.push(arg);
    }
    Ok(Some((keyword, args)))
}

fn expand_tilde(path: &str, home: &Path) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest).display().to_string(),
        None if path == "~" => home.display().to_string(),
        None => path.to_string(),
    }
}

/// The files a path with `*`/`?` in its last component names, sorted (as glob(3) sorts them).
fn expand_glob(path: &Path, list: &dyn Fn(&Path) -> Vec<String>) -> Vec<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut names: Vec<String> = list(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.') && glob::matches(name.as_bytes(), n.as_bytes(), true))
        .collect();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// Expands the `%` tokens ssh allows in HostName and IdentityFile: `%h` the host name, `%p`
/// the port, `%r` the remote user, `%u` the local user, `%d` the home directory, `%%`.
pub fn expand_tokens(value: &str, tokens: &[(char, &str)]) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    return Err(format!(
                        "'%{t}' in '{value}' is a token stackdeploy does not expand"
                    ));
                }
            },
            None => return Err(format!("'{value}' ends in a lone %")),
        }
    }
    Ok(out)
}

/// `~/` at the start of an IdentityFile.
pub fn home_path(value: &str, home: &Path) -> String {
    expand_tilde(value, home)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(files: &[(&str, &str)]) -> Result<SshConfig> {
        let files: BTreeMap<PathBuf, String> =
            files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
        let read = |p: &Path| Ok(files.get(p).cloned());
        let list = |d: &Path| {
            files
                .keys()
                .filter(|p| p.parent() == Some(d))
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        SshConfig::load(Path::new("/home/op/.ssh/config"), Path::new("/home/op"), &read, &list)
    }

    #[test]
    fn the_first_value_of_the_first_matching_block_wins() {
        let c = config(&[(
            "/home/op/.ssh/config",
            "# comment\n\
             Host db* !db-legacy\n  HostName 10.0.0.%h\n  User=dba\n\
             Host *\n  User ops\n  Port 2222\n  IdentityFile ~/.ssh/id_cloud\n  ProxyJump bastion\n\
             Host bastion\n  ProxyJump none\n",
        )])
        .unwrap();
        let db = c.lookup("db01");
        assert_eq!(db.host_name.as_deref(), Some("10.0.0.%h"));
        assert_eq!(db.user.as_deref(), Some("dba"));
        assert_eq!(db.port, Some(2222));
        assert_eq!(db.identity_file.as_deref(), Some("~/.ssh/id_cloud"));
        assert_eq!(db.jump(), Some("bastion"));
        let legacy = c.lookup("db-legacy");
        assert_eq!(legacy.user.as_deref(), Some("ops"), "the ! pattern keeps the db block out");
        assert_eq!(legacy.host_name, None);
        // `Host *` comes first, so its ProxyJump wins even for the bastion, as in ssh: the
        // bastion's own `none` is too late.
        assert_eq!(c.lookup("bastion").jump(), Some("bastion"));
        assert_eq!(c.source_of("db01", "user").as_deref(), Some("/home/op/.ssh/config:4"));
    }

    #[test]
    fn proxyjump_none_written_first_turns_the_jump_off() {
        let c = config(&[(
            "/home/op/.ssh/config",
            "Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n",
        )])
        .unwrap();
        assert_eq!(c.lookup("bastion").jump(), None);
        assert_eq!(c.lookup("node1").jump(), Some("bastion"));
    }

    #[test]
    fn includes_are_read_where_they_stand_in_name_order() {
        let c = config(&[
            ("/home/op/.ssh/config", "Include config.d/*\nHost *\n  User late\n"),
            ("/home/op/.ssh/config.d/20-b", "Host n*\n  User second\n  Port 2200\n"),
            ("/home/op/.ssh/config.d/10-a", "Host node1\n  User first\n"),
        ])
        .unwrap();
        let p = c.lookup("node1");
        assert_eq!(p.user.as_deref(), Some("first"));
        assert_eq!(p.port, Some(2200));
        assert_eq!(c.lookup("other").user.as_deref(), Some("late"));
    }

    #[test]
    fn match_blocks_other_than_all_are_skipped_not_guessed() {
        let c = config(&[(
            "/home/op/.ssh/config",
            "Match exec \"test -e /x\"\n  User guessed\nMatch all\n  User everyone\n",
        )])
        .unwrap();
        assert_eq!(c.lookup("h").user.as_deref(), Some("everyone"));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let e = config(&[("/home/op/.ssh/config", "Host a\n  IdentityFile \"~/x\n")]).unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("/home/op/.ssh/config:2"), "{e}");
        let c = config(&[("/home/op/.ssh/config", "Host a\n  Port ssh\n")]).unwrap();
        let e = c.check("a").unwrap_err().to_string();
        assert!(e.starts_with("/home/op/.ssh/config:2") && e.contains("'ssh'"), "{e}");
        let e = config(&[("/home/op/.ssh/config", "Include config\n")]).unwrap_err().to_string();
        assert!(e.contains("deeper"), "{e}");
    }

    #[test]
    fn a_missing_config_is_empty() {
        assert_eq!(config(&[]).unwrap().lookup("x"), HostParams::default());
    }

    #[test]
    fn tokens_expand_and_unknown_ones_are_refused() {
        let t = [('h', "db01"), ('p', "22")];
        assert_eq!(expand_tokens("%h.example.com:%p %%", &t).unwrap(), "db01.example.com:22 %");
        assert!(expand_tokens("%C", &t).unwrap_err().contains("%C"));
    }
}

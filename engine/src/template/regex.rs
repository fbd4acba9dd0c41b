//! Ansible's regex filters (`regex_replace`, `regex_search`, `regex_findall`,
//! `regex_escape`) and tests (`match`, `search`, `regex`), over Python `re` syntax.
//!
//! Patterns are translated from Python's syntax to the `regex` crate's where the two only
//! spell a thing differently (`\Z`, `{,n}`, a literal `{` or `[`, `&` and `~` inside a
//! class); what the crate cannot do at all (lookaround, backreferences) is refused with an
//! error saying so. Replacements use Python's `\1`, `\g<1>`, `\g<name>` and its escapes.
//! Compiled patterns are cached: templates run once per host with the same patterns.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use minijinja::value::{ArgType, Kwargs, Rest, Value, ValueOrKwargs};
use minijinja::{Environment, Error};
use regex::{Captures, Regex, RegexBuilder};

use super::{invalid, to_text as text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
    env.add_test("match", |v: &Value, p: &str, kw: Kwargs| test("match", v, p, kw, true));
    env.add_test("search", |v: &Value, p: &str, kw: Kwargs| test("search", v, p, kw, false));
    env.add_test("regex", |v: &Value, p: &str, kw: Kwargs| {
        let anchored = match kw.get::<Option<&str>>("match_type")? {
            None | Some("search") => false,
            Some("match") => true,
            Some(other) => return Err(invalid("regex", format!("unknown match_type {other:?}"))),
        };
        test("regex", v, p, kw, anchored)
    });
}

/// Flags given by keyword, or positionally after the filter's own arguments.
fn flag(kwargs: &Kwargs, name: &str, positional: Option<bool>) -> Result<bool, Error> {
    Ok(kwargs.get::<Option<bool>>(name)?.or(positional).unwrap_or(false))
}

fn regex_replace(
    value: &Value,
    pattern: Option<&str>,
    replacement: Option<&str>,
    ignorecase: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    const F: &str = "regex_replace";
    // minijinja filters take at most five arguments: `multiline` is a keyword only.
    let multiline = None;
    let pattern = kwargs.get::<Option<&str>>("pattern")?.or(pattern).unwrap_or("");
    let replacement = kwargs.get::<Option<&str>>("replacement")?.or(replacement).unwrap_or("");
    let re = compile(
        F,
        pattern,
        flag(&kwargs, "ignorecase", ignorecase)?,
        flag(&kwargs, "multiline", multiline)?,
    )?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let template = Replacement::parse(replacement, &re)?;
    let value = text(value);
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    let mut subs = 0;
    for caps in python_matches(&re, &value) {
        if count > 0 && subs == count {
            break;
        }
        let whole = caps.get(0).expect("group 0 is the match");
        out.push_str(&value[last..whole.start()]);
        template.expand(&caps, &mut out);
        last = whole.end();
        subs += 1;
    }
    out.push_str(&value[last..]);
    if mandatory > 0 && mandatory != subs {
        return Err(invalid(
            F,
            format!(
                "'{pattern}' should match {mandatory} times, but matches {subs} times in '{value}'"
            ),
        ));
    }
    Ok(out)
}

fn regex_search(value: &Value, pattern: &str, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const F: &str = "regex_search";
    let mut groups = Vec::new();
    let mut kwargs = None;
    for arg in args.0.into_iter().map(ValueOrKwargs::into_value) {
        if arg.is_kwargs() {
            kwargs = Some(Kwargs::from_value(Some(&arg))?);
            continue;
        }
        let arg = arg.as_str().ok_or_else(|| invalid(F, "Unknown argument"))?.to_string();
        groups.push(
            match (
                arg.strip_prefix("\\g<").and_then(|a| a.strip_suffix('>')),
                arg.strip_prefix('\\'),
            ) {
                (Some(name), _) => match name.parse::<usize>() {
                    Ok(i) => Group::Index(i),
                    Err(_) => Group::Name(name.to_string()),
                },
                (None, Some(digits))
                    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) =>
                {
                    Group::Index(digits.parse().map_err(|e| invalid(F, e))?)
                }
                _ => return Err(invalid(F, "Unknown argument")),
            },
        );
    }
    let kwargs = kwargs.unwrap_or_else(|| Kwargs::from_iter(std::iter::empty::<(&str, Value)>()));
    let re =
        compile(F, pattern, flag(&kwargs, "ignorecase", None)?, flag(&kwargs, "multiline", None)?)?;
    kwargs.assert_all_used()?;
    let value = text(value);
    let Some(caps) = re.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(&caps[0]));
    }
    let mut items = Vec::new();
    for g in &groups {
        let m = match g {
            Group::Index(i) if *i < caps.len() => caps.get(*i),
            Group::Name(n) if re.capture_names().any(|c| c == Some(n)) => caps.name(n),
            _ => return Err(invalid(F, "invalid group reference")),
        };
        items.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(items))
}

fn regex_findall(
    value: &Value,
    pattern: &str,
    multiline: Option<bool>,
    ignorecase: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const F: &str = "regex_findall";
    let re = compile(
        F,
        pattern,
        flag(&kwargs, "ignorecase", ignorecase)?,
        flag(&kwargs, "multiline", multiline)?,
    )?;
    kwargs.assert_all_used()?;
    let value = text(value);
    let groups = re.captures_len() - 1;
    let group = |caps: &Captures<'_>, i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
    let found: Vec<Value> = python_matches(&re, &value)
        .iter()
        .map(|caps| match groups {
            0 => group(caps, 0),
            1 => group(caps, 1),
            n => Value::from(minijinja::value::Tuple::from(
                (1..=n).map(|i| group(caps, i)).collect::<Vec<_>>(),
            )),
        })
        .collect();
    Ok(Value::from(found))
}

fn regex_escape(value: &Value, re_type: Option<&str>) -> Result<String, Error> {
    let value = text(value);
    let special = match re_type.unwrap_or("python") {
        "python" => return Ok(escape_python(&value)),
        "posix_basic" => "].[^$*\\",
        "posix_extended" => "^$.*+?[]|(){}\\",
        other => return Err(invalid("regex_escape", format!("Invalid regex type ({other})"))),
    };
    Ok(escape_with(&value, special))
}

/// The matches `re.sub` and `re.findall` see (Python 3.7 and later): like the `regex`
/// crate's, but an empty match right after a non-empty one counts too (`x*` in `abxd`
/// matches before `a`, before `b`, `x`, before `d` and at the end). After an empty match
/// the search moves on one character.
fn python_matches<'h>(re: &Regex, text: &'h str) -> Vec<Captures<'h>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let m = caps.get(0).expect("group 0 is the match");
        pos = if m.is_empty() {
            m.end() + text[m.end()..].chars().next().map_or(1, char::len_utf8)
        } else {
            m.end()
        };
        out.push(caps);
    }
    out
}

/// Python's `re.escape`.
pub(super) fn escape_python(value: &str) -> String {
    escape_with(value, "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}")
}

fn escape_with(value: &str, special: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn test(
    name: &str,
    v: &Value,
    pattern: &str,
    kwargs: Kwargs,
    anchored: bool,
) -> Result<bool, Error> {
    let re = compile(
        name,
        pattern,
        flag(&kwargs, "ignorecase", None)?,
        flag(&kwargs, "multiline", None)?,
    )?;
    kwargs.assert_all_used()?;
    let value = text(v);
    // The leftmost match starts at 0 exactly when `re.match` would match.
    Ok(re.find(&value).is_some_and(|m| !anchored || m.start() == 0))
}

enum Group {
    Index(usize),
    Name(String),
}

/// A Python replacement template, parsed once.
struct Replacement(Vec<Part>);

enum Part {
    Text(String),
    Group(usize),
}

impl Replacement {
    /// Python's `re` template syntax: `\1`..`\99`, `\g<n>`, `\g<name>`, octal `\0`/`\012`,
    /// the escapes `\n \t \r \f \v \a \b \\`; any other letter escape is an error, any other
    /// escaped character stays as written (`\-` is two characters).
    fn parse(template: &str, re: &Regex) -> Result<Replacement, Error> {
        const F: &str = "regex_replace";
        let bad_group =
            |g: &str| invalid(F, format!("invalid group reference {g} in the replacement"));
        let group_index =
            |i: usize| if i < re.captures_len() { Ok(i) } else { Err(bad_group(&i.to_string())) };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let chars: Vec<char> = template.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '\\' {
                lit.push(c);
                i += 1;
                continue;
            }
            let Some(&next) = chars.get(i + 1) else {
                return Err(invalid(F, "bad escape (end of pattern) in the replacement"));
            };
            i += 2;
            let mut group = None;
            match next {
                'g' => {
                    let rest: String = chars[i..].iter().collect();
                    let end = rest.find('>').filter(|_| rest.starts_with('<'));
                    let Some(end) = end else {
                        return Err(invalid(F, "missing group name in the replacement"));
                    };
                    let name = &rest[1..end];
                    i += name.chars().count() + 2;
                    group = Some(match name.parse::<usize>() {
                        Ok(n) => group_index(n)?,
                        Err(_) => re
                            .capture_names()
                            .position(|c| c == Some(name))
                            .ok_or_else(|| invalid(F, format!("unknown group name '{name}'")))?,
                    });
                }
                '0' => {
                    let mut code = 0u32;
                    let mut n = 0;
                    while n < 2 && chars.get(i).is_some_and(|d| ('0'..='7').contains(d)) {
                        code = code * 8 + chars[i].to_digit(8).expect("octal digit");
                        i += 1;
                        n += 1;
                    }
                    lit.push(char::from_u32(code).unwrap_or('\0'));
                }
                d if d.is_ascii_digit() => {
                    let mut digits = d.to_string();
                    if chars.get(i).is_some_and(char::is_ascii_digit) {
                        let second = chars[i];
                        let third = chars.get(i + 1).copied();
                        let octal = |c: char| ('0'..='7').contains(&c);
                        if octal(d) && octal(second) && third.is_some_and(octal) {
                            let code = [d, second, third.unwrap()]
                                .iter()
                                .fold(0u32, |a, c| a * 8 + c.to_digit(8).unwrap());
                            if code > 0o377 {
                                return Err(invalid(
                                    F,
                                    "octal escape value outside of range 0-0o377",
                                ));
                            }
                            lit.push(char::from_u32(code).unwrap_or('\0'));
                            i += 2;
                            continue;
                        }
                        digits.push(second);
                        i += 1;
                    }
                    group = Some(group_index(digits.parse().expect("digits"))?);
                }
                'n' => lit.push('\n'),
                't' => lit.push('\t'),
                'r' => lit.push('\r'),
                'f' => lit.push('\u{c}'),
                'v' => lit.push('\u{b}'),
                'a' => lit.push('\u{7}'),
                'b' => lit.push('\u{8}'),
                '\\' => lit.push('\\'),
                c if c.is_ascii_alphabetic() => {
                    return Err(invalid(F, format!("bad escape \\{c} in the replacement")));
                }
                c => {
                    lit.push('\\');
                    lit.push(c);
                }
            }
            if let Some(g) = group {
                if !lit.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut lit)));
                }
                parts.push(Part::Group(g));
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Replacement(parts))
    }

    /// An unmatched group is empty, as in Python 3.5 and later.
    fn expand(&self, caps: &Captures<'_>, out: &mut String) {
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            }
        }
    }
}

/// Compiled patterns by (Python pattern, ignorecase, multiline); cleared when it grows
/// past a few hundred, which only generated patterns would reach.
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

type Cache = HashMap<(String, bool, bool), Regex>;

fn compile(filter: &str, pattern: &str, ignorecase: bool, multiline: bool) -> Result<Regex, Error> {
    let key = (pattern.to_string(), ignorecase, multiline);
    if let Some(re) = CACHE.lock().expect("regex cache").get(&key) {
        return Ok(re.clone());
    }
    let translated =
        translate(pattern).map_err(|why| invalid(filter, format!("{why} in '{pattern}'")))?;
    let re = RegexBuilder::new(&translated)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| {
            invalid(filter, format!("'{pattern}' is not a pattern stackdeploy can use: {e}"))
        })?;
    let mut cache = CACHE.lock().expect("regex cache");
    if cache.len() > 512 {
        cache.clear();
    }
    cache.insert(key, re.clone());
    Ok(re)
}

/// Python `re` syntax → `regex` crate syntax, or why it cannot be translated.
fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut class = false;
    // Position right after a class's `[` or `[^`, where `]` is a literal.
    let mut class_start = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&next) = chars.get(i + 1) else {
                return Err("a trailing backslash".into());
            };
            i += 2;
            match next {
                'Z' if !class => out.push_str("\\z"),
                'b' if class => out.push_str("\\x08"),
                d if d.is_ascii_digit() && !class && d != '0' => {
                    return Err(format!("a backreference (\\{d}) is not supported"));
                }
                '0' => out.push_str("\\x00"),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        if class {
            match c {
                ']' if i != class_start => {
                    class = false;
                    out.push(']');
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..].iter().take(3).collect();
                if rest.starts_with('=')
                    || rest.starts_with('!')
                    || rest.starts_with("<=")
                    || rest.starts_with("<!")
                {
                    return Err("lookahead and lookbehind ((?=...), (?!...), (?<=...), (?<!...)) are not supported".into());
                }
                if rest.starts_with("P=") {
                    return Err("a backreference ((?P=name)) is not supported".into());
                }
                out.push('(');
            }
            '{' => {
                let rest: String = chars[i..].iter().collect();
                match quantifier(&rest) {
                    Some((len, q)) => {
                        out.push_str(&q);
                        i += len;
                        continue;
                    }
                    None => out.push_str("\\{"),
                }
            }
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    if class {
        return Err("an unterminated character set".into());
    }
    Ok(out)
}

/// A `{m,n}` repetition at the start of `s` as Python reads one (`{,n}` is `{0,n}`): its
/// length in characters and how the `regex` crate spells it. `None`: a literal `{`.
fn quantifier(s: &str) -> Option<(usize, String)> {
    let end = s.find('}')?;
    let body = &s[1..end];
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let spelled = match body.split_once(',') {
        None if !body.is_empty() && digits(body) => format!("{{{body}}}"),
        Some((lo, hi)) if digits(lo) && digits(hi) && !(lo.is_empty() && hi.is_empty()) => {
            let lo = if lo.is_empty() { "0" } else { lo };
            format!("{{{lo},{hi}}}")
        }
        _ => return None,
    };
    Some((s[..=end].chars().count(), spelled))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok};
    use super::translate;

    #[test]
    fn regex_replace_uses_python_backrefs_and_flags() {
        assert_eq!(ok(r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\1') }}"), "able");
        assert_eq!(ok(r"{{ 'foobar' | regex_replace('^f.*o(.*)$', '\\g<1>-\\1') }}"), "bar-bar");
        assert_eq!(
            ok(r"{{ 'k=v' | regex_replace('(?P<k>\\w+)=(?P<v>\\w+)', '\\g<v>=\\g<k>') }}"),
            "v=k"
        );
        assert_eq!(ok(r"{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"), "AxC");
        assert_eq!(ok(r"{{ 'a\nb' | regex_replace('^', '> ', multiline=true) }}"), "> a\n> b");
        assert_eq!(ok(r"{{ 'aaa' | regex_replace('a', 'b', count=2) }}"), "bba");
        assert_eq!(ok(r"{{ 'a.b' | regex_replace('\\.', '\\n') }}"), "a\nb");
        assert_eq!(ok(r"{{ 'ab' | regex_replace('(x)?b', '[\\1]') }}"), "a[]");
        assert_eq!(ok(r"{{ 'a{b}' | regex_replace('{b}', 'c') }}"), "ac");
        assert_eq!(ok(r"{{ 'a-b' | regex_replace('[[-]', '_') }}"), "a_b");
        // Python 3.7's empty matches: one right after a non-empty match counts.
        assert_eq!(ok(r"{{ 'abxd' | regex_replace('x*', '-') }}"), "-a-b--d-");
        assert_eq!(ok(r"{{ 'axb' | regex_findall('x*') }}"), "['', 'x', '', '']");
        assert_eq!(ok(r"{{ 'éa' | regex_replace('', '-') }}"), "-é-a-");
        assert!(
            err(r"{{ 'x' | regex_replace('(?<=a)x', '') }}").contains("lookahead and lookbehind")
        );
        assert!(err(r"{{ 'x' | regex_replace('(a)\\1', '') }}").contains("backreference"));
        assert!(err(r"{{ 'x' | regex_replace('x', '\\2') }}").contains("invalid group reference"));
        assert!(
            err(r"{{ 'x' | regex_replace('x', 'y', mandatory_count=2) }}")
                .contains("should match 2 times")
        );
    }

    #[test]
    fn regex_search_returns_the_match_groups_or_none() {
        assert_eq!(
            ok(r"{{ 'server1/database42' | regex_search('database[0-9]+') }}"),
            "database42"
        );
        assert_eq!(ok(r"{{ 'x' | regex_search('y') }}"), "None");
        assert_eq!(ok(r"{{ 'x' | regex_search('y') is none }}"), "True");
        assert_eq!(
            ok(
                r"{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\\1', '\\2') }}"
            ),
            "['1', '42']"
        );
        assert_eq!(
            ok(r"{{ 'ab' | regex_search('(?P<x>B)', '\\g<x>', ignorecase=true) }}"),
            "['b']"
        );
    }

    #[test]
    fn regex_findall_returns_strings_or_tuples() {
        assert_eq!(ok(r"{{ 'a1b22' | regex_findall('[0-9]+') }}"), "['1', '22']");
        assert_eq!(ok(r"{{ 'a1b22' | regex_findall('([a-z])[0-9]') }}"), "['a', 'b']");
        assert_eq!(
            ok(r"{{ 'a1b22' | regex_findall('([a-z])([0-9])') }}"),
            "[('a', '1'), ('b', '2')]"
        );
        assert_eq!(
            ok(r"{{ 'A\na' | regex_findall('^a', multiline=true, ignorecase=true) }}"),
            "['A', 'a']"
        );
    }

    #[test]
    fn regex_escape_and_tests() {
        assert_eq!(ok(r"{{ '^f.*o(.*)$ a' | regex_escape }}"), r"\^f\.\*o\(\.\*\)\$\ a");
        assert_eq!(ok(r"{{ '^a.[b]' | regex_escape('posix_basic') }}"), r"\^a\.\[b\]");
        assert_eq!(
            ok(r"{{ 'abc' is match('b') }} {{ 'abc' is match('a') }} {{ 'abc' is search('b') }}"),
            "False True True"
        );
        assert_eq!(
            ok(
                r"{{ 'abc' is regex('B', ignorecase=true) }} {{ 'abc' is regex('b', match_type='match') }}"
            ),
            "True False"
        );
    }

    #[test]
    fn python_syntax_is_translated() {
        assert_eq!(translate(r"a\Z").unwrap(), r"a\z");
        assert_eq!(translate(r"x{,3}").unwrap(), r"x{0,3}");
        assert_eq!(translate(r"x{2}y{a}").unwrap(), r"x{2}y\{a\}");
        assert_eq!(translate(r"[]a&~[]").unwrap(), r"[]a\&\~\[]");
        assert_eq!(translate(r"[\b]").unwrap(), r"[\x08]");
    }
}

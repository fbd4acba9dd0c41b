//! YAML as Puppet reads it: a tree with the line of every node, built from saphyr-parser's
//! events, and the YAML 1.1 meaning of plain scalars that Ruby's Psych gives them (`yes` is
//! true, `0644` is octal, `~` is null), since that is what `puppet lookup` returned.
//!
//! Aliases are resolved here (a copy of the anchored node, keeping the anchor's lines, so a
//! problem inside it names the place to fix); merge keys (`<<`) are left to
//! [`mapping_entries`], which applies them the way Psych does.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// Anchors may not expand a file to more nodes than this (a "billion laughs" file would
/// otherwise take all the memory there is).
const ALIAS_BUDGET: usize = 1_000_000;

/// One node of a document, with the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar as written: its text, whether it was plain (unquoted, not a block), its tag.
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq {
        items: Vec<Node>,
        tag: Option<String>,
    },
    /// Entries in file order, duplicates and merge keys included.
    Map {
        entries: Vec<(Node, Node)>,
        tag: Option<String>,
    },
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The first document of a file (`None` when the file holds none), and the line where a
/// second document starts, if there is one: Puppet reads only the first.
#[derive(Debug)]
pub(crate) struct Document {
    pub root: Option<Node>,
    pub second_document: Option<usize>,
}

struct Frame {
    node: Node,
    anchor: usize,
    /// In a mapping: the key waiting for its value.
    key: Option<Node>,
}

/// Parses the first document of `text`.
pub(crate) fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut budget = ALIAS_BUDGET;
    let mut root = None;
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            line: e.marker().line().max(1),
            message: e.info().to_string(),
        })?;
        let line = span.start.line().max(1);
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Ok(Document { root, second_document: Some(line) });
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let kind = Kind::Scalar { text: text.into_owned(), plain, tag: tag_name(tag) };
                Some((Node { line, kind }, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                let node = Node { line, kind: Kind::Seq { items: Vec::new(), tag: tag_name(tag) } };
                stack.push(Frame { node, anchor, key: None });
                None
            }
            Event::MappingStart(anchor, tag) => {
                let node =
                    Node { line, kind: Kind::Map { entries: Vec::new(), tag: tag_name(tag) } };
                stack.push(Frame { node, anchor, key: None });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = stack.pop().expect("the parser balances its events");
                Some((frame.node, frame.anchor))
            }
            Event::Alias(id) => {
                let (node, size) = anchors.get(&id).ok_or_else(|| SyntaxError {
                    line,
                    message: "an alias to an unknown anchor".into(),
                })?;
                budget = budget.checked_sub(*size).ok_or_else(|| SyntaxError {
                    line,
                    message: format!("aliases expand the file to more than {ALIAS_BUDGET} values"),
                })?;
                Some((node.clone(), 0))
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = done else { continue };
        if anchor > 0 {
            let size = size_of(&node);
            anchors.insert(anchor, (node.clone(), size));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(frame) => match &mut frame.node.kind {
                Kind::Seq { items, .. } => items.push(node),
                Kind::Map { entries, .. } => match frame.key.take() {
                    None => frame.key = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                Kind::Scalar { .. } => unreachable!("scalars are never on the stack"),
            },
        }
    }
    Ok(Document { root, second_document: None })
}

fn size_of(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq { items, .. } => items.iter().map(size_of).sum(),
        Kind::Map { entries, .. } => entries.iter().map(|(k, v)| size_of(k) + size_of(v)).sum(),
    }
}

/// `!!str` for the core schema's tags, `!` for the non-specific tag, the tag as written otherwise.
fn tag_name(tag: Option<std::borrow::Cow<'_, Tag>>) -> Option<String> {
    let tag = tag?;
    Some(if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle.is_empty() && tag.suffix == "!" {
        "!".to_string()
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    })
}

/// How a scalar reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// An integer that does not fit 64 bits (its text).
    BigInt(String),
    /// `0644`, `0x1f`, `0b101`: an integer written in another base (the value and the text).
    Based(i64, String),
    /// `12:30`: a base-60 number in YAML 1.1, whose value Psych computes its own way.
    Sexagesimal(String),
    /// `2024-01-31`, `2024-01-31 10:00:00`: a date or time (its text).
    Timestamp(String),
    /// `:name`: a Ruby symbol (its name).
    Symbol(String),
    /// `!!binary`: the decoded bytes.
    Binary(Vec<u8>),
    /// A tag that names something no data file can hold (`!ruby/object:...`, `!!set`).
    Tagged(String),
}

/// Which rules give plain scalars their type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// YAML 1.1 as Ruby's Psych reads it (`yaml_data`, `eyaml_lookup_key`).
    Psych,
    /// JSON (`json_data`): only `true`, `false`, `null` and numbers are not strings.
    Json,
}

/// The meaning of a scalar under `schema`.
pub(crate) fn scalar(text: &str, plain: bool, tag: Option<&str>, schema: Schema) -> Scalar {
    match tag {
        None => {}
        Some("!!str" | "!") => return Scalar::Str(text.to_string()),
        Some("!!null") => return Scalar::Null,
        Some("!!bool") => {
            return match resolve_psych(text) {
                Scalar::Bool(b) => Scalar::Bool(b),
                _ => Scalar::Tagged(format!("!!bool {text}")),
            };
        }
        Some("!!int") => {
            return match resolve_psych(text) {
                s @ (Scalar::Int(_) | Scalar::Based(..) | Scalar::BigInt(_)) => s,
                _ => Scalar::Tagged(format!("!!int {text}")),
            };
        }
        Some("!!float") => {
            return match resolve_psych(text) {
                s @ Scalar::Float(_) => s,
                Scalar::Int(i) => Scalar::Float(i as f64),
                _ => Scalar::Tagged(format!("!!float {text}")),
            };
        }
        Some("!!timestamp") => return Scalar::Timestamp(text.to_string()),
        Some("!!binary") => {
            return match decode_base64(text) {
                Some(bytes) => Scalar::Binary(bytes),
                None => Scalar::Tagged(format!("!!binary {text}")),
            };
        }
        Some(other) => return Scalar::Tagged(other.to_string()),
    }
    if !plain {
        return Scalar::Str(text.to_string());
    }
    match schema {
        Schema::Psych => resolve_psych(text),
        Schema::Json => match text {
            "null" => Scalar::Null,
            "true" => Scalar::Bool(true),
            "false" => Scalar::Bool(false),
            _ => {
                let integral = text.strip_prefix('-').unwrap_or(text);
                if let Ok(i) = text.parse::<i64>() {
                    Scalar::Int(i)
                } else if !integral.is_empty() && integral.bytes().all(|b| b.is_ascii_digit()) {
                    // Puppet reads a big JSON integer exactly; as a float it would change.
                    Scalar::BigInt(text.to_string())
                } else if let Ok(f) = text.parse::<f64>() {
                    Scalar::Float(f)
                } else {
                    Scalar::Str(text.to_string())
                }
            }
        },
    }
}

/// Psych's `ScalarScanner#tokenize` for a plain scalar, in its order of tests.
fn resolve_psych(s: &str) -> Scalar {
    if s.is_empty() {
        return Scalar::Null;
    }
    if looks_like_word(s) || s.contains('\n') {
        if s.len() > 5 {
            return Scalar::Str(s.to_string());
        }
        let lower = s.to_ascii_lowercase();
        return match lower.as_str() {
            "~" | "null" => Scalar::Null,
            "yes" | "true" | "on" => Scalar::Bool(true),
            "no" | "false" | "off" => Scalar::Bool(false),
            _ => Scalar::Str(s.to_string()),
        };
    }
    if is_timestamp(s) {
        return Scalar::Timestamp(s.to_string());
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        ".inf" | "+.inf" => return Scalar::Float(f64::INFINITY),
        "-.inf" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(name) = s.strip_prefix(':').filter(|n| !n.is_empty()) {
        let unquoted = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .or_else(|| name.strip_prefix('\'').and_then(|n| n.strip_suffix('\'')))
            .unwrap_or(name);
        return Scalar::Symbol(unquoted.to_string());
    }
    if is_sexagesimal(s) {
        return Scalar::Sexagesimal(s.to_string());
    }
    if let Some(f) = psych_float(s) {
        return f;
    }
    psych_int(s).unwrap_or_else(|| Scalar::Str(s.to_string()))
}

/// Psych's first test: `/^[^\d.:-]?[[:alpha:]_\s!@#$%\^&*(){}<>|\/\\~;=]+/`, a word-like start.
fn looks_like_word(s: &str) -> bool {
    let word =
        |c: char| c.is_alphabetic() || c.is_whitespace() || "_!@#$%^&*(){}<>|/\\~;=".contains(c);
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    if word(first) {
        return true;
    }
    // The optional first character (anything but a digit, `.`, `:` or `-`), then a word char.
    !(first.is_ascii_digit() || ".:-".contains(first)) && chars.next().is_some_and(word)
}

fn digits(s: &str, min: usize, max: usize) -> Option<&str> {
    let n = s.chars().take_while(char::is_ascii_digit).count();
    (n >= min && n <= max).then(|| &s[n..])
}

/// `YYYY-M-D`, or that with a time (`T` or spaces, `H:MM:SS`, fraction, zone).
fn is_timestamp(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let date = (|| {
        let r = digits(s, 4, 4)?.strip_prefix('-')?;
        let r = digits(r, 1, 2)?.strip_prefix('-')?;
        digits(r, 1, 2)
    })();
    let Some(rest) = date else { return false };
    if rest.is_empty() {
        return true;
    }
    let time = (|| {
        let r = match rest.strip_prefix(['T', 't']) {
            Some(r) => r,
            None => {
                let t = rest.trim_start();
                (t.len() < rest.len()).then_some(t)?
            }
        };
        let r = digits(r, 1, 2)?.strip_prefix(':')?;
        let r = digits(r, 2, 2)?.strip_prefix(':')?;
        let mut r = digits(r, 2, 2)?;
        if let Some(f) = r.strip_prefix('.') {
            r = digits(f, 0, usize::MAX)?;
        }
        let r = r.trim_start();
        if r.is_empty() || r == "Z" {
            return Some(());
        }
        let r = r.strip_prefix(['+', '-'])?;
        let r = digits(r, 1, 2)?;
        let r = r.strip_prefix(':').unwrap_or(r);
        digits(r, 0, 2).filter(|r| r.is_empty()).map(|_| ())
    })();
    time.is_some()
}

/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}(\.[0-9_]*)?`
fn is_sexagesimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (s, _) = match s.split_once('.') {
        Some((int, frac)) if frac.chars().all(|c| c.is_ascii_digit() || c == '_') => (int, frac),
        Some(_) => return false,
        None => (s, ""),
    };
    let mut parts = s.split(':');
    let first = parts.next().unwrap_or("");
    if !first.starts_with(|c: char| c.is_ascii_digit())
        || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    (1..=2).contains(&rest.len())
        && rest.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        })
}

/// Psych's FLOAT: `[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?` (a `.` is required).
fn psych_float(s: &str) -> Option<Scalar> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, rest) = body.split_once('.')?;
    let int_ok = int.is_empty()
        || (int.starts_with(|c: char| c.is_ascii_digit())
            && int.chars().all(|c| c.is_ascii_digit() || c == '_' || c == ','));
    if !int_ok {
        return None;
    }
    let frac_len = rest.chars().take_while(char::is_ascii_digit).count();
    let exp = &rest[frac_len..];
    if !exp.is_empty() {
        let e = exp.strip_prefix(['e', 'E'])?.strip_prefix(['+', '-'])?;
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    if int.is_empty() && frac_len == 0 {
        // `.` alone (or `+.`) is a string; `.e+1` is not a number either.
        return Some(Scalar::Str(s.to_string()));
    }
    let clean: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
    let clean = clean.replace(".e", ".0e").replace(".E", ".0E");
    let clean = if clean.ends_with('.') { format!("{clean}0") } else { clean };
    let clean = clean.replacen("-.", "-0.", 1).replacen("+.", "0.", 1);
    let clean = if clean.starts_with('.') { format!("0{clean}") } else { clean };
    clean.parse::<f64>().ok().map(Scalar::Float)
}

/// Psych's INTEGER (not strict: `,` and `_` may separate digits) and Ruby's `Integer()`.
fn psych_int(s: &str) -> Option<Scalar> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let sep = |c: char| c == '_' || c == ',';
    let (radix, digits) = if let Some(d) = body.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = body.strip_prefix("0x") {
        (16, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    let valid = match radix {
        10 => {
            // `0`, or a digit 1-9 then digits each optionally after one `,` or `_`.
            body == "0"
                || (body.starts_with(|c: char| ('1'..='9').contains(&c))
                    && !body.ends_with(sep)
                    && !body.contains(",,")
                    && !body.contains("__")
                    && !body.contains(",_")
                    && !body.contains("_,")
                    && body.chars().all(|c| c.is_ascii_digit() || sep(c)))
        }
        _ => !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix) || sep(c)),
    };
    if !valid {
        return None;
    }
    let clean: String = digits.chars().filter(|c| !sep(*c)).collect();
    if clean.is_empty() {
        return None;
    }
    // With its sign, so that i64::MIN fits.
    let signed = if negative { format!("-{clean}") } else { clean };
    let value = i64::from_str_radix(&signed, radix).ok();
    Some(match value {
        None => Scalar::BigInt(s.to_string()),
        Some(v) if radix == 10 => Scalar::Int(v),
        Some(v) => Scalar::Based(v, s.to_string()),
    })
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// A mapping's entries as Psych builds its hash: in order, a repeated key keeping its first
/// place and its last value, and each merge key (`<<: *anchor` or `<<: [*a, *b]`) merging its
/// mappings in at that point (their keys override the ones before it, as Psych's `merge!`
/// does; earlier mappings of a list win over later ones). Keys are compared by their text.
pub(crate) fn mapping_entries(entries: &[(Node, Node)]) -> MappingEntries<'_> {
    let mut out = MappingEntries::default();
    let mut explicit = std::collections::HashSet::new();
    for (key, value) in entries {
        if is_merge_key(key) {
            let merged: Option<Vec<&Node>> = match &value.kind {
                Kind::Map { .. } => Some(vec![value]),
                Kind::Seq { items, .. }
                    if items.iter().all(|i| matches!(i.kind, Kind::Map { .. })) =>
                {
                    Some(items.iter().rev().collect())
                }
                _ => None,
            };
            if let Some(maps) = merged {
                out.merges.push(key.line);
                // Later items of a list are merged first, so the earlier ones override them.
                let mut from_list = MappingEntries::default();
                for map in maps {
                    let Kind::Map { entries: inner, .. } = &map.kind else { unreachable!() };
                    for (k, v) in mapping_entries(inner).entries {
                        from_list.insert(k, v);
                    }
                }
                for (k, v) in from_list.entries {
                    out.insert(k, v);
                }
                continue;
            }
        }
        let text = key_text(key);
        if let Some(first) = out.insert(key, value) {
            // A key that overrides what a merge key brought in is no duplicate.
            if explicit.contains(&text) {
                out.duplicates.push((text.clone(), first, key.line));
            }
        }
        explicit.insert(text);
    }
    out
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { text, tag, .. } if text == "<<" && tag.as_deref() != Some("!!str"))
}

/// A key's identity for duplicates and merges.
fn key_text(key: &Node) -> String {
    match &key.kind {
        Kind::Scalar { text, .. } => text.clone(),
        _ => format!("{key:?}"),
    }
}

#[derive(Default)]
pub(crate) struct MappingEntries<'a> {
    pub entries: Vec<(&'a Node, &'a Node)>,
    index: HashMap<String, usize>,
    /// Keys written twice in the mapping itself: (key, line of the first, line of the second).
    pub duplicates: Vec<(String, usize, usize)>,
    /// Lines of merge keys that were applied.
    pub merges: Vec<usize>,
}

impl<'a> MappingEntries<'a> {
    /// Inserts or replaces (keeping the place); returns the line of the replaced key.
    fn insert(&mut self, key: &'a Node, value: &'a Node) -> Option<usize> {
        let text = key_text(key);
        match self.index.get(&text) {
            Some(&i) => {
                let old = self.entries[i].0.line;
                self.entries[i].1 = value;
                Some(old)
            }
            None => {
                self.index.insert(text, self.entries.len());
                self.entries.push((key, value));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    fn psych(s: &str) -> Scalar {
        scalar(s, true, None, Schema::Psych)
    }

    #[test]
    fn nodes_have_lines_and_aliases_copy_their_anchor() {
        let n = root("# comment\na: &x\n  b: 1\nc: *x\n");
        let Kind::Map { entries, .. } = &n.kind else { panic!("{n:?}") };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.line, 2);
        assert_eq!(entries[1].0.line, 4);
        // The copy keeps the anchor's lines: a problem inside it is fixed there.
        assert_eq!(entries[1].1, entries[0].1);
        let Kind::Map { entries: inner, .. } = &entries[1].1.kind else { panic!() };
        assert_eq!(inner[0].0.line, 3);
    }

    #[test]
    fn syntax_errors_have_lines_and_a_second_document_is_noticed() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let d = parse("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(d.second_document, Some(2));
        assert!(parse("").unwrap().root.is_none());
        assert!(parse("x: *nope\n").is_err());
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in "bcdefghij".chars() {
            text.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{e:?}");
    }

    #[test]
    fn plain_scalars_read_as_psych_reads_them() {
        assert_eq!(psych("~"), Scalar::Null);
        assert_eq!(psych("null"), Scalar::Null);
        assert_eq!(psych("NULL"), Scalar::Null);
        assert_eq!(psych(""), Scalar::Null);
        assert_eq!(psych("yes"), Scalar::Bool(true));
        assert_eq!(psych("Off"), Scalar::Bool(false));
        assert_eq!(psych("y"), Scalar::Str("y".into()));
        assert_eq!(psych("12"), Scalar::Int(12));
        assert_eq!(psych("-3"), Scalar::Int(-3));
        assert_eq!(psych("1_000"), Scalar::Int(1000));
        assert_eq!(psych("1,000"), Scalar::Int(1000));
        assert_eq!(psych("0644"), Scalar::Based(420, "0644".into()));
        assert_eq!(psych("0x1f"), Scalar::Based(31, "0x1f".into()));
        assert_eq!(psych("0b101"), Scalar::Based(5, "0b101".into()));
        assert_eq!(psych("08"), Scalar::Str("08".into()));
        assert_eq!(psych("1.5"), Scalar::Float(1.5));
        assert_eq!(psych(".5"), Scalar::Float(0.5));
        assert_eq!(psych("1."), Scalar::Float(1.0));
        assert_eq!(psych("1.5e+3"), Scalar::Float(1500.0));
        assert_eq!(psych("1e3"), Scalar::Str("1e3".into()));
        assert_eq!(psych("."), Scalar::Str(".".into()));
        assert_eq!(psych("-.inf"), Scalar::Float(f64::NEG_INFINITY));
        assert!(matches!(psych(".NaN"), Scalar::Float(f) if f.is_nan()));
        assert_eq!(psych("12:30"), Scalar::Sexagesimal("12:30".into()));
        assert_eq!(psych("2024-01-31"), Scalar::Timestamp("2024-01-31".into()));
        assert_eq!(
            psych("2024-01-31 10:00:00 +01:00"),
            Scalar::Timestamp("2024-01-31 10:00:00 +01:00".into())
        );
        assert_eq!(psych("2024-01-31T10:00:00Z"), Scalar::Timestamp("2024-01-31T10:00:00Z".into()));
        assert_eq!(psych(":sym"), Scalar::Symbol("sym".into()));
        assert_eq!(psych("99999999999999999999"), Scalar::BigInt("99999999999999999999".into()));
        assert_eq!(psych("10.0.0.1"), Scalar::Str("10.0.0.1".into()));
        assert_eq!(psych("1.2.3"), Scalar::Str("1.2.3".into()));
        assert_eq!(psych("ntp.example.com"), Scalar::Str("ntp.example.com".into()));
        assert_eq!(psych("%{facts.x}"), Scalar::Str("%{facts.x}".into()));
        assert_eq!(psych("-"), Scalar::Str("-".into()));
        assert_eq!(psych("true story"), Scalar::Str("true story".into()));
    }

    #[test]
    fn quoting_tags_and_json() {
        assert_eq!(scalar("yes", false, None, Schema::Psych), Scalar::Str("yes".into()));
        assert_eq!(scalar("12", true, Some("!!str"), Schema::Psych), Scalar::Str("12".into()));
        assert_eq!(scalar("12", true, Some("!"), Schema::Psych), Scalar::Str("12".into()));
        assert_eq!(scalar("3", true, Some("!!float"), Schema::Psych), Scalar::Float(3.0));
        assert_eq!(
            scalar("aGVsbG8=", false, Some("!!binary"), Schema::Psych),
            Scalar::Binary(b"hello".to_vec())
        );
        assert_eq!(
            scalar("x", true, Some("!ruby/object:Foo"), Schema::Psych),
            Scalar::Tagged("!ruby/object:Foo".into())
        );
        assert_eq!(scalar("yes", true, None, Schema::Json), Scalar::Str("yes".into()));
        assert_eq!(scalar("1e3", true, None, Schema::Json), Scalar::Float(1000.0));
        assert_eq!(scalar("null", true, None, Schema::Json), Scalar::Null);
        let n = root("a: !!str 1\nb: !!binary aGk=\n");
        let Kind::Map { entries, .. } = &n.kind else { panic!() };
        assert!(matches!(&entries[0].1.kind, Kind::Scalar { tag: Some(t), .. } if t == "!!str"));
    }

    #[test]
    fn merge_keys_and_duplicates_follow_psych() {
        let n = root(
            "base: &base\n  a: 1\n  b: 2\nx:\n  <<: *base\n  b: 3\n  c: 4\ny:\n  b: 5\n  <<: *base\n\
             z:\n  <<: [{a: 10}, {a: 20, d: 30}]\nd:\n  k: 1\n  k: 2\n",
        );
        let Kind::Map { entries, .. } = &n.kind else { panic!() };
        let flat = |i: usize| -> Vec<(String, String)> {
            let Kind::Map { entries: inner, .. } = &entries[i].1.kind else { panic!() };
            mapping_entries(inner)
                .entries
                .iter()
                .map(|(k, v)| {
                    let text = |n: &Node| match &n.kind {
                        Kind::Scalar { text, .. } => text.clone(),
                        _ => "?".into(),
                    };
                    (text(k), text(v))
                })
                .collect()
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(flat(1), pairs(&[("a", "1"), ("b", "3"), ("c", "4")]));
        // A merge after a key overrides it, as Psych's merge! does.
        assert_eq!(flat(2), pairs(&[("b", "2"), ("a", "1")]));
        assert_eq!(flat(3), pairs(&[("a", "10"), ("d", "30")]));
        assert_eq!(flat(4), pairs(&[("k", "2")]));
        let Kind::Map { entries: d, .. } = &entries[4].1.kind else { panic!() };
        assert_eq!(mapping_entries(d).duplicates, vec![("k".to_string(), 14, 15)]);
        let Kind::Map { entries: x, .. } = &entries[1].1.kind else { panic!() };
        assert!(mapping_entries(x).duplicates.is_empty());
    }

    #[test]
    fn big_integers_are_never_floats_and_i64_min_fits() {
        assert_eq!(
            scalar("12345678901234567890", true, None, Schema::Json),
            Scalar::BigInt("12345678901234567890".into())
        );
        assert_eq!(scalar("1.5e3", true, None, Schema::Json), Scalar::Float(1500.0));
        assert_eq!(psych("-9223372036854775808"), Scalar::Int(i64::MIN));
        assert_eq!(psych("9223372036854775808"), Scalar::BigInt("9223372036854775808".into()));
    }
}

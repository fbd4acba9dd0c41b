//! `to_yaml` and `to_nice_yaml` as Ansible defines them: PyYAML's `yaml.dump(value,
//! allow_unicode=True, default_flow_style=None)` and `yaml.dump(value, indent=4,
//! allow_unicode=True, default_flow_style=False)`, keys sorted. The emitter below follows
//! PyYAML's (its states, indentation and the analysis that picks plain, single- or
//! double-quoted scalars) so that the bytes match, with two deliberate differences:
//! scalars are never folded at 80 columns, and a string holding a line break is written
//! double-quoted (`"a\nb"`) rather than single-quoted across lines. Both keep every string on
//! one line in one known form, which is what lets secret redaction find it.

use std::sync::LazyLock;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error};

use super::{invalid, pairs, python_float};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("to_yaml", |value: &Value, kwargs: Kwargs| {
        dump("to_yaml", value, &kwargs, 2, None)
    });
    env.add_filter("to_nice_yaml", |value: &Value, indent: Option<usize>, kwargs: Kwargs| {
        dump("to_nice_yaml", value, &kwargs, indent.unwrap_or(4), Some(false))
    });
}

fn dump(
    filter: &str,
    value: &Value,
    kwargs: &Kwargs,
    indent: usize,
    flow: Option<bool>,
) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(indent);
    let flow = match kwargs.get::<Option<Value>>("default_flow_style")? {
        None => flow,
        Some(v) if v.is_none() => None,
        Some(v) => Some(v.is_true()),
    };
    let width = kwargs.get::<Option<usize>>("width")?;
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let node = represent(filter, value, flow, sort_keys)?;
    let mut e = Emitter::new(indent, width);
    e.document(&node);
    Ok(e.out)
}

/// What PyYAML's representer makes of a value.
enum Node {
    /// `text` as written when plain; `plain_ok`: read back plain, it is the same value (a
    /// number is a number, a string does not look like one).
    Scalar {
        text: String,
        plain_ok: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
    Map {
        pairs: Vec<(Node, Node)>,
        flow: bool,
    },
}

fn represent(filter: &str, v: &Value, flow: Option<bool>, sort: bool) -> Result<Node, Error> {
    let scalar = |text: String| Node::Scalar { text, plain_ok: true };
    Ok(match v.kind() {
        ValueKind::None => scalar("null".into()),
        ValueKind::Bool => scalar(if v.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number if v.is_integer() => scalar(v.to_string()),
        ValueKind::Number => scalar(float(f64::try_from(v.clone())?)),
        ValueKind::String => {
            let text = v.as_str().unwrap_or_default().to_string();
            Node::Scalar { plain_ok: !IMPLICIT.is_match(&text), text }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = v
                .try_iter()?
                .map(|item| represent(filter, &item, flow, sort))
                .collect::<Result<Vec<_>, _>>()?;
            let flow = flow.unwrap_or_else(|| items.iter().all(Node::is_scalar));
            Node::Seq { items, flow }
        }
        ValueKind::Map => {
            let mut entries = pairs(v)?;
            let all = |kind: ValueKind| entries.iter().all(|(k, _)| k.kind() == kind);
            if sort && (all(ValueKind::String) || all(ValueKind::Number)) {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let pairs = entries
                .iter()
                .map(|(k, v)| {
                    Ok((represent(filter, k, flow, sort)?, represent(filter, v, flow, sort)?))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let flow =
                flow.unwrap_or_else(|| pairs.iter().all(|(k, v)| k.is_scalar() && v.is_scalar()));
            Node::Map { pairs, flow }
        }
        ValueKind::Undefined => return Err(invalid(filter, "the value is undefined")),
        other => return Err(invalid(filter, format!("a {other} cannot be written as YAML"))),
    })
}

impl Node {
    fn is_scalar(&self) -> bool {
        matches!(self, Node::Scalar { .. })
    }

    fn is_empty_collection(&self) -> bool {
        match self {
            Node::Seq { items, .. } => items.is_empty(),
            Node::Map { pairs, .. } => pairs.is_empty(),
            Node::Scalar { .. } => false,
        }
    }
}

/// A float as PyYAML's `represent_float` writes it.
fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let text = python_float(f);
    if !text.contains('.') && text.contains('e') { text.replacen('e', ".0e", 1) } else { text }
}

/// Strings that PyYAML's resolver would read as something else when plain (bool, float,
/// int, merge, null, timestamp, value, yaml of YAML 1.1). Python's `$` also matches before a
/// final newline, hence `\n?\z`.
static IMPLICIT: LazyLock<regex::Regex> = LazyLock::new(|| {
    let kinds = [
        r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
        r"<<",
        r"~|null|Null|NULL|",
        r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?",
        r"=",
        r"!|&|\*",
    ];
    regex::Regex::new(&format!("^(?:{})\\n?\\z", kinds.join("|"))).expect("valid resolver regex")
});

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_space_or_end(c: Option<char>) -> bool {
    matches!(c, None | Some('\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'))
}

/// PyYAML's `ScalarAnalysis` (with `allow_unicode`), less what only folding uses.
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn analyze(scalar: &str) -> Analysis {
    if scalar.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let chars: Vec<char> = scalar.chars().collect();
    let (mut block_ind, mut flow_ind, mut line_breaks, mut special) = (false, false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    if scalar.starts_with("---") || scalar.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = chars.len() == 1 || is_space_or_end(chars.get(1).copied());
    let (mut previous_space, mut previous_break) = (false, false);
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_ind = true;
                block_ind = true;
            }
            if "?:".contains(ch) {
                flow_ind = true;
                if followed_by_ws {
                    block_ind = true;
                }
            }
            if ch == '-' && followed_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_ind = true;
            }
            if ch == ':' {
                flow_ind = true;
                if followed_by_ws {
                    block_ind = true;
                }
            }
            if ch == '#' && preceded_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || ('\x20'..='\x7e').contains(&ch)) {
            let unicode = (ch == '\u{85}'
                || ('\u{a0}'..='\u{d7ff}').contains(&ch)
                || ('\u{e000}'..='\u{fffd}').contains(&ch)
                || ('\u{10000}'..'\u{10ffff}').contains(&ch))
                && ch != '\u{feff}';
            if !unicode {
                special = true;
            }
        }
        if ch == ' ' {
            leading_space |= index == 0;
            trailing_space |= index == chars.len() - 1;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            leading_break |= index == 0;
            trailing_break |= index == chars.len() - 1;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_space_or_end(Some(ch));
        followed_by_ws = is_space_or_end(chars.get(index + 2).copied());
    }
    let (mut flow_plain, mut block_plain, mut single) = (true, true, true);
    if leading_space || leading_break || trailing_space || trailing_break {
        flow_plain = false;
        block_plain = false;
    }
    if break_space {
        flow_plain = false;
        block_plain = false;
        single = false;
    }
    if space_break || special {
        flow_plain = false;
        block_plain = false;
        single = false;
    }
    if line_breaks {
        flow_plain = false;
        block_plain = false;
    }
    if flow_ind {
        flow_plain = false;
    }
    if block_ind {
        block_plain = false;
    }
    Analysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: flow_plain,
        allow_block_plain: block_plain,
        allow_single_quoted: single,
    }
}

/// What goes between the quotes of `value` single-quoted.
pub(super) fn single_quoted_inner(value: &str) -> String {
    value.replace('\'', "''")
}

/// What goes between the quotes of `value` double-quoted, escaped as PyYAML escapes.
pub(super) fn double_quoted_inner(value: &str) -> String {
    let mut out = String::new();
    for ch in value.chars() {
        let printable = ('\x20'..='\x7e').contains(&ch)
            || ('\u{a0}'..='\u{d7ff}').contains(&ch)
            || ('\u{e000}'..='\u{fffd}').contains(&ch);
        if printable && !matches!(ch, '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        {
            out.push(ch);
            continue;
        }
        let named = match ch {
            '\0' => Some('0'),
            '\x07' => Some('a'),
            '\x08' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\x0b' => Some('v'),
            '\x0c' => Some('f'),
            '\r' => Some('r'),
            '\x1b' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{a0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        match named {
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None if (ch as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", ch as u32)),
            None if (ch as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", ch as u32)),
            None => out.push_str(&format!("\\U{:08X}", ch as u32)),
        }
    }
    out
}

/// PyYAML's emitter state that matters for these documents.
struct Emitter {
    out: String,
    best_indent: usize,
    best_width: usize,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    flow_level: usize,
    column: usize,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
    root_context: bool,
    mapping_context: bool,
    simple_key_context: bool,
}

impl Emitter {
    fn new(indent: usize, width: Option<usize>) -> Emitter {
        let best_indent = if (2..10).contains(&indent) { indent } else { 2 };
        Emitter {
            out: String::new(),
            best_indent,
            best_width: width.filter(|w| *w > best_indent * 2).unwrap_or(80),
            indent: None,
            indents: Vec::new(),
            flow_level: 0,
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: false,
            root_context: false,
            mapping_context: false,
            simple_key_context: false,
        }
    }

    /// One implicit document: its root node, the end of the document and of the stream.
    fn document(&mut self, root: &Node) {
        self.node(root, true, false, false);
        self.write_indent();
        if self.open_ended {
            self.write_indicator("...", true, false, false);
            self.write_indent();
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        match self.indent {
            None => self.indent = Some(if flow { self.best_indent } else { 0 }),
            Some(i) if !indentless => self.indent = Some(i + self.best_indent),
            Some(_) => {}
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn node(&mut self, node: &Node, root: bool, mapping: bool, simple_key: bool) {
        self.root_context = root;
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match node {
            Node::Scalar { text, plain_ok } => {
                self.increase_indent(true, false);
                self.scalar(text, *plain_ok);
                self.pop_indent();
            }
            Node::Seq { items, flow } => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.flow_sequence(items);
                } else {
                    self.block_sequence(items);
                }
            }
            Node::Map { pairs, flow } => {
                if self.flow_level > 0 || *flow || pairs.is_empty() {
                    self.flow_mapping(pairs);
                } else {
                    self.block_mapping(pairs);
                }
            }
        }
    }

    fn flow_sequence(&mut self, items: &[Node]) {
        self.write_indicator("[", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            self.node(item, false, false, false);
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("]", false, false, false);
    }

    fn flow_mapping(&mut self, pairs: &[(Node, Node)]) {
        self.write_indicator("{", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            if simple_key(k) {
                self.node(k, false, true, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, false);
                self.node(k, false, true, false);
                if self.column > self.best_width {
                    self.write_indent();
                }
                self.write_indicator(":", true, false, false);
            }
            self.node(v, false, true, false);
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("}", false, false, false);
    }

    fn block_sequence(&mut self, items: &[Node]) {
        let indentless = self.mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, false, false, false);
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, pairs: &[(Node, Node)]) {
        self.increase_indent(false, false);
        for (k, v) in pairs {
            self.write_indent();
            if simple_key(k) {
                self.node(k, false, true, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(k, false, true, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(v, false, true, false);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, text: &str, plain_ok: bool) {
        let a = analyze(text);
        let plain = plain_ok
            && !(self.simple_key_context && (a.empty || a.multiline))
            && if self.flow_level > 0 { a.allow_flow_plain } else { a.allow_block_plain };
        if plain {
            if self.root_context {
                self.open_ended = true;
            }
            if text.is_empty() {
                return;
            }
            if !self.whitespace {
                self.write(" ");
            }
            self.write(text);
            self.whitespace = false;
            self.indention = false;
        } else if a.allow_single_quoted && !a.multiline {
            self.write_indicator("'", true, false, false);
            self.write(&single_quoted_inner(text));
            self.write_indicator("'", false, false, false);
        } else {
            self.write_indicator("\"", true, false, false);
            self.write(&double_quoted_inner(text));
            self.write_indicator("\"", false, false, false);
        }
    }

    fn write(&mut self, data: &str) {
        self.column += data.chars().count();
        self.out.push_str(data);
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if self.whitespace || !need_ws {
            self.write(ind);
        } else {
            self.write(&format!(" {ind}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
        self.open_ended = false;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.out.push('\n');
            self.whitespace = true;
            self.indention = true;
            self.column = 0;
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.out.push_str(&pad);
            self.column = indent;
        }
    }
}

/// PyYAML's `check_simple_key` for the nodes written here: a short one-line scalar, or an
/// empty collection.
fn simple_key(k: &Node) -> bool {
    match k {
        Node::Scalar { text, .. } => {
            let a = analyze(text);
            text.chars().count() < 128 && !a.empty && !a.multiline
        }
        other => other.is_empty_collection(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::ok;

    #[test]
    fn scalars_at_the_top_end_the_document_as_pyyaml_does() {
        assert_eq!(ok("{{ 'abc' | to_yaml }}"), "abc\n...\n");
        assert_eq!(ok("{{ 5 | to_yaml }}"), "5\n...\n");
        assert_eq!(ok("{{ '' | to_yaml }}"), "''\n");
        assert_eq!(ok("{{ none | to_yaml }}"), "null\n...\n");
        assert_eq!(ok("{{ 'true' | to_yaml }}"), "'true'\n");
        assert_eq!(ok("{{ '1e3' | to_yaml }}"), "1e3\n...\n");
        assert_eq!(ok("{{ 1e17 | to_yaml }}"), "1.0e+17\n...\n");
        assert_eq!(ok("{{ 'a\tb' | to_yaml }}"), "\"a\\tb\"\n");
        assert_eq!(ok("{{ 'é😀' | to_yaml }}"), "é😀\n...\n");
    }

    #[test]
    fn collections_of_scalars_are_flow_style_in_to_yaml() {
        assert_eq!(ok("{{ ['a', 'b'] | to_yaml }}"), "[a, b]\n");
        assert_eq!(ok("{{ [{'b': 2, 'a': 1}] | to_yaml }}"), "- {a: 1, b: 2}\n");
        assert_eq!(
            ok("{{ {'b': [1, {'c': 2}], 'a': 'x'} | to_yaml }}"),
            "a: x\nb:\n- 1\n- {c: 2}\n"
        );
    }

    #[test]
    fn to_nice_yaml_is_block_style_indented_by_four() {
        assert_eq!(
            ok("{{ {'b': [1, {'c': 2}], 'a': 'x'} | to_nice_yaml }}"),
            "a: x\nb:\n- 1\n-   c: 2\n"
        );
        assert_eq!(ok("{{ [[1, 2], [3]] | to_nice_yaml }}"), "-   - 1\n    - 2\n-   - 3\n");
        assert_eq!(
            ok("{{ {'a': {'b': {'c': [1, 2]}}} | to_nice_yaml }}"),
            "a:\n    b:\n        c:\n        - 1\n        - 2\n"
        );
        assert_eq!(
            ok("{{ {'k': none, 'e': [], 'm': {}} | to_nice_yaml }}"),
            "e: []\nk: null\nm: {}\n"
        );
    }

    #[test]
    fn line_breaks_are_written_double_quoted() {
        assert_eq!(ok("{{ 'a\nb' | to_yaml }}"), "\"a\\nb\"\n");
        assert_eq!(ok("{{ {'k': \"it's\"} | to_nice_yaml }}"), "k: it's\n");
        assert_eq!(ok("{{ {'k': \"'q'\"} | to_nice_yaml }}"), "k: '''q'''\n");
    }
}

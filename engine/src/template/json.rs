//! `to_json`, `to_nice_json` and `from_json` as Ansible defines them: Python's
//! `json.dumps(value)` (separators `", "` and `": "`, non-ASCII written as `\uXXXX`) and
//! `json.dumps(value, indent=4, sort_keys=True, separators=(",", ": "))`, written here
//! for minijinja values so that the bytes match Python's.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error};

use super::{invalid, pairs, python_float};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
}

/// How `json.dumps` was asked to write.
struct Style {
    /// `None`: one line; `Some(s)`: each item on its own line, `s` once per level.
    indent: Option<String>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_separator: String,
    key_separator: String,
}

impl Style {
    fn from_kwargs(
        filter: &str,
        kwargs: &Kwargs,
        indent: Option<Value>,
        sort: bool,
    ) -> Result<Style, Error> {
        let indent = match kwargs.get::<Option<Value>>("indent")?.or(indent) {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => Some(match v.as_str() {
                Some(s) => s.to_string(),
                None => " ".repeat(
                    v.as_usize().ok_or_else(|| invalid(filter, "indent must be a number"))?,
                ),
            }),
        };
        let (item, key) = match kwargs.get::<Option<Vec<String>>>("separators")? {
            Some(seps) if seps.len() == 2 => (seps[0].clone(), seps[1].clone()),
            Some(_) => return Err(invalid(filter, "separators must be two strings")),
            None if indent.is_some() => (",".to_string(), ": ".to_string()),
            None => (", ".to_string(), ": ".to_string()),
        };
        Ok(Style {
            indent,
            sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(sort),
            ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true),
            item_separator: item,
            key_separator: key,
        })
    }
}

fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let style = Style::from_kwargs("to_json", &kwargs, None, false)?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write(&mut out, value, &style, 0, "to_json")?;
    Ok(out)
}

fn to_nice_json(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = indent.or_else(|| Some(Value::from(4)));
    let mut style = Style::from_kwargs("to_nice_json", &kwargs, indent, true)?;
    // Ansible fixes the separators of to_nice_json.
    style.item_separator = ",".into();
    style.key_separator = ": ".into();
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write(&mut out, value, &style, 0, "to_nice_json")?;
    Ok(out)
}

fn from_json(text: &str) -> Result<Value, Error> {
    let parsed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid("from_json", e))?;
    Ok(Value::from(minijinja::value::Serde(parsed)))
}

fn write(
    out: &mut String,
    value: &Value,
    style: &Style,
    level: usize,
    filter: &str,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number(value)),
        ValueKind::String => {
            out.push('"');
            out.push_str(&string_inner(value.as_str().unwrap_or_default(), style.ensure_ascii));
            out.push('"');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            container(out, style, level, '[', ']', &items, |out, item, level| {
                write(out, item, style, level, filter)
            })?;
        }
        ValueKind::Map => {
            let mut items = Vec::new();
            for (k, v) in pairs(value)? {
                items.push((key(&k, filter)?, v));
            }
            if style.sort_keys {
                items.sort_by(|a, b| a.0.cmp(&b.0));
            }
            container(out, style, level, '{', '}', &items, |out, (k, v), level| {
                out.push('"');
                out.push_str(&string_inner(k, style.ensure_ascii));
                out.push('"');
                out.push_str(&style.key_separator);
                write(out, v, style, level, filter)
            })?;
        }
        ValueKind::Undefined => return Err(invalid(filter, "the value is undefined")),
        other => return Err(invalid(filter, format!("a {other} is not JSON serializable"))),
    }
    Ok(())
}

/// `open items close`, each item on its own line when indenting.
fn container<T>(
    out: &mut String,
    style: &Style,
    level: usize,
    open: char,
    close: char,
    items: &[T],
    mut each: impl FnMut(&mut String, &T, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    let inner = level + 1;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_separator);
        }
        if let Some(indent) = &style.indent {
            out.push('\n');
            out.push_str(&indent.repeat(inner));
        }
        each(out, item, inner)?;
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(level));
    }
    out.push(close);
    Ok(())
}

/// A map key as `json.dumps` turns it into a string.
fn key(k: &Value, filter: &str) -> Result<String, Error> {
    match k.kind() {
        ValueKind::String => Ok(k.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => Ok(number(k)),
        ValueKind::Bool => Ok(if k.is_true() { "true" } else { "false" }.into()),
        ValueKind::None => Ok("null".into()),
        other => Err(invalid(filter, format!("keys must be strings, not a {other}"))),
    }
}

fn number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) => python_float(f),
        Err(_) => v.to_string(),
    }
}

/// `s` escaped as inside a JSON string by Python's `json` (`ensure_ascii`: everything
/// outside printable ASCII as `\uXXXX`, surrogate pairs above U+FFFF).
pub(super) fn string_inner(s: &str, ensure_ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok};

    #[test]
    fn to_json_writes_as_json_dumps() {
        assert_eq!(
            ok("{{ {'b': [1, 2.5, none, true], 'a': 'x'} | to_json }}"),
            r#"{"a": "x", "b": [1, 2.5, null, true]}"#
        );
        assert_eq!(
            ok("{{ 'é\"\\\n\t\u{1}\u{1F600}' | to_json }}"),
            r#""\u00e9\"\\\n\t\u0001\ud83d\ude00""#
        );
        assert_eq!(ok("{{ 'é' | to_json(ensure_ascii=false) }}"), "\"é\"");
        assert_eq!(ok("{{ [] | to_json }}{{ {} | to_json }}"), "[]{}");
        assert_eq!(ok("{{ [1, [2]] | to_json(indent=2) }}"), "[\n  1,\n  [\n    2\n  ]\n]");
        assert_eq!(ok("{{ 1e20 | to_json }} {{ 0.5 | to_json }}"), "1e+20 0.5");
    }

    #[test]
    fn to_nice_json_indents_by_four_and_sorts_keys() {
        assert_eq!(
            ok("{{ {'b': {'y': 1, 'x': []}, 'a': [1, 'two']} | to_nice_json }}"),
            "{\n    \"a\": [\n        1,\n        \"two\"\n    ],\n    \"b\": {\n        \"x\": [],\n        \"y\": 1\n    }\n}"
        );
        assert_eq!(ok("{{ [1] | to_nice_json(indent=2) }}"), "[\n  1\n]");
    }

    #[test]
    fn from_json_reads_json() {
        assert_eq!(ok("{{ ('{\"a\": [1, \"b\"]}' | from_json).a[1] }}"), "b");
        assert!(err("{{ '{' | from_json }}").contains("from_json"));
    }
}

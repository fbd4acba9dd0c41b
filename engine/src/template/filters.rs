//! The small Ansible filters and tests, each as `lib/ansible/plugins/filter/core.py` (and
//! `mathstuff.py`, `test/core.py`) defines it: digests, base64, `bool`, `ternary`,
//! `mandatory`, `quote`, paths, `combine`, `dict2items`/`items2dict`, `flatten`, the list
//! set operations and the `version` test.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind};

use super::{invalid, pairs, to_text as text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("hash", |v: &Value, kind: Option<&str>| hash(v, kind.unwrap_or("sha1")));
    env.add_filter("md5", |v: &Value| hash(v, "md5"));
    env.add_filter("sha1", |v: &Value| hash(v, "sha1"));
    env.add_filter("checksum", |v: &Value| hash(v, "sha1"));
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("bool", to_bool);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("quote", |v: &Value| {
        let s = if v.is_none() { String::new() } else { text(v) };
        Value::from_safe_string(crate::shell::quote(&s))
    });
    env.add_filter("basename", |v: &Value| basename(&text(v)).to_string());
    env.add_filter("dirname", |v: &Value| dirname(&text(v)));
    env.add_filter("splitext", |v: &Value| {
        let (root, ext) = splitext(&text(v));
        Value::from(minijinja::value::Tuple::from([Value::from(root), Value::from(ext)]))
    });
    env.add_filter("path_join", path_join);
    env.add_filter("truncate", truncate);
    // Jinja2's `center`, which minijinja lacks.
    env.add_filter("center", |v: &Value, width: Option<usize>| {
        super::methods::center(&text(v), width.unwrap_or(80), ' ')
    });
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten_filter);
    env.add_filter("union", |a: &Value, b: &Value| set_op(a, b, SetOp::Union));
    env.add_filter("intersect", |a: &Value, b: &Value| set_op(a, b, SetOp::Intersect));
    env.add_filter("difference", |a: &Value, b: &Value| set_op(a, b, SetOp::Difference));
    env.add_filter("symmetric_difference", |a: &Value, b: &Value| set_op(a, b, SetOp::Symmetric));
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(kind: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    Some(match kind {
        "md5" => hex(&md5::Md5::digest(data)),
        "sha1" => hex(&sha1::Sha1::digest(data)),
        "sha224" => hex(&sha2::Sha224::digest(data)),
        "sha256" => hex(&sha2::Sha256::digest(data)),
        "sha384" => hex(&sha2::Sha384::digest(data)),
        "sha512" => hex(&sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// Every hex digest `hash` offers of `data` (for redaction).
pub(super) fn digests(data: &[u8]) -> Vec<String> {
    ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
        .iter()
        .filter_map(|k| digest(k, data))
        .collect()
}

fn hash(v: &Value, kind: &str) -> Result<String, Error> {
    digest(kind, text(v).as_bytes()).ok_or_else(|| {
        invalid(
            "hash",
            format!("unsupported hash type {kind:?} (md5, sha1, sha224, sha256, sha384, sha512)"),
        )
    })
}

/// `s` in the text encoding Ansible's `b64encode(encoding=...)` names.
fn encode(s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(s.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        "utf-16-be" | "utf-16be" => Ok(s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        "ascii" if s.is_ascii() => Ok(s.as_bytes().to_vec()),
        "ascii" => Err(invalid("b64encode", "the value is not ASCII")),
        other => Err(invalid("b64encode", format!("unsupported encoding {other:?}"))),
    }
}

fn b64encode(v: &Value, encoding: Option<&str>, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<&str>>("encoding")?.or(encoding).unwrap_or("utf-8");
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let bytes = encode(&text(v), encoding)?;
    Ok(if urlsafe { URL_SAFE.encode(bytes) } else { STANDARD.encode(bytes) })
}

/// The base64 forms `b64encode` can print `value` in (for redaction).
pub(super) fn base64_forms(value: &str) -> Vec<String> {
    let utf16: Vec<u8> = value.encode_utf16().flat_map(u16::to_le_bytes).collect();
    vec![URL_SAFE.encode(value), STANDARD.encode(&utf16), URL_SAFE.encode(&utf16)]
}

fn b64decode(v: &Value, encoding: Option<&str>, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<&str>>("encoding")?.or(encoding).unwrap_or("utf-8");
    let urlsafe = kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    // Python's b64decode leaves out characters outside the alphabet (line breaks).
    let mut input = text(v);
    if urlsafe {
        input = input.replace('-', "+").replace('_', "/");
    }
    input.retain(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    let bytes = STANDARD.decode(input.as_bytes()).map_err(|e| invalid("b64decode", e))?;
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes).map_err(|_| {
            invalid("b64decode", "the decoded bytes are not UTF-8 (stackdeploy renders text only)")
        }),
        "utf-16-le" | "utf-16le" if bytes.len() % 2 == 0 => {
            let units: Vec<u16> =
                bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).map_err(|e| invalid("b64decode", e))
        }
        other => Err(invalid("b64decode", format!("unsupported encoding {other:?}"))),
    }
}

/// Positional arguments and keyword arguments of a filter, looked up by position or name.
struct Args {
    positional: Vec<Value>,
    kwargs: Option<Kwargs>,
}

impl Args {
    fn new(args: Rest<ValueOrKwargs>) -> Result<Args, Error> {
        let mut out = Args { positional: Vec::new(), kwargs: None };
        for arg in args.0.into_iter().map(ValueOrKwargs::into_value) {
            if arg.is_kwargs() {
                out.kwargs = Some(<Kwargs as minijinja::value::ArgType>::from_value(Some(&arg))?);
            } else {
                out.positional.push(arg);
            }
        }
        Ok(out)
    }

    fn get(&self, index: usize, name: &str) -> Result<Option<Value>, Error> {
        if let Some(v) =
            self.kwargs.as_ref().map(|k| k.get::<Option<Value>>(name)).transpose()?.flatten()
        {
            return Ok(Some(v));
        }
        Ok(self.positional.get(index).cloned())
    }

    fn done(&self) -> Result<(), Error> {
        self.kwargs.as_ref().map_or(Ok(()), Kwargs::assert_all_used)
    }
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=5)`: a string at most
/// `leeway` characters too long is kept; otherwise cut at the last space before `length`
/// (or anywhere with `killwords`) and ended with `end`.
fn truncate(v: &Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let args = Args::new(args)?;
    let num = |v: Option<Value>, d: usize| -> Result<usize, Error> {
        v.map_or(Ok(d), |v| v.as_usize().ok_or_else(|| invalid("truncate", "expected a number")))
    };
    let length = num(args.get(0, "length")?, 255)?;
    let killwords = args.get(1, "killwords")?.is_some_and(|v| v.is_true());
    let end = args.get(2, "end")?.map_or_else(|| "...".to_string(), |v| text(&v));
    let leeway = num(args.get(3, "leeway")?, 5)?;
    args.done()?;
    let s = text(v);
    let chars: Vec<char> = s.chars().collect();
    let end_len = end.chars().count();
    if length < end_len {
        return Err(invalid("truncate", format!("expected length >= {end_len}, got {length}")));
    }
    if chars.len() <= length + leeway {
        return Ok(s);
    }
    let head: String = chars[..length - end_len].iter().collect();
    if killwords {
        return Ok(head + &end);
    }
    let cut = head.rsplit_once(' ').map_or(head.as_str(), |(before, _)| before);
    Ok(format!("{cut}{end}"))
}

/// Ansible's `bool`: `yes`/`on`/`true`/`1` (any case) and `true`/`1` are true; `no`/`off`/
/// `false`/`0` false; anything else is true only if it equals 1 (Ansible warns there).
/// Unlike minijinja's own `bool` (truthiness), the string `"no"` is false.
fn to_bool(v: &Value) -> bool {
    let check = match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_lowercase(),
        ValueKind::Bool => v.is_true().to_string(),
        ValueKind::Number if v.is_integer() => v.to_string(),
        ValueKind::Number => return f64::try_from(v.clone()).is_ok_and(|f| f == 1.0),
        _ => return false,
    };
    matches!(check.as_str(), "yes" | "on" | "true" | "1")
}

fn ternary(v: &Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match none {
        Some(n) if v.is_none() && !n.is_none() => n,
        _ if v.is_true() => yes,
        _ => no,
    }
}

fn mandatory(v: Value, msg: Option<&str>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.map_or_else(|| "Mandatory variable not defined.".to_string(), str::to_string),
        ));
    }
    Ok(v)
}

/// Python's `os.path.basename`.
fn basename(p: &str) -> &str {
    p.rfind('/').map_or(p, |i| &p[i + 1..])
}

/// Python's `os.path.dirname`.
fn dirname(p: &str) -> String {
    let head = p.rfind('/').map_or("", |i| &p[..=i]);
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

/// Python's `os.path.splitext`: a leading dot of the name is not an extension.
fn splitext(p: &str) -> (String, String) {
    let name_start = p.rfind('/').map_or(0, |i| i + 1);
    match p.rfind('.') {
        Some(dot) if dot > name_start && p[name_start..dot].chars().any(|c| c != '.') => {
            (p[..dot].to_string(), p[dot..].to_string())
        }
        _ => (p.to_string(), String::new()),
    }
}

/// Python's `os.path.join` of a list (or one string).
fn path_join(paths: &Value) -> Result<String, Error> {
    if let Some(s) = paths.as_str() {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    for part in paths.try_iter()? {
        let part = text(&part);
        if part.starts_with('/') || out.is_empty() {
            out = part;
        } else if out.ends_with('/') {
            out.push_str(&part);
        } else {
            out.push('/');
            out.push_str(&part);
        }
    }
    Ok(out)
}

fn to_map(v: &Value, filter: &str) -> Result<BTreeMap<Value, Value>, Error> {
    if v.kind() != ValueKind::Map {
        return Err(invalid(filter, format!("expects dictionaries, got a {}", v.kind())));
    }
    Ok(pairs(v)?.into_iter().collect())
}

/// Ansible's `merge_hash`: `y` over `x`; nested dicts merged when `recursive`; lists as
/// `list_merge` says.
fn merge(x: &Value, y: &Value, recursive: bool, list_merge: &str) -> Result<Value, Error> {
    let mut out = to_map(x, "combine")?;
    for (key, yv) in to_map(y, "combine")? {
        let merged = match out.get(&key) {
            Some(xv) if xv.kind() == ValueKind::Map && yv.kind() == ValueKind::Map => {
                if recursive {
                    merge(xv, &yv, recursive, list_merge)?
                } else {
                    yv
                }
            }
            Some(xv) if xv.kind() == ValueKind::Seq && yv.kind() == ValueKind::Seq => {
                let xs: Vec<Value> = xv.try_iter()?.collect();
                let ys: Vec<Value> = yv.try_iter()?.collect();
                let rest = |from: &[Value]| -> Vec<Value> {
                    from.iter().filter(|z| !ys.contains(z)).cloned().collect()
                };
                Value::from(match list_merge {
                    "replace" => ys,
                    "keep" => xs,
                    "append" => [xs, ys].concat(),
                    "prepend" => [ys, xs].concat(),
                    "append_rp" => [rest(&xs), ys].concat(),
                    "prepend_rp" => [ys.clone(), rest(&xs)].concat(),
                    other => {
                        return Err(invalid(
                            "combine",
                            format!("'{other}' is not a valid list_merge value"),
                        ));
                    }
                })
            }
            _ => yv,
        };
        out.insert(key, merged);
    }
    Ok(Value::from(out))
}

fn combine(args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let mut dicts = Vec::new();
    let mut recursive = false;
    let mut list_merge = "replace".to_string();
    for arg in args.0.into_iter().map(ValueOrKwargs::into_value) {
        if arg.is_kwargs() {
            let kwargs = <Kwargs as minijinja::value::ArgType>::from_value(Some(&arg))?;
            recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
            list_merge = kwargs.get::<Option<String>>("list_merge")?.unwrap_or(list_merge);
            kwargs.assert_all_used()?;
        } else if arg.kind() == ValueKind::Seq {
            dicts.extend(arg.try_iter()?);
        } else {
            dicts.push(arg);
        }
    }
    let mut iter = dicts.into_iter();
    let Some(first) = iter.next() else {
        return Ok(Value::from(BTreeMap::<Value, Value>::new()));
    };
    let mut out = Value::from(to_map(&first, "combine")?);
    for next in iter {
        out = merge(&out, &next, recursive, &list_merge)?;
    }
    Ok(out)
}

fn dict2items(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs.get::<Option<&str>>("key_name")?.unwrap_or("key");
    let value_name = kwargs.get::<Option<&str>>("value_name")?.unwrap_or("value");
    kwargs.assert_all_used()?;
    let items: Vec<Value> = to_map(v, "dict2items")?
        .into_iter()
        .map(|(k, val)| Value::from(BTreeMap::from([(key_name, k), (value_name, val)])))
        .collect();
    Ok(Value::from(items))
}

fn items2dict(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs.get::<Option<&str>>("key_name")?.unwrap_or("key");
    let value_name = kwargs.get::<Option<&str>>("value_name")?.unwrap_or("value");
    kwargs.assert_all_used()?;
    let mut out = BTreeMap::new();
    for item in v.try_iter()? {
        let k = item.get_attr(key_name)?;
        let val = item.get_attr(value_name)?;
        if k.is_undefined() || val.is_undefined() {
            return Err(invalid(
                "items2dict",
                format!("each dictionary must have the keys '{key_name}' and '{value_name}'"),
            ));
        }
        out.insert(k, val);
    }
    Ok(Value::from(out))
}

fn flatten(
    list: &Value,
    levels: Option<usize>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for item in list.try_iter()? {
        if skip_nulls && (item.is_none() || matches!(item.as_str(), Some("None" | "null"))) {
            continue;
        }
        match (item.kind(), levels) {
            (ValueKind::Seq, None) => flatten(&item, None, skip_nulls, out)?,
            (ValueKind::Seq, Some(n)) if n >= 1 => flatten(&item, Some(n - 1), skip_nulls, out)?,
            _ => out.push(item),
        }
    }
    Ok(())
}

fn flatten_filter(list: &Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = kwargs.get::<Option<usize>>("levels")?.or(levels);
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten(list, levels, skip_nulls, &mut out)?;
    Ok(Value::from(out))
}

enum SetOp {
    Union,
    Intersect,
    Difference,
    Symmetric,
}

/// The list set operations, keeping the order items first appear in (Ansible's come out
/// in a Python set's order when the items are hashable).
fn set_op(a: &Value, b: &Value, op: SetOp) -> Result<Value, Error> {
    let a: Vec<Value> = a.try_iter()?.collect();
    let b: Vec<Value> = b.try_iter()?.collect();
    let picked: Vec<Value> = match op {
        SetOp::Union => a.iter().chain(&b).cloned().collect(),
        SetOp::Intersect => a.iter().filter(|x| b.contains(x)).cloned().collect(),
        SetOp::Difference => a.iter().filter(|x| !b.contains(x)).cloned().collect(),
        SetOp::Symmetric => a
            .iter()
            .filter(|x| !b.contains(x))
            .chain(b.iter().filter(|x| !a.contains(x)))
            .cloned()
            .collect(),
    };
    let mut out: Vec<Value> = Vec::with_capacity(picked.len());
    for item in picked {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

/// A part of a loose version (Python's `LooseVersion`): a number or a run of letters.
#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Part {
    Num(u64),
    Text(String),
}

/// Python's `LooseVersion` parse: `re.split(r"(\d+|[a-z]+|\.)")` without the dots, numbers
/// as numbers; what lies between matches (`-`, capitals) is a part of its own.
fn loose(v: &str) -> Vec<Part> {
    static RE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\d+|[a-z]+|\.").expect("valid"));
    let mut parts = Vec::new();
    let mut push = |t: &str| {
        if !t.is_empty() && t != "." {
            parts.push(t.parse().map_or_else(|_| Part::Text(t.to_string()), Part::Num));
        }
    };
    let mut last = 0;
    for m in RE.find_iter(v) {
        push(&v[last..m.start()]);
        push(m.as_str());
        last = m.end();
    }
    push(&v[last..]);
    parts
}

/// Ansible's `version` test with the default loose comparison: `'2.10' is version('2.9',
/// '>')`. A number compared with letters is an error, as in Python.
fn version_test(
    value: &Value,
    other: &Value,
    op: Option<&str>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let op = kwargs.get::<Option<&str>>("operator")?.or(op).unwrap_or("eq");
    if let Some(kind) = kwargs.get::<Option<&str>>("version_type")?
        && kind != "loose"
    {
        return Err(invalid(
            "version",
            format!("version_type {kind:?} is not supported (loose only)"),
        ));
    }
    if kwargs.get::<Option<bool>>("strict")? == Some(true) {
        return Err(invalid("version", "strict comparison is not supported (loose only)"));
    }
    kwargs.assert_all_used()?;
    let (value, other) = (text(value), text(other));
    if value.is_empty() || other.is_empty() {
        return Err(invalid("version", "a version to compare cannot be empty"));
    }
    let (a, b) = (loose(&value), loose(&other));
    // Python compares the lists item by item: a number against letters fails where the
    // first difference is.
    let ord = match a.iter().zip(&b).find(|(x, y)| x != y) {
        Some((x, y)) if std::mem::discriminant(x) != std::mem::discriminant(y) => {
            return Err(invalid("version", format!("cannot compare {x:?} with {y:?}")));
        }
        Some((x, y)) => x.cmp(y),
        None => a.len().cmp(&b.len()),
    };
    use std::cmp::Ordering::*;
    Ok(match op {
        "==" | "=" | "eq" => ord == Equal,
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "!=" | "<>" | "ne" => ord != Equal,
        other => return Err(invalid("version", format!("Invalid operator type ({other})"))),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok};

    #[test]
    fn digests() {
        assert_eq!(ok("{{ 'abc' | hash('md5') }}"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(ok("{{ 'abc' | hash }}"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(ok("{{ 'abc' | sha1 }}"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            ok("{{ 'abc' | hash('sha256') }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ok("{{ 'abc' | hash('sha512') }}").starts_with("ddaf35a193617aba"));
        assert!(err("{{ 'abc' | hash('crc32') }}").contains("unsupported hash type"));
    }

    #[test]
    fn base64() {
        assert_eq!(ok("{{ 'é?>' | b64encode }}"), "w6k/Pg==");
        assert_eq!(ok("{{ 'é?>' | b64encode(urlsafe=true) }}"), "w6k_Pg==");
        assert_eq!(ok("{{ 'ab' | b64encode(encoding='utf-16-le') }}"), "YQBiAA==");
        assert_eq!(ok("{{ 'w6k/\nPg==' | b64decode }}"), "é?>");
        assert_eq!(ok("{{ 'w6k_Pg==' | b64decode(urlsafe=true) }}"), "é?>");
        assert!(err("{{ 'YQ' | b64decode }}").contains("b64decode"));
    }

    #[test]
    fn bool_ternary_mandatory() {
        assert_eq!(
            ok(
                "{{ 'yes' | bool }} {{ 'No' | bool }} {{ 'off' | bool }} {{ 1 | bool }} {{ 0 | bool }} {{ 'x' | bool }}"
            ),
            "True False False True False False"
        );
        assert_eq!(
            ok(
                "{{ true | ternary('a', 'b') }} {{ '' | ternary('a', 'b') }} {{ none | ternary('a', 'b', 'n') }}"
            ),
            "a b n"
        );
        assert_eq!(ok("{{ 'x' | mandatory }}"), "x");
        assert!(
            err("{{ nope | mandatory }}").contains("nope")
                || err("{{ nope | mandatory }}").contains("Mandatory")
        );
        assert!(err("{{ nope | mandatory('set nope') }}").contains("nope"));
    }

    #[test]
    fn quote_is_shlex_quote() {
        assert_eq!(
            ok("{{ 'a b' | quote }} {{ \"it's\" | quote }} {{ '' | quote }} {{ 'x/y.z' | quote }}"),
            "'a b' 'it'\"'\"'s' '' x/y.z"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            ok("{{ '/etc/nova/nova.conf' | basename }} {{ '/etc/nova/' | basename }}|"),
            "nova.conf |"
        );
        assert_eq!(
            ok(
                "{{ '/etc/nova/nova.conf' | dirname }} {{ '/etc/nova/' | dirname }} {{ '/x' | dirname }} {{ 'x' | dirname }}|"
            ),
            "/etc/nova /etc/nova / |"
        );
        assert_eq!(
            ok("{{ '/a/b.tar.gz' | splitext }} {{ '.bashrc' | splitext }}"),
            "('/a/b.tar', '.gz') ('.bashrc', '')"
        );
        assert_eq!(
            ok("{{ ['/etc', 'nova', 'nova.conf'] | path_join }} {{ ['a', '/b'] | path_join }}"),
            "/etc/nova/nova.conf /b"
        );
    }

    #[test]
    fn data_structures() {
        assert_eq!(
            ok("{{ {'a': 1, 'b': {'x': 1}} | combine({'b': {'y': 2}}) }}"),
            "{'a': 1, 'b': {'y': 2}}"
        );
        assert_eq!(
            ok("{{ {'a': 1, 'b': {'x': 1}} | combine({'b': {'y': 2}}, recursive=true) }}"),
            "{'a': 1, 'b': {'x': 1, 'y': 2}}"
        );
        assert_eq!(
            ok("{{ [{'a': [1]}, {'a': [2]}] | combine(list_merge='append') }}"),
            "{'a': [1, 2]}"
        );
        assert_eq!(ok("{{ {'a': 1} | dict2items }}"), "[{'key': 'a', 'value': 1}]");
        assert_eq!(ok("{{ [{'key': 'a', 'value': 1}] | items2dict }}"), "{'a': 1}");
        assert_eq!(
            ok(
                "{{ [1, [2, [3, none]], 'null'] | flatten }} {{ [1, [2, [3]]] | flatten(levels=1) }}"
            ),
            "[1, 2, 3] [1, 2, [3]]"
        );
        assert_eq!(
            ok(
                "{{ [1, 2, 2] | union([3, 1]) }} {{ [1, 2, 3] | intersect([3, 1]) }} {{ [1, 2, 3] | difference([2]) }} {{ [1, 2] | symmetric_difference([2, 3]) }}"
            ),
            "[1, 2, 3] [1, 3] [1, 3] [1, 3]"
        );
    }

    #[test]
    fn jinja2_filters_minijinja_lacks() {
        assert_eq!(ok("[{{ 'ab' | center(6) }}] [{{ 'ab' | center(5) }}]"), "[  ab  ] [  ab ]");
        assert_eq!(
            ok(
                "{{ 'a long sentence of words' | truncate(12) }}|{{ 'a long sentence' | truncate(12, true, '..', 0) }}|{{ 'short' | truncate(4, leeway=2) }}"
            ),
            "a long...|a long sen..|short"
        );
        assert!(err("{{ 'abc' | truncate(1) }}").contains("expected length >= 3"));
    }

    #[test]
    fn version_test() {
        assert_eq!(
            ok(
                "{{ '2.10' is version('2.9', '>') }} {{ '1.0' is version('1.0', 'eq') }} {{ '1.2.3' is version('1.3', operator='lt') }}"
            ),
            "True True True"
        );
        assert!(err("{{ '1.a' is version('1.2', '>') }}").contains("cannot compare"));
    }
}

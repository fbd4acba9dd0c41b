//! Python methods on strings, lists and dicts (`x.split(',')`, `x.startswith('a')`,
//! `d.items()`): minijinja-contrib's `pycompat` callback, plus the methods it lacks that
//! ported templates use (`index`, `rsplit`, `partition`, `zfill`, `ljust`, ...), written
//! here with Python's semantics. Methods are looked up only when minijinja has no method of
//! that name itself.

use minijinja::value::{Value, ValueKind, from_args};
use minijinja::{Error, ErrorKind, State};

/// The unknown-method callback of the environment.
pub(super) fn call(
    state: &mut State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let extra = match value.kind() {
        ValueKind::String => string(value.as_str().unwrap_or_default(), method, args)?,
        ValueKind::Seq => list(value, method, args)?,
        _ => None,
    };
    match extra {
        Some(v) => Ok(v),
        None => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

fn value_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A character index of `s` from a Python slice bound (negative counts from the end).
fn bound(s: &str, i: Option<i64>, default: usize) -> usize {
    let len = s.chars().count() as i64;
    match i {
        None => default,
        Some(i) if i < 0 => (len + i).max(0) as usize,
        Some(i) => i.min(len) as usize,
    }
}

fn byte_at(s: &str, char_index: usize) -> usize {
    s.char_indices().nth(char_index).map_or(s.len(), |(b, _)| b)
}

fn char_index(s: &str, byte: usize) -> i64 {
    s[..byte].chars().count() as i64
}

/// Python's `str.ljust`/`rjust`/`center` padding, or `None` when no padding is needed.
fn pad(s: &str, width: usize, fill: Option<&str>) -> Result<Option<(usize, char)>, Error> {
    let fill = match fill {
        None => ' ',
        Some(f) if f.chars().count() == 1 => f.chars().next().expect("one char"),
        Some(_) => {
            return Err(value_error("The fill character must be exactly one character long"));
        }
    };
    let len = s.chars().count();
    Ok((width > len).then_some((width - len, fill)))
}

fn string(s: &str, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    Ok(Some(match method {
        "index" | "rindex" => {
            let (sub, start, end): (&str, Option<i64>, Option<i64>) = from_args(args)?;
            let (from, to) = (bound(s, start, 0), bound(s, end, s.chars().count()));
            let found = if from > to {
                None
            } else {
                let hay = &s[byte_at(s, from)..byte_at(s, to)];
                let at = if method == "index" { hay.find(sub) } else { hay.rfind(sub) };
                at.map(|b| from as i64 + char_index(hay, b))
            };
            Value::from(found.ok_or_else(|| value_error("substring not found"))?)
        }
        "rsplit" => {
            let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
            let max = maxsplit.filter(|m| *m >= 0).map(|m| m as usize);
            let mut parts: Vec<String> = match sep {
                Some("") => return Err(value_error("empty separator")),
                Some(sep) => match max {
                    Some(m) => s.rsplitn(m + 1, sep).map(str::to_string).collect(),
                    None => s.rsplit(sep).map(str::to_string).collect(),
                },
                None => {
                    // Runs of white space separate; leading and trailing ones are dropped.
                    let mut out = Vec::new();
                    let mut rest = s.trim_end();
                    loop {
                        if max.is_some_and(|m| out.len() == m) {
                            if !rest.is_empty() {
                                out.push(rest.to_string());
                            }
                            break;
                        }
                        match rest.rfind(char::is_whitespace) {
                            Some(i) => {
                                let ws = rest[i..].chars().next().expect("a char").len_utf8();
                                out.push(rest[i + ws..].to_string());
                                rest = rest[..i].trim_end();
                            }
                            None => {
                                if !rest.is_empty() {
                                    out.push(rest.to_string());
                                }
                                break;
                            }
                        }
                    }
                    out
                }
            };
            parts.reverse();
            Value::from(parts)
        }
        "partition" | "rpartition" => {
            let (sep,): (&str,) = from_args(args)?;
            if sep.is_empty() {
                return Err(value_error("empty separator"));
            }
            let found = if method == "partition" { s.find(sep) } else { s.rfind(sep) };
            let parts = match (found, method) {
                (Some(i), _) => [&s[..i], sep, &s[i + sep.len()..]],
                (None, "partition") => [s, "", ""],
                (None, _) => ["", "", s],
            };
            Value::from(minijinja::value::Tuple::from(parts.map(Value::from)))
        }
        "zfill" => {
            let (width,): (usize,) = from_args(args)?;
            let len = s.chars().count();
            if width <= len {
                Value::from(s)
            } else {
                let (sign, digits) = match s.chars().next() {
                    Some(c @ ('+' | '-')) => (c.to_string(), &s[1..]),
                    _ => (String::new(), s),
                };
                Value::from(format!("{sign}{}{digits}", "0".repeat(width - len)))
            }
        }
        "ljust" | "rjust" | "center" => {
            let (width, fill): (usize, Option<&str>) = from_args(args)?;
            let Some((n, c)) = pad(s, width, fill)? else {
                return Ok(Some(Value::from(s)));
            };
            let fill = |k: usize| c.to_string().repeat(k);
            Value::from(match method {
                "ljust" => format!("{s}{}", fill(n)),
                "rjust" => format!("{}{s}", fill(n)),
                _ => center(s, width, c),
            })
        }
        "removeprefix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_prefix(p).unwrap_or(s))
        }
        "removesuffix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_suffix(p).unwrap_or(s))
        }
        "swapcase" => {
            let () = from_args(args)?;
            Value::from(
                s.chars()
                    .flat_map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<Vec<_>>()
                        } else {
                            c.to_uppercase().collect()
                        }
                    })
                    .collect::<String>(),
            )
        }
        _ => return Ok(None),
    }))
}

/// Python's `str.center`: the odd fill character goes left when the width is odd.
pub(super) fn center(s: &str, width: usize, fill: char) -> String {
    let len = s.chars().count();
    if width <= len {
        return s.to_string();
    }
    let n = width - len;
    let left = n / 2 + (n & width & 1);
    let pad = |k: usize| fill.to_string().repeat(k);
    format!("{}{s}{}", pad(left), pad(n - left))
}

fn list(v: &Value, method: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    Ok(Some(match method {
        "index" => {
            let (item,): (&Value,) = from_args(args)?;
            let pos = v.try_iter()?.position(|x| x == *item);
            Value::from(pos.ok_or_else(|| value_error(format!("{item:?} is not in list")))?)
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok};

    #[test]
    fn pycompat_methods_are_there() {
        assert_eq!(
            ok(
                "{{ 'a,b'.split(',') }} {{ 'Ab'.upper() }} {{ 'ab'.startswith('a') }} {{ 'aXb'.replace('X', '-') }}"
            ),
            "['a', 'b'] AB True a-b"
        );
        assert_eq!(
            ok(
                "{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %} {{ {'a': 1}.get('b', 2) }}"
            ),
            "a=1 2"
        );
        assert_eq!(ok("{{ ' a  b '.split() }} {{ 'x'.join(['1', '2']) }}"), "['a', 'b'] 1x2");
    }

    #[test]
    fn methods_pycompat_lacks() {
        assert_eq!(
            ok(
                "{{ 'abcabc'.index('c') }} {{ 'abcabc'.rindex('c') }} {{ 'abcabc'.index('a', 1) }} {{ ['x', 'y'].index('y') }}"
            ),
            "2 5 3 1"
        );
        assert!(err("{{ 'abc'.index('z') }}").contains("substring not found"));
        assert!(err("{{ ['a'].index('z') }}").contains("not in list"));
        assert_eq!(
            ok(
                "{{ 'a.b.c'.rsplit('.', 1) }} {{ ' a b  c '.rsplit(none, 1) }} {{ 'a b'.rsplit() }}"
            ),
            "['a.b', 'c'] [' a b', 'c'] ['a', 'b']"
        );
        assert_eq!(
            ok(
                "{{ 'k=v=w'.partition('=') }} {{ 'k=v=w'.rpartition('=') }} {{ 'k'.partition('=') }}"
            ),
            "('k', '=', 'v=w') ('k=v', '=', 'w') ('k', '', '')"
        );
        assert_eq!(
            ok(
                "{{ '42'.zfill(5) }} {{ '-42'.zfill(5) }} {{ 'ab'.ljust(4, '.') }}| {{ 'ab'.rjust(4) }} {{ 'ab'.center(5, '*') }} {{ 'abc'.center(6, '*') }}"
            ),
            "00042 -0042 ab..|   ab **ab* *abc**"
        );
        assert_eq!(
            ok(
                "{{ 'v1.2'.removeprefix('v') }} {{ 'a.conf'.removesuffix('.conf') }} {{ 'aB'.swapcase() }}"
            ),
            "1.2 a Ab"
        );
    }
}

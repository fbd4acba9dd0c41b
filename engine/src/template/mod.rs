//! What templates can call beyond minijinja's own filters: the filters, tests and Python
//! methods Ansible users write every day, so that templates ported from an Ansible project
//! render unchanged (docs/composition.md lists them with what differs from Ansible).
//!
//! Each concept has its file: Python string, list and dict methods (`methods`), the regex
//! filters and tests over Python `re` syntax (`regex`), Python's `json.dumps` (`json`),
//! PyYAML's emitter (`yaml`), IP address filters (`ipaddr`), and the small rest
//! (`filters`). This module only registers them. It knows nothing about compositions,
//! hosts or secrets: the compiler and the pipeline's checks call [`register`] on their
//! environments, and `secrets` asks [`encoded_forms`] which forms a value may be printed in.

mod filters;
mod ipaddr;
mod json;
mod methods;
mod regex;
mod yaml;

use minijinja::{Environment, Error, ErrorKind};

/// Adds the Ansible/Jinja2 filters, tests and Python methods to `env`.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.set_unknown_method_callback(methods::call);
    // Jinja2 built-ins minijinja leaves to its contrib crate.
    env.add_filter("filesizeformat", minijinja_contrib::filters::filesizeformat);
    env.add_filter("striptags", minijinja_contrib::filters::striptags);
    env.add_function("cycler", |items: minijinja::value::Rest<minijinja::Value>| {
        minijinja_contrib::globals::cycler(items.0)
    });
    env.add_function("joiner", minijinja_contrib::globals::joiner);
    filters::register(env);
    regex::register(env);
    json::register(env);
    yaml::register(env);
    ipaddr::register(env);
}

/// The forms the filters of this module can print a string `value` in without hiding it:
/// JSON as Python writes it (`to_json`, `\uXXXX` for non-ASCII), YAML quoted, shell-quoted as
/// Ansible's `quote`, escaped by `regex_escape`, base64 in each variant `b64encode` offers,
/// and its hex digests (`hash`, `md5`, `sha1`, `checksum`): an unsalted digest confirms a
/// guess, and some servers take one in place of the password. Forms equal to the value are
/// left out.
pub(crate) fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms = vec![
        json::string_inner(value, true),
        yaml::single_quoted_inner(value),
        yaml::double_quoted_inner(value),
        value.replace('\'', "'\"'\"'"),
        regex::escape_python(value),
    ];
    forms.extend(filters::base64_forms(value));
    forms.extend(filters::digests(value.as_bytes()));
    forms.retain(|f| f != value && !f.is_empty());
    forms
}

/// Ansible's `to_text(value, nonstring='simplerepr')`: a string as it is, anything else as
/// Python's `str()` writes it (which minijinja's rendering of values follows).
fn to_text(v: &minijinja::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The (key, value) pairs of a map, in the map's order (minijinja's maps keep their keys
/// sorted).
fn pairs(value: &minijinja::Value) -> Result<Vec<(minijinja::Value, minijinja::Value)>, Error> {
    let mut out = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        out.push((key, item));
    }
    Ok(out)
}

/// An error of a filter, named after it.
fn invalid(filter: &str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{filter}: {why}"))
}

/// A float as Python's `repr` writes it: the shortest digits that read back the same, in
/// fixed notation for exponents from -4 to 15 (`0.0001`, `1e+16`, `1.5e-05`), with `.0` on
/// integral values. NaN and infinities are left to the caller.
fn python_float(f: f64) -> String {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp writes an exponent");
    let exp: i32 = exp.parse().expect("LowerExp writes an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let mantissa =
            if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Renders `source` with the engine's settings (strict undefined, trim_blocks,
    /// lstrip_blocks, keep_trailing_newline) and this module's additions.
    pub(crate) fn render(source: &str, ctx: minijinja::Value) -> Result<String, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        register(&mut env);
        env.render_str(source, ctx)
    }

    pub(crate) fn ok(source: &str) -> String {
        render(source, minijinja::context! {}).unwrap_or_else(|e| panic!("{source}: {e:#}"))
    }

    pub(crate) fn err(source: &str) -> String {
        match render(source, minijinja::context! {}) {
            Ok(out) => panic!("{source} rendered {out:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn floats_are_written_as_python_repr_writes_them() {
        for (f, s) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.25e300, "1.25e+300"),
            (123456.789, "123456.789"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float(f), s, "{f}");
        }
    }

    #[test]
    fn every_encoded_form_differs_from_the_value() {
        let forms = encoded_forms("pa'ss é\n");
        assert!(forms.contains(&"pa''ss é\n".to_string()), "{forms:?}");
        assert!(forms.contains(&"pa'ss \\u00e9\\n".to_string()), "{forms:?}");
        assert!(forms.iter().all(|f| f != "pa'ss é\n"));
        assert!(encoded_forms("plain").iter().all(|f| f != "plain"));
    }
}

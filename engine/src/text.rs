//! Small helpers shared by the parsers: byte offsets to line numbers, TOML errors to engine errors.

use serde::de::DeserializeOwned;

use crate::error::{self, Error, Result};

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Line starts of a text, for many offset → line lookups in O(log n) each (an inventory of
/// thousands of hosts would make repeated [`line_of`] scans quadratic).
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(text: &str) -> Lines {
        Lines(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

/// Decodes a file as UTF-8, naming the file when it is not.
pub fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        error::syntax(format!("not valid UTF-8 (byte {})", e.valid_up_to())).at_file(path, None)
    })
}

/// Parses a TOML file into `T`, turning syntax and shape errors into `path:line: message`.
pub fn parse_toml<T: DeserializeOwned>(path: &str, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| toml_error(path, text, &e))
}

pub fn toml_error(path: &str, text: &str, e: &toml::de::Error) -> Error {
    let line = e.span().map(|s| line_of(text, s.start));
    let mut message = e.message().trim_end().replace('\n', " ");
    // `[hooks]` where `[[hooks]]` (a list of tables) is meant.
    let table_line = line.and_then(|l| text.lines().nth(l - 1)).map(str::trim);
    if message.starts_with("invalid type: map, expected a sequence")
        && let Some(name) = table_line
            .and_then(|l| l.strip_prefix('['))
            .and_then(|l| l.strip_suffix(']'))
            .filter(|n| !n.starts_with('['))
    {
        message.push_str(&format!("; a list of tables takes two brackets: [[{name}]]"));
    }
    error::syntax(message).at_file(path, line)
}

/// "a string", "an integer", "an array": a value's type with its article, for messages.
pub fn a_type(v: &toml::Value) -> String {
    with_article(v.type_str())
}

/// "an integer", "a hash": a type name with its article.
pub fn with_article(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

/// A float as Ruby (and so Puppet) prints it: `1.0`, `0.0001`, `1.0e+20`, `1.0e-05`. Hiera data
/// migrated from Puppet interpolates floats into text (versions, ratios) and must read the same.
pub fn ruby_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest digits that read back the same, as Ruby's do.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    // Ruby writes decimals while the decimal point is within 4 places left, 15 right.
    if (-4..15).contains(&exp) {
        let fixed = f.to_string();
        if fixed.contains('.') { fixed } else { fixed + ".0" }
    } else {
        let mantissa =
            if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_agree_with_line_of() {
        let text = "a\nbb\n\nccc";
        let lines = Lines::new(text);
        for offset in 0..text.len() {
            assert_eq!(lines.line(offset), line_of(text, offset), "offset {offset}");
        }
    }

    #[test]
    fn floats_print_as_ruby_prints_them() {
        // Each pair checked with `ruby -e 'p x.to_s'` (Ruby 3.1, as Puppet 7 on Debian 12).
        for (f, ruby) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (1e20, "1.0e+20"),
            (1e15, "1.0e+15"),
            (1e14, "100000000000000.0"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (1e-4, "0.0001"),
            (1e-5, "1.0e-05"),
            (2.5e-7, "2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789.123, "123456789.123"),
            (-0.0, "-0.0"),
            (-12.0, "-12.0"),
        ] {
            assert_eq!(ruby_float(f), ruby, "{f}");
        }
    }
}

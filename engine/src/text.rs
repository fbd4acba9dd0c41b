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
    let message = e.message().trim_end().replace('\n', " ");
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
}

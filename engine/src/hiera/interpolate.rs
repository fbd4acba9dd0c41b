//! Parsing `%{...}` interpolations inside hiera string values.

use crate::error::{self, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    Text(&'a str),
    /// `%{facts.x}`, `%{host.name}`, `%{environment}`
    Var(&'a str),
    /// `%{lookup('k')}` (also spelled `hiera('k')`)
    Lookup(&'a str),
    /// `%{alias('k')}`
    Alias(&'a str),
    /// `%{literal('%')}`
    Literal(&'a str),
}

/// Splits a string into literal text and interpolations.
pub fn tokenize(s: &str) -> Result<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("%{") {
        if start > 0 {
            out.push(Token::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            // The value itself is not quoted: it may be a secret.
            .ok_or_else(|| {
                error::lookup("unterminated '%{' (write a literal '%{' as %{literal('%')}{)")
            })?;
        let expr = after[..end].trim();
        out.push(parse_expr(expr)?);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Token::Text(rest));
    }
    Ok(out)
}

fn parse_expr(expr: &str) -> Result<Token<'_>> {
    if expr.is_empty() {
        // Hiera's `%{}` is an empty string, used to break up `%{` sequences.
        return Ok(Token::Text(""));
    }
    if let Some(open) = expr.find('(') {
        let func = expr[..open].trim();
        let arg =
            expr[open + 1..].strip_suffix(')').map(str::trim).and_then(|a| unquote(a)).ok_or_else(
                || {
                    error::lookup(format!(
                        "malformed interpolation '%{{{expr}}}': expected {func}('key')"
                    ))
                },
            )?;
        return match func {
            "lookup" | "hiera" => Ok(Token::Lookup(arg)),
            "alias" => Ok(Token::Alias(arg)),
            "literal" => Ok(Token::Literal(arg)),
            _ => Err(error::lookup(format!(
                "unknown interpolation function '{func}' (use lookup, alias or literal)"
            ))),
        };
    }
    let valid =
        expr.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'));
    if !valid {
        return Err(error::lookup(format!("malformed interpolation '%{{{expr}}}'")));
    }
    Ok(Token::Var(expr.trim_start_matches("::")))
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(
            tokenize("a %{facts.x}-%{lookup('k')}%{alias(\"y\")}%{literal('%')}").unwrap(),
            vec![
                Token::Text("a "),
                Token::Var("facts.x"),
                Token::Text("-"),
                Token::Lookup("k"),
                Token::Alias("y"),
                Token::Literal("%")
            ]
        );
    }

    #[test]
    fn errors() {
        assert!(tokenize("%{facts.x").unwrap_err().to_string().contains("unterminated"));
        assert!(
            tokenize("%{scope('x')}")
                .unwrap_err()
                .to_string()
                .contains("unknown interpolation function")
        );
        assert!(tokenize("%{lookup(k)}").unwrap_err().to_string().contains("malformed"));
    }
}

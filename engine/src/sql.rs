//! SQL string literals for templates that write SQL (the databases and users of a database
//! host): a value from hieradata must never end the literal and run as a statement.

/// `value` as a MariaDB/MySQL string literal: `'it''s'`. Backslashes are doubled too, since
/// MariaDB reads `\` as an escape inside quotes unless `NO_BACKSLASH_ESCAPES` is set.
pub fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::string_literal;

    #[test]
    fn quotes_and_backslashes_stay_inside_the_literal() {
        assert_eq!(string_literal("pw"), "'pw'");
        assert_eq!(string_literal("a'b"), "'a''b'");
        assert_eq!(string_literal("x'; DROP USER root; --"), "'x''; DROP USER root; --'");
        assert_eq!(string_literal("c:\\"), "'c:\\\\'");
    }
}

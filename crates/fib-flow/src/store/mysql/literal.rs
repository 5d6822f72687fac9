//! Values written into the text of a MySQL command instead of bound: a
//! prepared statement holds one SQL statement, so a command of several
//! (one round trip for many writes) goes as text. Every value becomes SQL
//! that no value can break out of: digits, `NULL`, `TRUE`/`FALSE`, and
//! strings and bytes as hex literals.

use std::fmt::Write;

use crate::error::{Error, Result};

/// One value for a `?` of a query file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lit<'a> {
    /// `NULL`
    Null,
    /// An integer, as digits.
    Int(i64),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A string: `CONVERT(X'…' USING utf8mb4)`.
    Text(&'a str),
    /// Bytes: `X'…'`.
    Bytes(&'a [u8]),
}

impl<'a> Lit<'a> {
    /// An optional integer.
    pub(super) fn int(value: Option<i64>) -> Self {
        value.map_or(Lit::Null, Lit::Int)
    }

    /// An optional string.
    pub(super) fn text(value: Option<&'a str>) -> Self {
        value.map_or(Lit::Null, Lit::Text)
    }

    /// An optional byte string.
    pub(super) fn bytes(value: Option<&'a [u8]>) -> Self {
        value.map_or(Lit::Null, Lit::Bytes)
    }

    /// Appends this value's SQL to `sql`.
    pub(super) fn write_to(self, sql: &mut String) {
        match self {
            Lit::Null => sql.push_str("NULL"),
            Lit::Int(value) => {
                let _ = write!(sql, "{value}");
            }
            Lit::Bool(value) => sql.push_str(if value { "TRUE" } else { "FALSE" }),
            Lit::Text(value) => {
                sql.push_str("CONVERT(");
                hex(sql, value.as_bytes());
                sql.push_str(" USING utf8mb4)");
            }
            Lit::Bytes(value) => hex(sql, value),
        }
    }

    /// This value's SQL.
    pub(super) fn sql(self) -> String {
        let mut sql = String::new();
        self.write_to(&mut sql);
        sql
    }
}

/// `X'…'`: lower-case hex between the quotes.
fn hex(sql: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    sql.reserve(bytes.len() * 2 + 3);
    sql.push_str("X'");
    for &byte in bytes {
        sql.push(char::from(DIGITS[usize::from(byte >> 4)]));
        sql.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    sql.push('\'');
}

/// Appends `query` (one of this backend's query files) to `sql` with its
/// `--` comment lines left out and each `?` replaced by the next of
/// `values`, in order. The files hold no `?` inside a string literal (this
/// refuses a quote on a line with a `?`); a count that does not match is
/// an error, not a guess.
pub(super) fn interpolate(sql: &mut String, query: &str, values: &[Lit<'_>]) -> Result<()> {
    let mut values = values.iter();
    for line in query.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        if line.contains('?') && line.contains('\'') {
            return Err(interpolation("a line with both '?' and a quote"));
        }
        let mut parts = line.split('?');
        if let Some(first) = parts.next() {
            sql.push_str(first);
        }
        for part in parts {
            let value = values
                .next()
                .ok_or_else(|| interpolation("more '?' than values"))?;
            value.write_to(sql);
            sql.push_str(part);
        }
        sql.push('\n');
    }
    if values.next().is_some() {
        return Err(interpolation("more values than '?'"));
    }
    Ok(())
}

fn interpolation(reason: &str) -> Error {
    Error::Corrupt {
        column: "query",
        reason: format!("cannot write values into a query file: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{interpolate, Lit};

    #[test]
    fn each_kind_of_value_has_its_sql() {
        assert_eq!(Lit::Null.sql(), "NULL");
        assert_eq!(Lit::Int(-42).sql(), "-42");
        assert_eq!(Lit::Bool(true).sql(), "TRUE");
        assert_eq!(Lit::Bool(false).sql(), "FALSE");
        assert_eq!(Lit::Text("").sql(), "CONVERT(X'' USING utf8mb4)");
        assert_eq!(
            Lit::Text("a'\\é").sql(),
            "CONVERT(X'61275cc3a9' USING utf8mb4)"
        );
        assert_eq!(Lit::Bytes(&[0, 255]).sql(), "X'00ff'");
        assert_eq!(Lit::text(None), Lit::Null);
        assert_eq!(Lit::int(Some(3)), Lit::Int(3));
    }

    #[test]
    fn question_marks_take_the_values_in_order_and_comments_are_dropped() {
        let query = "-- what? a comment\nUPDATE t SET a = ?, b = ?\nWHERE id = ?";
        let mut sql = String::new();
        let values = [Lit::Text("x?'"), Lit::Null, Lit::Int(7)];
        interpolate(&mut sql, query, &values).expect("interpolates");
        assert_eq!(
            sql,
            "UPDATE t SET a = CONVERT(X'783f27' USING utf8mb4), b = NULL\nWHERE id = 7\n"
        );
    }

    #[test]
    fn a_count_that_does_not_match_is_an_error() {
        let mut sql = String::new();
        assert!(interpolate(&mut sql, "SELECT ?, ?", &[Lit::Int(1)]).is_err());
        assert!(interpolate(&mut sql, "SELECT ?", &[Lit::Int(1), Lit::Int(2)]).is_err());
        assert!(interpolate(&mut sql, "SELECT '?' = ?", &[Lit::Int(1)]).is_err());
    }
}

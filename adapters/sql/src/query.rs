//! A mapping's query: finding the `:subject` parameter and rewriting it for
//! each driver. The subject ID is always bound, never put into SQL text.
//!
//! The scanner knows just enough SQL to not be fooled: string literals
//! (`'...'`, with `''` escapes), quoted identifiers (`"..."`, `` `...` ``),
//! comments (`-- ...`, `/* ... */`) and PostgreSQL casts (`::`).

/// Which placeholder syntax a driver wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?1`, bound once however often it occurs.
    Sqlite,
    /// `$1`, bound once however often it occurs.
    Postgres,
    /// `?` per occurrence, each bound.
    MySql,
}

/// A query split around its `:subject` occurrences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQuery {
    /// The SQL between occurrences: one more piece than occurrences.
    pieces: Vec<String>,
}

/// Why a query was refused, with the byte offset in the query text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub offset: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "at byte {offset} of the query: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for QueryError {}

impl QueryError {
    fn at(offset: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            offset: Some(offset),
            message: message.into(),
        }
    }
}

impl ParsedQuery {
    /// Splits `sql` at each `:subject`; refuses any other parameter, a query
    /// without `:subject`, and more than one statement.
    pub fn parse(sql: &str) -> Result<ParsedQuery, QueryError> {
        let bytes = sql.as_bytes();
        let mut pieces = Vec::new();
        let mut piece_start = 0;
        let mut i = 0;
        let mut statement_end: Option<usize> = None;
        while let Some(&b) = bytes.get(i) {
            if let Some(end) = statement_end
                && !b.is_ascii_whitespace()
                && !(b == b'-' && bytes.get(i + 1) == Some(&b'-'))
                && !(b == b'/' && bytes.get(i + 1) == Some(&b'*'))
            {
                return Err(QueryError::at(
                    end,
                    "the query must be one statement; remove what follows `;`",
                ));
            }
            match b {
                b'\'' | b'"' | b'`' => {
                    i = skip_quoted(bytes, i, b).ok_or_else(|| {
                        QueryError::at(i, format!("unterminated quote `{}`", b as char))
                    })?;
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    i = bytes[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(bytes.len(), |p| i + p + 1);
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i = sql[i + 2..]
                        .find("*/")
                        .map(|p| i + 2 + p + 2)
                        .ok_or_else(|| QueryError::at(i, "unterminated comment `/*`"))?;
                }
                b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
                b':' if bytes.get(i + 1) == Some(&b'=') => i += 2,
                b':' if bytes.get(i + 1).is_some_and(|c| is_ident_start(*c)) => {
                    let end = ident_end(bytes, i + 1);
                    let name = &sql[i + 1..end];
                    if name != "subject" {
                        return Err(QueryError::at(
                            i,
                            format!(
                                "unknown parameter `:{name}`; the only parameter is `:subject`"
                            ),
                        ));
                    }
                    pieces.push(sql[piece_start..i].to_owned());
                    piece_start = end;
                    i = end;
                }
                b'?' => {
                    return Err(QueryError::at(
                        i,
                        "write the subject parameter as `:subject`, not `?`",
                    ));
                }
                b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                    return Err(QueryError::at(
                        i,
                        "write the subject parameter as `:subject`, not `$n`",
                    ));
                }
                b';' => {
                    statement_end = Some(i);
                    i += 1;
                }
                _ if is_ident_start(b) || b.is_ascii_digit() => {
                    // Skip whole words so `a:b` style text inside an
                    // identifier run is never taken apart.
                    i = ident_end(bytes, i);
                }
                _ => i += 1,
            }
        }
        if pieces.is_empty() {
            return Err(QueryError {
                offset: None,
                message: "the query has no `:subject` parameter; the subject ID must be bound with `:subject`".into(),
            });
        }
        let tail = match statement_end {
            Some(end) => &sql[piece_start.min(end)..end],
            None => &sql[piece_start..],
        };
        pieces.push(tail.to_owned());
        Ok(ParsedQuery { pieces })
    }

    /// How often `:subject` occurs.
    pub fn occurrences(&self) -> usize {
        self.pieces.len() - 1
    }

    /// The SQL for `dialect` and how many times the subject must be bound.
    pub fn render(&self, dialect: Dialect) -> (String, usize) {
        let placeholder = match dialect {
            Dialect::Sqlite => "?1",
            Dialect::Postgres => "$1",
            Dialect::MySql => "?",
        };
        let binds = match dialect {
            Dialect::Sqlite | Dialect::Postgres => 1,
            Dialect::MySql => self.occurrences(),
        };
        (self.pieces.join(placeholder), binds)
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn ident_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .map_or(bytes.len(), |p| from + p)
}

/// The index after the closing `quote` of the quoted text starting at
/// `start`; a doubled quote is an escaped one (and MySQL's backslash escape in
/// strings is honoured too, which is harmless elsewhere).
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && quote == b'\'' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_with_its_offset() {
        let e = ParsedQuery::parse("SELECT 1; DROP TABLE t").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("at byte 8 of the query: "), "{text}");
        assert!(text.contains("one statement"), "{text}");
    }

    #[test]
    fn each_dialect_gets_its_placeholders_and_bind_count() {
        let q = ParsedQuery::parse("SELECT a FROM t WHERE h = :subject OR w = :subject").unwrap();
        assert_eq!(q.occurrences(), 2);
        assert_eq!(
            q.render(Dialect::Sqlite),
            ("SELECT a FROM t WHERE h = ?1 OR w = ?1".into(), 1)
        );
        assert_eq!(
            q.render(Dialect::Postgres),
            ("SELECT a FROM t WHERE h = $1 OR w = $1".into(), 1)
        );
        assert_eq!(
            q.render(Dialect::MySql),
            ("SELECT a FROM t WHERE h = ? OR w = ?".into(), 2)
        );
    }

    #[test]
    fn literals_comments_and_casts_are_not_parameters() {
        let sql = "SELECT ':x', \"a?b\", `c:d`, e::date, 'it''s :y' -- :z ?\n\
                   /* $1 :w */ FROM t WHERE id = :subject;  -- end";
        let q = ParsedQuery::parse(sql).unwrap();
        assert_eq!(q.occurrences(), 1);
        let (pg, _) = q.render(Dialect::Postgres);
        assert!(pg.ends_with("WHERE id = $1"), "{pg}");
        assert!(pg.contains("e::date"), "{pg}");
    }

    #[test]
    fn other_parameters_and_missing_subject_are_refused_with_the_offset() {
        let err = ParsedQuery::parse("SELECT a FROM t WHERE id = ?").unwrap_err();
        assert_eq!(err.offset, Some(27));
        assert!(err.message.contains("`:subject`, not `?`"), "{err:?}");
        let err = ParsedQuery::parse("SELECT a FROM t WHERE id = $1").unwrap_err();
        assert!(err.message.contains("not `$n`"), "{err:?}");
        let err = ParsedQuery::parse("SELECT a FROM t WHERE id = :id").unwrap_err();
        assert_eq!(err.offset, Some(27));
        assert!(err.message.contains("unknown parameter `:id`"), "{err:?}");
        let err = ParsedQuery::parse("SELECT a FROM t WHERE id = 'x'").unwrap_err();
        assert_eq!(err.offset, None);
        assert!(err.message.contains("no `:subject`"), "{err:?}");
    }

    #[test]
    fn a_second_statement_or_open_quote_is_refused() {
        let err =
            ParsedQuery::parse("SELECT a FROM t WHERE id = :subject; DELETE FROM t").unwrap_err();
        assert_eq!(err.offset, Some(35));
        assert!(err.message.contains("one statement"), "{err:?}");
        let err = ParsedQuery::parse("SELECT 'a FROM t WHERE id = :subject").unwrap_err();
        assert!(err.message.contains("unterminated quote"), "{err:?}");
        let err = ParsedQuery::parse("SELECT a /* FROM t WHERE id = :subject").unwrap_err();
        assert!(err.message.contains("unterminated comment"), "{err:?}");
    }
}

//! A mapping's queries: finding the `:subject` parameter (or the batch
//! query's `IN (:subjects)`) and rewriting it for each driver. Subject IDs
//! are always bound, never put into SQL text.
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

/// A batch query split around its `IN (:subjects)` occurrences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchQuery {
    /// The SQL between occurrences (each `IN (:subjects)` cut out whole):
    /// one more piece than occurrences.
    pieces: Vec<String>,
}

/// Which parameter a query binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    /// `:subject`, the one ID of `query`.
    Subject,
    /// `IN (:subjects)`, the list of IDs of `batch_query`.
    Subjects,
}

impl ParsedQuery {
    /// Splits `sql` at each `:subject`; refuses any other parameter, a query
    /// without `:subject`, and more than one statement.
    pub fn parse(sql: &str) -> Result<ParsedQuery, QueryError> {
        split(sql, Param::Subject).map(|pieces| ParsedQuery { pieces })
    }
}

impl BatchQuery {
    /// Splits `sql` at each `IN (:subjects)`; refuses `:subjects` written any
    /// other way (`NOT IN` included), any other parameter, a query without
    /// it, and more than one statement.
    pub fn parse(sql: &str) -> Result<BatchQuery, QueryError> {
        split(sql, Param::Subjects).map(|pieces| BatchQuery { pieces })
    }

    /// How often `IN (:subjects)` occurs.
    pub fn occurrences(&self) -> usize {
        self.pieces.len() - 1
    }

    /// The SQL for `dialect` and a list of `n` IDs: `IN (?1, ..., ?n)` (SQLite,
    /// the list bound once), `IN (?, ..., ?)` (MySQL, the list bound once per
    /// occurrence), `= ANY($1)` (PostgreSQL, one `text[]` whatever `n`).
    pub fn render(&self, dialect: Dialect, n: usize) -> String {
        let n = n.max(1);
        let list = match dialect {
            Dialect::Sqlite => {
                let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
                format!("IN ({})", marks.join(", "))
            }
            Dialect::MySql => format!("IN ({})", vec!["?"; n].join(", ")),
            Dialect::Postgres => "= ANY($1)".to_owned(),
        };
        self.pieces.join(&list)
    }
}

/// Splits `sql` around each occurrence of `param` (for [`Param::Subjects`]
/// the whole `IN (:subjects)`).
fn split(sql: &str, param: Param) -> Result<Vec<String>, QueryError> {
    let (name, written) = match param {
        Param::Subject => ("subject", "`:subject`"),
        Param::Subjects => ("subjects", "`IN (:subjects)`"),
    };
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
                let found = &sql[i + 1..end];
                if found == "subject" && param == Param::Subjects {
                    return Err(QueryError::at(
                        i,
                        "the batch query binds the list of subjects, `IN (:subjects)`; \
                             `:subject` is for `query`",
                    ));
                }
                if found != name {
                    return Err(QueryError::at(
                        i,
                        format!("unknown parameter `:{found}`; the only parameter is {written}"),
                    ));
                }
                let (cut, resume) = match param {
                    Param::Subject => (i, end),
                    Param::Subjects => in_list_around(bytes, i, end)?,
                };
                if cut < piece_start {
                    return Err(QueryError::at(
                        i,
                        format!("write the parameter as {written}"),
                    ));
                }
                pieces.push(sql[piece_start..cut].to_owned());
                piece_start = resume;
                i = resume;
            }
            b'?' => {
                return Err(QueryError::at(
                    i,
                    format!("write the subject parameter as {written}, not `?`"),
                ));
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                return Err(QueryError::at(
                    i,
                    format!("write the subject parameter as {written}, not `$n`"),
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
                message: match param {
                    Param::Subject => "the query has no `:subject` parameter; the subject ID must be bound with `:subject`".into(),
                    Param::Subjects => "the batch query has no `IN (:subjects)`; the subject IDs must be bound with it".into(),
                },
            });
    }
    let tail = match statement_end {
        Some(end) => &sql[piece_start.min(end)..end],
        None => &sql[piece_start..],
    };
    pieces.push(tail.to_owned());
    Ok(pieces)
}

/// Around `:subjects` (bytes `at..end`): where `IN (` starts and where the
/// text after its `)` resumes, or why it is not written `IN (:subjects)`.
/// `NOT IN` is refused: its rows cannot be told apart by subject.
fn in_list_around(bytes: &[u8], at: usize, end: usize) -> Result<(usize, usize), QueryError> {
    let wrong = || {
        QueryError::at(
            at,
            "write the list of subjects as `IN (:subjects)`, e.g. `WHERE person_id IN (:subjects)`",
        )
    };
    let before = |to: usize| bytes[..to].iter().rposition(|b| !b.is_ascii_whitespace());
    let open = before(at).filter(|&o| bytes[o] == b'(').ok_or_else(wrong)?;
    let word_end = before(open).ok_or_else(wrong)? + 1;
    let word_start = bytes[..word_end]
        .iter()
        .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .map_or(0, |p| p + 1);
    if !bytes[word_start..word_end].eq_ignore_ascii_case(b"in") {
        return Err(wrong());
    }
    if let Some(prev_end) = before(word_start) {
        let prev_start = bytes[..=prev_end]
            .iter()
            .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .map_or(0, |p| p + 1);
        if bytes[prev_start..=prev_end].eq_ignore_ascii_case(b"not") {
            return Err(QueryError::at(
                at,
                "`NOT IN (:subjects)` matches rows of no subject asked for; use `IN (:subjects)`",
            ));
        }
    }
    let close = bytes[end..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|p| end + p)
        .filter(|&c| bytes[c] == b')')
        .ok_or_else(wrong)?;
    Ok((word_start, close + 1))
}

impl ParsedQuery {
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
    fn a_batch_query_binds_the_list_of_subjects_per_dialect() {
        let q = BatchQuery::parse(
            "SELECT a FROM t WHERE pid in(:subjects) OR (w IN ( :subjects )) ORDER BY a",
        )
        .unwrap();
        assert_eq!(q.occurrences(), 2);
        assert_eq!(
            q.render(Dialect::Sqlite, 3),
            "SELECT a FROM t WHERE pid IN (?1, ?2, ?3) OR (w IN (?1, ?2, ?3)) ORDER BY a"
        );
        assert_eq!(
            q.render(Dialect::MySql, 2),
            "SELECT a FROM t WHERE pid IN (?, ?) OR (w IN (?, ?)) ORDER BY a"
        );
        assert_eq!(
            q.render(Dialect::Postgres, 500),
            "SELECT a FROM t WHERE pid = ANY($1) OR (w = ANY($1)) ORDER BY a"
        );
        // Literals and comments are not parameters here either.
        let q = BatchQuery::parse("SELECT 'IN (:subjects)' FROM t -- :x\nWHERE p IN (:subjects);")
            .unwrap();
        assert_eq!(
            q.render(Dialect::Sqlite, 1),
            "SELECT 'IN (:subjects)' FROM t -- :x\nWHERE p IN (?1)"
        );
    }

    #[test]
    fn a_batch_query_must_say_in_list_of_subjects() {
        for (sql, offset, wants) in [
            (
                "SELECT a FROM t WHERE p = :subjects",
                Some(26),
                "`IN (:subjects)`",
            ),
            (
                "SELECT a FROM t WHERE p IN :subjects",
                Some(27),
                "`IN (:subjects)`",
            ),
            (
                "SELECT a FROM t WHERE p IN (:subjects, 'x')",
                Some(28),
                "`IN (:subjects)`",
            ),
            (
                "SELECT a FROM t WHERE p NOT IN (:subjects)",
                Some(32),
                "`NOT IN (:subjects)`",
            ),
            (
                "SELECT a FROM t WHERE p = :subject",
                Some(26),
                "`:subject` is for `query`",
            ),
            (
                "SELECT a FROM t WHERE p IN (:ids)",
                Some(28),
                "unknown parameter `:ids`",
            ),
            (
                "SELECT a FROM t WHERE p IN (?)",
                Some(28),
                "as `IN (:subjects)`, not `?`",
            ),
            (
                "SELECT a FROM t WHERE p IN ('x')",
                None,
                "no `IN (:subjects)`",
            ),
            (
                "SELECT a FROM t WHERE p IN (:subjects); DROP TABLE t",
                Some(38),
                "one statement",
            ),
        ] {
            let err = BatchQuery::parse(sql).unwrap_err();
            assert_eq!(err.offset, offset, "{sql}: {err}");
            assert!(err.message.contains(wants), "{sql}: {err}");
        }
        // and the single query knows no list
        let err = ParsedQuery::parse("SELECT a FROM t WHERE p IN (:subjects)").unwrap_err();
        assert!(
            err.message.contains("unknown parameter `:subjects`"),
            "{err}"
        );
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

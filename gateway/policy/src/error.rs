//! Load errors: every problem found in a policy set, each pointing at a file, line and column.

use std::fmt;

/// One problem found while loading a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyIssue {
    /// The file, as named to the loader (the path for [`crate::PolicySet::load_dir`]).
    pub file: String,
    /// 1-based line; 0 when the problem concerns the file (or the catalog) as a whole.
    pub line: u32,
    /// 1-based column in characters; 0 together with `line`.
    pub column: u32,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
}

impl PolicyIssue {
    /// A problem that concerns a whole file (or the catalog) rather than a place in it.
    pub(crate) fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// A policy set that could not be loaded; it lists every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLoadError {
    /// The problems, sorted by file, line and column.
    pub errors: Vec<PolicyIssue>,
}

impl fmt::Display for PolicyLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, issue) in self.errors.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyLoadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_per_issue() {
        let err = PolicyLoadError {
            errors: vec![
                PolicyIssue {
                    file: "policies/demo.cedar".into(),
                    line: 12,
                    column: 5,
                    message: "unknown record type `x`".into(),
                },
                PolicyIssue::whole_file("policies", "no `*.cedar` file"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "policies/demo.cedar:12:5: unknown record type `x`\npolicies: no `*.cedar` file"
        );
    }
}

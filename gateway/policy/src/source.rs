//! Policy files as loaded, and the mapping from Cedar's byte offsets to `line:column`.

use miette::Diagnostic;

use crate::error::PolicyIssue;

/// One policy file.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// The bare file name. The version hash covers this name, not the path, so the same
    /// files hash alike wherever they were read from.
    pub(crate) name: String,
    /// The name shown in messages: the path for files read from a directory.
    pub(crate) display: String,
    pub(crate) text: String,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub(crate) fn new(name: String, display: String, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self {
            name,
            display,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters, as editors count) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = line
            .checked_sub(1)
            .and_then(|n| self.line_starts.get(n))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(offset - line_start, |prefix| prefix.chars().count());
        (saturate(line), saturate(column + 1))
    }

    /// An issue at a byte offset of this file.
    pub(crate) fn issue_at(&self, offset: usize, message: impl Into<String>) -> PolicyIssue {
        let (line, column) = self.position(offset);
        PolicyIssue {
            file: self.display.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An issue from a Cedar diagnostic whose labels index into this file's text; `fallback`
    /// is used when the diagnostic carries no label.
    pub(crate) fn issue_from_diagnostic(
        &self,
        diagnostic: &dyn Diagnostic,
        fallback: usize,
    ) -> PolicyIssue {
        let offset = diagnostic
            .labels()
            .and_then(|mut labels| labels.next())
            .map_or(fallback, |label| label.offset());
        let mut message = diagnostic.to_string();
        if let Some(help) = diagnostic.help() {
            message.push_str(" (");
            message.push_str(&help.to_string());
            message.push(')');
        }
        self.issue_at(offset, message)
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new("a.cedar".into(), "dir/a.cedar".into(), text.into())
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let f = file("ab\n// 公积金\nxyz");
        assert_eq!(f.position(0), (1, 1));
        assert_eq!(f.position(1), (1, 2));
        assert_eq!(f.position(2), (1, 3));
        assert_eq!(f.position(3), (2, 1));
        // after "// " and three three-byte characters
        let x = f.text.find('x').unwrap_or_default();
        assert_eq!(f.position(x), (3, 1));
        let newline = f.text.rfind('\n').unwrap_or_default();
        assert_eq!(f.position(newline), (2, 7));
        assert_eq!(f.position(10_000), (3, 4));
    }

    #[test]
    fn issues_use_the_display_name() {
        let issue = file("x\ny").issue_at(2, "bad");
        assert_eq!(issue.to_string(), "dir/a.cedar:2:1: bad");
    }
}

//! Source locations.

/// Index of a source file in [`crate::Config::files`] (or the preprocessor's file table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Location of a piece of configuration text.
///
/// `line`/`col` are 1-based and point at the first character; `start..end`
/// is the byte range in the file. Tokens produced by expanding a `#!define`
/// carry the span of the identifier that was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// File the text comes from.
    pub file: FileId,
    /// 1-based line of the first character.
    pub line: u32,
    /// 1-based column (in characters) of the first character.
    pub col: u32,
    /// Byte offset of the first character in the file.
    pub start: u32,
    /// Byte offset just past the last character in the file.
    pub end: u32,
}

impl Span {
    /// A span covering `self` up to the end of `other` (when both are in the same file
    /// and `other` ends later; otherwise `self`).
    pub fn to(self, other: Span) -> Span {
        if self.file == other.file && other.end >= self.start {
            Span {
                end: other.end,
                ..self
            }
        } else {
            self
        }
    }
}

//! Configuration errors with a precise source location.

use std::fmt;
use std::path::PathBuf;

/// One problem found while preprocessing or parsing a configuration.
///
/// `Display` renders it as `file:line:col: message`, the form editors and
/// compilers use, so a user can jump straight to the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgError {
    /// File the problem is in (as given to the parser or resolved by an include).
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column (counted in characters).
    pub col: u32,
    /// Human readable description naming the offending text.
    pub message: String,
}

impl fmt::Display for CfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for CfgError {}

//! Error kinds a user can act on.
//!
//! Every error in the box is one of two kinds: **bad input** (the study is unusable as given:
//! the case goes to `failed/`, the exit code is 2, and the message names the file and the
//! problem) or **internal** (a fault of the box itself: exit code 1). Each module has its own
//! typed error enum (as dicom-rs does) whose variants carry the path; this module only holds the
//! shared classification so the CLI and the spool can decide what to do without string matching.

use std::fmt;

/// Whether an error is the input's fault or the box's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input cannot be used as given (missing, corrupt, inconsistent, too large).
    BadInput,
    /// Configuration error (a config file or a model package).
    Config,
    /// A fault in the box itself.
    Internal,
}

impl ErrorKind {
    /// Process exit code for this kind of error (`glioedge run`, `inspect`).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::BadInput | ErrorKind::Config => 2,
            ErrorKind::Internal => 1,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::BadInput => "bad input",
            ErrorKind::Config => "configuration",
            ErrorKind::Internal => "internal",
        })
    }
}

/// Implemented by every error enum of the crate.
pub trait Classify {
    /// Bad input or internal fault.
    fn kind(&self) -> ErrorKind;
    /// One sentence telling the operator what to do about it, where there is something to do.
    fn hint(&self) -> Option<String> {
        None
    }
}

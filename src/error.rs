//! One typed error for the whole engine.
//!
//! Every failure carries a stable [`ErrorCode`] that reaches JavaScript
//! unchanged, so applications can branch on the code and show the message.
//! User input (SQL, pushed data) never panics: it fails with one of these.

use std::fmt;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// What went wrong. Codes are stable: never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The SQL text does not parse.
    SqlParse,
    /// The SQL parses but cannot be planned (unknown column, wrong types, ...).
    SqlPlan,
    /// Valid SQL that Riffle cannot run incrementally on a stream.
    Unsupported,
    /// A statement or push names a stream that does not exist.
    UnknownStream,
    /// `CREATE STREAM` for a name that is already taken.
    StreamExists,
    /// A query id that does not exist.
    UnknownQuery,
    /// Pushed data does not fit the stream (malformed JSON, wrong types,
    /// null event time). Nothing of the rejected push was applied.
    InvalidInput,
    /// Evaluating an expression on pushed data failed (overflow, bad cast).
    Execution,
    /// A push after `finish()`.
    Finished,
    /// A checkpoint that fails its checks: truncated, bit-flipped, not a checkpoint.
    CorruptCheckpoint,
    /// A valid checkpoint of different streams or queries than this engine's.
    CheckpointMismatch,
    /// A broken invariant inside Riffle: a bug.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in JavaScript (`err.code`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SqlParse => "SQL_PARSE",
            ErrorCode::SqlPlan => "SQL_PLAN",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::UnknownStream => "UNKNOWN_STREAM",
            ErrorCode::StreamExists => "STREAM_EXISTS",
            ErrorCode::UnknownQuery => "UNKNOWN_QUERY",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::Execution => "EXECUTION",
            ErrorCode::Finished => "FINISHED",
            ErrorCode::CorruptCheckpoint => "CORRUPT_CHECKPOINT",
            ErrorCode::CheckpointMismatch => "CHECKPOINT_MISMATCH",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// An error with a stable code and a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiffleError {
    code: ErrorCode,
    message: String,
}

/// Result with [`RiffleError`] as the error.
pub type Result<T, E = RiffleError> = std::result::Result<T, E>;

impl RiffleError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Wraps this error so it can travel through DataFusion callbacks
    /// (table functions, providers) and come out typed again.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

/// Shorthand: `err!(Unsupported, "... {x}")`.
#[macro_export]
macro_rules! err {
    ($code:ident, $($arg:tt)*) => {
        $crate::error::RiffleError::new($crate::error::ErrorCode::$code, format!($($arg)*))
    };
}

impl fmt::Display for RiffleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for RiffleError {}

impl From<DataFusionError> for RiffleError {
    fn from(error: DataFusionError) -> Self {
        let root = error.find_root();
        if let DataFusionError::External(inner) = root {
            if let Some(ours) = inner.downcast_ref::<RiffleError>() {
                return ours.clone();
            }
        }
        let code = match root {
            DataFusionError::SQL(..) => ErrorCode::SqlParse,
            DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => ErrorCode::SqlPlan,
            DataFusionError::NotImplemented(_) => ErrorCode::Unsupported,
            DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => ErrorCode::Execution,
            _ => ErrorCode::Internal,
        };
        RiffleError::new(code, root.to_string())
    }
}

impl From<ArrowError> for RiffleError {
    fn from(error: ArrowError) -> Self {
        RiffleError::new(ErrorCode::Execution, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_error_survives_a_trip_through_datafusion() {
        let ours = err!(UnknownStream, "no stream 'x'");
        let wrapped =
            DataFusionError::Context("planning".into(), Box::new(ours.clone().into_datafusion()));
        assert_eq!(RiffleError::from(wrapped), ours);
    }

    #[test]
    fn datafusion_categories_map_to_codes() {
        let plan = RiffleError::from(DataFusionError::Plan("bad column".into()));
        assert_eq!(plan.code(), ErrorCode::SqlPlan);
        assert!(plan.message().contains("bad column"));
        let nyi = RiffleError::from(DataFusionError::NotImplemented("x".into()));
        assert_eq!(nyi.code(), ErrorCode::Unsupported);
    }
}

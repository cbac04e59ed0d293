//! Why an evaluation failed.

/// Errors raised by the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Lengths of ids, cameras and rankings disagree.
    #[error("{what}: expected {expected} entries, got {found}")]
    Length {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// A feature matrix is not a whole number of rows.
    #[error("{what}: {found} values are not a whole number of rows of {dim}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Number of values.
        found: usize,
        /// Row length.
        dim: usize,
    },
    /// A feature is NaN or infinite.
    #[error("{what}: row {row}, column {column} is not a finite number")]
    NotFinite {
        /// Which input.
        what: &'static str,
        /// 0-based row.
        row: usize,
        /// 0-based column.
        column: usize,
    },
    /// A feature row is so large that its squared norm overflows.
    #[error("{what}: row {row} is too large (distances between such rows overflow float32)")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// 0-based row.
        row: usize,
    },
    /// Stopped on request.
    #[error("evaluation cancelled")]
    Cancelled,
    /// No query has a relevant gallery sample.
    #[error("no query has a matching gallery sample from another camera; nothing to evaluate")]
    NoValidQuery,
}

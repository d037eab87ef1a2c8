//! The eval crate's error type.

use std::path::PathBuf;

/// What can go wrong in evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A question file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of a question file is not a question.
    #[error("{path}:{line}: {reason}")]
    BadQuestion {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A judge prompt does not parse or render.
    #[error("{0}")]
    Prompt(String),
    /// Ratings could not be fitted (the message starts with `ratings: `).
    #[error("{0}")]
    Ratings(String),
    /// A question file holds the same id twice.
    #[error("{path}:{line}: question id '{id}' was already used on line {first}")]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The second line, from 1.
        line: usize,
        /// The first line.
        first: usize,
        /// The id.
        id: String,
    },
    /// An OpenAI-compatible endpoint refused or failed a call (the message says which and why).
    #[error("{0}")]
    Endpoint(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] arena_store::StoreError),
    /// Bad options or a request that cannot be carried out (a model with no answers, ...).
    #[error("{0}")]
    Invalid(String),
}

//! The training crate's one error type.

use std::path::PathBuf;

/// What can go wrong while fine-tuning.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model could not be loaded, rendered or tokenized.
    #[error(transparent)]
    Worker(#[from] arena_worker::WorkerError),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        error: std::io::Error,
    },
    /// The training data is unusable (with the file and line when known).
    #[error("{0}")]
    Data(String),
    /// An option is out of range.
    #[error("{0}")]
    Options(String),
    /// Training stopped because the loss stopped being a number.
    #[error("the loss became {loss} at step {step}: lower the learning rate")]
    Diverged {
        /// The optimizer step.
        step: usize,
        /// The loss.
        loss: f32,
    },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, TrainError>;

//! The worker's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The model path does not exist.
    #[error("model file not found: {0}")]
    NotFound(PathBuf),
    /// The model file or folder is malformed (truncated, corrupt, missing pieces).
    #[error("invalid model {path}: {reason}")]
    InvalidModel {
        /// The model path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model uses an architecture this worker does not run.
    #[error("unsupported architecture '{0}': only LLaMA-family models (llama, mistral-style) are supported")]
    UnsupportedArchitecture(String),
    /// A tensor is quantized or typed in a way this worker cannot run.
    #[error("unsupported tensor type for '{name}': {dtype}")]
    UnsupportedDType {
        /// The tensor name.
        name: String,
        /// Its type as stored.
        dtype: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("missing tensor '{0}' in the model file")]
    MissingTensor(String),
    /// No usable tokenizer was found with the model.
    #[error("missing tokenizer: {0}")]
    MissingTokenizer(String),
    /// The tokenizer could not encode or decode.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// The conversation template failed to render or is unknown.
    #[error("template error: {0}")]
    Template(String),
    /// A request parameter is out of range or inconsistent.
    #[error("invalid parameter '{param}': {message}")]
    InvalidParameter {
        /// The parameter name as the caller spelled it.
        param: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Prompt plus requested new tokens do not fit the model's context.
    #[error("prompt of {prompt_tokens} tokens plus max_new_tokens {max_new_tokens} exceeds the model's context length of {context_length} tokens")]
    ContextOverflow {
        /// Tokens in the templated prompt.
        prompt_tokens: usize,
        /// Requested new tokens.
        max_new_tokens: usize,
        /// The model's context length.
        context_length: usize,
    },
    /// The requested device is unknown or not compiled in.
    #[error("device error: {0}")]
    Device(String),
    /// The engine has stopped (shutting down or crashed).
    #[error("the generation engine is not running")]
    EngineStopped,
    /// The controller refused this worker's registration (wrong or missing token).
    #[error("the controller refused registration: {0}")]
    RegistrationRefused(String),
    /// The gRPC server failed.
    #[error("gRPC server error: {0}")]
    Server(String),
    /// An error from candle while computing.
    #[error("inference error: {0}")]
    Candle(#[from] candle_core::Error),
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The worker's result type.
pub type Result<T, E = WorkerError> = std::result::Result<T, E>;

impl WorkerError {
    /// Shorthand for an invalid-model error.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::InvalidModel {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an invalid-parameter error.
    pub fn param(param: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            param,
            message: message.into(),
        }
    }
}

//! The launcher's errors. Their texts are the ones these commands printed while they lived in
//! the controller crate, so `arena demo` and `arena bench controller` fail with the same words.

/// What can go wrong starting the parts or measuring them.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The command's options or its surroundings are wrong (the model cannot be fetched, the
    /// benchmark has nothing to measure).
    #[error("configuration error: {0}")]
    Config(String),
    /// A part did not start, died, or a request to it failed.
    #[error("server error: {0}")]
    Server(String),
    /// A child process could not be started.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The benchmark's tiny model could not be written.
    #[error(transparent)]
    Worker(#[from] arena_worker::WorkerError),
}

#[cfg(test)]
mod tests {
    use super::LaunchError;
    use std::error::Error;

    #[test]
    fn messages_read_as_before_and_only_io_errors_carry_a_cause() {
        // As the controller's error did: the binary prints `{e:#}`, which adds the cause.
        for (error, shown, has_cause) in [
            (
                LaunchError::Config("cannot run bash".into()),
                "configuration error: cannot run bash",
                false,
            ),
            (
                LaunchError::Server("the worker did not register".into()),
                "server error: the worker did not register",
                false,
            ),
            (
                std::io::Error::other("no such file").into(),
                "i/o error: no such file",
                true,
            ),
            // The worker's own words, as when the binary wrote the benchmark's model itself.
            (
                arena_worker::WorkerError::Tokenizer("bad vocabulary".into()).into(),
                "tokenizer error: bad vocabulary",
                false,
            ),
        ] {
            assert_eq!(error.to_string(), shown);
            assert_eq!(error.source().is_some(), has_cause, "{shown}");
        }
    }
}

//! The store's errors. Their texts are the ones the controller printed before the store was a
//! crate of its own, so logs, HTTP bodies and `arena export` messages read the same.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or cannot be reached (the message names it, password hidden).
    #[error("{0}")]
    Database(String),
    /// A write lost a race or repeated a unique fact (a second vote on one turn).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The battle has its vote and takes no more turns.
    #[error("this battle has been voted on")]
    Closed,
    /// A vote came while an answer of its turn was not complete (or a newer turn started).
    #[error("not complete: {0}")]
    Unfinished(String),
    /// The database URL is neither Postgres nor SQLite.
    #[error("configuration error: {0}")]
    Config(String),
    /// Writing an export failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::StoreError;
    use std::error::Error;

    #[test]
    fn messages_read_as_before() {
        let shown = |e: StoreError| e.to_string();
        assert_eq!(
            shown(StoreError::Database(
                "cannot open the database at x: y".into()
            )),
            "cannot open the database at x: y"
        );
        assert_eq!(
            shown(StoreError::Conflict("UNIQUE constraint failed".into())),
            "conflict: UNIQUE constraint failed"
        );
        assert_eq!(
            shown(StoreError::Config("bad URL".into())),
            "configuration error: bad URL"
        );
        assert_eq!(
            shown(std::io::Error::other("disk full").into()),
            "i/o error: disk full"
        );
    }

    #[test]
    fn only_io_errors_carry_a_cause() {
        assert!(StoreError::Database("x".into()).source().is_none());
        assert!(StoreError::Conflict("x".into()).source().is_none());
        assert!(StoreError::Config("x".into()).source().is_none());
        assert!(StoreError::Io(std::io::Error::other("x"))
            .source()
            .is_some());
    }
}

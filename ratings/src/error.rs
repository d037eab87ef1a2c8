//! The ratings' errors. Every message starts with `ratings: `, as the arena has always
//! printed them.

use std::path::PathBuf;

/// Why battles could not be read, rated or written.
#[derive(Debug, thiserror::Error)]
pub enum RatingsError {
    /// The L2 strength C is not a positive number.
    #[error("ratings: the L2 strength C must be a positive number, not {c}")]
    BadStrength {
        /// The strength given.
        c: f64,
    },
    /// The anchor rating is not a finite number.
    #[error("ratings: anchor rating {rating} is not a number")]
    AnchorNotANumber {
        /// The rating given.
        rating: f64,
    },
    /// The anchor model has not played.
    #[error("ratings: anchor model '{model}' has no battles")]
    AnchorNotPlayed {
        /// The anchor model.
        model: String,
    },
    /// Unregularised ratings with no finite optimum: some models never lost (or never won).
    #[error(
        "ratings: the unregularised ratings are infinite: some models never lost (or never won) \
         against the others, e.g. around '{model}'; use L2 regularisation"
    )]
    Infinite {
        /// A model of the part of the graph that is cut off.
        model: String,
    },
    /// The Bradley-Terry fit did not converge.
    #[error("ratings: the Bradley-Terry fit did not converge (gradient {gradient:e})")]
    NoConvergence {
        /// The gradient's size when the fit gave up.
        gradient: f64,
    },
    /// A battle of a model against itself.
    #[error("ratings: a battle of '{model}' against itself")]
    SelfBattle {
        /// The model.
        model: String,
    },
    /// A battles file whose extension names no known format.
    #[error("ratings: {}: unknown battles file type (use .csv, .jsonl or .json)", .path.display())]
    UnknownFileType {
        /// The file.
        path: PathBuf,
    },
    /// A battles file that cannot be opened.
    #[error("ratings: cannot open {}: {error}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why (kept out of `source` so the message is printed once).
        error: std::io::Error,
    },
    /// A battles file that cannot be read, or (strict) its first bad row.
    #[error("ratings: {}: {message}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. `line 7: unknown winner 'x'`.
        message: String,
    },
    /// A file that cannot be written.
    #[error("ratings: cannot write {}: {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why (kept out of `source` so the message is printed once).
        error: std::io::Error,
    },
    /// A battle's pair probability outside (0, 1].
    #[error("ratings: a battle of '{model_a}' and '{model_b}' has pair probability {probability}, not in (0, 1]")]
    BadProbability {
        /// Model on side A.
        model_a: String,
        /// Model on side B.
        model_b: String,
        /// The probability given.
        probability: f64,
    },
    /// Inverse-propensity weighting asked for with options it does not support.
    #[error(
        "ratings: inverse-propensity weighting does not support {0} yet (it takes sandwich \
         intervals, half-win ties and no style control)"
    )]
    IpwUnsupported(&'static str),
    /// The benchmark cannot run.
    #[error("ratings: {0}")]
    Bench(String),
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::RatingsError;

    fn io_error() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
    }

    /// The messages read exactly as they did when they were formatted in place.
    #[test]
    fn messages_are_unchanged() {
        let path = Path::new("/tmp/b attles.jsonl");
        let p = || PathBuf::from(path);
        let (c, rating, grad) = (-1.5, f64::NAN, 3.25e-7);
        let cases = [
            (
                RatingsError::BadStrength { c },
                format!("the L2 strength C must be a positive number, not {c}"),
            ),
            (
                RatingsError::AnchorNotANumber { rating },
                format!("anchor rating {rating} is not a number"),
            ),
            (
                RatingsError::AnchorNotPlayed {
                    model: "gone".into(),
                },
                format!("anchor model '{}' has no battles", "gone"),
            ),
            (
                RatingsError::Infinite { model: "c".into() },
                format!(
                    "the unregularised ratings are infinite: some models never lost (or never won) \
                     against the others, e.g. around '{}'; use L2 regularisation",
                    "c"
                ),
            ),
            (
                RatingsError::NoConvergence { gradient: grad },
                format!("the Bradley-Terry fit did not converge (gradient {grad:e})"),
            ),
            (
                RatingsError::SelfBattle { model: "a".into() },
                format!("a battle of '{}' against itself", "a"),
            ),
            (
                RatingsError::UnknownFileType { path: p() },
                format!(
                    "{}: unknown battles file type (use .csv, .jsonl or .json)",
                    path.display()
                ),
            ),
            (
                RatingsError::Open {
                    path: p(),
                    error: io_error(),
                },
                format!("cannot open {}: {}", path.display(), io_error()),
            ),
            (
                RatingsError::Read {
                    path: p(),
                    message: "line 7: unknown winner 'x'".into(),
                },
                format!("{}: {}", path.display(), "line 7: unknown winner 'x'"),
            ),
            (
                RatingsError::Write {
                    path: p(),
                    error: io_error(),
                },
                format!("cannot write {}: {}", path.display(), io_error()),
            ),
            (
                RatingsError::Bench("a benchmark needs at least 2 models".into()),
                "a benchmark needs at least 2 models".to_string(),
            ),
        ];
        for (error, old) in cases {
            // The old `ControllerError::Ratings(String)` printed `ratings: {0}`, no source.
            assert_eq!(error.to_string(), format!("ratings: {old}"));
            assert!(std::error::Error::source(&error).is_none(), "{error:?}");
        }
    }
}

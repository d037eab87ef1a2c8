//! Reproducible leaderboards: a snapshot holds the ratings with everything needed to compute
//! them again (method, options, seed, software version) and a hash of the exact vote set;
//! `verify` says whether a recomputation from the votes today gives the same.

use serde::{Deserialize, Serialize};

use super::{Aggregate, Leaderboard, RatingOptions};

/// The `format` every snapshot this version writes carries.
pub const FORMAT: &str = "arena-leaderboard-snapshot/1";

/// Ratings that differ by more than this (rating points) are a different result. The same
/// software, options and votes reproduce them exactly; this only absorbs the JSON round trip.
const TOLERANCE: f64 = 1e-6;

/// A leaderboard as computed, with how to compute it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `FORMAT`.
    pub format: String,
    /// When it was computed, Unix seconds.
    pub created_unix: u64,
    /// The ratings library that computed it (`arena-ratings VERSION`).
    pub software: String,
    /// The method and every option, seed included.
    pub options: RatingOptions,
    /// Battles rated.
    pub battles: u64,
    /// `Aggregate::vote_set_sha256` of those battles.
    pub vote_set_sha256: String,
    /// The result.
    pub leaderboard: Leaderboard,
}

impl Snapshot {
    /// The snapshot of `board`, computed with `options` from `agg`.
    pub fn new(agg: &Aggregate, options: &RatingOptions, board: &Leaderboard) -> Self {
        Self {
            format: FORMAT.to_string(),
            created_unix: super::clock::unix_ms() / 1000,
            software: software(),
            options: options.clone(),
            battles: agg.battles(),
            vote_set_sha256: agg.vote_set_sha256(),
            leaderboard: board.clone(),
        }
    }
}

/// This library's name and version.
pub fn software() -> String {
    format!("arena-ratings {}", env!("CARGO_PKG_VERSION"))
}

/// How a recomputation compares with a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Same votes (hash and count).
    pub same_votes: bool,
    /// Same models, each with the same rating and interval.
    pub same_ratings: bool,
    /// Largest difference of a rating or interval bound, rating points (models in both).
    pub max_difference: f64,
    /// What differs, a line each (empty when both are the same).
    pub differences: Vec<String>,
}

impl Verdict {
    /// Whether the snapshot is reproduced.
    pub fn matches(&self) -> bool {
        self.same_votes && self.same_ratings
    }
}

/// Compares `snap` with `board`, computed now with `snap.options` from `agg`.
pub fn verify(snap: &Snapshot, agg: &Aggregate, board: &Leaderboard) -> Verdict {
    let mut differences = Vec::new();
    let hash = agg.vote_set_sha256();
    if snap.battles != agg.battles() || snap.vote_set_sha256 != hash {
        differences.push(format!(
            "votes: the snapshot rated {} battles (sha256 {}), the store or file now has {} (sha256 {})",
            snap.battles,
            snap.vote_set_sha256,
            agg.battles(),
            hash
        ));
    }
    if snap.software != software() {
        differences.push(format!(
            "software: the snapshot was computed by {}, this is {}",
            snap.software,
            software()
        ));
    }
    let mut max_difference: f64 = 0.0;
    let mut same_ratings = snap.leaderboard.rows.len() == board.rows.len();
    for old in &snap.leaderboard.rows {
        let Some(new) = board.rows.iter().find(|r| r.model == old.model) else {
            same_ratings = false;
            differences.push(format!("{}: in the snapshot, not rated now", old.model));
            continue;
        };
        let d = [
            (old.bt - new.bt).abs(),
            (old.ci_low - new.ci_low).abs(),
            (old.ci_high - new.ci_high).abs(),
        ]
        .into_iter()
        // Unlike f64::max, a NaN (a rating gone missing) wins.
        .fold(0.0, |a: f64, x| {
            if a.is_nan() || x.is_nan() {
                f64::NAN
            } else {
                a.max(x)
            }
        });
        if d.is_finite() {
            max_difference = max_difference.max(d);
        }
        // NaN (a rating gone missing) is a difference too.
        if d.is_nan() || d > TOLERANCE {
            same_ratings = false;
            differences.push(format!(
                "{}: {:.3} ({:.3} to {:.3}) in the snapshot, {:.3} ({:.3} to {:.3}) now",
                old.model, old.bt, old.ci_low, old.ci_high, new.bt, new.ci_low, new.ci_high
            ));
        }
    }
    for new in &board.rows {
        if !snap.leaderboard.rows.iter().any(|r| r.model == new.model) {
            same_ratings = false;
            differences.push(format!("{}: rated now, not in the snapshot", new.model));
        }
    }
    Verdict {
        same_votes: snap.battles == agg.battles() && snap.vote_set_sha256 == hash,
        same_ratings,
        max_difference,
        differences,
    }
}

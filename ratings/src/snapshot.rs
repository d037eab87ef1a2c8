//! Reproducible leaderboards: a snapshot holds the ratings with everything needed to compute
//! them again (method, options, seed, software version) and a hash of the exact vote set;
//! `verify` says whether a recomputation from the votes today gives the same.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Aggregate, Leaderboard, RatingOptions, RatingsError, StyledBattle};

/// The `format` every snapshot this version writes carries. Version 2 added the view (style
/// control, a category) and the style and propensity hashes; a version 1 snapshot is read as
/// the plain board it was.
pub const FORMAT: &str = "arena-leaderboard-snapshot/2";

/// The formats `verify` reads.
pub const READABLE: [&str; 2] = ["arena-leaderboard-snapshot/1", FORMAT];

/// Ratings that differ by more than this (rating points) are a different result. The same
/// software, options and votes reproduce them exactly; this only absorbs the JSON round trip.
const TOLERANCE: f64 = 1e-6;

/// Which board of the votes was rated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Style control (arena-rank's contextual model).
    #[serde(default)]
    pub style_control: bool,
    /// Only the votes of this category.
    #[serde(default)]
    pub category: Option<String>,
}

/// Exactly what was rated: the votes in order and, where the method reads them, each
/// answer's style and each battle's pair probability.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteSet {
    /// Battles rated.
    pub battles: u64,
    /// `Aggregate::vote_set_sha256` of those battles.
    pub vote_set_sha256: String,
    /// With style control: SHA-256 of both answers' style of every battle, in order.
    pub style_sha256: Option<String>,
    /// With inverse-propensity weighting: `Aggregate::propensity_sha256`.
    pub propensity_sha256: Option<String>,
}

impl VoteSet {
    /// The votes of `agg` as `options` rate them.
    pub fn of(agg: &Aggregate, options: &RatingOptions) -> Self {
        Self {
            battles: agg.battles(),
            vote_set_sha256: agg.vote_set_sha256(),
            style_sha256: None,
            propensity_sha256: options.ipw.then(|| agg.propensity_sha256()),
        }
    }

    /// The votes style control rates: the battles' hash and their answers' style, each
    /// battle's eight counts as little-endian u64s (the style features' order, A then B).
    pub fn styled(battles: &[StyledBattle]) -> Result<Self, RatingsError> {
        let mut agg = Aggregate::new();
        let mut style = Sha256::new();
        for b in battles {
            agg.add(&b.battle)?;
            for s in [&b.style_a, &b.style_b] {
                for n in [s.tokens, s.headers, s.lists, s.bold] {
                    style.update(n.to_le_bytes());
                }
            }
        }
        Ok(Self {
            battles: agg.battles(),
            vote_set_sha256: agg.vote_set_sha256(),
            style_sha256: Some(hex(style.finalize())),
            propensity_sha256: None,
        })
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

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
    /// The board: style control, a category (absent: the plain board of all counted votes).
    #[serde(default)]
    pub view: View,
    /// Battles rated.
    pub battles: u64,
    /// `Aggregate::vote_set_sha256` of those battles.
    pub vote_set_sha256: String,
    /// With style control: `VoteSet::style_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_sha256: Option<String>,
    /// With inverse-propensity weighting: `VoteSet::propensity_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity_sha256: Option<String>,
    /// The result.
    pub leaderboard: Leaderboard,
}

impl Snapshot {
    /// The snapshot of `board`, computed with `options` as `view` from `votes`.
    pub fn new(votes: &VoteSet, options: &RatingOptions, view: &View, board: &Leaderboard) -> Self {
        Self {
            format: FORMAT.to_string(),
            created_unix: super::clock::unix_ms() / 1000,
            software: software(),
            options: options.clone(),
            view: view.clone(),
            battles: votes.battles,
            vote_set_sha256: votes.vote_set_sha256.clone(),
            style_sha256: votes.style_sha256.clone(),
            propensity_sha256: votes.propensity_sha256.clone(),
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

/// Compares `snap` with `board`, computed now with `snap.options` as `snap.view` from `votes`.
pub fn verify(snap: &Snapshot, votes: &VoteSet, board: &Leaderboard) -> Verdict {
    let mut differences = Vec::new();
    let same_votes = snap.battles == votes.battles && snap.vote_set_sha256 == votes.vote_set_sha256;
    if !same_votes {
        differences.push(format!(
            "votes: the snapshot rated {} battles (sha256 {}), the store or file now has {} (sha256 {})",
            snap.battles, snap.vote_set_sha256, votes.battles, votes.vote_set_sha256
        ));
    }
    let mut same_hash = |what: &str, old: &Option<String>, new: &Option<String>| {
        let same = old == new;
        if !same {
            let none = |h: &Option<String>| h.clone().unwrap_or_else(|| "none".into());
            differences.push(format!(
                "{what}: sha256 {} in the snapshot, {} now",
                none(old),
                none(new)
            ));
        }
        same
    };
    let same_style = same_hash("answers' style", &snap.style_sha256, &votes.style_sha256);
    let same_propensities = same_hash(
        "pair probabilities",
        &snap.propensity_sha256,
        &votes.propensity_sha256,
    );
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
        same_votes: same_votes && same_style && same_propensities,
        same_ratings,
        max_difference,
        differences,
    }
}

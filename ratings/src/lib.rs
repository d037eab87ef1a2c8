//! The leaderboard's ratings engine: online Elo and Bradley-Terry computed from battles (votes)
//! the way LMArena's `arena-rank` does (optional reweighting, sandwich intervals, style control)
//! or the way FastChat's `elo_analysis.py` does (L2 fit, bootstrap intervals), plus Davidson's
//! ties and a floor under every interval; from aggregated pair counts, so millions of votes
//! take well under a second.
//!
//! Typical use: fold battles into an `Aggregate` (from a file with `Aggregate::from_file`, or
//! one by one with `Aggregate::add` from the store), then `compute` the `Leaderboard` and
//! render it with `to_table`, `to_csv` or serde.
//!
//! Which battles count is the caller's choice (the store passes anonymous votes only);
//! nothing here filters. Online Elo takes the battles in the order they are added, as
//! FastChat's `compute_elo` takes its dataframe's rows (FastChat sorts them by `tstamp`
//! first; the store gives them in time order, and `ReadReport::out_of_order` says whether a
//! file was).

#![forbid(unsafe_code)]

mod aggregate;
mod arena_rank;
mod battle;
pub mod bench;
mod board;
mod bootstrap;
mod bradley_terry;
pub mod category;
pub mod clock;
mod contextual;
mod davidson;
mod elo;
mod error;
mod ipw;
mod math;
pub mod metadata;
pub mod parse;
mod read;
pub mod snapshot;
mod style;
mod styled;
mod table;

use serde::{Deserialize, Serialize};

pub use aggregate::Aggregate;
pub use battle::{Battle, Winner};
pub use board::compute;
pub use bradley_terry::Regularization;
pub use elo::{BASE, INIT_RATING, K, SCALE};
pub use error::RatingsError;
pub use ipw::IpwSummary;
pub use read::{
    read_battles, read_battles_from, read_styled_battles, BadRow, Format, ReadReport,
    MAX_LISTED_BAD_ROWS,
};
pub use style::{
    markdown_counts, style_counts, style_features, MarkdownCounts, StyleCounts, STYLE_FEATURES,
    STYLE_FEATURE_NAMES,
};
pub use styled::{compute_style_controlled, StyledBattle};
pub use table::{
    describe, to_csv, to_csv_with, to_table, to_table_with, Leaderboard, LeaderboardRow,
    StyleCoefficient, TextColumn, TOO_FEW_VOTES,
};

/// Which Bradley-Terry fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// LMArena's `arena-rank` 0.1.1: plain maximum likelihood, a tie half a win each way,
    /// no anchor (mean rating 1000).
    #[default]
    ArenaRank,
    /// FastChat 0.2.36's `compute_mle_elo`: `regularization` (L2 with C = 1 unless told
    /// otherwise) on its doubled table.
    #[serde(rename = "fastchat")]
    FastChat,
}

/// How the 95% intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Ci {
    /// arena-rank's sandwich estimator (robust asymptotic standard errors): no refits.
    #[default]
    Sandwich,
    /// Percentiles of `bootstrap_rounds` refits on resampled battles (FastChat's way).
    Bootstrap,
}

/// How ties enter the fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Ties {
    /// A tie (of either kind) is half a win each way, as FastChat and arena-rank count it.
    #[default]
    HalfWin,
    /// Davidson's model: a tie parameter fitted beside the ratings (`davidson`).
    Davidson,
}

/// arena-rank's `min_pair_count`: with reweighting, a pair's battles count `1/max(n, 50)`.
pub const MIN_PAIR_COUNT: u64 = 50;

/// How to compute the ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingOptions {
    /// The fit.
    pub method: Method,
    /// The intervals.
    pub ci: Ci,
    /// With `Some(m)`, each pair's battles count `1/max(n_pair, m)` (arena-rank's
    /// reweighting; `MIN_PAIR_COUNT` is its default `m`).
    pub reweight: Option<u64>,
    /// Widen every interval to at least what a fair coin toss per battle would give (see
    /// `arena_rank::floor_half_widths`); off only to compare with other software.
    pub interval_floor: bool,
    /// How ties count.
    pub ties: Ties,
    /// Bootstrap rounds for `Ci::Bootstrap` (0: intervals from the floor alone).
    pub bootstrap_rounds: usize,
    /// Seed of the bootstrap draws; the same seed gives the same intervals.
    pub seed: u64,
    /// Shift Bradley-Terry ratings so this model has this rating (FastChat: `llama-13b`
    /// at 800 when present), in the fit and in every bootstrap round.
    pub anchor: Option<(String, f64)>,
    /// `Method::FastChat`'s penalty (FastChat: L2 with C = 1).
    pub regularization: Regularization,
    /// Models with fewer battles are flagged `few_battles`.
    pub min_battles: u64,
    /// Weigh each battle by the inverse of the probability its pair was drawn with
    /// (normalised to a mean of 1), so over-sampled pairs do not dominate; battles without a
    /// stored probability weigh 1. Sandwich intervals and half-win ties only.
    #[serde(default)]
    pub ipw: bool,
}

impl Default for RatingOptions {
    /// arena-rank's fit and sandwich intervals (no reweighting, its default for plain
    /// Bradley-Terry) with the floor; for `Ci::Bootstrap` 100 rounds, seed 0; no anchor;
    /// 30 battles.
    fn default() -> Self {
        Self {
            method: Method::ArenaRank,
            ci: Ci::Sandwich,
            reweight: None,
            interval_floor: true,
            ties: Ties::HalfWin,
            bootstrap_rounds: 100,
            seed: 0,
            anchor: None,
            regularization: Regularization::L2 { c: 1.0 },
            min_battles: 30,
            ipw: false,
        }
    }
}

impl RatingOptions {
    /// FastChat 0.2.36's choices for these battles: its L2 fit and 100 bootstrap rounds,
    /// no floor, anchored at `llama-13b` = 800 when that model has played.
    pub fn fastchat(agg: &Aggregate) -> Self {
        Self {
            method: Method::FastChat,
            ci: Ci::Bootstrap,
            interval_floor: false,
            anchor: agg
                .has_model("llama-13b")
                .then(|| ("llama-13b".to_string(), 800.0)),
            ..Self::default()
        }
    }
}

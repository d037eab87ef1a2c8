//! The leaderboard's ratings engine: online Elo and Bradley-Terry with bootstrap confidence
//! intervals, computed from battles (votes) the way FastChat's `elo_analysis.py` does, but
//! from aggregated pair counts, so millions of votes take well under a second.
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
mod battle;
pub mod bench;
mod bootstrap;
mod bradley_terry;
pub mod clock;
mod elo;
mod error;
pub mod parse;
mod read;
mod table;

use serde::Serialize;

pub use aggregate::Aggregate;
pub use battle::{Battle, Winner};
pub use bradley_terry::Regularization;
pub use elo::{BASE, INIT_RATING, K, SCALE};
pub use error::RatingsError;
pub use read::{read_battles, read_battles_from, BadRow, Format, ReadReport, MAX_LISTED_BAD_ROWS};
pub use table::{to_csv, to_table, Leaderboard, LeaderboardRow};

use bradley_terry::FitError;

/// How to compute the ratings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingOptions {
    /// Bootstrap rounds for the 95% intervals (0: intervals collapse to the rating).
    pub bootstrap_rounds: usize,
    /// Seed of the bootstrap draws; the same seed gives the same intervals.
    pub seed: u64,
    /// Shift Bradley-Terry ratings so this model has this rating (FastChat: `llama-13b`
    /// at 800 when present), in the fit and in every bootstrap round.
    pub anchor: Option<(String, f64)>,
    /// The fit's penalty (FastChat: L2 with C = 1).
    pub regularization: Regularization,
    /// Models with fewer battles are flagged `few_battles`.
    pub min_battles: u64,
}

impl Default for RatingOptions {
    /// FastChat's fit (L2, C = 1), 100 rounds, seed 0, no anchor, 30 battles.
    fn default() -> Self {
        Self {
            bootstrap_rounds: 100,
            seed: 0,
            anchor: None,
            regularization: Regularization::L2 { c: 1.0 },
            min_battles: 30,
        }
    }
}

impl RatingOptions {
    /// FastChat 0.2.36's choices for these battles: the defaults, anchored at `llama-13b`
    /// = 800 when that model has played.
    pub fn fastchat(agg: &Aggregate) -> Self {
        Self {
            anchor: agg
                .has_model("llama-13b")
                .then(|| ("llama-13b".to_string(), 800.0)),
            ..Self::default()
        }
    }
}

/// Computes the leaderboard. No battles give an empty leaderboard; an anchor model that has
/// not played, a bad penalty, or (unregularised) ratings with no finite optimum are errors.
pub fn compute(agg: &Aggregate, opts: &RatingOptions) -> Result<Leaderboard, RatingsError> {
    let n = agg.models().len();
    if let Regularization::L2 { c } = opts.regularization {
        if !(c.is_finite() && c > 0.0) {
            return Err(RatingsError::BadStrength { c });
        }
    }
    let anchor = match &opts.anchor {
        None => None,
        Some((model, rating)) => {
            let index = agg.models().iter().position(|m| m == model);
            match index {
                Some(i) if rating.is_finite() => Some((i, *rating)),
                Some(_) => return Err(RatingsError::AnchorNotANumber { rating: *rating }),
                None => {
                    return Err(RatingsError::AnchorNotPlayed {
                        model: model.clone(),
                    })
                }
            }
        }
    };
    let to_rating = |w: &mut [f64]| {
        w.iter_mut().for_each(|x| *x = SCALE * *x + INIT_RATING);
        // A round where the anchor did not play stays unshifted, as in FastChat.
        if let Some((i, rating)) = anchor {
            if w[i].is_finite() {
                let shift = rating - w[i];
                w.iter_mut().for_each(|x| *x += shift);
            }
        }
    };
    let pairs = agg.pair_counts();
    let coef = if n == 1 {
        vec![0.0]
    } else {
        bradley_terry::fit(n, &pairs, opts.regularization, None).map_err(|e| fit_error(agg, e))?
    };
    let mut bt = coef.clone();
    to_rating(&mut bt);
    let (mut low, mut high, rounds) = if opts.bootstrap_rounds > 0 && n > 1 {
        let ci = bootstrap::intervals(
            n,
            &pairs,
            opts.regularization,
            opts.bootstrap_rounds,
            opts.seed,
            &coef,
            &to_rating,
        );
        (ci.low, ci.high, ci.rounds_used)
    } else {
        (bt.clone(), bt.clone(), 0)
    };
    // A model absent from every round (or no round at all) has no spread to show.
    for m in 0..n {
        if low[m].is_nan() || high[m].is_nan() {
            (low[m], high[m]) = (bt[m], bt[m]);
        }
    }
    Ok(table::build(
        agg,
        &bt,
        (&low, &high),
        rounds,
        opts.min_battles,
    ))
}

fn fit_error(agg: &Aggregate, e: FitError) -> RatingsError {
    match e {
        FitError::NotConnected(m) => RatingsError::Infinite {
            model: agg.models()[m].clone(),
        },
        FitError::NoConvergence(gradient) => RatingsError::NoConvergence { gradient },
    }
}

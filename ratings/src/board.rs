//! The leaderboard from an aggregate: the chosen fit (arena-rank's, FastChat's or Davidson's),
//! its intervals (sandwich or bootstrap), the floor under them, and the table.

use super::aggregate::{Aggregate, PairCounts};
use super::bradley_terry::{self, FitError, Regularization};
use super::table::{self, Meta};
use super::{arena_rank, bootstrap, davidson, ipw};
use super::{Ci, Leaderboard, Method, RatingOptions, RatingsError, Ties, INIT_RATING, SCALE};

/// Computes the leaderboard. No battles give an empty leaderboard; an anchor model that has
/// not played, a bad penalty, or (unregularised) ratings with no finite optimum are errors.
pub fn compute(agg: &Aggregate, opts: &RatingOptions) -> Result<Leaderboard, RatingsError> {
    let anchor = anchor_index(agg, opts)?;
    let n = agg.models().len();
    let pairs = agg.pair_counts();
    if opts.ipw {
        return ipw::board(agg, opts, &pairs, anchor);
    }
    let raw_weights = arena_rank::pair_weights(&pairs, opts.reweight);
    let weights = arena_rank::normalized(&pairs, &raw_weights);
    // Davidson's tie parameter needs a tie to estimate and, like plain maximum likelihood,
    // models that both won and lost; otherwise the half-win fit below stands, and says so.
    let has_ties = pairs.iter().any(|p| p.ties > 0);
    if opts.ties == Ties::Davidson
        && n > 1
        && has_ties
        && bradley_terry::plain_mle_exists(n, &pairs)
    {
        return davidson_board(agg, opts, &pairs, anchor);
    }
    let (coef, reg) = if n < 2 {
        (vec![0.0; n], Regularization::None)
    } else {
        fit_for(agg, opts, |reg| {
            bradley_terry::fit_weighted(n, &pairs, Some(&weights), reg, None)
        })?
    };
    let to_rating = |w: &mut [f64]| {
        w.iter_mut().for_each(|x| *x = SCALE * *x + INIT_RATING);
        shift_to_anchor(w, anchor);
    };
    let mut bt = coef.clone();
    to_rating(&mut bt);
    let reweighted = opts.reweight.is_some();
    let (low, high, rounds) = match opts.ci {
        Ci::Bootstrap if opts.bootstrap_rounds > 0 && n > 1 => {
            let ci = bootstrap::intervals(
                n,
                &pairs,
                &weights,
                reg,
                opts.bootstrap_rounds,
                opts.seed,
                &coef,
                &to_rating,
            );
            (ci.low, ci.high, ci.rounds_used)
        }
        Ci::Sandwich if n > 1 => {
            let half = arena_rank::sandwich_half_widths(n, &pairs, &raw_weights, reweighted, &coef);
            let (low, high) = around(&bt, &half);
            (low, high, 0)
        }
        _ => (bt.clone(), bt.clone(), 0),
    };
    let floor = (opts.interval_floor && n > 1)
        .then(|| arena_rank::floor_half_widths(n, &pairs, &raw_weights, reweighted));
    Ok(finish(
        agg,
        &bt,
        (low, high),
        floor,
        Meta {
            fallback_l2: reg != Regularization::None && opts.method == Method::ArenaRank,
            ..Meta::of(opts, rounds)
        },
    ))
}

/// The leaderboard from Davidson's model (`davidson`), with the same intervals and floor.
fn davidson_board(
    agg: &Aggregate,
    opts: &RatingOptions,
    pairs: &[PairCounts],
    anchor: Option<(usize, f64)>,
) -> Result<Leaderboard, RatingsError> {
    let n = agg.models().len();
    let fit = davidson::fit(n, pairs).map_err(|e| fit_error(agg, e))?;
    let mut bt = fit.ratings.clone();
    shift_to_anchor(&mut bt, anchor);
    let (low, high, rounds) = match opts.ci {
        Ci::Sandwich => {
            let (low, high) = around(&bt, &fit.half_widths);
            (low, high, 0)
        }
        Ci::Bootstrap => {
            let ci = bootstrap::intervals_of(n, pairs, opts.bootstrap_rounds, opts.seed, &|p| {
                let mut r = davidson::fit(n, p).ok()?.ratings;
                shift_to_anchor(&mut r, anchor);
                Some(r)
            });
            (ci.low, ci.high, ci.rounds_used)
        }
    };
    let floor = opts
        .interval_floor
        .then(|| arena_rank::floor_half_widths(n, pairs, &vec![1.0; pairs.len()], false));
    Ok(finish(
        agg,
        &bt,
        (low, high),
        floor,
        Meta {
            reweight: None,
            ties: Ties::Davidson,
            tie_propensity: Some(fit.nu),
            ..Meta::of(opts, rounds)
        },
    ))
}

/// The anchor's model index, after checking the options.
pub(crate) fn anchor_index(
    agg: &Aggregate,
    opts: &RatingOptions,
) -> Result<Option<(usize, f64)>, RatingsError> {
    if let Regularization::L2 { c } = opts.regularization {
        if !(c.is_finite() && c > 0.0) {
            return Err(RatingsError::BadStrength { c });
        }
    }
    match &opts.anchor {
        None => Ok(None),
        Some((model, rating)) => match agg.models().iter().position(|m| m == model) {
            Some(i) if rating.is_finite() => Ok(Some((i, *rating))),
            Some(_) => Err(RatingsError::AnchorNotANumber { rating: *rating }),
            None => Err(RatingsError::AnchorNotPlayed {
                model: model.clone(),
            }),
        },
    }
}

/// The coefficients (log10 odds) and the penalty they were fitted with. arena-rank's plain
/// maximum likelihood has no finite optimum while some models never lost (or never won)
/// against the rest, after one vote say (arena-rank itself then stops at ratings like
/// 2825 and -825); there the fit takes FastChat's L2 penalty (C = 1) instead, and says so.
/// `fit` is the weighted fit with a given penalty.
pub(crate) fn fit_for(
    agg: &Aggregate,
    opts: &RatingOptions,
    fit: impl Fn(Regularization) -> Result<Vec<f64>, FitError>,
) -> Result<(Vec<f64>, Regularization), RatingsError> {
    let reg = match opts.method {
        Method::FastChat => opts.regularization,
        Method::ArenaRank => Regularization::None,
    };
    match fit(reg) {
        Ok(coef) => Ok((coef, reg)),
        Err(FitError::NotConnected(_)) if opts.method == Method::ArenaRank => {
            let reg = Regularization::L2 { c: 1.0 };
            fit(reg)
                .map(|coef| (coef, reg))
                .map_err(|e| fit_error(agg, e))
        }
        Err(e) => Err(fit_error(agg, e)),
    }
}

/// Shifts ratings so that the anchor model has its rating; a round where the anchor did not
/// play stays unshifted, as in FastChat.
pub(crate) fn shift_to_anchor(w: &mut [f64], anchor: Option<(usize, f64)>) {
    if let Some((i, rating)) = anchor {
        if w[i].is_finite() {
            let shift = rating - w[i];
            w.iter_mut().for_each(|x| *x += shift);
        }
    }
}

/// The intervals `rating ± half`.
pub(crate) fn around(bt: &[f64], half: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let low = bt.iter().zip(half).map(|(r, h)| r - h).collect();
    let high = bt.iter().zip(half).map(|(r, h)| r + h).collect();
    (low, high)
}

/// The leaderboard from ratings and their raw intervals: a model without a spread (absent
/// from every round, or no estimate) gets its rating as both bounds, and `floor` (half-widths)
/// widens every interval to at least itself on either side.
pub(crate) fn finish(
    agg: &Aggregate,
    bt: &[f64],
    (mut low, mut high): (Vec<f64>, Vec<f64>),
    floor: Option<Vec<f64>>,
    meta: Meta,
) -> Leaderboard {
    for m in 0..bt.len() {
        if !(low[m].is_finite() && high[m].is_finite()) {
            (low[m], high[m]) = (bt[m], bt[m]);
        }
        if let Some(f) = floor.as_ref().map(|f| f[m]).filter(|f| f.is_finite()) {
            low[m] = low[m].min(bt[m] - f);
            high[m] = high[m].max(bt[m] + f);
        }
    }
    table::build(agg, bt, (&low, &high), meta)
}

pub(crate) fn fit_error(agg: &Aggregate, e: FitError) -> RatingsError {
    match e {
        FitError::NotConnected(m) => RatingsError::Infinite {
            model: agg.models()[m].clone(),
        },
        FitError::NoConvergence(gradient) => RatingsError::NoConvergence { gradient },
    }
}

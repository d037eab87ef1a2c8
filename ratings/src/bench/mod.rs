//! `arena bench leaderboard`: how long the ratings take on many synthetic battles, and a
//! writer for the same battles so FastChat and arena-rank can be timed on identical data
//! (`scripts/bench-leaderboard-fastchat.py`, `scripts/bench-leaderboard-arena-rank.py`).

mod synthetic;

use std::time::Instant;

use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::battle::{Battle, Winner};
use crate::category::CODING;
use crate::elo::{OnlineElo, SCALE};
use crate::error::RatingsError;
use crate::styled::{compute_style_controlled, StyledBattle};
use crate::{bootstrap, bradley_terry, compute, Ci, Method, RatingOptions, Ties, MIN_PAIR_COUNT};

use synthetic::Generator;
pub use synthetic::{battles, conv_metadata, model_name, write_battles, SyntheticBattle};

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOptions {
    /// Battles to generate.
    pub battles: u64,
    /// Models among which they are drawn.
    pub models: usize,
    /// Bootstrap rounds.
    pub bootstrap_rounds: usize,
    /// Seed of the generator (the bootstrap uses seed 0).
    pub seed: u64,
}

impl Default for BenchOptions {
    /// 1,000,000 battles among 100 models, 100 rounds, seed 1.
    fn default() -> Self {
        Self {
            battles: 1_000_000,
            models: 100,
            bootstrap_rounds: 100,
            seed: 1,
        }
    }
}

/// Seconds per step, and peak memory.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The options measured.
    pub options: BenchOptions,
    /// Rayon threads the bootstrap ran on.
    pub threads: usize,
    /// Generating the battles (not part of the ratings; kept apart so it can be told apart).
    pub generate_s: f64,
    /// Folding battles (as `Battle` values with owned names, as a reader hands them over)
    /// into the aggregate: name lookup, pair counts and the online Elo.
    pub aggregate_s: f64,
    /// The online Elo alone, on already indexed battles (included in `aggregate_s`).
    pub elo_s: f64,
    /// One Bradley-Terry fit to the optimum.
    pub bt_s: f64,
    /// All bootstrap rounds.
    pub bootstrap_s: f64,
    /// `aggregate_s + bt_s + bootstrap_s`: battles in, ratings and intervals out.
    pub total_s: f64,
    /// arena-rank's method on the aggregate: the plain fit, sandwich intervals and floor.
    pub arena_rank_s: f64,
    /// Style control from the styled battles (aggregate, features, contextual fit, sandwich
    /// intervals), reweighted as arena-rank's default.
    pub style_s: f64,
    /// The public `compute` call on the aggregate (fit, bootstrap, matrices, rows).
    pub compute_s: f64,
    /// Davidson's ties on the aggregate (fit with the tie parameter, sandwich intervals).
    pub davidson_s: f64,
    /// Inverse-propensity weighting from the battles: folding each with its pair's
    /// probability, then the weighted fit and its sandwich intervals.
    pub ipw_s: f64,
    /// One category's board from the battles: folding those tagged `coding` (about 30%),
    /// then arena-rank's fit and intervals.
    pub category_s: f64,
    /// Peak resident memory of the process in MiB (Linux), including the generated battles.
    /// This crate reads nothing of the process: [`run`] leaves it `None` and the caller fills
    /// it in (the binary with `arena_worker::bench::peak_rss_mib`, the one reader of it).
    pub peak_rss_mib: Option<f64>,
    /// Largest difference between fitted and true rating gaps (a sanity check).
    pub max_rating_error: f64,
}

/// Generates the battles and times each step of rating them.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, RatingsError> {
    let mut gen = Generator::new(opts.models, opts.seed)?;
    let names: Vec<String> = (0..opts.models).map(model_name).collect();

    let t = Instant::now();
    let all: Vec<SyntheticBattle> = (0..opts.battles).map(|k| gen.next_full(k)).collect();
    let generate_s = t.elapsed().as_secs_f64();
    let rows: Vec<(u32, u32, Winner)> = all.iter().map(|b| (b.a, b.b, b.winner)).collect();

    let t = Instant::now();
    let mut agg = Aggregate::new();
    for &(a, b, winner) in &rows {
        agg.add(&battle(&names, a, b, winner))?;
    }
    let aggregate_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut elo = OnlineElo::default();
    for &(a, b, winner) in &rows {
        elo.update(a as usize, b as usize, winner);
    }
    let elo_s = t.elapsed().as_secs_f64();

    let ipw_s = time_ipw(&all, &names)?;
    let category_s = time_category(&all, &names)?;
    let style_s = time_style_control(&all, &names)?;
    drop((rows, all));

    // FastChat's method, the reference this benchmark is measured beside.
    let opts_rating = RatingOptions {
        method: Method::FastChat,
        ci: Ci::Bootstrap,
        interval_floor: false,
        bootstrap_rounds: opts.bootstrap_rounds,
        ..RatingOptions::default()
    };
    let n = agg.models().len();
    let t = Instant::now();
    let pairs = agg.pair_counts();
    let coef = bradley_terry::fit(n, &pairs, opts_rating.regularization, None)
        .map_err(|e| RatingsError::Bench(format!("benchmark fit failed: {e:?}")))?;
    let bt_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let to_rating = |w: &mut [f64]| w.iter_mut().for_each(|x| *x = SCALE * *x + 1000.0);
    let ci = bootstrap::intervals(
        n,
        &pairs,
        &vec![1.0; pairs.len()],
        opts_rating.regularization,
        opts.bootstrap_rounds,
        opts_rating.seed,
        &coef,
        &to_rating,
    );
    let bootstrap_s = t.elapsed().as_secs_f64();
    std::hint::black_box(ci);

    let t = Instant::now();
    let board = compute(&agg, &opts_rating)?;
    let compute_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    std::hint::black_box(compute(&agg, &RatingOptions::default())?);
    let arena_rank_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let davidson = RatingOptions {
        ties: Ties::Davidson,
        ..RatingOptions::default()
    };
    std::hint::black_box(compute(&agg, &davidson)?);
    let davidson_s = t.elapsed().as_secs_f64();

    // Model indices in the aggregate follow first appearance; map back through the names.
    let truth = |name: &str| {
        names
            .iter()
            .position(|m| m == name)
            .map_or(f64::NAN, |i| gen.strength[i])
    };
    let max_rating_error = rating_error(&board.rows, truth);

    Ok(BenchReport {
        options: opts.clone(),
        threads: rayon::current_num_threads(),
        generate_s,
        aggregate_s,
        elo_s,
        bt_s,
        bootstrap_s,
        total_s: aggregate_s + bt_s + bootstrap_s,
        arena_rank_s,
        style_s,
        compute_s,
        davidson_s,
        ipw_s,
        category_s,
        peak_rss_mib: None,
        max_rating_error,
    })
}

/// Battle `a` against `b` with owned names, as a reader hands it over.
fn battle(names: &[String], a: u32, b: u32, winner: Winner) -> Battle {
    Battle {
        model_a: names[a as usize].clone(),
        model_b: names[b as usize].clone(),
        winner,
        tstamp: None,
        anony: None,
        turn: None,
    }
}

/// Seconds that style control takes from the battles as a reader hands them over.
fn time_style_control(all: &[SyntheticBattle], names: &[String]) -> Result<f64, RatingsError> {
    let battles: Vec<StyledBattle> = all
        .iter()
        .map(|s| StyledBattle {
            battle: battle(names, s.a, s.b, s.winner),
            style_a: s.style_a,
            style_b: s.style_b,
        })
        .collect();
    let opts = RatingOptions {
        reweight: Some(MIN_PAIR_COUNT),
        ..RatingOptions::default()
    };
    let t = Instant::now();
    std::hint::black_box(compute_style_controlled(&battles, &opts)?);
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds that inverse-propensity weighting takes from the battles.
fn time_ipw(all: &[SyntheticBattle], names: &[String]) -> Result<f64, RatingsError> {
    let t = Instant::now();
    let mut agg = Aggregate::new();
    for s in all {
        agg.add_with_probability(&battle(names, s.a, s.b, s.winner), Some(s.pair_probability))?;
    }
    let opts = RatingOptions {
        ipw: true,
        ..RatingOptions::default()
    };
    std::hint::black_box(compute(&agg, &opts)?);
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds that one category's board takes from the battles (the store filters in SQL; this
/// is the same work once the rows are read).
fn time_category(all: &[SyntheticBattle], names: &[String]) -> Result<f64, RatingsError> {
    let t = Instant::now();
    let mut agg = Aggregate::new();
    for s in all.iter().filter(|s| s.categories.contains(&CODING)) {
        agg.add(&battle(names, s.a, s.b, s.winner))?;
    }
    std::hint::black_box(compute(&agg, &RatingOptions::default())?);
    Ok(t.elapsed().as_secs_f64())
}

/// The largest gap between fitted and true ratings once both are centred; ties make the
/// fitted scale narrower than the truth, so the fit is first scaled by least squares.
fn rating_error(rows: &[super::LeaderboardRow], truth: impl Fn(&str) -> f64) -> f64 {
    let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.bt, truth(&r.model))).collect();
    let n = pairs.len().max(1) as f64;
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x / n, sy + y / n));
    let sxy: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pairs.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let k = if sxx > 0.0 { sxy / sxx } else { 1.0 };
    pairs
        .iter()
        .map(|(x, y)| (k * (x - mx) - (y - my)).abs())
        .fold(0.0, f64::max)
}

/// The report as the lines `arena bench leaderboard` prints.
pub fn render(r: &BenchReport) -> String {
    format!(
        "{} battles, {} models, {} rounds, {} threads\n\
         generate {:.3} s (not counted)\naggregate {:.3} s (incl. online Elo; Elo alone {:.3} s)\n\
         BT fit {:.4} s\nbootstrap {:.3} s\ntotal {:.3} s (compute() {:.3} s)\n\
         arena-rank BT with sandwich intervals {:.3} s (from battles {:.3} s)\n\
         style control, arena-rank's contextual model with sandwich intervals {:.3} s\n\
         Davidson ties on the aggregate {:.3} s\n\
         inverse-propensity weighting from battles {:.3} s\n\
         category 'coding' from battles {:.3} s\n\
         peak RSS {} MiB\nmax rating error vs truth {:.1}\n",
        r.options.battles,
        r.options.models,
        r.options.bootstrap_rounds,
        r.threads,
        r.generate_s,
        r.aggregate_s,
        r.elo_s,
        r.bt_s,
        r.bootstrap_s,
        r.total_s,
        r.compute_s,
        r.arena_rank_s,
        r.aggregate_s + r.arena_rank_s,
        r.style_s,
        r.davidson_s,
        r.ipw_s,
        r.category_s,
        r.peak_rss_mib.map_or("?".into(), |m| format!("{m:.0}")),
        r.max_rating_error
    )
}

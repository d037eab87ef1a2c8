//! `arena bench leaderboard`: how long the ratings take on many synthetic battles, and a
//! writer for the same battles so FastChat and arena-rank can be timed on identical data
//! (`scripts/bench-leaderboard-fastchat.py`, `scripts/bench-leaderboard-arena-rank.py`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use super::aggregate::Aggregate;
use super::battle::{Battle, Winner};
use super::elo::{OnlineElo, SCALE};
use super::style::StyleCounts;
use super::styled::{compute_style_controlled, StyledBattle};
use super::{bootstrap, bradley_terry, compute, Ci, Method, RatingOptions, MIN_PAIR_COUNT};
use crate::error::RatingsError;

/// Share of votes that are ties, and ties where both were bad, roughly the public arena's.
const P_TIE: f64 = 0.15;
const P_BOTHBAD: f64 = 0.12;
/// Spread of true strengths on the Elo scale (the 2024 arena spans about 800 to 1300).
const STRENGTH_SD: f64 = 100.0;

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
    /// Peak resident memory of the process in MiB (Linux), including the generated battles.
    /// This crate reads nothing of the process: [`run`] leaves it `None` and the caller fills
    /// it in (the binary with `arena_worker::bench::peak_rss_mib`, the one reader of it).
    pub peak_rss_mib: Option<f64>,
    /// Largest difference between fitted and true rating gaps (a sanity check).
    pub max_rating_error: f64,
}

/// Deterministic synthetic battles: uniform pairs, sides random, BT outcomes from normally
/// spread strengths, a share of ties of both kinds; and each answer's style, from a second
/// stream so that the battles are the same with or without it.
struct Generator {
    rng: StdRng,
    strength: Vec<f64>,
    style_rng: StdRng,
    /// Each model's typical answer length in tokens.
    verbosity: Vec<f64>,
}

impl Generator {
    fn new(models: usize, seed: u64) -> Result<Self, RatingsError> {
        if models < 2 {
            return Err(RatingsError::Bench(
                "a benchmark needs at least 2 models".into(),
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let normal =
            Normal::new(1000.0, STRENGTH_SD).map_err(|e| RatingsError::Bench(e.to_string()))?;
        let strength = (0..models).map(|_| normal.sample(&mut rng)).collect();
        let mut style_rng = StdRng::seed_from_u64(seed ^ 0x5354_594c_4521);
        let verbosity = (0..models)
            .map(|_| style_rng.random_range(80.0..800.0))
            .collect();
        Ok(Self {
            rng,
            strength,
            style_rng,
            verbosity,
        })
    }

    /// The style of an answer by model `m`.
    fn style(&mut self, m: u32) -> StyleCounts {
        let r = &mut self.style_rng;
        let v = self.verbosity[m as usize];
        StyleCounts {
            tokens: r.random_range(v * 0.5..v * 1.5) as u64,
            headers: r.random_range(0..4),
            lists: r.random_range(0..10),
            bold: r.random_range(0..6),
        }
    }

    fn next(&mut self) -> (u32, u32, Winner) {
        let m = self.strength.len() as u32;
        let a = self.rng.random_range(0..m);
        let mut b = self.rng.random_range(0..m - 1);
        if b >= a {
            b += 1;
        }
        let u: f64 = self.rng.random();
        let winner = if u < P_TIE {
            Winner::Tie
        } else if u < P_TIE + P_BOTHBAD {
            Winner::TieBothBad
        } else {
            let gap = self.strength[b as usize] - self.strength[a as usize];
            let p_a = 1.0 / (1.0 + 10f64.powf(gap / SCALE));
            if self.rng.random::<f64>() < p_a {
                Winner::ModelA
            } else {
                Winner::ModelB
            }
        };
        (a, b, winner)
    }
}

/// The name of synthetic model `i`.
fn model_name(i: usize) -> String {
    format!("model-{i:03}")
}

/// Writes `n` synthetic battles among `models` models (the ones `run` rates with the same
/// seed) as CSV (`.csv`: model_a,model_b,winner,tstamp) or JSON lines (`.jsonl`, with each
/// answer's style in `conv_metadata`, the public dataset's shape).
pub fn write_battles(path: &Path, n: u64, models: usize, seed: u64) -> Result<(), RatingsError> {
    let csv = path.extension().is_some_and(|e| e == "csv");
    let mut gen = Generator::new(models, seed)?;
    let names: Vec<String> = (0..models).map(model_name).collect();
    let fail = |error: std::io::Error| RatingsError::Write {
        path: path.to_path_buf(),
        error,
    };
    let mut out = BufWriter::new(File::create(path).map_err(fail)?);
    if csv {
        writeln!(out, "model_a,model_b,winner,tstamp").map_err(fail)?;
    }
    for k in 0..n {
        let (ia, ib, winner) = gen.next();
        let (a, b) = (&names[ia as usize], &names[ib as usize]);
        let tstamp = 1.7e9 + k as f64;
        if csv {
            writeln!(out, "{a},{b},{},{tstamp}", winner.as_str()).map_err(fail)?;
        } else {
            let (sa, sb) = (gen.style(ia), gen.style(ib));
            let row = serde_json::json!({
                "model_a": a, "model_b": b, "winner": winner.as_str(), "tstamp": tstamp,
                "anony": true, "turn": 1,
                "conv_metadata": {
                    "sum_assistant_a_tokens": sa.tokens, "sum_assistant_b_tokens": sb.tokens,
                    "header_count_a": sa.headers, "header_count_b": sb.headers,
                    "list_count_a": sa.lists, "list_count_b": sb.lists,
                    "bold_count_a": sa.bold, "bold_count_b": sb.bold,
                },
            });
            writeln!(out, "{row}").map_err(fail)?;
        }
    }
    out.flush().map_err(fail)
}

/// Generates the battles and times each step of rating them.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, RatingsError> {
    let mut gen = Generator::new(opts.models, opts.seed)?;
    let names: Vec<String> = (0..opts.models).map(model_name).collect();

    let t = Instant::now();
    let rows: Vec<(u32, u32, Winner)> = (0..opts.battles).map(|_| gen.next()).collect();
    let styles: Vec<(StyleCounts, StyleCounts)> = rows
        .iter()
        .map(|&(a, b, _)| (gen.style(a), gen.style(b)))
        .collect();
    let generate_s = t.elapsed().as_secs_f64();

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

    let style_s = time_style_control(&rows, styles, &names)?;
    drop(rows);

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
fn time_style_control(
    rows: &[(u32, u32, Winner)],
    styles: Vec<(StyleCounts, StyleCounts)>,
    names: &[String],
) -> Result<f64, RatingsError> {
    let battles: Vec<StyledBattle> = rows
        .iter()
        .zip(styles)
        .map(|(&(a, b, winner), (style_a, style_b))| StyledBattle {
            battle: battle(names, a, b, winner),
            style_a,
            style_b,
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
        r.peak_rss_mib.map_or("?".into(), |m| format!("{m:.0}")),
        r.max_rating_error
    )
}

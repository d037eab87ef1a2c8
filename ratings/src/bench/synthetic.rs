//! Deterministic synthetic battles for the leaderboard benchmark: the same seed gives the same
//! battles in memory, in a file (for FastChat and arena-rank) and in a store (for
//! `arena leaderboard --database`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::battle::Winner;
use crate::category::{CODING, LONG_QUERY, MATH, MULTI_TURN, NON_ENGLISH};
use crate::elo::SCALE;
use crate::error::RatingsError;
use crate::style::StyleCounts;

/// Share of votes that are ties, and ties where both were bad, roughly the public arena's.
const P_TIE: f64 = 0.15;
const P_BOTHBAD: f64 = 0.12;
/// Spread of true strengths on the Elo scale (the 2024 arena spans about 800 to 1300).
const STRENGTH_SD: f64 = 100.0;
/// Each topic category with the share of battles tagged with it.
const TOPICS: [(&str, f64); 4] = [
    (CODING, 0.30),
    (MATH, 0.15),
    (MULTI_TURN, 0.20),
    (LONG_QUERY, 0.10),
];
/// First prompts in English; the rest are in one of `OTHER_LANGUAGES`.
const P_ENGLISH: f64 = 0.75;
const OTHER_LANGUAGES: [&str; 4] = ["chinese", "russian", "german", "spanish"];

/// One synthetic battle as the arena would have stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticBattle {
    /// Index of the model on side A (see [`model_name`]).
    pub a: u32,
    /// Index of the model on side B.
    pub b: u32,
    /// The vote.
    pub winner: Winner,
    /// Unix seconds.
    pub tstamp: f64,
    /// Side A's answer's style.
    pub style_a: StyleCounts,
    /// Side B's answer's style.
    pub style_b: StyleCounts,
    /// Category tags of its first prompt (topics, language, non_english).
    pub categories: Vec<&'static str>,
    /// The probability its unordered pair was drawn with (pairs are uniform).
    pub pair_probability: f64,
}

/// Uniform pairs, sides random, Bradley-Terry outcomes from normally spread strengths, a share
/// of ties of both kinds; each answer's style and each battle's categories come from streams of
/// their own, so the battles are the same whether or not they are drawn.
pub(crate) struct Generator {
    rng: StdRng,
    /// Each model's true strength on the Elo scale.
    pub(crate) strength: Vec<f64>,
    style_rng: StdRng,
    /// Each model's typical answer length in tokens.
    verbosity: Vec<f64>,
    category_rng: StdRng,
}

impl Generator {
    pub(crate) fn new(models: usize, seed: u64) -> Result<Self, RatingsError> {
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
            category_rng: StdRng::seed_from_u64(seed ^ 0x4341_5445_474f),
        })
    }

    /// The style of an answer by model `m`.
    pub(crate) fn style(&mut self, m: u32) -> StyleCounts {
        let r = &mut self.style_rng;
        let v = self.verbosity[m as usize];
        StyleCounts {
            tokens: r.random_range(v * 0.5..v * 1.5) as u64,
            headers: r.random_range(0..4),
            lists: r.random_range(0..10),
            bold: r.random_range(0..6),
        }
    }

    /// The category tags of the next battle's first prompt.
    fn categories(&mut self) -> Vec<&'static str> {
        let r = &mut self.category_rng;
        let mut tags: Vec<&'static str> = TOPICS
            .iter()
            .filter(|(_, p)| r.random::<f64>() < *p)
            .map(|(tag, _)| *tag)
            .collect();
        if r.random::<f64>() < P_ENGLISH {
            tags.push("english");
        } else {
            tags.push(OTHER_LANGUAGES[r.random_range(0..OTHER_LANGUAGES.len())]);
            tags.push(NON_ENGLISH);
        }
        tags
    }

    /// The next battle's sides and vote.
    pub(crate) fn next(&mut self) -> (u32, u32, Winner) {
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

    /// The next battle with everything the arena stores about it; the `k`th battle is cast
    /// at second 1.7e9 + k.
    pub(crate) fn next_full(&mut self, k: u64) -> SyntheticBattle {
        let (a, b, winner) = self.next();
        let m = self.strength.len() as f64;
        SyntheticBattle {
            a,
            b,
            winner,
            tstamp: 1.7e9 + k as f64,
            style_a: self.style(a),
            style_b: self.style(b),
            categories: self.categories(),
            pair_probability: 2.0 / (m * (m - 1.0)),
        }
    }
}

/// The name of synthetic model `i`.
pub fn model_name(i: usize) -> String {
    format!("model-{i:03}")
}

/// `n` synthetic battles among `models` models (the ones `run` rates with the same seed).
pub fn battles(
    n: u64,
    models: usize,
    seed: u64,
) -> Result<impl Iterator<Item = SyntheticBattle>, RatingsError> {
    let mut gen = Generator::new(models, seed)?;
    Ok((0..n).map(move |k| gen.next_full(k)))
}

/// The battle's `conv_metadata` in the public dataset's shape.
pub fn conv_metadata(battle: &SyntheticBattle) -> serde_json::Value {
    let (sa, sb) = (&battle.style_a, &battle.style_b);
    serde_json::json!({
        "sum_assistant_a_tokens": sa.tokens, "sum_assistant_b_tokens": sb.tokens,
        "header_count_a": sa.headers, "header_count_b": sb.headers,
        "list_count_a": sa.lists, "list_count_b": sb.lists,
        "bold_count_a": sa.bold, "bold_count_b": sb.bold,
    })
}

/// Writes `n` synthetic battles among `models` models (the ones `run` rates with the same
/// seed) as CSV (`.csv`: model_a,model_b,winner,tstamp) or JSON lines (`.jsonl`, with each
/// answer's style in `conv_metadata`, the public dataset's shape, its category tags in
/// `categories` and its pair's probability in `pair_probability`).
pub fn write_battles(path: &Path, n: u64, models: usize, seed: u64) -> Result<(), RatingsError> {
    let csv = path.extension().is_some_and(|e| e == "csv");
    let names: Vec<String> = (0..models).map(model_name).collect();
    let fail = |error: std::io::Error| RatingsError::Write {
        path: path.to_path_buf(),
        error,
    };
    let mut out = BufWriter::new(File::create(path).map_err(fail)?);
    if csv {
        writeln!(out, "model_a,model_b,winner,tstamp").map_err(fail)?;
    }
    for battle in battles(n, models, seed)? {
        let (a, b) = (&names[battle.a as usize], &names[battle.b as usize]);
        let (winner, tstamp) = (battle.winner.as_str(), battle.tstamp);
        if csv {
            writeln!(out, "{a},{b},{winner},{tstamp}").map_err(fail)?;
        } else {
            let row = serde_json::json!({
                "model_a": a, "model_b": b, "winner": winner, "tstamp": tstamp,
                "anony": true, "turn": 1, "conv_metadata": conv_metadata(&battle),
                "categories": battle.categories, "pair_probability": battle.pair_probability,
            });
            writeln!(out, "{row}").map_err(fail)?;
        }
    }
    out.flush().map_err(fail)
}

//! Scores from judgments: mean single grades per model and category, each model's total as
//! a percentage of a baseline's (the Vicuna article's chart), and win rates against the
//! baseline with bootstrap 95% intervals over questions.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::swap::Outcome;

/// One single-answer grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// The graded model.
    pub model: String,
    /// The question's category.
    pub category: String,
    /// The grade, 1–10; None when the judge's text gave none (an error, not a zero).
    pub score: Option<f64>,
}

/// A model's mean grades.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Mean over every readable grade.
    pub overall: f64,
    /// Mean per category.
    pub by_category: BTreeMap<String, f64>,
    /// Readable grades.
    pub graded: usize,
    /// Unreadable ones.
    pub errors: usize,
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Mean grades per model, overall and per category; unreadable grades are counted apart.
pub fn scores(grades: &[Grade]) -> BTreeMap<String, Scores> {
    let mut by_model: BTreeMap<&str, Vec<&Grade>> = BTreeMap::new();
    for g in grades {
        by_model.entry(&g.model).or_default().push(g);
    }
    by_model
        .into_iter()
        .map(|(model, gs)| {
            let readable: Vec<&Grade> = gs.iter().copied().filter(|g| g.score.is_some()).collect();
            let mut cats: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for g in &readable {
                cats.entry(g.category.clone()).or_default().extend(g.score);
            }
            let all: Vec<f64> = readable.iter().filter_map(|g| g.score).collect();
            let s = Scores {
                overall: mean(&all),
                by_category: cats.into_iter().map(|(c, v)| (c, mean(&v))).collect(),
                graded: readable.len(),
                errors: gs.len() - readable.len(),
            };
            (model.to_string(), s)
        })
        .collect()
}

/// Each model's total grade as a percentage of `baseline`'s over the questions both were
/// graded on (the Vicuna article's "92% of ChatGPT"). Grades are matched by position in
/// `per_question`: (question id, model, grade).
pub fn relative_to(
    per_question: &[(String, String, f64)],
    baseline: &str,
) -> BTreeMap<String, f64> {
    let base: BTreeMap<&str, f64> = per_question
        .iter()
        .filter(|(_, m, _)| m == baseline)
        .map(|(q, _, g)| (q.as_str(), *g))
        .collect();
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (q, m, g) in per_question {
        if let Some(b) = base.get(q.as_str()) {
            let t = totals.entry(m.clone()).or_default();
            t.0 += g;
            t.1 += b;
        }
    }
    totals
        .into_iter()
        .filter(|(_, (_, b))| *b > 0.0)
        .map(|(m, (t, b))| (m, 100.0 * t / b))
        .collect()
}

/// Wins, ties and losses against the baseline, with a bootstrap interval on the win rate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WinRate {
    /// Pairs the model won.
    pub wins: usize,
    /// Ties, including pairs where the two orders disagreed.
    pub ties: usize,
    /// Pairs it lost.
    pub losses: usize,
    /// Pairs whose verdicts could not be read.
    pub errors: usize,
    /// (wins + ties / 2) / decided pairs.
    pub win_rate: f64,
    /// 2.5th percentile of the bootstrapped win rate.
    pub ci_low: f64,
    /// 97.5th percentile.
    pub ci_high: f64,
}

/// Votes of one question (or several added up) from the model's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Wins (Arena-Hard: votes, strong verdicts ×3).
    pub wins: u32,
    /// Ties.
    pub ties: u32,
    /// Losses.
    pub losses: u32,
    /// Pairs whose verdicts could not be read.
    pub errors: u32,
}

impl Tally {
    /// A tally of these counts.
    pub fn new(wins: u32, ties: u32, losses: u32, errors: u32) -> Self {
        Self {
            wins,
            ties,
            losses,
            errors,
        }
    }

    /// Both tallies added up.
    pub fn plus(self, o: Self) -> Self {
        Self::new(
            self.wins + o.wins,
            self.ties + o.ties,
            self.losses + o.losses,
            self.errors + o.errors,
        )
    }

    /// Votes with a result.
    pub fn decided(self) -> u32 {
        self.wins + self.ties + self.losses
    }

    /// (wins + ties / 2) / decided votes; 0 without any.
    pub fn rate(self) -> f64 {
        match self.decided() {
            0 => 0.0,
            n => (f64::from(self.wins) + 0.5 * f64::from(self.ties)) / f64::from(n),
        }
    }
}

impl From<Outcome> for Tally {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Win => Tally::new(1, 0, 0, 0),
            Outcome::Tie => Tally::new(0, 1, 0, 0),
            Outcome::Loss => Tally::new(0, 0, 1, 0),
            Outcome::Error => Tally::new(0, 0, 0, 1),
        }
    }
}

/// Win rate of one model's pairs against the baseline, with `rounds` bootstrap resamples
/// of its outcomes (seeded, so a report is reproducible).
pub fn win_rate(outcomes: &[Outcome], rounds: usize, seed: u64) -> WinRate {
    let tallies: Vec<Tally> = outcomes.iter().map(|o| Tally::from(*o)).collect();
    win_rate_of(&tallies, rounds, seed)
}

/// Win rate over per-question tallies, the questions resampled `rounds` times for the 95%
/// interval (seeded). Questions with nothing decided take no part in the resampling.
pub fn win_rate_of(per_question: &[Tally], rounds: usize, seed: u64) -> WinRate {
    let total = per_question
        .iter()
        .fold(Tally::default(), |a, t| a.plus(*t));
    let mut rng = StdRng::seed_from_u64(seed);
    let decided: Vec<Tally> = per_question
        .iter()
        .copied()
        .filter(|t| t.decided() > 0)
        .collect();
    let mut boots: Vec<f64> = (0..rounds)
        .filter(|_| !decided.is_empty())
        .map(|_| {
            (0..decided.len())
                .map(|_| decided[rng.random_range(0..decided.len())])
                .fold(Tally::default(), Tally::plus)
                .rate()
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if boots.is_empty() {
            total.rate()
        } else {
            boots[((boots.len() - 1) as f64 * p).round() as usize]
        }
    };
    WinRate {
        wins: total.wins as usize,
        ties: total.ties as usize,
        losses: total.losses as usize,
        errors: total.errors as usize,
        win_rate: total.rate(),
        ci_low: pct(0.025),
        ci_high: pct(0.975),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade(model: &str, category: &str, score: Option<f64>) -> Grade {
        Grade {
            model: model.into(),
            category: category.into(),
            score,
        }
    }

    #[test]
    fn mean_grades_by_hand() {
        let s = scores(&[
            grade("vicuna", "math", Some(4.0)),
            grade("vicuna", "math", Some(6.0)),
            grade("vicuna", "writing", Some(9.0)),
            grade("vicuna", "writing", None),
            grade("alpaca", "math", Some(2.0)),
        ]);
        let v = &s["vicuna"];
        assert_eq!((v.graded, v.errors), (3, 1));
        assert!((v.overall - 19.0 / 3.0).abs() < 1e-12);
        assert_eq!(v.by_category["math"], 5.0);
        assert_eq!(v.by_category["writing"], 9.0);
        assert_eq!(s["alpaca"].overall, 2.0);
    }

    #[test]
    fn totals_relative_to_the_baseline_by_hand() {
        let rows: Vec<(String, String, f64)> = [
            ("q1", "chatgpt", 8.0),
            ("q2", "chatgpt", 10.0),
            ("q1", "vicuna", 8.0),
            ("q2", "vicuna", 8.5),
            // A question the baseline was not graded on does not count.
            ("q3", "vicuna", 10.0),
        ]
        .iter()
        .map(|(q, m, g)| (q.to_string(), m.to_string(), *g))
        .collect();
        let r = relative_to(&rows, "chatgpt");
        assert!((r["vicuna"] - 100.0 * 16.5 / 18.0).abs() < 1e-9);
        assert_eq!(r["chatgpt"], 100.0);
    }

    #[test]
    fn win_rates_count_ties_half_and_errors_apart() {
        use Outcome::*;
        let outcomes = [Win, Win, Win, Tie, Loss, Error];
        let w = win_rate(&outcomes, 500, 7);
        assert_eq!((w.wins, w.ties, w.losses, w.errors), (3, 1, 1, 1));
        assert!((w.win_rate - 0.7).abs() < 1e-12);
        assert!(w.ci_low <= w.win_rate && w.win_rate <= w.ci_high, "{w:?}");
        assert!(w.ci_low < w.ci_high, "{w:?}");
        // Seeded: the same interval every time.
        assert_eq!(win_rate(&outcomes, 500, 7), w);
        let all_wins = win_rate(&[Win; 4], 100, 1);
        assert_eq!((all_wins.ci_low, all_wins.ci_high), (1.0, 1.0));
        let nothing = win_rate(&[Error], 100, 1);
        assert_eq!(nothing.win_rate, 0.0);
    }
}

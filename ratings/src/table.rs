//! The leaderboard as people read it: rows with ranks, the pairwise matrices, and the text
//! and CSV renderings.

use std::fmt::Write as _;

use serde::Serialize;

use super::aggregate::Aggregate;
use super::battle::Winner;

/// One model's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderboardRow {
    /// Model name.
    pub model: String,
    /// Online Elo (battles in the order given).
    pub elo: f64,
    /// Bradley-Terry rating.
    pub bt: f64,
    /// Lower bound of the 95% bootstrap interval of `bt`.
    pub ci_low: f64,
    /// Upper bound of the 95% bootstrap interval of `bt`.
    pub ci_high: f64,
    /// 1 + the number of models whose `ci_low` is above this model's `ci_high`.
    pub rank: usize,
    /// Battles this model played (ties included).
    pub battles: u64,
    /// Fewer battles than `min_battles`: a preliminary rating.
    pub few_battles: bool,
}

/// Ratings and pairwise statistics of all models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leaderboard {
    /// One row per model, best Bradley-Terry rating first.
    pub rows: Vec<LeaderboardRow>,
    /// Model names in row order; the matrices are indexed the same way.
    pub models: Vec<String>,
    /// `[i][j]`: of the decisive battles between models i and j, the fraction i won (ties
    /// excluded, as FastChat's `compute_pairwise_win_fraction`); `None` without any.
    pub win_fraction: Vec<Vec<Option<f64>>>,
    /// `[i][j]`: battles between models i and j, either side, ties included.
    pub battle_counts: Vec<Vec<u64>>,
    /// All battles.
    pub battles: u64,
    /// Bootstrap rounds behind the intervals.
    pub bootstrap_rounds: usize,
    /// The `few_battles` threshold.
    pub min_battles: u64,
}

/// Assembles the leaderboard from per-model ratings indexed like `agg.models()`.
pub(crate) fn build(
    agg: &Aggregate,
    bt: &[f64],
    ci: (&[f64], &[f64]),
    bootstrap_rounds: usize,
    min_battles: u64,
) -> Leaderboard {
    let n = agg.models().len();
    let mut wins = vec![vec![0u64; n]; n];
    let mut counts = vec![vec![0u64; n]; n];
    for ((a, b), c) in agg.cells() {
        let (a, b) = (a as usize, b as usize);
        wins[a][b] += c[Winner::ModelA.index()];
        wins[b][a] += c[Winner::ModelB.index()];
        let total: u64 = c.iter().sum();
        counts[a][b] += total;
        counts[b][a] += total;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| {
        bt[y]
            .total_cmp(&bt[x])
            .then_with(|| agg.models()[x].cmp(&agg.models()[y]))
    });
    let (low, high) = ci;
    let rows = order
        .iter()
        .map(|&m| {
            let battles = counts[m].iter().sum();
            LeaderboardRow {
                model: agg.models()[m].clone(),
                elo: agg.online_elo(m),
                bt: bt[m],
                ci_low: low[m],
                ci_high: high[m],
                rank: 1 + (0..n).filter(|&o| low[o] > high[m]).count(),
                battles,
                few_battles: battles < min_battles,
            }
        })
        .collect();
    let win_fraction = order
        .iter()
        .map(|&i| {
            order
                .iter()
                .map(|&j| {
                    let decisive = wins[i][j] + wins[j][i];
                    (decisive > 0).then(|| wins[i][j] as f64 / decisive as f64)
                })
                .collect()
        })
        .collect();
    let battle_counts = order
        .iter()
        .map(|&i| order.iter().map(|&j| counts[i][j]).collect())
        .collect();
    Leaderboard {
        rows,
        models: order.iter().map(|&m| agg.models()[m].clone()).collect(),
        win_fraction,
        battle_counts,
        battles: agg.battles(),
        bootstrap_rounds,
        min_battles,
    }
}

/// A plain-text table for a terminal.
pub fn to_table(board: &Leaderboard) -> String {
    let width = board
        .rows
        .iter()
        .map(|r| r.model.chars().count() + usize::from(r.few_battles) * 2)
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4}  {:<width$}  {:>7}  {:>15}  {:>7}  {:>8}",
        "rank", "model", "bt", "95% CI", "elo", "battles"
    );
    for r in &board.rows {
        let name = if r.few_battles {
            format!("{} *", r.model)
        } else {
            r.model.clone()
        };
        let ci = format!("+{:.1}/-{:.1}", r.ci_high - r.bt, r.bt - r.ci_low);
        let _ = writeln!(
            out,
            "{:>4}  {:<width$}  {:>7.1}  {:>15}  {:>7.1}  {:>8}",
            r.rank, name, r.bt, ci, r.elo, r.battles
        );
    }
    let _ = writeln!(
        out,
        "{} battles, {} models, {} bootstrap rounds",
        board.battles,
        board.rows.len(),
        board.bootstrap_rounds
    );
    if board.rows.iter().any(|r| r.few_battles) {
        let _ = writeln!(
            out,
            "* fewer than {} battles: preliminary",
            board.min_battles
        );
    }
    out
}

/// CSV with a header row, one line per model.
pub fn to_csv(board: &Leaderboard) -> String {
    let mut out = String::from("rank,model,bt,ci_low,ci_high,elo,battles,few_battles\n");
    for r in &board.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            r.rank,
            csv_field(&r.model),
            r.bt,
            r.ci_low,
            r.ci_high,
            r.elo,
            r.battles,
            r.few_battles
        );
    }
    out
}

/// RFC 4180 quoting, only where a model name needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("gpt-4"), "gpt-4");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}

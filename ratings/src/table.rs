//! The leaderboard as people read it: rows with ranks, the pairwise matrices, and the text
//! and CSV renderings.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::aggregate::Aggregate;
use super::battle::Winner;
use super::{Ci, IpwSummary, Method, RatingOptions, Ties};

/// One model's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Share of its battles voted "both are bad" (0 without battles).
    pub both_bad: f64,
}

/// Ratings and pairwise statistics of all models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Bootstrap rounds behind the intervals (0 for sandwich intervals).
    pub bootstrap_rounds: usize,
    /// The `few_battles` threshold: below it a model's interval reads "too few votes".
    pub min_battles: u64,
    /// The fit.
    pub method: Method,
    /// How the intervals were computed.
    pub ci: Ci,
    /// arena-rank's reweighting threshold, when on.
    pub reweight: Option<u64>,
    /// Whether intervals were widened to the coin-toss floor.
    pub interval_floor: bool,
    /// Plain maximum likelihood had no finite optimum (some models never lost or never
    /// won against the rest), so FastChat's L2 penalty (C = 1) held the ratings.
    pub fallback_l2: bool,
    /// Style control's coefficients (empty without it).
    pub style_coefficients: Vec<StyleCoefficient>,
    /// How ties entered the fit.
    pub ties: Ties,
    /// Davidson's `ν`, when ties were fitted.
    pub tie_propensity: Option<f64>,
    /// How inverse-propensity weighting went, when it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipw: Option<IpwSummary>,
}

/// One style feature's effect under style control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleCoefficient {
    /// The feature (`STYLE_FEATURE_NAMES`).
    pub feature: String,
    /// Log-odds of winning per standard deviation of the feature's normalised difference.
    pub coefficient: f64,
}

/// What the leaderboard says about how it was computed.
pub(crate) struct Meta {
    pub bootstrap_rounds: usize,
    pub min_battles: u64,
    pub method: Method,
    pub ci: Ci,
    pub reweight: Option<u64>,
    pub interval_floor: bool,
    pub fallback_l2: bool,
    pub style_coefficients: Vec<StyleCoefficient>,
    pub ties: Ties,
    pub tie_propensity: Option<f64>,
    pub ipw: Option<IpwSummary>,
}

impl Leaderboard {
    /// The board without the models that played fewer than `min` battles (a category's
    /// board lists only models with enough battles in it): their rows and matrix lines go,
    /// and the others' ranks are counted among the models that stay. Returns how many went.
    pub fn only_models_with(&mut self, min: u64) -> usize {
        let keep: Vec<bool> = self
            .models
            .iter()
            .map(|m| {
                self.rows
                    .iter()
                    .find(|r| &r.model == m)
                    .is_some_and(|r| r.battles >= min)
            })
            .collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped == 0 {
            return 0;
        }
        let kept = |i: &usize| keep[*i];
        let idx: Vec<usize> = (0..self.models.len()).filter(kept).collect();
        self.models = idx.iter().map(|&i| self.models[i].clone()).collect();
        self.win_fraction = idx
            .iter()
            .map(|&i| idx.iter().map(|&j| self.win_fraction[i][j]).collect())
            .collect();
        self.battle_counts = idx
            .iter()
            .map(|&i| idx.iter().map(|&j| self.battle_counts[i][j]).collect())
            .collect();
        self.rows.retain(|r| r.battles >= min);
        let bounds: Vec<(f64, f64)> = self.rows.iter().map(|r| (r.ci_low, r.ci_high)).collect();
        for r in &mut self.rows {
            r.rank = 1 + bounds.iter().filter(|(low, _)| *low > r.ci_high).count();
        }
        dropped
    }
}

impl Meta {
    /// What `opts` say, for a fit with half-win ties, no fallback and no style.
    pub(crate) fn of(opts: &RatingOptions, bootstrap_rounds: usize) -> Self {
        Self {
            bootstrap_rounds,
            min_battles: opts.min_battles,
            method: opts.method,
            ci: opts.ci,
            reweight: opts.reweight,
            interval_floor: opts.interval_floor,
            fallback_l2: false,
            style_coefficients: Vec::new(),
            ties: Ties::HalfWin,
            tie_propensity: None,
            ipw: None,
        }
    }
}

/// Assembles the leaderboard from per-model ratings indexed like `agg.models()`.
pub(crate) fn build(agg: &Aggregate, bt: &[f64], ci: (&[f64], &[f64]), meta: Meta) -> Leaderboard {
    let min_battles = meta.min_battles;
    let n = agg.models().len();
    let mut wins = vec![vec![0u64; n]; n];
    let mut counts = vec![vec![0u64; n]; n];
    let mut both_bad = vec![0u64; n];
    for ((a, b), c) in agg.cells() {
        let (a, b) = (a as usize, b as usize);
        both_bad[a] += c[Winner::TieBothBad.index()];
        both_bad[b] += c[Winner::TieBothBad.index()];
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
                both_bad: if battles > 0 {
                    both_bad[m] as f64 / battles as f64
                } else {
                    0.0
                },
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
        bootstrap_rounds: meta.bootstrap_rounds,
        min_battles,
        method: meta.method,
        ci: meta.ci,
        reweight: meta.reweight,
        interval_floor: meta.interval_floor,
        fallback_l2: meta.fallback_l2,
        style_coefficients: meta.style_coefficients,
        ties: meta.ties,
        tie_propensity: meta.tie_propensity,
        ipw: meta.ipw,
    }
}

/// A text column added on the right of [`to_table_with`] and [`to_csv_with`]: a header and
/// one cell per row of the board, in its order (a missing cell is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    /// The column's header.
    pub header: String,
    /// The cells, one per row.
    pub cells: Vec<String>,
}

/// A plain-text table for a terminal.
pub fn to_table(board: &Leaderboard) -> String {
    to_table_with(board, &[])
}

/// Appends the `extra` columns' cell of `row` (None: the headers) to a table line, padded to
/// each column's width, and ends the line.
fn push_extra(out: &mut String, mut line: String, extra: &[TextColumn], row: Option<usize>) {
    for c in extra {
        let width = c
            .cells
            .iter()
            .map(|v| v.chars().count())
            .chain([c.header.chars().count()])
            .max()
            .unwrap_or(0);
        let cell = match row {
            None => c.header.as_str(),
            Some(i) => c.cells.get(i).map_or("", String::as_str),
        };
        let _ = write!(line, "  {cell:<width$}");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// [`to_table`] with text columns (e.g. each model's organization) on the right.
pub fn to_table_with(board: &Leaderboard, extra: &[TextColumn]) -> String {
    let width = board
        .rows
        .iter()
        .map(|r| r.model.chars().count() + usize::from(r.few_battles) * 2)
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let header = format!(
        "{:>4}  {:<width$}  {:>7}  {:>15}  {:>7}  {:>8}  {:>8}",
        "rank", "model", "bt", "95% CI", "elo", "battles", "both bad"
    );
    push_extra(&mut out, header, extra, None);
    for (i, r) in board.rows.iter().enumerate() {
        let name = if r.few_battles {
            format!("{} *", r.model)
        } else {
            r.model.clone()
        };
        let ci = if r.few_battles {
            TOO_FEW_VOTES.to_string()
        } else {
            format!("+{:.1}/-{:.1}", r.ci_high - r.bt, r.bt - r.ci_low)
        };
        let line = format!(
            "{:>4}  {:<width$}  {:>7.1}  {:>15}  {:>7.1}  {:>8}  {:>7.1}%",
            r.rank,
            name,
            r.bt,
            ci,
            r.elo,
            r.battles,
            100.0 * r.both_bad
        );
        push_extra(&mut out, line, extra, Some(i));
    }
    let _ = writeln!(
        out,
        "{} battles, {} models; {}",
        board.battles,
        board.rows.len(),
        describe(board)
    );
    if board.rows.iter().any(|r| r.few_battles) {
        let _ = writeln!(
            out,
            "* fewer than {} battles: preliminary, {TOO_FEW_VOTES} for an interval",
            board.min_battles
        );
    }
    if board.fallback_l2 {
        let _ = writeln!(
            out,
            "some models never lost (or never won) against the rest: no finite maximum-likelihood \
             ratings yet, so FastChat's L2 penalty (C = 1) holds them"
        );
    }
    if !board.style_coefficients.is_empty() {
        let coefficients: Vec<String> = board
            .style_coefficients
            .iter()
            .map(|c| format!("{} {:+.4}", c.feature, c.coefficient))
            .collect();
        let _ = writeln!(
            out,
            "style coefficients (log-odds per SD): {}",
            coefficients.join(", ")
        );
    }
    out
}

/// What a model's interval reads below `min_battles`.
pub const TOO_FEW_VOTES: &str = "too few votes";

/// The method and intervals in a few words, e.g. `arena-rank Bradley-Terry, sandwich 95%
/// intervals`.
pub fn describe(board: &Leaderboard) -> String {
    let method = match (board.ties, board.method) {
        (Ties::Davidson, _) => "Bradley-Terry-Davidson",
        (_, Method::ArenaRank) => "arena-rank Bradley-Terry",
        (_, Method::FastChat) => "FastChat Bradley-Terry",
    };
    let style = if board.style_coefficients.is_empty() {
        ""
    } else {
        " with style control"
    };
    let reweight = board
        .reweight
        .map(|m| format!(", reweighted 1/max(n_pair, {m})"))
        .unwrap_or_default();
    let ci = match board.ci {
        Ci::Sandwich => "sandwich 95% intervals".to_string(),
        Ci::Bootstrap => format!(
            "95% intervals from {} bootstrap rounds",
            board.bootstrap_rounds
        ),
    };
    let floor = if board.interval_floor {
        ", never narrower than a coin toss per battle allows"
    } else {
        ""
    };
    let ties = match board.tie_propensity {
        Some(nu) => format!(", ties fitted by Davidson's model (ν = {nu:.3})"),
        None => String::new(),
    };
    let ipw = board.ipw.as_ref().map(ipw_words).unwrap_or_default();
    format!("{method}{style}{reweight}{ipw}{ties}, {ci}{floor}")
}

/// How inverse-propensity weighting went, in words.
fn ipw_words(s: &IpwSummary) -> String {
    let unweighted = match s.without_probability {
        0 => String::new(),
        n => format!(
            " ({n} of {} battles had no stored probability and weigh 1)",
            s.without_probability + s.with_probability
        ),
    };
    format!(", inverse-propensity weighted{unweighted}")
}

/// CSV with a header row, one line per model.
pub fn to_csv(board: &Leaderboard) -> String {
    to_csv_with(board, &[])
}

/// [`to_csv`] with text columns on the right.
pub fn to_csv_with(board: &Leaderboard, extra: &[TextColumn]) -> String {
    let mut out = String::from("rank,model,bt,ci_low,ci_high,elo,battles,few_battles,both_bad");
    for c in extra {
        let _ = write!(out, ",{}", csv_field(&c.header));
    }
    out.push('\n');
    for (i, r) in board.rows.iter().enumerate() {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            r.rank,
            csv_field(&r.model),
            r.bt,
            r.ci_low,
            r.ci_high,
            r.elo,
            r.battles,
            r.few_battles,
            r.both_bad
        );
        for c in extra {
            let _ = write!(
                out,
                ",{}",
                csv_field(c.cells.get(i).map_or("", String::as_str))
            );
        }
        out.push('\n');
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

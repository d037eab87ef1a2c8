//! Judge and humans on one ledger: how often the judge's verdicts agree with arena votes.
//! Measured as MT-bench does (Zheng et al. 2023, §4.2): the judge's two position-swapped
//! games make one outcome (orders that disagree are a tie), compared with the human vote
//! with ties as a third class and again without ties; humans are compared with each other on
//! the same prompt and model pair; and the judge's Bradley-Terry ranking is set beside the
//! arena's.

use std::collections::{BTreeMap, HashMap};

use arena_ratings::{Aggregate, Battle, RatingOptions, RatingsError, Winner};
use serde::Serialize;

use crate::render::Format;
use crate::swap::{self, Outcome};
use crate::verdict::Pairwise;
use crate::EvalError;

/// One arena battle, its human vote and the judge's two games.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedBattle {
    /// The battle's id in the store.
    pub battle_id: String,
    /// The model on side A.
    pub model_a: String,
    /// The model on side B.
    pub model_b: String,
    /// Category of its first prompt (from a question set when it matches one, else "uncategorized").
    pub category: String,
    /// The text the humans were asked (first user message), to find battles of the same prompt and pair.
    pub prompt: String,
    /// The human vote.
    pub human: Winner,
    /// The judge's verdict with the battle's side A shown first (A = side A).
    pub a_first: Option<Pairwise>,
    /// The verdict with side B shown first (here [[A]] means the battle's side B).
    pub b_first: Option<Pairwise>,
}

/// An outcome seen from a battle's side A; the discriminant indexes count arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
    Tie,
}

impl Side {
    /// The human vote; both kinds of tie are one class, as in MT-bench.
    fn human(w: Winner) -> Self {
        match w {
            Winner::ModelA => Self::A,
            Winner::ModelB => Self::B,
            Winner::Tie | Winner::TieBothBad => Self::Tie,
        }
    }

    /// The same outcome seen from the other side.
    fn flipped(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
            Self::Tie => Self::Tie,
        }
    }
}

impl JudgedBattle {
    /// The judge's outcome from side A (side A is the "model" of `swap::combine`: first in
    /// the `a_first` game, second in the `b_first` one); None when a verdict is unreadable.
    fn judge(&self) -> Option<Side> {
        match swap::combine(self.a_first, self.b_first) {
            Outcome::Win => Some(Side::A),
            Outcome::Loss => Some(Side::B),
            Outcome::Tie => Some(Side::Tie),
            Outcome::Error => None,
        }
    }
}

/// How many comparisons agreed, of how many; `rate` is None when there were none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Comparisons that agreed.
    pub agree: usize,
    /// Comparisons made.
    pub total: usize,
    /// `agree / total`.
    pub rate: Option<f64>,
}

impl Rate {
    /// The rate of `agree` out of `total`.
    fn new(agree: usize, total: usize) -> Self {
        let rate = (total > 0).then(|| agree as f64 / total as f64);
        Self { agree, total, rate }
    }
}

/// Judge-human agreement within one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryAgreement {
    /// Battles of the category, unreadable ones included.
    pub battles: usize,
    /// Over readable battles, three classes (A, B, tie).
    pub with_ties: Rate,
    /// Over readable battles where neither human nor judge said tie.
    pub without_ties: Rate,
}

/// How often the judge gave the same verdict in both orders.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Consistency {
    /// Readable battles with the same verdict in both orders.
    pub consistent: usize,
    /// Readable battles.
    pub total: usize,
    /// `consistent / total`.
    pub rate: Option<f64>,
}

/// Humans against humans: every two votes on the same prompt and model pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HumanAgreement {
    /// (prompt, model pair) groups with at least two votes.
    pub groups: usize,
    /// Over all pairs of votes in a group.
    pub with_ties: Rate,
    /// Over pairs where neither vote is a tie.
    pub without_ties: Rate,
}

/// Published agreement figures (fractions) to set ours beside.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reference {
    /// Where the figures come from.
    pub source: &'static str,
    /// The judge they measured.
    pub judge: &'static str,
    /// Judge vs humans, ties a class of their own.
    pub judge_with_ties: f64,
    /// Judge vs humans, ties left out.
    pub judge_without_ties: f64,
    /// Human vs human, ties a class of their own.
    pub human_with_ties: f64,
    /// Human vs human, ties left out.
    pub human_without_ties: f64,
}

/// MT-bench's Table 2 (setup S1 counts ties, S2 does not): GPT-4 pairwise vs MT-bench's
/// expert votes, and those experts against each other.
pub const MT_BENCH: Reference = Reference {
    source: "Zheng et al. 2023, Judging LLM-as-a-judge, Table 2",
    judge: "GPT-4",
    judge_with_ties: 0.66,
    judge_without_ties: 0.85,
    human_with_ties: 0.63,
    human_without_ties: 0.81,
};

/// How often an LLM judge agrees with the arena's human votes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Battles given.
    pub battles: usize,
    /// Battles with an unreadable verdict in either order: left out of agreement.
    pub unreadable: usize,
    /// Over readable battles, three classes (A, B, tie).
    pub with_ties: Rate,
    /// Over readable battles where neither human nor judge said tie (MT-bench's "w/o tie").
    pub without_ties: Rate,
    /// The same per category.
    pub by_category: BTreeMap<String, CategoryAgreement>,
    /// The judge's agreement with itself across the two orders.
    pub consistency: Consistency,
    /// Humans against humans (all battles: a human vote needs no readable verdict).
    pub human_human: HumanAgreement,
    /// The MT-bench paper's figures.
    pub reference: Reference,
}

/// Running counts of one set of battles.
#[derive(Debug, Default)]
struct Tally {
    battles: usize,
    with: (usize, usize),
    without: (usize, usize),
}

impl Tally {
    fn add(&mut self, human: Side, judge: Option<Side>) {
        self.battles += 1;
        let Some(judge) = judge else { return };
        let agree = usize::from(human == judge);
        self.with = (self.with.0 + agree, self.with.1 + 1);
        if human != Side::Tie && judge != Side::Tie {
            self.without = (self.without.0 + agree, self.without.1 + 1);
        }
    }

    fn finish(&self) -> CategoryAgreement {
        CategoryAgreement {
            battles: self.battles,
            with_ties: Rate::new(self.with.0, self.with.1),
            without_ties: Rate::new(self.without.0, self.without.1),
        }
    }
}

/// Judge-human agreement, judge consistency and human-human agreement over `battles`.
pub fn agreement(battles: &[JudgedBattle]) -> Agreement {
    let mut all = Tally::default();
    let mut cats: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut consistent = 0;
    for b in battles {
        let (human, judge) = (Side::human(b.human), b.judge());
        all.add(human, judge);
        cats.entry(b.category.as_str())
            .or_default()
            .add(human, judge);
        consistent += usize::from(swap::consistent(b.a_first, b.b_first) == Some(true));
    }
    let overall = all.finish();
    let readable = overall.with_ties.total;
    Agreement {
        battles: battles.len(),
        unreadable: battles.len() - readable,
        with_ties: overall.with_ties,
        without_ties: overall.without_ties,
        by_category: cats
            .into_iter()
            .map(|(c, t)| (c.to_string(), t.finish()))
            .collect(),
        consistency: Consistency {
            consistent,
            total: readable,
            rate: Rate::new(consistent, readable).rate,
        },
        human_human: human_human(battles),
        reference: MT_BENCH,
    }
}

/// Every two votes on the same prompt and unordered model pair, oriented to one model order.
/// Counted per group from its A/B/tie totals, so a prompt voted on thousands of times costs
/// no more than one voted on twice.
fn human_human(battles: &[JudgedBattle]) -> HumanAgreement {
    let mut groups: HashMap<(&str, &str, &str), [usize; 3]> = HashMap::new();
    for b in battles.iter().filter(|b| !b.prompt.trim().is_empty()) {
        let (a, bb) = (b.model_a.as_str(), b.model_b.as_str());
        let (lo, hi) = if a <= bb { (a, bb) } else { (bb, a) };
        let side = Side::human(b.human);
        let side = if lo == a { side } else { side.flipped() };
        groups.entry((b.prompt.trim(), lo, hi)).or_default()[side as usize] += 1;
    }
    let pairs = |n: usize| n * n.saturating_sub(1) / 2;
    let (mut n, mut with, mut without) = (0, (0, 0), (0, 0));
    for &[a, b, t] in groups.values() {
        n += usize::from(a + b + t >= 2);
        with = (
            with.0 + pairs(a) + pairs(b) + pairs(t),
            with.1 + pairs(a + b + t),
        );
        without = (without.0 + pairs(a) + pairs(b), without.1 + pairs(a + b));
    }
    HumanAgreement {
        groups: n,
        with_ties: Rate::new(with.0, with.1),
        without_ties: Rate::new(without.0, without.1),
    }
}

/// Average ranks from 1, tied values sharing the mean of their positions.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // Positions start+1 ..= end share their mean.
        let avg = (start + 1 + end) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| r[i] = avg);
        start = end;
    }
    r
}

/// Spearman's rank correlation (average ranks for ties); None for fewer than 2 points,
/// unequal lengths, a value that is not finite, or no variance in either.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    // Average ranks of n items always have mean (n + 1) / 2.
    let mean = (x.len() + 1) as f64 / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (dx, dy) = (a - mean, b - mean);
        (sxy, sxx, syy) = (sxy + dx * dy, sxx + dx * dx, syy + dy * dy);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// One model rated by the arena's votes and by the judge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankRow {
    /// Model name.
    pub model: String,
    /// Bradley-Terry rating from the arena's votes.
    pub arena_rating: f64,
    /// Bradley-Terry rating from the judge's outcomes.
    pub judge_rating: f64,
    /// 1 + models (of those in both) rated higher by the arena.
    pub arena_rank: usize,
    /// 1 + models (of those in both) rated higher by the judge.
    pub judge_rank: usize,
}

/// The arena's ranking beside the judge's, over models both rated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankComparison {
    /// Best arena rating first.
    pub rows: Vec<RankRow>,
    /// Spearman's ρ between the two ratings; None under two models or no spread.
    pub spearman: Option<f64>,
    /// Models in both.
    pub models: usize,
}

/// Bradley-Terry ratings from `arena`'s votes and from the judge's readable outcomes of
/// `battles` (judge tie = `Winner::Tie`), compared over the models in both.
pub fn rank_comparison(
    arena: &Aggregate,
    battles: &[JudgedBattle],
) -> Result<RankComparison, EvalError> {
    let fail = |e: RatingsError| EvalError::Ratings(e.to_string());
    let opts = RatingOptions {
        bootstrap_rounds: 0,
        ..Default::default()
    };
    let mut judged = Aggregate::new();
    for b in battles {
        let winner = match b.judge() {
            Some(Side::A) => Winner::ModelA,
            Some(Side::B) => Winner::ModelB,
            Some(Side::Tie) => Winner::Tie,
            None => continue,
        };
        let battle = Battle {
            model_a: b.model_a.clone(),
            model_b: b.model_b.clone(),
            winner,
            tstamp: None,
            anony: None,
            turn: None,
        };
        judged.add(&battle).map_err(fail)?;
    }
    let arena_board = arena_ratings::compute(arena, &opts).map_err(fail)?;
    let judge_board = arena_ratings::compute(&judged, &opts).map_err(fail)?;
    let judge_bt: HashMap<&str, f64> = judge_board
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.bt))
        .collect();
    // Leaderboard rows come best first, so the rows do too.
    let both: Vec<(&str, f64, f64)> = arena_board
        .rows
        .iter()
        .filter_map(|r| Some((r.model.as_str(), r.bt, *judge_bt.get(r.model.as_str())?)))
        .collect();
    let arena_bt: Vec<f64> = both.iter().map(|b| b.1).collect();
    let judge_bt: Vec<f64> = both.iter().map(|b| b.2).collect();
    let rank = |all: &[f64], x: f64| 1 + all.iter().filter(|&&o| o > x).count();
    let rows: Vec<RankRow> = both
        .iter()
        .map(|&(model, a, j)| RankRow {
            model: model.to_string(),
            arena_rating: a,
            judge_rating: j,
            arena_rank: rank(&arena_bt, a),
            judge_rank: rank(&judge_bt, j),
        })
        .collect();
    Ok(RankComparison {
        spearman: spearman(&arena_bt, &judge_bt),
        models: rows.len(),
        rows,
    })
}

/// `61.5%`, or `-` when nothing was compared.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", 100.0 * r))
}

/// `61.5% (8/13)`.
fn cell(r: &Rate) -> String {
    format!("{} ({}/{})", percent(r.rate), r.agree, r.total)
}

/// `61.5% with ties (8/13), 80.0% without ties (4/5)`.
fn both_rates(with: &Rate, without: &Rate) -> String {
    let (w, wo) = (with, without);
    let (pw, pwo) = (percent(w.rate), percent(wo.rate));
    format!(
        "{pw} with ties ({}/{}), {pwo} without ties ({}/{})",
        w.agree, w.total, wo.agree, wo.total
    )
}

/// The agreement (and the rank comparison, when given) as a table, JSON or CSV.
pub fn render(a: &Agreement, ranks: Option<&RankComparison>, format: Format) -> String {
    match format {
        Format::Table => table(a, ranks),
        Format::Json => {
            #[derive(Serialize)]
            struct Document<'a> {
                agreement: &'a Agreement,
                ranks: Option<&'a RankComparison>,
            }
            // Only string-keyed maps and numbers (non-finite ones become null): cannot fail.
            serde_json::to_string_pretty(&Document {
                agreement: a,
                ranks,
            })
            .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n")
        }
        // Writing to memory cannot fail; say so rather than panic if it ever does.
        Format::Csv => to_csv(a).unwrap_or_else(|e| format!("error: cannot write CSV: {e}\n")),
    }
}

fn table(a: &Agreement, ranks: Option<&RankComparison>) -> String {
    let (h, r, c) = (&a.human_human, &a.reference, &a.consistency);
    let p = |x: f64| format!("{:.0}%", 100.0 * x);
    let mut lines = vec![
        format!(
            "judge vs humans: {}",
            both_rates(&a.with_ties, &a.without_ties)
        ),
        match h.with_ties.total {
            0 => "human vs human: no prompt has two votes on the same model pair".to_string(),
            _ => format!(
                "human vs human: {} in {} groups of one prompt and model pair",
                both_rates(&h.with_ties, &h.without_ties),
                h.groups
            ),
        },
        format!(
            "MT-bench paper: {} vs humans {} / {}, human vs human {} / {}",
            r.judge,
            p(r.judge_with_ties),
            p(r.judge_without_ties),
            p(r.human_with_ties),
            p(r.human_without_ties)
        ),
        format!(
            "judge consistency: {} ({}/{}) same verdict in both orders",
            percent(c.rate),
            c.consistent,
            c.total
        ),
        format!(
            "battles: {}, unreadable verdicts: {} (left out)",
            a.battles, a.unreadable
        ),
    ];
    let width = |names: Vec<usize>, least: usize| names.into_iter().max().unwrap_or(0).max(least);
    if !a.by_category.is_empty() {
        let w = width(a.by_category.keys().map(|k| k.chars().count()).collect(), 8);
        lines.push(format!(
            "\n{:<w$}  {:>7}  {:<20}  without ties",
            "category", "battles", "with ties"
        ));
        for (cat, x) in &a.by_category {
            let (b, wt, wo) = (x.battles, cell(&x.with_ties), cell(&x.without_ties));
            lines.push(format!("{cat:<w$}  {b:>7}  {wt:<20}  {wo}"));
        }
    }
    if let Some(rc) = ranks {
        let w = width(rc.rows.iter().map(|r| r.model.chars().count()).collect(), 5);
        let head = ("model", "arena", "judge", "arena rank", "judge rank");
        lines.push(format!(
            "\n{:<w$}  {:>6}  {:>6}  {:>10}  {:>10}",
            head.0, head.1, head.2, head.3, head.4
        ));
        for r in &rc.rows {
            let (m, ar, jr) = (&r.model, r.arena_rating, r.judge_rating);
            lines.push(format!(
                "{m:<w$}  {ar:>6.1}  {jr:>6.1}  {:>10}  {:>10}",
                r.arena_rank, r.judge_rank
            ));
        }
        let rho = rc
            .spearman
            .map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        lines.push(format!(
            "Spearman's ρ, arena vs judge: {rho} over {} models",
            rc.models
        ));
    }
    lines.join("\n") + "\n"
}

/// The CSV's columns.
const CSV_HEADER: &str = "category,battles,agree_with_ties,total_with_ties,rate_with_ties,\
                          agree_without_ties,total_without_ties,rate_without_ties";

/// One row per category, then `overall`.
fn to_csv(a: &Agreement) -> Result<String, Box<dyn std::error::Error>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER.split(','))?;
    let overall = CategoryAgreement {
        battles: a.battles,
        with_ties: a.with_ties,
        without_ties: a.without_ties,
    };
    let name = "overall".to_string();
    let rate = |r: &Rate| r.rate.map_or_else(String::new, |x| format!("{x:.4}"));
    for (cat, x) in a.by_category.iter().chain([(&name, &overall)]) {
        let (wt, wo) = (&x.with_ties, &x.without_ties);
        w.write_record([
            cat.clone(),
            x.battles.to_string(),
            wt.agree.to_string(),
            wt.total.to_string(),
            rate(wt),
            wo.agree.to_string(),
            wo.total.to_string(),
            rate(wo),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Pairwise::{Tie, A, B};
    use Winner::{ModelA, ModelB, TieBothBad};

    type Verdicts = (Option<Pairwise>, Option<Pairwise>);

    fn jb(
        id: &str,
        cat: &str,
        prompt: &str,
        pair: (&str, &str),
        human: Winner,
        v: Verdicts,
    ) -> JudgedBattle {
        JudgedBattle {
            battle_id: id.into(),
            model_a: pair.0.into(),
            model_b: pair.1.into(),
            category: cat.into(),
            prompt: prompt.into(),
            human,
            a_first: v.0,
            b_first: v.1,
        }
    }

    /// Judge outcome from side A in the last column; `agree` is with ties / without ties.
    fn fixture() -> Vec<JudgedBattle> {
        vec![
            // x wins for both: agree / agree.
            jb("b1", "coding", "C1", ("x", "y"), ModelA, (Some(A), Some(B))), // A
            // z wins for both: agree / agree.
            jb("b2", "coding", "C2", ("x", "z"), ModelB, (Some(B), Some(A))), // B
            // Position bias ([[A]] twice) is inconsistent, so a tie: disagree / left out.
            jb("b3", "coding", "C3", ("y", "z"), ModelA, (Some(A), Some(A))), // tie
            // Human tie: disagree / left out.
            jb(
                "b8",
                "coding",
                "C4",
                ("y", "x"),
                Winner::Tie,
                (Some(A), Some(B)),
            ), // A
            // Both-bad tie and judge tie: agree / left out.
            jb(
                "b4",
                "writing",
                "W1",
                ("x", "y"),
                TieBothBad,
                (Some(Tie), Some(Tie)),
            ), // tie
            // Unreadable: counted apart; its human vote still counts among humans.
            jb("b5", "writing", "W1", ("y", "x"), ModelA, (None, Some(B))), // -
            // Human: x (side B); judge: z (side A): disagree / disagree.
            jb(
                "b6",
                "writing",
                "W2",
                ("z", "x"),
                ModelB,
                (Some(A), Some(B)),
            ), // A
            // Human: x (side A); judge: z (side B): disagree / disagree.
            jb(
                "b7",
                "writing",
                "W2",
                ("x", "z"),
                ModelA,
                (Some(B), Some(A)),
            ), // B
        ]
    }

    #[test]
    fn judge_against_humans_by_hand() {
        let a = agreement(&fixture());
        assert_eq!((a.battles, a.unreadable), (8, 1));
        // With ties: b1, b2, b4 agree of 7 readable. Without: b1, b2 of b1, b2, b6, b7.
        assert_eq!(a.with_ties, Rate::new(3, 7));
        assert_eq!(
            a.without_ties,
            Rate {
                agree: 2,
                total: 4,
                rate: Some(0.5)
            }
        );
        // Only b3 differs between the orders: 6 of 7.
        assert_eq!((a.consistency.consistent, a.consistency.total), (6, 7));
        let coding = &a.by_category["coding"];
        assert_eq!(
            (coding.battles, coding.with_ties, coding.without_ties),
            (4, Rate::new(2, 4), Rate::new(2, 2))
        );
        // Writing: b4 agrees of b4, b6, b7; without ties b6, b7 both disagree.
        let writing = &a.by_category["writing"];
        assert_eq!(
            (writing.battles, writing.with_ties, writing.without_ties),
            (4, Rate::new(1, 3), Rate::new(0, 2))
        );
        assert_eq!(a.reference, MT_BENCH);
    }

    #[test]
    fn humans_compared_after_orienting_the_pair() {
        let h = agreement(&fixture()).human_human;
        // W1 {x,y}: b4 tie, b5 y wins: disagree, and a tie so not counted without ties.
        // W2 {x,z}: b6 (z,x) and b7 (x,z) both say x: agree, though one is model_b, one model_a.
        // C1..C4 have one vote each.
        assert_eq!(
            (h.groups, h.with_ties, h.without_ties),
            (2, Rate::new(1, 2), Rate::new(1, 1))
        );
        // Three votes, oriented x, x, tie: pairs (1,2) agree, (1,3) and (2,3) differ; without
        // ties only (1,2). The same pair on another prompt is another group of one.
        let v = |p, pair, w| jb("h", "c", p, pair, w, (None, None));
        let three = [
            v("P", ("x", "y"), ModelA),
            v("P", ("y", "x"), ModelB),
            v(" P ", ("x", "y"), Winner::Tie),
            v("Q", ("x", "y"), ModelA),
        ];
        let h = agreement(&three).human_human;
        assert_eq!(
            (h.groups, h.with_ties, h.without_ties),
            (1, Rate::new(1, 3), Rate::new(1, 1))
        );
        let h = agreement(&three[3..]).human_human;
        assert_eq!(
            (h.groups, h.with_ties.total, h.with_ties.rate),
            (0, 0, None)
        );
    }

    fn close(x: Option<f64>, want: f64) -> bool {
        x.is_some_and(|x| (x - want).abs() < 1e-9)
    }

    #[test]
    fn spearman_by_hand() {
        // Ranks y = [1, 2, 3.5, 5, 3.5]; d = rank - 3: Σdxdy = 8, Σdx² = 10, Σdy² = 9.5.
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!(close(rho, 8.0 / 95f64.sqrt()), "{rho:?}");
        assert!(close(rho.map(|r| (r * 1e4).round() / 1e4), 0.8208));
        assert!(close(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 300.0]), 1.0));
        assert!(close(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
        // Ties in both: ranks [1.5, 1.5, 3] and [1, 2.5, 2.5]; Σdxdy = 0.75, Σ² = 1.5 each.
        assert!(close(spearman(&[1.0, 1.0, 2.0], &[0.0, 5.0, 5.0]), 0.5));
        assert_eq!(spearman(&[1.0], &[1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]), None);
        assert_eq!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }

    fn vote(model_a: &str, model_b: &str, winner: Winner) -> Battle {
        let (model_a, model_b) = (model_a.into(), model_b.into());
        let (tstamp, anony, turn) = (None, None, None);
        Battle {
            model_a,
            model_b,
            winner,
            tstamp,
            anony,
            turn,
        }
    }

    /// p > q > r for the arena, three wins in each pair shown both ways; s is only here.
    fn arena() -> Aggregate {
        let mut agg = Aggregate::new();
        let pairs = [
            ("p", "q"),
            ("q", "r"),
            ("p", "r"),
            ("q", "p"),
            ("r", "q"),
            ("r", "p"),
        ];
        for (a, b) in pairs {
            for _ in 0..3 {
                let w = if a < b { ModelA } else { ModelB };
                agg.add(&vote(a, b, w)).expect("distinct models");
            }
        }
        agg.add(&vote("s", "p", ModelB)).expect("distinct models");
        agg
    }

    /// The judge's p/q/r battles: the first listed model wins when `same`, else loses; plus
    /// an unreadable one, so t never enters the judge's ratings.
    fn judged(same: bool) -> Vec<JudgedBattle> {
        let v: Verdicts = if same {
            (Some(A), Some(B))
        } else {
            (Some(B), Some(A))
        };
        let mut bs: Vec<JudgedBattle> = [("p", "q"), ("q", "r"), ("p", "r")]
            .iter()
            .flat_map(|&pair| (0..3).map(move |_| jb("j", "c", "P", pair, ModelA, v)))
            .collect();
        bs.push(jb("u", "c", "P", ("t", "p"), ModelA, (None, None)));
        bs
    }

    #[test]
    fn judge_ranking_beside_the_arena() {
        let same = rank_comparison(&arena(), &judged(true)).expect("fits");
        assert_eq!(same.models, 3);
        assert!(close(same.spearman, 1.0), "{same:?}");
        let order: Vec<(&str, usize, usize)> = same
            .rows
            .iter()
            .map(|r| (r.model.as_str(), r.arena_rank, r.judge_rank))
            .collect();
        assert_eq!(order, [("p", 1, 1), ("q", 2, 2), ("r", 3, 3)]);
        assert!(same
            .rows
            .windows(2)
            .all(|w| w[0].judge_rating > w[1].judge_rating));
        let reversed = rank_comparison(&arena(), &judged(false)).expect("fits");
        assert!(close(reversed.spearman, -1.0), "{reversed:?}");
        let ranks: Vec<usize> = reversed.rows.iter().map(|r| r.judge_rank).collect();
        assert_eq!(ranks, [3, 2, 1]);
        let none = rank_comparison(&arena(), &[]).expect("fits");
        assert_eq!((none.models, none.spearman), (0, None));
    }

    #[test]
    fn renders_for_people_and_machines() {
        let a = agreement(&fixture());
        let ranks = rank_comparison(&arena(), &judged(true)).expect("fits");
        let t = render(&a, Some(&ranks), Format::Table);
        for line in [
            "judge vs humans: 42.9% with ties (3/7), 50.0% without ties (2/4)",
            "human vs human: 50.0% with ties (1/2), 100.0% without ties (1/1)",
            "MT-bench paper: GPT-4 vs humans 66% / 85%, human vs human 63% / 81%",
            "judge consistency: 85.7% (6/7)",
            "unreadable verdicts: 1",
            "writing",
            "Spearman's ρ, arena vs judge: 1.000 over 3 models",
        ] {
            assert!(t.contains(line), "{line} not in\n{t}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&render(&a, Some(&ranks), Format::Json)).expect("JSON");
        assert_eq!(json["agreement"]["with_ties"]["agree"], 3);
        assert_eq!(json["agreement"]["reference"]["judge_without_ties"], 0.85);
        assert_eq!(json["ranks"]["models"], 3);
        assert!(render(&a, None, Format::Json).contains("\"ranks\": null"));
        let csv = render(&a, None, Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines, [
            "category,battles,agree_with_ties,total_with_ties,rate_with_ties,agree_without_ties,total_without_ties,rate_without_ties",
            "coding,4,2,4,0.5000,2,2,1.0000",
            "writing,4,1,3,0.3333,0,2,0.0000",
            "overall,8,3,7,0.4286,2,4,0.5000",
        ]);
    }
}

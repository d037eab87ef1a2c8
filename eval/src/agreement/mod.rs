//! Judge and humans on one ledger: how often the judge's verdicts agree with arena votes.
//! Measured as MT-bench does (Zheng et al. 2023, §4.2): the judge's two position-swapped
//! games make one outcome (orders that disagree are a tie), compared with the human vote
//! with ties as a third class and again without ties; humans are compared with each other on
//! the same prompt and model pair; and the judge's Bradley-Terry ranking is set beside the
//! arena's.
//!
//! This module holds the battle and result types and [`agreement`]; `humans` compares humans
//! with each other, `ranks` the two rankings, and `render` writes the result for people or
//! machines.

use std::collections::BTreeMap;

use arena_ratings::Winner;
use serde::Serialize;

use crate::swap::{self, Game, Outcome};

#[cfg(test)]
mod fixtures;
mod humans;
mod ranks;
mod render;

pub use humans::HumanAgreement;
pub use ranks::{benchmark_vs_arena, rank_comparison, spearman, RankComparison, RankRow};
pub use render::render;

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
    /// The judge's game with the battle's side A shown first (A = side A).
    pub a_first: Game,
    /// The game with side B shown first (here `[[A]]` means the battle's side B).
    pub b_first: Game,
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
        match swap::combine_games(self.a_first, self.b_first) {
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
        consistent +=
            usize::from(swap::consistent(b.a_first.verdict, b.b_first.verdict) == Some(true));
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
        human_human: humans::human_human(battles),
        reference: MT_BENCH,
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::fixture;
    use super::*;

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
}

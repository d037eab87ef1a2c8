//! Every pair is judged twice, the second time with the answers' positions exchanged, so a
//! judge's preference for the first (or second) position cancels out. Results here are from
//! the model's side: the model is answer A in the first game and answer B in the second.

use crate::verdict::{Level, Pairwise};

/// The outcome of a pair for the model against its opponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Both games preferred the model.
    Win,
    /// Both games preferred the opponent.
    Loss,
    /// Both games called a tie, or the games disagreed (MT-bench: inconsistent = tie).
    Tie,
    /// A game's verdict could not be read: counted as an error, never as a result.
    Error,
}

/// A pairwise verdict from the model's side.
fn for_model(v: Pairwise, model_is_a: bool) -> Outcome {
    match (v, model_is_a) {
        (Pairwise::Tie, _) => Outcome::Tie,
        (Pairwise::A, true) | (Pairwise::B, false) => Outcome::Win,
        _ => Outcome::Loss,
    }
}

/// Combines the two games: the model as A, then the model as B.
pub fn combine(model_first: Option<Pairwise>, model_second: Option<Pairwise>) -> Outcome {
    match (model_first, model_second) {
        (Some(a), Some(b)) => {
            let (a, b) = (for_model(a, true), for_model(b, false));
            if a == b {
                a
            } else {
                Outcome::Tie
            }
        }
        _ => Outcome::Error,
    }
}

/// One game as stored: its verdict and, for verdicts read from likelihoods, the judge's
/// preference for the answer shown first (P(A) − P(B), as shares of the three letters).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Game {
    /// The verdict, None when unreadable.
    pub verdict: Option<Pairwise>,
    /// The preference for the first-shown answer, in −1..=1.
    pub preference: Option<f64>,
}

impl Game {
    /// A stored pairwise judgment (`A`, `B` or `C`, and its score) as one game of its pair;
    /// a preference counts only beside a readable verdict.
    pub fn stored(verdict: Option<&str>, score: Option<f64>) -> Self {
        let verdict = verdict.and_then(|v| crate::verdict::pairwise(&format!("[[{v}]]")));
        Self {
            verdict,
            preference: verdict.and(score),
        }
    }
}

/// Combines the two games: the model as A, then as B. With both preferences known, the pair
/// is position-balanced (Wang et al. 2023's balanced position calibration): the model's
/// preference summed over both orders decides, so a judge's constant pull toward one position
/// cancels out instead of turning every pair into a tie; a judge whose likeliest verdict is a
/// tie in both orders still ties. Otherwise as [`combine`].
pub fn combine_games(model_first: Game, model_second: Game) -> Outcome {
    if model_first.verdict == Some(Pairwise::Tie) && model_second.verdict == Some(Pairwise::Tie) {
        return Outcome::Tie;
    }
    match (model_first.preference, model_second.preference) {
        (Some(p1), Some(p2)) if p1.is_finite() && p2.is_finite() => {
            // Shown first, a positive preference is for the model; shown second, for the
            // opponent.
            let balanced = p1 - p2;
            if balanced > 0.0 {
                Outcome::Win
            } else if balanced < 0.0 {
                Outcome::Loss
            } else {
                Outcome::Tie
            }
        }
        _ => combine(model_first.verdict, model_second.verdict),
    }
}

/// Whether the judge gave the same verdict in both orders (for its consistency figure);
/// None when either verdict is unreadable.
pub fn consistent(model_first: Option<Pairwise>, model_second: Option<Pairwise>) -> Option<bool> {
    Some(for_model(model_first?, true) == for_model(model_second?, false))
}

/// Votes of one Arena-Hard game from the model's side, as (wins, ties, losses): a strong
/// verdict counts three times, as Arena-Hard-Auto weighs it.
pub fn arena_hard_votes(level: Level, model_is_a: bool) -> (u32, u32, u32) {
    let level = if model_is_a { level } else { level.swapped() };
    match level {
        Level::AMuchBetter => (3, 0, 0),
        Level::ABetter => (1, 0, 0),
        Level::Same => (0, 1, 0),
        Level::BBetter => (0, 0, 1),
        Level::BMuchBetter => (0, 0, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Pairwise::{Tie, A, B};

    #[test]
    fn agreeing_games_decide_and_disagreeing_ones_tie() {
        // The model is A first, then B: [[A]] then [[B]] is the model winning twice.
        assert_eq!(combine(Some(A), Some(B)), Outcome::Win);
        assert_eq!(combine(Some(B), Some(A)), Outcome::Loss);
        assert_eq!(combine(Some(Tie), Some(Tie)), Outcome::Tie);
        // A judge that always prefers the first position: the preference cancels out.
        assert_eq!(combine(Some(A), Some(A)), Outcome::Tie);
        assert_eq!(combine(Some(B), Some(B)), Outcome::Tie);
        assert_eq!(combine(Some(A), Some(Tie)), Outcome::Tie);
        assert_eq!(combine(None, Some(A)), Outcome::Error);
        assert_eq!(combine(Some(A), None), Outcome::Error);
    }

    #[test]
    fn likelihood_games_are_position_balanced() {
        let game = |v, p| Game {
            verdict: Some(v),
            preference: Some(p),
        };
        // A judge pulled toward the first position: [[A]] in both orders, but more strongly
        // when the model is first. Verdicts alone would tie; the balanced preference decides.
        assert_eq!(combine_games(game(A, 0.6), game(A, 0.2)), Outcome::Win);
        assert_eq!(combine_games(game(A, 0.2), game(A, 0.6)), Outcome::Loss);
        assert_eq!(combine_games(game(A, 0.3), game(A, 0.3)), Outcome::Tie);
        assert_eq!(combine_games(game(Tie, 0.1), game(Tie, -0.2)), Outcome::Tie);
        // Without preferences (written verdicts, or one unreadable game): MT-bench's rule.
        let text = |v| Game {
            verdict: v,
            preference: None,
        };
        assert_eq!(combine_games(text(Some(A)), text(Some(A))), Outcome::Tie);
        assert_eq!(combine_games(text(Some(A)), text(Some(B))), Outcome::Win);
        assert_eq!(combine_games(game(A, 0.5), text(None)), Outcome::Error);
    }

    #[test]
    fn consistency_is_the_same_verdict_in_both_orders() {
        assert_eq!(consistent(Some(A), Some(B)), Some(true));
        assert_eq!(consistent(Some(Tie), Some(Tie)), Some(true));
        assert_eq!(consistent(Some(A), Some(A)), Some(false));
        assert_eq!(consistent(None, Some(A)), None);
    }

    #[test]
    fn strong_arena_hard_verdicts_weigh_three() {
        assert_eq!(arena_hard_votes(Level::AMuchBetter, true), (3, 0, 0));
        assert_eq!(arena_hard_votes(Level::AMuchBetter, false), (0, 0, 3));
        assert_eq!(arena_hard_votes(Level::BBetter, false), (1, 0, 0));
        assert_eq!(arena_hard_votes(Level::Same, false), (0, 1, 0));
        assert_eq!(arena_hard_votes(Level::BMuchBetter, true), (0, 0, 3));
    }
}

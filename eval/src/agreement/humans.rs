//! Humans against humans: every two votes on the same prompt and model pair, the ceiling a
//! judge's agreement with humans is read against.

use std::collections::HashMap;

use serde::Serialize;

use super::{JudgedBattle, Rate, Side};

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

/// Every two votes on the same prompt and unordered model pair, oriented to one model order.
/// Counted per group from its A/B/tie totals, so a prompt voted on thousands of times costs
/// no more than one voted on twice.
pub(super) fn human_human(battles: &[JudgedBattle]) -> HumanAgreement {
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

#[cfg(test)]
mod tests {
    use arena_ratings::Winner::{self, ModelA, ModelB};

    use super::*;
    use crate::agreement::agreement;
    use crate::agreement::fixtures::{fixture, jb};

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
}

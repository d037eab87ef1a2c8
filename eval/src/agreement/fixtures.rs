//! Hand-checked battles and arena votes shared by the agreement tests.

use arena_ratings::{Aggregate, Battle, Winner};

use super::JudgedBattle;
use crate::swap::Game;
use crate::verdict::Pairwise;
use Pairwise::{Tie, A, B};
use Winner::{ModelA, ModelB, TieBothBad};

/// The judge's verdicts with side A first, then side B first.
pub(super) type Verdicts = (Option<Pairwise>, Option<Pairwise>);

/// A judged battle.
pub(super) fn jb(
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
        a_first: Game {
            verdict: v.0,
            preference: None,
        },
        b_first: Game {
            verdict: v.1,
            preference: None,
        },
    }
}

/// Judge outcome from side A in the last column; `agree` is with ties / without ties.
pub(super) fn fixture() -> Vec<JudgedBattle> {
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

/// One arena vote.
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
pub(super) fn arena() -> Aggregate {
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
pub(super) fn judged(same: bool) -> Vec<JudgedBattle> {
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

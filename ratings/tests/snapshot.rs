//! Reproducible snapshots: the vote-set hash names exactly the votes in their order, and a
//! snapshot verifies against a recomputation only when votes and ratings are the same.

use arena_ratings::snapshot::{verify, Snapshot, View, VoteSet, FORMAT};
use arena_ratings::{compute, Aggregate, Battle, Ci, RatingOptions, Winner};

fn battle(a: &str, b: &str, winner: Winner) -> Battle {
    Battle::new(a, b, winner)
}

fn votes(battles: &[Battle]) -> Aggregate {
    let mut agg = Aggregate::new();
    battles.iter().for_each(|b| agg.add(b).expect("add"));
    agg
}

fn some_battles() -> Vec<Battle> {
    let mut v = Vec::new();
    for (i, w) in [Winner::ModelA, Winner::ModelB, Winner::Tie, Winner::ModelA]
        .iter()
        .cycle()
        .take(60)
        .enumerate()
    {
        let (a, b) = [("x", "y"), ("y", "z"), ("z", "x")][i % 3];
        v.push(battle(a, b, *w));
    }
    v
}

#[test]
fn the_vote_set_hash_names_the_votes_and_their_order() {
    let battles = some_battles();
    let agg = votes(&battles);
    assert_eq!(agg.vote_set_sha256(), votes(&battles).vote_set_sha256());
    assert_eq!(agg.vote_set_sha256().len(), 64);
    let mut swapped = battles.clone();
    swapped.swap(0, 1);
    assert_ne!(agg.vote_set_sha256(), votes(&swapped).vote_set_sha256());
    // Names are length-prefixed: moving a character from one name to the other changes it.
    let a = votes(&[battle("ab", "c", Winner::Tie)]);
    let b = votes(&[battle("a", "bc", Winner::Tie)]);
    assert_ne!(a.vote_set_sha256(), b.vote_set_sha256());
}

#[test]
fn a_snapshot_verifies_only_against_the_same_votes_and_ratings() {
    let agg = votes(&some_battles());
    for opts in [
        RatingOptions::default(),
        RatingOptions {
            ci: Ci::Bootstrap,
            bootstrap_rounds: 30,
            seed: 7,
            ..RatingOptions::default()
        },
    ] {
        let board = compute(&agg, &opts).expect("compute");
        let snap = Snapshot::new(&VoteSet::of(&agg, &opts), &opts, &View::default(), &board);
        assert_eq!(snap.format, FORMAT);
        // Through JSON, as it is written and read back.
        let text = serde_json::to_string(&snap).expect("json");
        let back: Snapshot = serde_json::from_str(&text).expect("read back");
        assert_eq!(back.options, opts);
        let again = compute(&agg, &back.options).expect("recompute");
        let verdict = verify(&back, &VoteSet::of(&agg, &back.options), &again);
        assert!(verdict.matches(), "{verdict:?}");

        // One more vote: neither the votes nor the ratings are the snapshot's.
        let mut more = some_battles();
        more.push(battle("x", "z", Winner::ModelA));
        let agg2 = votes(&more);
        let verdict = verify(
            &back,
            &VoteSet::of(&agg2, &back.options),
            &compute(&agg2, &back.options).expect("compute"),
        );
        assert!(!verdict.same_votes && !verdict.same_ratings, "{verdict:?}");
        assert!(verdict.differences[0].starts_with("votes:"), "{verdict:?}");

        // The same votes, a doctored rating: caught.
        let mut doctored = back.clone();
        doctored.leaderboard.rows[0].bt += 0.01;
        let verdict = verify(&doctored, &VoteSet::of(&agg, &back.options), &again);
        assert!(verdict.same_votes && !verdict.same_ratings, "{verdict:?}");
    }
}

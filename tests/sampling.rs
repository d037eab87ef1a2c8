//! Sampling you can audit, end to end: a real controller with three tiny workers, one of them
//! weighted, new models boosted until they have their counted votes. Every anonymous battle
//! stores the exact probability of its pair under the scheme (w_i·w_j / Σ_{k<l} w_k·w_l),
//! computed here from the flags and the votes so far; named battles store none; the
//! leaderboard marks provisional models, on the API and in `arena leaderboard`, which can
//! also weigh each battle by its inverse probability. Both backends.

mod common;

use std::collections::HashMap;
use std::path::Path;

use arena_testkit::on_both_backends;
use common::{get, post, rows, Arena};
use serde_json::{json, Value};

const MODELS: [&str; 3] = ["tiny-a", "tiny-b", "tiny-c"];
const BOOST: f64 = 4.0;
const BOOST_VOTES: u64 = 2;

/// The configured weights (`--battle-weights tiny-a=3`).
fn configured(model: &str) -> f64 {
    if model == "tiny-a" {
        3.0
    } else {
        1.0
    }
}

async fn three_tiny(backend: &str, dir: &Path) -> Arena {
    let model = common::tiny_gguf(dir);
    let boost = BOOST.to_string();
    let votes = BOOST_VOTES.to_string();
    common::bin()
        .spawn_arena(
            backend,
            dir,
            &[
                "--battle-weights",
                "tiny-a=3",
                "--new-model-boost",
                &boost,
                "--new-model-votes",
                &votes,
                // Battle starts then look for new votes every time.
                "--leaderboard-interval-s",
                "0",
            ],
            &[
                (&model, MODELS[0], &[]),
                (&model, MODELS[1], &[]),
                (&model, MODELS[2], &[]),
            ],
        )
        .await
}

/// `P({a, b})` under the scheme, from the counted votes so far.
fn expected_probability(a: &str, b: &str, votes: &HashMap<String, u64>) -> f64 {
    let w = |m: &str| {
        let boosted = votes.get(m).copied().unwrap_or(0) < BOOST_VOTES;
        configured(m) * if boosted { BOOST } else { 1.0 }
    };
    let mut z = 0.0;
    for (k, x) in MODELS.iter().enumerate() {
        for y in &MODELS[k + 1..] {
            z += w(x) * w(y);
        }
    }
    w(a) * w(b) / z
}

/// Plays one anonymous battle to its vote; returns the stored pair and probability, and
/// the vote's answer.
async fn battle(a: &Arena) -> ((String, String, f64), Value) {
    let http = &a.c.http;
    let created = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    // The probability could tell a boosted model apart: it never reaches the client.
    assert!(!created.text.contains("probability"), "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let stored = rows(
        &a.db_url,
        &format!("SELECT model_a, model_b, pair_probability FROM battles WHERE id = '{id}'"),
    )
    .await;
    let [model_a, model_b, p] = &stored[0][..] else {
        panic!("{stored:?}")
    };
    let p: f64 = p.parse().expect("a probability is stored");
    common::answer_turn(http, &id, "Hello there", 8).await;
    let v = common::vote(http, &id, "model_a").await;
    ((model_a.clone(), model_b.clone(), p), v)
}

async fn boosted_battles_store_their_exact_probability(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = three_tiny(backend, dir.path()).await;
    let mut votes: HashMap<String, u64> = HashMap::new();
    // Until some model is past the threshold while another is still below it (at most a
    // few rounds: the boosted ones are drawn more often).
    let mut rounds = 0;
    while !(votes.values().any(|&n| n >= BOOST_VOTES) && votes.values().any(|&n| n < BOOST_VOTES)) {
        rounds += 1;
        assert!(rounds <= 12, "no split after 12 battles: {votes:?}");
        let ((model_a, model_b, p), vote) = battle(&a).await;
        let want = expected_probability(&model_a, &model_b, &votes);
        assert!(
            (p - want).abs() <= 1e-12 * want,
            "battle {rounds} {model_a} vs {model_b}: stored {p}, scheme {want}, votes {votes:?}"
        );
        if vote["counted"] == true {
            for m in [&model_a, &model_b] {
                *votes.entry(m.clone()).or_default() += 1;
            }
        }
    }

    // A named battle was not drawn: no probability.
    let named = post(
        &a.c.http,
        "/api/battles",
        json!({"mode": "named", "model_a": "tiny-b", "model_b": "tiny-c"}),
    )
    .await;
    assert_eq!(named.status, 200, "{}", named.text);
    let id = named.json()["id"].as_str().unwrap().to_string();
    let stored = rows(
        &a.db_url,
        &format!("SELECT pair_probability FROM battles WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(stored, vec![vec![String::new()]]);

    // The leaderboard: provisional below the threshold, the threshold stated.
    let board = get(&a.c.http, "/api/leaderboard").await;
    assert_eq!(board.status, 200, "{}", board.text);
    let board = board.json();
    assert_eq!(board["provisional_votes"], BOOST_VOTES, "{board}");
    let rated = board["models"].as_array().unwrap();
    assert_eq!(rated.len(), votes.len(), "{board}");
    for row in rated {
        let model = row["model"].as_str().unwrap();
        assert_eq!(
            row["provisional"],
            json!(votes[model] < BOOST_VOTES),
            "{model}: {votes:?}"
        );
    }

    // `arena leaderboard` marks the same models, and can weigh by inverse probability.
    let out = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        &a.db_url,
        "--provisional-votes",
        &BOOST_VOTES.to_string(),
        "--ipw",
        "--format",
        "json",
    ]);
    let cli: Vec<Value> = serde_json::from_str(&out).expect("JSON rows");
    for row in &cli {
        let model = row["model"].as_str().unwrap();
        assert_eq!(
            row["provisional"],
            json!(votes[model] < BOOST_VOTES),
            "{out}"
        );
    }
    let table = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        &a.db_url,
        "--provisional-votes",
        &BOOST_VOTES.to_string(),
        "--ipw",
    ]);
    assert!(table.contains("inverse-propensity weighted"), "{table}");
    assert!(
        table.contains("provisional: fewer than 2 counted votes"),
        "{table}"
    );
}

on_both_backends!(
    boosted_battles_store_their_exact_probability,
    boosted_battles_store_their_exact_probability
);

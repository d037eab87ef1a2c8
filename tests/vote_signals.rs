//! Votes you can trust, end to end: a real controller with low client-rule thresholds and two
//! tiny workers. A client voting for one side past the streak limit, or sooner after the
//! answers than the minimum delay, has its votes stored but not counted, with the rule and a
//! reason; `/api/leaderboard` and `arena leaderboard` report how many each rule excluded.
//! The signals come from the server's clock and store: nothing in the request moves them.
//! Every test runs on SQLite and Postgres.

mod common;

use std::time::Duration;

use arena_testkit::on_both_backends;
use common::{get, post, rows};
use serde_json::{json, Value};

/// Longer than the controller's --min-vote-delay-ms below: a vote after it is not too fast.
const READ: Duration = Duration::from_millis(1600);

/// A new anonymous battle with one greedy turn answered on both sides; its id.
async fn answered_battle(http: &str) -> String {
    let id = common::open_battle(http).await;
    // The prompt of tests/arena.rs: the tiny models' greedy answers to it name no model.
    common::answer_turn(http, &id, "Hello there", 8).await;
    id
}

/// The stored signals of battle `id`'s vote: delay, hour count, streak, rule.
async fn signals(db: &str, id: &str) -> (i64, i64, i64, String) {
    let r = rows(
        db,
        &format!(
            "SELECT answer_to_vote_ms, client_votes_hour, same_side_streak, exclusion_rule \
             FROM votes WHERE battle_id = '{id}'"
        ),
    )
    .await;
    assert_eq!(r.len(), 1, "{r:?}");
    let n = |i: usize| r[0][i].parse::<i64>().unwrap();
    (n(0), n(1), n(2), r[0][3].clone())
}

async fn streaks_and_fast_votes_are_stored_but_not_counted(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin()
        .spawn_arena(
            backend,
            dir.path(),
            &[
                "--max-same-side-streak",
                "2",
                "--min-vote-delay-ms",
                "1500",
                "--max-votes-per-hour",
                "100",
            ],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let (http, db) = (a.c.http.as_str(), a.db_url.as_str());

    // Two votes for side A, each after reading: both count.
    let mut ids = Vec::new();
    for n in 1..=2 {
        let id = answered_battle(http).await;
        tokio::time::sleep(READ).await;
        let v = common::vote(http, &id, "model_a").await;
        assert_eq!(
            (&v["counted"], &v["reason"]),
            (&json!(true), &Value::Null),
            "{v}"
        );
        let (delay, hour, streak, rule) = signals(db, &id).await;
        assert!(delay >= 1500, "{delay}");
        assert_eq!((hour, streak, rule.as_str()), (n, n, ""));
        ids.push(id);
    }

    // The third in a row. The request cannot carry its own signals, and a forwarded-for
    // header from an untrusted peer does not make it another client.
    let id = answered_battle(http).await;
    tokio::time::sleep(READ).await;
    let forged = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "model_a", "same_side_streak": 0, "answer_to_vote_ms": 60000}),
    )
    .await;
    assert!(
        forged.status == 400 || forged.status == 422,
        "{} {}",
        forged.status,
        forged.text
    );
    assert!(forged.text.contains("unknown field"), "{}", forged.text);
    assert_eq!(
        rows(
            db,
            &format!("SELECT id FROM votes WHERE battle_id = '{id}'")
        )
        .await
        .len(),
        0
    );
    let v = reqwest::Client::new()
        .post(format!("{http}/api/battles/{id}/vote"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"winner": "model_a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), 200);
    let v: Value = v.json().await.unwrap();
    assert_eq!(v["counted"], false, "{v}");
    assert_eq!(v["rule"], "same_side_streak", "{v}");
    assert_eq!(
        v["reason"],
        "3 votes in a row for model A from this client (at most 2 in a row count)"
    );
    // The names are revealed as for any vote.
    assert!(v["model_a"].is_string(), "{v}");
    let (delay, hour, streak, rule) = signals(db, &id).await;
    assert!(delay >= 1500, "{delay}");
    assert_eq!((hour, streak, rule.as_str()), (3, 3, "same_side_streak"));

    // And the fourth.
    let id = answered_battle(http).await;
    tokio::time::sleep(READ).await;
    let v = common::vote(http, &id, "model_a").await;
    assert_eq!(
        (&v["counted"], &v["rule"]),
        (&json!(false), &json!("same_side_streak")),
        "{v}"
    );

    // A vote the moment the answers end is too fast, whatever side it takes.
    let id = answered_battle(http).await;
    let v = common::vote(http, &id, "model_b").await;
    assert_eq!(
        (&v["counted"], &v["rule"]),
        (&json!(false), &json!("too_fast")),
        "{v}"
    );
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains(" s after the answers finished (the minimum is 1.5 s)"),
        "{reason}"
    );
    let (delay, hour, streak, _) = signals(db, &id).await;
    assert!(delay < 1500, "{delay}");
    assert_eq!((hour, streak), (5, 1));

    // The leaderboard counts the two votes that count and reports the three that do not.
    let board = get(http, "/api/leaderboard").await.json();
    assert_eq!(board["votes"], 2, "{board}");
    assert_eq!(
        board["excluded"],
        json!([
            {"rule": "same_side_streak", "label": "same-side streak", "votes": 2},
            {"rule": "too_fast", "label": "too fast", "votes": 1},
        ]),
        "{board}"
    );
    let styled = get(http, "/api/leaderboard?style_control=true")
        .await
        .json();
    assert_eq!(styled["excluded"], board["excluded"]);

    // So does the command line, on stderr, keeping stdout one JSON array.
    let out = common::bin()
        .command()
        .args(["leaderboard", "--database-url", db, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Not counted: 3 votes (same-side streak 2, too fast 1)"),
        "{stderr}"
    );
    let ratings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ratings.as_array().unwrap().len(), 2, "{ratings}");
}
on_both_backends!(
    a_client_past_the_thresholds_has_its_votes_stored_but_not_counted,
    streaks_and_fast_votes_are_stored_but_not_counted
);

#[tokio::test(flavor = "multi_thread")]
async fn the_page_serves_the_excluded_votes_line() {
    let c = common::bin().spawn_controller(&[]);
    let page = get(&c.http, "/").await;
    assert!(page.text.contains("/exclusions.js"), "{}", page.text);
    assert!(page.text.contains("id=\"leaderboard-excluded\""));
    let js = get(&c.http, "/exclusions.js").await;
    assert_eq!(js.status, 200);
    assert!(js.text.contains("Not counted: "), "{}", js.text);
    // Text only: nothing reaches the page as HTML.
    assert!(!js.text.contains("innerHTML"));
    // With no votes there is nothing to report.
    let board = get(&c.http, "/api/leaderboard").await.json();
    assert_eq!(board["excluded"], json!([]), "{board}");
}

//! Battles never get stuck and votes never judge partial answers: a client leaving
//! mid-answer, a controller killed with `kill -9`, and a vote raced with a new turn.

use std::path::Path;
use std::time::{Duration, Instant};

use arena_testkit::on_both_backends;
use serde_json::{json, Value};

use crate::common::{self, post, rows, wait_workers, Controller, Proc};

const STORY: &str = "Write a very long story about a dragon who learns to bake bread.";
/// A short lease, so a killed controller's answers are closed within the test.
const LEASE_MS: &str = "1500";

fn controller(db_url: &str) -> Controller {
    common::bin().spawn_controller(&["--database-url", db_url, "--answer-lease-ms", LEASE_MS])
}

/// Two SmolLM2 workers (one per contestant name) registered with `c`.
async fn smollm2_workers(c: &Controller) -> Vec<Proc> {
    let model = common::smollm2();
    let workers = ["smollm2-a", "smollm2-b"]
        .into_iter()
        .map(|name| {
            common::bin().spawn_registered_worker(
                &model,
                &c.grpc,
                &["--name", name, "--threads", "1"],
            )
        })
        .collect::<Vec<_>>();
    wait_workers(c, 2).await;
    workers
}

async fn new_battle(http: &str) -> String {
    let b = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(b.status, 200, "{}", b.text);
    b.json()["id"].as_str().unwrap().to_string()
}

/// Starts a long turn and returns its response once both sides have streamed text.
async fn long_turn_streaming(http: &str, id: &str) -> reqwest::Response {
    let mut resp = reqwest::Client::new()
        .post(format!("{http}/api/battles/{id}/turns"))
        .json(&json!({"text": STORY, "temperature": 0, "max_tokens": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(seen.contains(r#""side":"a","text""#) && seen.contains(r#""side":"b","text""#)) {
        let chunk = tokio::time::timeout_at(deadline.into(), resp.chunk())
            .await
            .expect("both sides did not stream in time")
            .unwrap()
            .expect("the turn ended before both sides streamed");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    resp
}

/// The finish reasons of the battle's current answers, side A first.
async fn finishes(db_url: &str, id: &str) -> Vec<String> {
    rows(
        db_url,
        &format!(
            "SELECT m.finish_reason FROM messages m JOIN battles b \
             ON m.conversation_id IN (b.conversation_a, b.conversation_b) \
             WHERE b.id = '{id}' AND m.role = 'assistant' AND NOT m.superseded \
             ORDER BY CASE WHEN m.conversation_id = b.conversation_a THEN 0 ELSE 1 END"
        ),
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

async fn wait_finishes(db_url: &str, id: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = finishes(db_url, id).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "answers {got:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn vote(http: &str, id: &str) -> common::Answer {
    post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "tie"}),
    )
    .await
}

/// Interrupted answers: the vote is refused saying so, a regeneration answers again, and
/// the vote then counts.
async fn refused_then_regenerated(http: &str, id: &str) {
    let v = vote(http, id).await;
    assert_eq!(v.status, 409, "{}", v.text);
    assert_eq!(v.json()["error"]["code"], "answers_not_finished");
    assert!(v.text.contains("interrupted"), "{}", v.text);
    let r = post(
        http,
        &format!("/api/battles/{id}/regenerate"),
        json!({"temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ends: Vec<Value> = r
        .events()
        .into_iter()
        .filter(|e| e["type"] == "end")
        .collect();
    assert_eq!(ends.len(), 2, "{}", r.text);
    let v = vote(http, id).await;
    assert_eq!(v.status, 200, "{}", v.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_mid_answer_leaves_interrupted_answers_that_regenerate() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = arena_testkit::db::database_url("sqlite", dir.path()).await;
    let c = controller(&db_url);
    let _workers = smollm2_workers(&c).await;
    let id = new_battle(&c.http).await;
    drop(long_turn_streaming(&c.http, &id).await);
    wait_finishes(&db_url, &id, &["interrupted", "interrupted"]).await;
    refused_then_regenerated(&c.http, &id).await;
}

async fn killed_controller(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db_url = arena_testkit::db::database_url(backend, dir.path()).await;
    let first = controller(&db_url);
    let workers = smollm2_workers(&first).await;
    let id = new_battle(&first.http).await;
    let streaming = long_turn_streaming(&first.http, &id).await;
    assert!(std::process::Command::new("kill")
        .args(["-9", &first.proc.pid().to_string()])
        .status()
        .unwrap()
        .success());
    drop(streaming);
    drop(workers);
    assert_eq!(finishes(&db_url, &id).await, ["generating", "generating"]);

    // A new controller on the same database closes the dead answers once their lease ends.
    let second = controller(&db_url);
    let _workers = smollm2_workers(&second).await;
    wait_finishes(&db_url, &id, &["interrupted", "interrupted"]).await;
    refused_then_regenerated(&second.http, &id).await;
}
on_both_backends!(
    a_battle_interrupted_by_kill_9_can_regenerate_after_restart,
    killed_controller
);

async fn tiny_arena(dir: &Path, model: &Path) -> common::Arena {
    common::bin()
        .spawn_arena(
            "sqlite",
            dir,
            &[],
            &[(model, "tiny-a", &[]), (model, "tiny-b", &[])],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vote_raced_with_a_new_turn_never_lets_both_through() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = tiny_arena(dir.path(), &model).await;
    let http = a.c.http.as_str();
    let turn = async |id: &str| {
        post(
            http,
            &format!("/api/battles/{id}/turns"),
            json!({"text": "hello", "max_tokens": 4}),
        )
        .await
    };
    for _ in 0..8 {
        let id = new_battle(http).await;
        assert_eq!(turn(&id).await.status, 200);
        let (v, t) = tokio::join!(vote(http, &id), turn(&id));
        // Both may pass only in sequence: a short turn can end before the vote arrives, and
        // then the vote judges it (turn 2). A vote on turn 1 beside a second turn means the
        // turn started after the vote.
        if v.status == 200 && t.status == 200 {
            let sql = format!("SELECT turn FROM votes WHERE battle_id = '{id}'");
            assert_eq!(
                rows(&a.db_url, &sql).await,
                [["2"]],
                "a turn started after the vote: {} / {}",
                v.text,
                t.text
            );
        }
        assert!(
            v.status == 200 || t.status == 200,
            "{} / {}",
            v.text,
            t.text
        );
    }
}

//! Leaderboard categories end to end: a real controller with two tiny-model workers, on a
//! fresh SQLite file or Postgres database; each vote is tagged from its battle's first prompt,
//! and `/api/leaderboard?category=C` and `arena leaderboard --category C` rate only those votes.

mod common;

use arena_testkit::on_both_backends;
use common::get;
use serde_json::{json, Value};

/// An anonymous battle opened with `prompt`, answered, and voted `winner`: the vote's answer.
async fn battle(http: &str, prompt: &str, winner: &str) -> Value {
    let id = common::open_battle(http).await;
    common::answer_turn(http, &id, prompt, 4).await;
    common::vote(http, &id, winner).await
}

async fn categories(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin()
        .spawn_arena(
            backend,
            dir.path(),
            &["--category-min-battles", "2"],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let http = &a.c.http;

    let coding = "Write a Python function that returns the squares of a list of numbers";
    let vote = battle(http, coding, "model_a").await;
    assert_eq!(vote["categories"], json!(["coding", "english"]), "{vote}");
    battle(http, coding, "model_a").await;
    let vote = battle(
        http,
        "Quelle est la capitale de la France, et pourquoi est-elle si célèbre ?",
        "tie",
    )
    .await;
    assert_eq!(
        vote["categories"],
        json!(["french", "non_english"]),
        "{vote}"
    );

    let all = get(http, "/api/leaderboard").await.json();
    assert_eq!(all["votes"], 3, "{all}");
    assert_eq!(all["category"], Value::Null);
    let menu: Vec<(String, u64)> = all["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["votes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        menu,
        [
            ("coding".to_string(), 2),
            ("english".to_string(), 2),
            ("french".to_string(), 1),
            ("non_english".to_string(), 1)
        ]
    );

    // The coding board: its two votes, both models with the two battles the flag asks for.
    let board = get(http, "/api/leaderboard?category=coding").await;
    assert_eq!(board.status, 200, "{}", board.text);
    let board = board.json();
    assert_eq!(board["votes"], 2, "{board}");
    assert_eq!(board["category"], "coding");
    assert_eq!(board["category_min_battles"], 2);
    assert_eq!(board["hidden_models"], 0);
    assert_eq!(board["models"].as_array().unwrap().len(), 2, "{board}");
    // One French battle is below the minimum: its models are left off that board.
    let french = get(http, "/api/leaderboard?category=french&style_control=true")
        .await
        .json();
    assert_eq!(french["votes"], 1, "{french}");
    assert_eq!(french["hidden_models"], 2, "{french}");
    assert_eq!(french["models"], json!([]), "{french}");
    assert_eq!(french["style_control"], true);

    // Bad and unknown categories are told apart.
    let unknown = get(http, "/api/leaderboard?category=math").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.text.contains("coding, english"), "{}", unknown.text);
    for bad in ["Coding", "%3Cscript%3E", "a%20b"] {
        let r = get(http, &format!("/api/leaderboard?category={bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.json()["error"]["param"], "category", "{}", r.text);
    }

    // The command line rates the same votes.
    let db = &a.db_url;
    let out = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        db,
        "--category",
        "coding",
        "--category-min-battles",
        "2",
        "--format",
        "json",
    ]);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{out}");
    assert_eq!(rows[0]["battles"], 2, "{out}");
    let out = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        db,
        "--category",
        "coding",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.trim(),
        "[]",
        "the default minimum of 10 battles lists nobody: {out}"
    );
    // The export carries each vote's tags, its language as the dataset names it, and the
    // probability its pair was drawn with (two models: the one pair, always).
    let out = common::bin().ok(&["export", "--format", "chatbot-arena", "--database-url", db]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tagged: Vec<(Value, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["categories"].clone(),
                r["language"].clone(),
                r["pair_probability"].clone(),
            )
        })
        .collect();
    assert_eq!(
        tagged,
        [
            (json!(["coding", "english"]), json!("English"), json!(1.0)),
            (json!(["coding", "english"]), json!("English"), json!(1.0)),
            (
                json!(["french", "non_english"]),
                json!("French"),
                json!(1.0)
            ),
        ],
        "{out}"
    );
    let file = dir.path().join("battles.jsonl");
    std::fs::write(
        &file,
        "{\"model_a\": \"x\", \"model_b\": \"y\", \"winner\": \"model_a\"}\n",
    )
    .unwrap();
    let refused = common::bin()
        .command()
        .args([
            "leaderboard",
            "--battles",
            file.to_str().unwrap(),
            "--category",
            "coding",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("battles file carries no tags"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
on_both_backends!(votes_are_rated_by_category, categories);

/// An OpenAI-compatible labeller: prompts containing "HARD" meet six criteria, "BROKEN" ones
/// get a server error, the rest one criterion; returns its base URL and how many calls it got.
async fn labeller() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |axum::Json(req): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let prompt = req["messages"][1]["content"].as_str().unwrap_or("").to_string();
                assert!(req["messages"][0]["content"]
                    .as_str()
                    .unwrap()
                    .contains("7 criteria"));
                if prompt.contains("BROKEN") {
                    return (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({"error": {"message": "no"}})));
                }
                let criteria = if prompt.contains("HARD") { "[1, 2, 3, 4, 5, 6]" } else { "[4]" };
                let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": criteria}, "finish_reason": "stop"}]});
                (axum::http::StatusCode::OK, axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_labeller_tags_hard_prompts_after_the_vote() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let (url, calls) = labeller().await;
    let a = common::bin()
        .spawn_arena(
            "sqlite",
            dir.path(),
            &[
                "--hard-prompt-labeller",
                &url,
                "--hard-prompt-model",
                "judge",
                "--category-min-battles",
                "1",
            ],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let http = &a.c.http;
    battle(
        http,
        "HARD: design a lock-free queue and prove it linearizable",
        "model_a",
    )
    .await;
    battle(http, "Say hi", "model_b").await;
    // A labeller failing leaves its vote untagged; the vote itself was taken (200 above).
    battle(http, "BROKEN prompt", "tie").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let hard = loop {
        let board = get(http, "/api/leaderboard").await.json();
        let hard = board["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "hard_prompt")
            .cloned();
        if hard.is_some() && calls.load(std::sync::atomic::Ordering::SeqCst) >= 3 {
            break hard;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no hard_prompt tag: {board}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(hard.unwrap()["votes"], 1);
    let board = get(http, "/api/leaderboard?category=hard_prompt")
        .await
        .json();
    assert_eq!(board["votes"], 1, "{board}");
    assert_eq!(board["models"].as_array().unwrap().len(), 2, "{board}");
}

//! The arena with the real SmolLM2 model: two contestants (one set of weights under two
//! templates, in two worker processes), an identity leak and a worker dying mid-answer.

mod common;

use std::time::{Duration, Instant};

use arena_testkit::on_both_backends;
use common::{get, post, rows, Arena};
use serde_json::{json, Value};

async fn smollm2_arena(backend: &str, dir: &std::path::Path) -> Arena {
    common::bin().spawn_smollm2_arena(backend, dir).await
}

async fn new_battle(http: &str) -> String {
    let b = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(b.status, 200, "{}", b.text);
    b.json()["id"].as_str().unwrap().to_string()
}

async fn identity_leak(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = smollm2_arena(backend, dir.path()).await;
    let http = &a.c.http;
    let id = new_battle(http).await;
    let t = post(
        http,
        &format!("/api/battles/{id}/turns"),
        // Both contestants answer with the name ("I am a helpful AI named SmolLM." and "...
        // I am SmolLM.") by at least 0.33 logits at every step, on f32 and BF16 attention;
        // "Introduce yourself." named it on f32 attention only ("a helpful AI named SmolLM"
        // against "a helpful AI designed to ..." on BF16: a near-tie).
        json!({"text": "Repeat exactly: I am SmolLM.", "temperature": 0, "max_tokens": 24}),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let answers = format!("{} | {}", t.text_of("a"), t.text_of("b"));
    assert!(
        answers.contains("SmolLM"),
        "SmolLM2 no longer names itself: {answers}"
    );
    let v = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "model_a"}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let v = v.json();
    assert_eq!(v["counted"], false, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("smollm"), "{v}");
    let stored = rows(
        &a.db_url,
        &format!("SELECT winner, excluded_reason FROM votes WHERE battle_id = '{id}'"),
    )
    .await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0][0], "model_a");
    assert!(
        stored[0][1].contains("revealed a model identity"),
        "{stored:?}"
    );
    let board = get(http, "/api/leaderboard").await.json();
    assert_eq!(
        board["models"],
        json!([]),
        "an excluded vote ranked models: {board}"
    );
}
on_both_backends!(
    a_vote_on_an_answer_naming_its_model_is_stored_but_not_counted,
    identity_leak
);

async fn failing_mid_answer(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = smollm2_arena(backend, dir.path()).await;
    let http = a.c.http.clone();
    let id = new_battle(&http).await;
    // Which worker answers side B (the test may look; the browser may not).
    let b_model = rows(
        &a.db_url,
        &format!("SELECT model_b FROM battles WHERE id = '{id}'"),
    )
    .await[0][0]
        .clone();
    let b_worker = if b_model == "smollm2-135m" { 0 } else { 1 };

    let mut resp = reqwest::Client::new()
        .post(format!("{http}/api/battles/{id}/turns"))
        .json(&json!({"text": "Write a very long story about a dragon who learns to bake bread.", "temperature": 0, "max_tokens": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    let mut killed = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(chunk) = tokio::time::timeout_at(deadline.into(), resp.chunk())
        .await
        .expect("the turn did not finish in time")
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if !killed && seen.contains(r#""side":"b","text""#) {
            // Both answers are still running: a vote now is refused.
            let early = post(
                &http,
                &format!("/api/battles/{id}/vote"),
                json!({"winner": "tie"}),
            )
            .await;
            assert_eq!(early.status, 409, "{}", early.text);
            assert_eq!(early.json()["error"]["code"], "answers_not_finished");
            let pid = a.workers[b_worker].pid().to_string();
            assert!(std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap()
                .success());
            killed = true;
        }
    }
    assert!(killed, "side B never streamed: {seen}");
    let events: Vec<Value> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    let last_of = |side: &str| {
        events
            .iter()
            .rev()
            .find(|e| e["side"] == side && e["type"] != "delta")
            .cloned()
            .unwrap_or_else(|| panic!("side {side} has no end: {events:?}"))
    };
    assert_eq!(last_of("a")["type"], "end", "{events:?}");
    let b_end = last_of("b");
    assert_eq!(b_end["type"], "error", "{events:?}");
    assert!(
        !seen.contains("smollm2"),
        "a name leaked in the stream: {seen}"
    );
    assert_eq!(events.last().unwrap()["type"], "done");

    // A vote needs both answers complete: refused, saying which side to regenerate, and
    // without a model name.
    let v = post(
        &http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "model_a"}),
    )
    .await;
    assert_eq!(v.status, 409, "{}", v.text);
    assert_eq!(v.json()["error"]["code"], "answers_not_finished");
    assert!(
        v.text.contains("answer B did not complete (error)"),
        "{}",
        v.text
    );
    assert!(!v.text.contains("smollm2"), "{}", v.text);
    // The partial answer is kept, marked as an error.
    let stored = rows(
        &a.db_url,
        &format!("SELECT m.finish_reason, m.content FROM messages m JOIN battles b ON m.conversation_id = b.conversation_b WHERE b.id = '{id}' AND m.role = 'assistant'"),
    )
    .await;
    assert_eq!(stored[0][0], "error");
    assert!(!stored[0][1].is_empty());
    drop(a.workers.remove(b_worker));
}
on_both_backends!(
    one_side_failing_mid_answer_ends_that_side_only_and_takes_no_vote,
    failing_mid_answer
);

/// `arena demo` with `args`, its models in `models`, running until its page lists `names`.
async fn spawn_demo(
    models: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
    names: &[&str],
) -> (common::Proc, String) {
    let mut cmd = common::bin().command();
    cmd.args(["demo", "--http-addr", "127.0.0.1:0"])
        .args(args)
        .env("ARENA_MODELS", models)
        .env("ARENA_HOME", home)
        .env_remove("DATABASE_URL");
    let (demo, url) = common::spawn_until(
        cmd,
        arena_launch::demo::READY_LINE,
        Duration::from_secs(180),
    );
    let http = url.split_whitespace().next().unwrap().to_string();
    // The demo's ops port is private: wait until the page's own config lists the models.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let config = get(&http, "/api/config").await.json();
        let listed: Vec<String> = config["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().or(m["name"].as_str()).map(str::to_string))
            .collect();
        if names.iter().all(|n| listed.iter().any(|l| l == n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo's workers never registered: {config}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (demo, http)
}

#[tokio::test(flavor = "multi_thread")]
async fn arena_demo_serves_a_battle_and_stops_everything_on_a_signal() {
    let home = tempfile::tempdir().unwrap();
    let models = common::smollm2().parent().unwrap().to_path_buf();
    let (demo, http) = spawn_demo(
        &models,
        home.path(),
        &[],
        &["smollm2-135m", "smollm2-135m (vicuna template)"],
    )
    .await;
    let id = new_battle(&http).await;
    let t = post(
        &http,
        &format!("/api/battles/{id}/turns"),
        json!({"text": "What is the capital of France? Answer in one word.", "temperature": 0, "max_tokens": 12}),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(
        t.text_of("a").contains("Paris") || t.text_of("b").contains("Paris"),
        "{}",
        t.text
    );
    let v = post(
        &http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "tie"}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text);
    // The store is the default one: SQLite in ARENA_HOME.
    assert!(home.path().join("arena.db").exists());

    let mut demo = demo;
    demo.terminate();
    let status = demo
        .wait(Duration::from_secs(30))
        .expect("the demo did not stop");
    assert!(status.success(), "{}", demo.log());
    // Its controller and workers are gone with it.
    assert!(reqwest::get(format!("{http}/health")).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn arena_demo_train_serves_the_fine_tuned_model_beside_its_parent() {
    use arena_launch::trained::{ensure_trained, TRAINED_NAME};
    let home = tempfile::tempdir().unwrap();
    let models = tempfile::tempdir().unwrap();
    let base = models.path().join(arena_launch::demo::MODEL_FILE);
    std::os::unix::fs::symlink(common::smollm2(), &base).unwrap();
    // The real recipe takes an hour: one short step of it on four conversations stands in.
    let data = models.path().join("data.jsonl");
    let line = |q: &str, a: &str| {
        json!({"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
            .to_string()
    };
    let lines: Vec<String> = (0..4)
        .map(|i| {
            line(
                &format!("Say the number {i}."),
                &format!("The number is {i}."),
            )
        })
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = models.path().join(TRAINED_NAME);
    let arena = std::path::Path::new(env!("CARGO_BIN_EXE_arena"));
    let short = ["--lora-rank", "4", "--lr", "1e-3", "--max-steps", "1"];
    ensure_trained(arena, &base, &data, &out, &short).unwrap();
    let weights = out.join("model.safetensors");
    let written = std::fs::metadata(&weights).unwrap().modified().unwrap();
    // Once there, it is used as it is.
    ensure_trained(arena, &base, &data, &out, &short).unwrap();
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        written
    );

    let (demo, http) = spawn_demo(
        models.path(),
        home.path(),
        &["--train"],
        &["smollm2-135m", TRAINED_NAME],
    )
    .await;
    let id = new_battle(&http).await;
    let t = post(
        &http,
        &format!("/api/battles/{id}/turns"),
        json!({"text": "What is the capital of France?", "temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(
        !t.text_of("a").is_empty() && !t.text_of("b").is_empty(),
        "{}",
        t.text
    );
    let v = post(
        &http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "model_a"}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert!(
        v.text.contains(TRAINED_NAME) && v.text.contains("smollm2-135m"),
        "the vote reveals both: {}",
        v.text
    );
    let mut demo = demo;
    demo.terminate();
    assert!(demo
        .wait(Duration::from_secs(30))
        .expect("the demo did not stop")
        .success());
}

//! Two controller replicas sharing one registry through Redis.
//!
//! `scripts/test.sh` starts a throwaway Redis and sets `ARENA_TEST_REDIS_URL`.

mod common;

use serde_json::{json, Value};

fn redis_url() -> String {
    let base = std::env::var("ARENA_TEST_REDIS_URL").expect(
        "ARENA_TEST_REDIS_URL is not set: run scripts/test.sh, which starts a throwaway Redis",
    );
    // A database of its own, so other runs against the same server cannot interfere.
    format!("{base}/{}", 1 + common::rand_u64() % 15)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_registered_with_one_replica_is_routable_from_the_other() {
    let url = redis_url();
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin().spawn_controller(&["--redis-url", &url]);
    let b = common::bin().spawn_controller(&["--redis-url", &url]);
    let _w = common::bin().spawn_registered_worker(&model, &a.grpc, &["--worker-id", "shared-w"]);
    common::wait_workers(&a, 1).await;
    // Replica B never saw the worker's registration, yet lists and routes to it.
    common::wait_workers(&b, 1).await;
    let body = json!({"model": "tiny-chat", "messages": [{"role": "user", "content": "hello"}], "temperature": 0, "max_tokens": 6});
    for c in [&a, &b] {
        let (status, text) = common::post_chat(&c.http, &body).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], 6);
    }
    // A third replica started later loads the shared registry before it serves.
    let late = common::bin().spawn_controller(&["--redis-url", &url]);
    let listed = common::workers(&late).await;
    assert_eq!(listed[0]["id"], "shared-w", "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_redis_stops_start_up_with_a_clear_message() {
    let port = common::free_port();
    let out = common::bin()
        .controller_command()
        .args(["--redis-url", &format!("redis://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis") && err.contains(&port.to_string()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_redis_share_each_clients_rate_limit() {
    let url = redis_url();
    let args = [
        "--redis-url",
        url.as_str(),
        "--rate-limit",
        "2",
        "--rate-window-s",
        "3600",
        "--trusted-proxies",
        "127.0.0.1",
    ];
    let a = common::bin().spawn_controller(&args);
    let b = common::bin().spawn_controller(&args);
    // A client address of this run's own, so earlier runs' counts in this Redis do not matter.
    let client = format!(
        "10.{}.{}.{}",
        common::rand_u64() % 250,
        common::rand_u64() % 250,
        common::rand_u64() % 250
    );
    let create = |http: String| {
        let client = client.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{http}/api/battles"))
                .header("x-forwarded-for", client)
                .json(&serde_json::json!({"mode": "anonymous"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").cloned())
        }
    };
    // No models here, so these are 503s, but they count all the same.
    assert_eq!(create(a.http.clone()).await.0, 503);
    assert_eq!(create(b.http.clone()).await.0, 503);
    let (status, retry) = create(a.http.clone()).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    let (status, _) = create(b.http.clone()).await;
    assert_eq!(status, 429, "replica B did not see replica A's count");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_one_leaderboard_through_redis_and_recompute_on_new_votes() {
    let url = redis_url();
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    // Two replicas on one Postgres and one Redis, as in production.
    let db = arena_testkit::db::database_url("postgres", dir.path()).await;
    let args = [
        "--redis-url",
        url.as_str(),
        "--database-url",
        db.as_str(),
        "--leaderboard-interval-s",
        "0",
    ];
    let a = common::bin().spawn_controller(&args);
    let b = common::bin().spawn_controller(&args);
    let _w1 = common::bin().spawn_registered_worker(&model, &a.grpc, &["--name", "tiny-a"]);
    let _w2 = common::bin().spawn_registered_worker(&model, &a.grpc, &["--name", "tiny-b"]);
    common::wait_workers(&a, 2).await;
    common::wait_workers(&b, 2).await;
    let board = |http: String| async move {
        reqwest::get(format!("{http}/api/leaderboard"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let battle = |http: String| async move {
        use common::post;
        let id = post(
            &http,
            "/api/battles",
            serde_json::json!({"mode": "anonymous"}),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let t = post(
            &http,
            &format!("/api/battles/{id}/turns"),
            serde_json::json!({"text": "hi", "temperature": 0, "max_tokens": 4}),
        )
        .await;
        assert_eq!(t.status, 200, "{}", t.text);
        let v = post(
            &http,
            &format!("/api/battles/{id}/vote"),
            serde_json::json!({"winner": "model_a"}),
        )
        .await;
        assert_eq!(v.status, 200, "{}", v.text);
    };
    // A battle started on one replica is voted on through the other.
    battle(a.http.clone()).await;
    let first = board(a.http.clone()).await;
    assert_eq!(first["votes"], 1, "{first}");
    // Replica B serves A's computation instead of recomputing it.
    let shared = board(b.http.clone()).await;
    assert_eq!(shared["computed_ms"], first["computed_ms"]);
    // A new vote (through B) makes the next request recompute.
    battle(b.http.clone()).await;
    let second = board(a.http.clone()).await;
    assert_eq!(second["votes"], 2, "{second}");
    assert_ne!(second["computed_ms"], first["computed_ms"]);
}

/// One greedy chat turn of `messages` through `http` in conversation `session`: the answer,
/// its prompt tokens and the prompt tokens the worker's prefix cache served.
async fn session_turn(http: &str, messages: &[Value], session: &str) -> (String, u64, u64) {
    let body = json!({"model": "smol", "messages": messages, "max_tokens": 12, "temperature": 0});
    let r = reqwest::Client::new()
        .post(format!("{http}/v1/chat/completions"))
        .header("x-session-id", session)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    (text.to_string(), prompt, cached)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversations_turns_find_their_worker_through_either_replica() {
    let url = redis_url();
    let model = common::smollm2();
    let a = common::bin().spawn_controller(&["--redis-url", &url]);
    let b = common::bin().spawn_controller(&["--redis-url", &url]);
    let worker = ["--name", "smol", "--threads", "1"];
    let _w1 = common::bin().spawn_registered_worker(&model, &a.grpc, &worker);
    let _w2 = common::bin().spawn_registered_worker(&model, &a.grpc, &worker);
    common::wait_workers(&a, 2).await;
    common::wait_workers(&b, 2).await;
    // A load balancer without sticky sessions: the turns alternate between the replicas, and
    // each later turn still reuses the whole previous prompt, so it reached the worker that
    // served the turn before. Replica B alone has never seen the conversation; choosing
    // without the shared map, one round in two would land on the other worker (it would then
    // reuse only the template's opening): six rounds pass by chance once in 64 runs.
    let run = common::rand_u64();
    for round in 0..6 {
        let session = format!("replicas-{run}-{round}");
        let mut messages = vec![json!({"role": "user", "content": "Name a color."})];
        let mut turns = Vec::new();
        for (i, next) in ["Name another one.", "And a third?", ""].iter().enumerate() {
            let http = if i % 2 == 0 { &a.http } else { &b.http };
            let (answer, prompt, cached) = session_turn(http, &messages, &session).await;
            turns.push((prompt, cached));
            messages.push(json!({"role": "assistant", "content": answer}));
            messages.push(json!({"role": "user", "content": next}));
        }
        assert!(
            turns.windows(2).all(|w| w[1].1 >= w[0].0),
            "round {round}: (prompt, cached) per turn {turns:?}"
        );
    }
}

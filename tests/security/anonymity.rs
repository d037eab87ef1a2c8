//! Nothing public tells an anonymous battle's sides apart before the vote: not the ops data
//! (on a private listener), not the public endpoints polled while one's own battle streams,
//! not the stream itself (whole words, no token counts).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, get, post};

/// Every GET the public listener answers, as an attacker would poll them.
const PUBLIC: [&str; 8] = [
    "/health",
    "/ready",
    "/api/config",
    "/api/leaderboard",
    "/v1/models",
    "/api/workers",
    "/metrics",
    "/",
];

/// A public endpoint's answer, without the clock it may carry.
async fn observe(http: &str, path: &str) -> (u16, String) {
    let r = get(http, path).await;
    let mut body = r.text.clone();
    if let Ok(mut v) = serde_json::from_str::<Value>(&body) {
        if let Some(o) = v.as_object_mut() {
            o.remove("computed_ms");
        }
        body = v.to_string();
    }
    (r.status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn public_endpoints_and_the_stream_tell_nothing_about_the_sides() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::bin()
        .spawn_smollm2_arena("sqlite", dir.path())
        .await;
    let http = a.c.http.clone();
    // The ops data is there, on the private listener only.
    for path in ["/api/workers", "/metrics"] {
        assert_eq!(get(&a.c.ops, path).await.status, 200, "{path}");
        assert_eq!(get(&http, path).await.status, 404, "{path}");
    }
    let mut before = Vec::new();
    for path in PUBLIC {
        before.push(observe(&http, path).await);
    }

    let b = post(&http, "/api/battles", json!({"mode": "anonymous"})).await;
    let id = b.json()["id"].as_str().unwrap().to_string();
    let turn = {
        let http = http.clone();
        let id = id.clone();
        tokio::spawn(async move {
            post(
                &http,
                &format!("/api/battles/{id}/turns"),
                json!({"text": "Tell me about the sea in three sentences.", "temperature": 0, "max_tokens": 48}),
            )
            .await
        })
    };
    // Poll everything while both sides stream: nothing moves.
    let mut polls = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !turn.is_finished() {
        for (path, seen) in PUBLIC.iter().zip(&before) {
            assert_eq!(
                &observe(&http, path).await,
                seen,
                "{path} changed mid-battle"
            );
        }
        polls += 1;
        assert!(Instant::now() < deadline, "the turn did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(polls > 2, "the battle ended before it could be watched");
    let t = turn.await.unwrap();
    assert_eq!(t.status, 200, "{}", t.text);

    // The stream: whole words, and the ends carry no token counts.
    let events = t.events();
    for side in ["a", "b"] {
        let deltas: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "delta" && e["side"] == side)
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert!(deltas.len() > 1, "side {side}: {deltas:?}");
        // Deltas meet at whitespace: one ends with it, or (a word held past `MAX_HOLD` on a
        // loaded machine, then sent whole) the next starts with it.
        for pair in deltas.windows(2) {
            assert!(
                pair[0].ends_with(char::is_whitespace) || pair[1].starts_with(char::is_whitespace),
                "side {side} split a word: {deltas:?}"
            );
        }
        let end = events
            .iter()
            .find(|e| e["type"] == "end" && e["side"] == side)
            .unwrap_or_else(|| panic!("side {side} did not end: {events:?}"));
        assert!(end.get("tokens").is_none(), "{end}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_errors_read_the_same_for_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    // Two contestants with different contexts would give different numbers in their errors.
    let a = common::bin()
        .spawn_arena(
            "sqlite",
            dir.path(),
            &[],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let b = post(&a.c.http, "/api/battles", json!({"mode": "anonymous"})).await;
    let id = b.json()["id"].as_str().unwrap().to_string();
    // The tiny model's context is 256 tokens: this message does not fit on either side.
    let long = "word ".repeat(300);
    let t = post(
        &a.c.http,
        &format!("/api/battles/{id}/turns"),
        json!({"text": long, "max_tokens": 4}),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let errors: Vec<String> = t
        .events()
        .iter()
        .filter(|e| e["type"] == "error")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(errors.len(), 2, "{}", t.text);
    assert_eq!(errors[0], errors[1]);
    assert!(
        !errors[0].chars().any(|c| c.is_ascii_digit()),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("too long"), "{}", errors[0]);
}

//! The prefix cache across real processes: two workers serve the same SmolLM2 model, and the
//! turns of one conversation (the OpenAI `user` field, an `x-session-id` header, an arena
//! battle's side) go to the worker that served its last turn, which prefills only the new
//! turn. The usage says how many prompt tokens came from the cache; /metrics counts them. No
//! conversation's entries serve another's prompt.

mod common;

use common::{get, post, smollm2};
use serde_json::{json, Value};

const MODEL: &str = "smol";

/// One chat completion of `messages`: its answer, prompt tokens, and the prompt tokens the
/// cache served (`usage.prompt_tokens_details.cached_tokens`).
async fn turn(
    http: &str,
    messages: &[Value],
    user: Option<&str>,
    session: Option<&str>,
) -> (String, u64, u64) {
    let mut body =
        json!({"model": MODEL, "messages": messages, "max_tokens": 16, "temperature": 0});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    let mut req = reqwest::Client::new()
        .post(format!("{http}/v1/chat/completions"))
        .json(&body);
    if let Some(s) = session {
        req = req.header("x-session-id", s);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    if cached == 0 {
        assert!(v["usage"].get("prompt_tokens_details").is_none(), "{v}");
    }
    (text, v["usage"]["prompt_tokens"].as_u64().unwrap(), cached)
}

/// Three turns of one conversation; each turn's (prompt tokens, cached prompt tokens).
async fn conversation(http: &str, user: Option<&str>, session: Option<&str>) -> Vec<(u64, u64)> {
    let mut messages = vec![json!({"role": "user", "content": "Name a color."})];
    let mut cached = Vec::new();
    for next in ["Name another one.", "And a third?", ""] {
        let (answer, prompt, c) = turn(http, &messages, user, session).await;
        cached.push((prompt, c));
        if next.is_empty() {
            break;
        }
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": next}));
    }
    cached
}

/// The value of a counter for `model` in the Prometheus text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("model=\"{MODEL}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversations_turns_return_to_the_worker_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = smollm2();
    let one: &[&str] = &["--threads", "1"];
    let arena = common::bin()
        .spawn_arena(
            "sqlite",
            dir.path(),
            &[],
            &[(&model, MODEL, one), (&model, MODEL, one)],
        )
        .await;
    let http = arena.c.http.as_str();
    // Two workers, and the turns of each conversation always find their own: every later
    // turn reuses at least the whole previous prompt. On the other worker only the template's
    // opening would match (without affinity, half the turns would land there).
    let whole_previous = |turns: &[(u64, u64)]| turns.windows(2).all(|w| w[1].1 >= w[0].0);
    for round in 0..3 {
        let user = format!("user-{round}");
        let turns = conversation(http, Some(&user), None).await;
        assert!(whole_previous(&turns), "round {round}: {turns:?}");
        let session = format!("session-{round}");
        let turns = conversation(http, None, Some(&session)).await;
        assert!(whole_previous(&turns), "round {round}: {turns:?}");
    }
    // Every worker now holds first turns of "Name a color." (six conversations went to one of
    // two at random), yet another conversation sending that very turn meets none of them, nor
    // does a request of no conversation: the cached count (or a faster first token) would tell
    // a client what others had asked.
    let first = [json!({"role": "user", "content": "Name a color."})];
    for i in 0..6 {
        let session = (i % 2 == 0).then(|| format!("intruder-{i}"));
        let (_, prompt, cached) = turn(http, &first, None, session.as_deref()).await;
        assert!(prompt > 1);
        assert_eq!(
            cached, 0,
            "intruder {i} met another conversation's keys and values"
        );
    }
    // An arena battle between the two names of one model is not possible here; a named
    // side-by-side of the model against itself is refused, so a direct chat stands in for
    // the arena's conversations.
    let chat = post(http, "/api/chats", json!({"model": MODEL})).await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    let id = chat.json()["id"].as_str().unwrap().to_string();
    for text in ["Name a fruit.", "Name another one."] {
        let t = post(
            http,
            &format!("/api/chats/{id}/turns"),
            json!({"text": text, "temperature": 0, "max_tokens": 12}),
        )
        .await;
        assert_eq!(t.status, 200, "{}", t.text);
    }
    let metrics = get(&arena.c.ops, "/metrics").await.text;
    // 3 rounds x 2 conversations x 2 later turns, and the chat's second turn.
    assert!(
        counter(&metrics, "arena_prefix_cache_hits_total") >= 13,
        "{metrics}"
    );
    assert!(counter(&metrics, "arena_prefix_cache_tokens_saved_total") > 13 * 10);
}

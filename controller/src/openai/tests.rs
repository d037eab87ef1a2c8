//! The `/v1` router in process against a scripted gRPC worker: `n` choices dispatched at once
//! and interleaved, log-probabilities in every shape, `/v1/responses` streamed or not, and the
//! worker's errors naming the client's fields, and each conversation's own prefix-cache scope.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::test_support::{chat, post, post_json, post_with, setup, sse_events, TOGETHER};

#[tokio::test]
async fn n_choices_run_at_once_with_logprobs_and_summed_usage() {
    let (app, worker) = setup().await;
    let (status, body) = post_json(
        &app,
        "/v1/chat/completions",
        chat(json!({"n": 2, "seed": 7, "logprobs": true, "top_logprobs": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["content"], "Hello world");
        assert_eq!(c["finish_reason"], "stop");
        let content = c["logprobs"]["content"].as_array().unwrap();
        assert_eq!(content.len(), 4);
        assert_eq!(content[1]["token"], "lo");
        assert_eq!(content[1]["logprob"], -1.0);
        assert_eq!(content[1]["bytes"], json!([108, 111]));
        assert_eq!(content[1]["top_logprobs"][0]["token"], "lo");
        assert_eq!(content[1]["top_logprobs"].as_array().unwrap().len(), 2);
    }
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12})
    );
    let seen = worker.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let mut seeds: Vec<_> = seen
        .iter()
        .map(|r| r.params.as_ref().unwrap().seed)
        .collect();
    seeds.sort();
    assert_eq!(seeds, vec![Some(7), Some(8)], "each choice its own seed");
    assert!(seen.iter().all(|r| r.return_tokens));
    assert!(seen
        .iter()
        .all(|r| r.params.as_ref().unwrap().top_logprobs == Some(2)));
    assert_ne!(seen[0].request_id, seen[1].request_id);

    // Without logprobs the field is null and the worker is not asked for tokens.
    let (_, body) = post_json(&app, "/v1/chat/completions", chat(json!({}))).await;
    assert!(body["choices"][0]["logprobs"].is_null(), "{body}");
    assert!(!worker.seen.lock().unwrap()[2].return_tokens);
}

#[tokio::test]
async fn streamed_choices_interleave_with_their_index_then_usage_then_done() {
    let (app, _worker) = setup().await;
    let (status, text) = post(
        &app,
        "/v1/chat/completions",
        chat(json!({"n": 2, "stream": true, "logprobs": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": TOGETHER}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let events = sse_events(&text);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let mut texts = [String::new(), String::new()];
    let mut finishes = [0, 0];
    // Which choices had sent text when the first one finished.
    let mut before_first_finish = None;
    let mut with_text = [false, false];
    for c in &chunks[..chunks.len() - 1] {
        let choice = &c["choices"][0];
        let i = choice["index"].as_u64().unwrap() as usize;
        if let Some(t) = choice["delta"]["content"].as_str() {
            texts[i].push_str(t);
            with_text[i] = true;
            assert_eq!(choice["logprobs"]["content"][0]["token"], t, "{c}");
        }
        if !choice["finish_reason"].is_null() {
            finishes[i] += 1;
            before_first_finish.get_or_insert(with_text);
        }
    }
    assert_eq!(texts, ["Hello world", "Hello world"]);
    assert_eq!(finishes, [1, 1]);
    assert_eq!(
        before_first_finish,
        Some([true, true]),
        "both choices stream before either ends"
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    assert_eq!(usage["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn text_completions_have_legacy_logprobs() {
    let (app, _worker) = setup().await;
    let (status, body) = post_json(
        &app,
        "/v1/completions",
        json!({"model": "fake", "prompt": "hi", "logprobs": 2, "max_tokens": 4}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lp = &body["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"], json!(["Hel", "lo", " wor", "ld"]));
    assert_eq!(lp["token_logprobs"], json!([-0.5, -1.0, -1.5, -2.0]));
    assert_eq!(lp["text_offset"], json!([0, 3, 5, 9]));
    assert_eq!(lp["top_logprobs"][0], json!({"Hel": -0.5, "x": -1.5}));
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn responses_answer_whole_or_as_events() {
    let (app, worker) = setup().await;
    let (status, body) = post_json(
        &app,
        "/v1/responses",
        json!({"model": "fake", "input": "hi", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(body["output"][0]["content"][0]["text"], "Hello world");
    assert_eq!(body["usage"]["input_tokens"], 4);
    assert_eq!(body["usage"]["output_tokens"], 4);
    let seen = worker.seen.lock().unwrap()[0].clone();
    let text = format!("{:?}", seen.input);
    assert!(
        text.contains("system") && text.contains("Be brief."),
        "{text}"
    );

    let (status, text) = post(
        &app,
        "/v1/responses",
        json!({"model": "fake", "input": [{"role": "user", "content": "hi"}],
            "max_output_tokens": 2, "stream": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.incomplete",
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["sequence_number"], i);
        assert_eq!(d["type"], names[i]);
    }
    assert_eq!(data[4]["delta"], "Hel");
    assert_eq!(data[6]["text"], "Hello");
    let last = &data[9]["response"];
    assert_eq!(last["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(last["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(last["usage"]["output_tokens"], 2);

    let (_, text) = post(
        &app,
        "/v1/responses",
        json!({"model": "fake", "input": "fail", "stream": true}),
    )
    .await;
    let names: Vec<String> = sse_events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names[names.len() - 2..],
        ["error", "response.failed"],
        "{names:?}"
    );
}

#[tokio::test]
async fn worker_errors_name_the_clients_fields() {
    let (app, _worker) = setup().await;
    for (path, body, param) in [
        (
            "/v1/chat/completions",
            chat(json!({"max_tokens": 999})),
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"max_completion_tokens": 999})),
            "max_completion_tokens",
        ),
        (
            "/v1/completions",
            json!({"model": "fake", "prompt": "x", "max_tokens": 999}),
            "max_tokens",
        ),
        (
            "/v1/responses",
            json!({"model": "fake", "input": "x", "max_output_tokens": 999}),
            "max_output_tokens",
        ),
    ] {
        let (status, e) = post_json(&app, path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {e}");
        assert_eq!(e["error"]["param"], param, "{path}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("max_new_tokens") && message.contains(param),
            "{message}"
        );
    }
}

#[tokio::test]
async fn what_the_sdk_sends_is_accepted_and_the_rest_named() {
    let (app, _worker) = setup().await;
    let ok = chat(json!({"messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}));
    let (status, body) = post_json(&app, "/v1/chat/completions", ok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (body, param, code) in [
        (
            chat(
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            ),
            "messages[0].content[1].type",
            "unsupported_parameter",
        ),
        (
            chat(json!({"tools": [{"type": "function"}]})),
            "tools",
            "unsupported_parameter",
        ),
        (
            chat(json!({"whatever": 1})),
            "whatever",
            "unsupported_parameter",
        ),
        (chat(json!({"n": 9})), "n", "invalid_parameter"),
    ] {
        let (status, e) = post_json(&app, "/v1/chat/completions", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["param"], param, "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
    }
    let (status, e) = post_json(
        &app,
        "/v1/chat/completions",
        chat(json!({"temperature": "hot"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["param"], "temperature");
}

#[tokio::test]
async fn each_conversation_meets_only_itself_in_the_workers_prefix_cache() {
    let (app, worker) = setup().await;
    // (headers, body fields) of each request, and the scope the worker was sent for it.
    let calls: [(&[(&str, &str)], Value); 7] = [
        (&[], json!({})),
        (&[], json!({"user": "alice"})),
        (&[("x-session-id", "alice")], json!({})),
        (&[("x-session-id", "bob")], json!({"user": "alice"})),
        (&[("authorization", "Bearer k1")], json!({"user": "alice"})),
        (&[("authorization", "Bearer k2")], json!({"user": "alice"})),
        (&[("authorization", "Bearer k1")], json!({})),
    ];
    for (path, body) in [
        ("/v1/chat/completions", chat(json!({}))),
        ("/v1/completions", json!({"model": "fake", "prompt": "hi"})),
    ] {
        worker.seen.lock().unwrap().clear();
        for (headers, extra) in &calls {
            let mut body = body.clone();
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (status, text) = post_with(&app, path, headers, body).await;
            assert_eq!(status, StatusCode::OK, "{text}");
        }
        let scopes: Vec<String> = worker
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.cache_scope.clone().expect("the gateway sets a scope"))
            .collect();
        // No conversation: no cache at all, so no request's prompt meets another's.
        assert_eq!(scopes[0], "");
        assert_eq!(scopes[6], "", "a key alone is no conversation");
        // The `user` field and the session header name one conversation, the header first;
        // never an arena conversation, whatever its id.
        assert_eq!(scopes[1].len(), 64);
        assert_ne!(
            scopes[1],
            crate::gateway::affinity::cache_scope(Some("alice"))
        );
        assert_eq!(scopes[1], scopes[2]);
        assert_ne!(scopes[3], scopes[1]);
        // Under an API key, `alice` is that key's own: another key's `alice` is another.
        assert_ne!(scopes[4], scopes[1]);
        assert_ne!(scopes[5], scopes[4]);
        assert_eq!(scopes[4].len(), 64);
    }
}

//! API-hosted contestants: a second arena controller serves as the remote OpenAI-compatible
//! endpoint of the first.

mod common;

use serde_json::{json, Value};

fn request(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello world"}],
           "temperature": 0, "max_tokens": 12, "stream": stream})
}

fn stream_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_compatible_endpoint_is_a_model_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    // The remote: another arena with its own worker, behind an API key.
    let remote = common::bin().spawn_controller(&["--api-keys", "remote-secret"]);
    let _worker = common::bin().spawn_registered_worker(&model, &remote.grpc, &[]);
    common::wait_workers(&remote, 1).await;

    let file = dir.path().join("endpoints.toml");
    std::fs::write(
        &file,
        format!(
            "[[endpoint]]\nname = \"remote-tiny\"\nbase_url = \"{}/v1\"\nmodel = \"tiny-chat\"\napi_key_env = \"REMOTE_KEY\"\n\n[[endpoint]]\nname = \"battle-only\"\nbase_url = \"{}/v1\"\nbattle_only = true\n",
            remote.http, remote.http
        ),
    )
    .unwrap();
    let mut cmd = common::bin().controller_command();
    cmd.env("REMOTE_KEY", "remote-secret")
        .args(["--endpoints", file.to_str().unwrap()]);
    let local = common::start_controller(cmd);
    let http = local.http.clone();

    let models: Value = reqwest::get(format!("{http}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["remote-tiny"],
        "battle-only endpoints are not offered on the API"
    );

    // The same answer as asking the remote directly, streamed or not.
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", remote.http))
        .bearer_auth("remote-secret")
        .json(&request("tiny-chat", false))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let want = direct["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = common::post_chat(&http, &request("remote-tiny", false)).await;
    assert_eq!(status, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], want.as_str());
    assert_eq!(got["model"], "remote-tiny");
    assert_eq!(got["usage"]["completion_tokens"], 12);
    let (status, sse) = common::post_chat(&http, &request("remote-tiny", true)).await;
    assert_eq!(status, 200);
    assert_eq!(stream_text(&sse), want);
    assert!(sse.trim_end().ends_with("data: [DONE]"));

    // Its failures count like a worker's: the remote gone is a 503 naming the endpoint.
    drop(remote);
    let (status, body) = common::post_chat(&http, &request("remote-tiny", false)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("remote-tiny"), "{body}");
    drop(local);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_endpoints_file_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints.toml");
    std::fs::write(&file, "[[endpoint]]\nname = \"x\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"ARENA_UNSET_KEY_VAR\"\n").unwrap();
    let out = common::bin()
        .controller_command()
        .env_remove("ARENA_UNSET_KEY_VAR")
        .args(["--endpoints", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ARENA_UNSET_KEY_VAR"), "{err}");
}

/// An "older server" in front of `upstream` (an OpenAI-compatible base URL): it refuses any
/// request carrying `stream_options` with 400, as servers that reject unknown fields do, and
/// passes the others through, so its streams carry no usage. Returns its base URL.
async fn strict_proxy(upstream: String) -> String {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let upstream = upstream.clone();
            async move {
                if body.get("stream_options").is_some() {
                    let refusal = json!({"error": {"message": "Unrecognized request argument supplied: stream_options"}});
                    return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
                }
                let answer = reqwest::Client::new()
                    .post(format!("{upstream}/chat/completions"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(answer.bytes_stream()),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_sending_no_usage_still_stores_its_answers_token_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let remote = common::bin().spawn_controller(&[]);
    let _worker = common::bin().spawn_registered_worker(&model, &remote.grpc, &[]);
    common::wait_workers(&remote, 1).await;
    let old = strict_proxy(format!("{}/v1", remote.http)).await;

    let file = dir.path().join("endpoints.toml");
    std::fs::write(
        &file,
        format!(
            "[[endpoint]]\nname = \"old-server\"\nbase_url = \"{old}\"\nmodel = \"tiny-chat\"\n\n\
             [[endpoint]]\nname = \"with-usage\"\nbase_url = \"{}/v1\"\nmodel = \"tiny-chat\"\n",
            remote.http
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("arena.db").display());
    let local = common::bin().spawn_controller(&[
        "--database-url",
        &db,
        "--endpoints",
        file.to_str().unwrap(),
    ]);
    let battle = common::post(
        &local.http,
        "/api/battles",
        json!({"mode": "named", "model_a": "old-server", "model_b": "with-usage"}),
    )
    .await;
    assert_eq!(battle.status, 200, "{}", battle.text);
    let id = battle.json()["id"].as_str().unwrap().to_string();
    let turn = common::post(
        &local.http,
        &format!("/api/battles/{id}/turns"),
        json!({"text": "hello world", "temperature": 0, "max_tokens": 12}),
    )
    .await;
    assert_eq!(turn.status, 200, "{}", turn.text);
    // Both sides answered the same greedy text, one of them through the refusing server.
    assert!(!turn.text_of("a").is_empty(), "{}", turn.text);
    assert_eq!(turn.text_of("a"), turn.text_of("b"));

    let stored = common::rows(
        &db,
        "SELECT m.model, m.finish_reason, \
           CASE WHEN m.prompt_tokens IS NULL THEN 'null' ELSE CAST(m.prompt_tokens AS TEXT) END, \
           CASE WHEN m.completion_tokens IS NULL THEN 'null' ELSE CAST(m.completion_tokens AS TEXT) END \
         FROM messages m WHERE m.role = 'assistant' ORDER BY m.model",
    )
    .await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    let (old_side, usage_side) = (&stored[0], &stored[1]);
    assert_eq!(old_side[0], "old-server", "{stored:?}");
    // Counted from the stream: one token per content chunk, the prompt unknown.
    let counted: i64 = old_side[3].parse().unwrap();
    assert!(counted > 0, "{stored:?}");
    assert_eq!(old_side[2], "null", "{stored:?}");
    // The endpoint that reports usage: its counts as reported.
    assert_eq!(usage_side[3], "12", "{stored:?}");
    assert!(usage_side[2].parse::<i64>().unwrap() > 0, "{stored:?}");
    assert!(counted <= 12, "{stored:?}");
}

//! The controller's router driven in process (no port, no process): the wiring of `App::build`
//! seen through requests, on a fresh SQLite file.

use std::time::Duration;

use arena_controller::gateway::dispatch::Policy;
use arena_controller::site::ArenaSettings;
use arena_controller::{App, ControllerOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

fn options(dir: &std::path::Path, api_keys: &[&str]) -> ControllerOptions {
    ControllerOptions {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        ops_addr: "127.0.0.1:0".parse().unwrap(),
        worker_token: None,
        worker_ca: None,
        grpc_tls_cert: None,
        grpc_tls_key: None,
        api_keys: api_keys.iter().map(|k| k.to_string()).collect(),
        policy: Policy::ShortestQueue,
        redis_url: None,
        endpoints: None,
        heartbeat_interval: Duration::from_secs(2),
        worker_expiry: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(1),
        database_url: format!("sqlite://{}", dir.join("arena.db").display()),
        arena: ArenaSettings::default(),
        terms: None,
        model_info: None,
        moderation_rules: None,
        moderation_url: None,
        moderation_api_key: None,
        hard_prompt_labeller: None,
        hard_prompt_model: None,
        hard_prompt_api_key: None,
        rate_limit: 0,
        api_rate_limit: 0,
        vote_rate_limit: 0,
        rate_window: Duration::from_secs(60),
        max_body_bytes: 4096,
        leaderboard_interval: Duration::from_secs(1),
        leaderboard_bootstrap: 10,
        category_min_battles: 10,
        daily_snapshots: true,
        timeouts: Default::default(),
        breaker: Default::default(),
        server_limits: Default::default(),
    }
}

/// Sends one request through the router; returns the status and the JSON body (Null if none).
async fn call(app: &App, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_json(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_router_serves_ops_the_api_and_the_arena_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(options(dir.path(), &[])).await.unwrap();

    assert_eq!(
        call(&app, get("/health")).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    // Publicly, readiness only; the details are on the ops router.
    assert_eq!(
        call(&app, get("/ready")).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let ready = app.ops.clone().oneshot(get("/ready")).await.unwrap();
    let ready: Value = serde_json::from_slice(
        &axum::body::to_bytes(ready.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ready,
        json!({"status": "ready", "workers": 0, "store": "sqlite"})
    );
    for path in ["/api/workers", "/metrics"] {
        assert_eq!(
            call(&app, get(path)).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        call(&app, get("/v1/models")).await,
        (StatusCode::OK, json!({"object": "list", "data": []}))
    );

    // No workers: a battle cannot start, and says why.
    let (status, body) = call(
        &app,
        post_json("/api/battles", json!({"mode": "anonymous"})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["error"]["message"],
        "an anonymous battle needs two models; 0 available right now"
    );
    // A chat completion for a model nobody serves is an OpenAI-shaped error, not a hang.
    let (status, body) = call(
        &app,
        post_json(
            "/v1/chat/completions",
            json!({"model": "nobody", "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    )
    .await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{body}"
    );

    // Every request above was counted by route pattern.
    let response = app.ops.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(r#"route="/api/battles",status="503""#),
        "{text}"
    );
}

#[tokio::test]
async fn api_keys_guard_v1_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(options(dir.path(), &["k1"])).await.unwrap();
    let (status, body) = call(&app, get("/v1/models")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let with_key = Request::get("/v1/models")
        .header("authorization", "Bearer k1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, with_key).await.0, StatusCode::OK);
    assert_eq!(call(&app, get("/health")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(options(dir.path(), &[])).await.unwrap();
    let long = "x".repeat(8192);
    for path in ["/v1/chat/completions", "/v1/completions", "/api/battles"] {
        let (status, body) = call(
            &app,
            post_json(
                path,
                json!({"model": "m", "prompt": long, "messages": [{"role": "user", "content": long}]}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(
            body["error"]["type"], "invalid_request_error",
            "{path}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-body-bytes"),
            "{path}: {body}"
        );
    }
    // Under the limit the same route parses the body as before.
    let (status, _) = call(
        &app,
        post_json(
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "short"}]}),
        ),
    )
    .await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Options with two API-hosted contestants, `alpha` and `beta` (never called: creating a
/// battle or a chat only names them), and the terms of use in `terms` when given.
fn with_contestants(dir: &std::path::Path, terms: Option<&str>) -> ControllerOptions {
    let endpoints = dir.join("endpoints.toml");
    std::fs::write(
        &endpoints,
        "[[endpoint]]\nname = \"alpha\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n\
         [[endpoint]]\nname = \"beta\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let mut opts = options(dir, &[]);
    opts.endpoints = Some(endpoints);
    if let Some(text) = terms {
        let file = dir.join("terms.txt");
        std::fs::write(&file, text).unwrap();
        opts.terms = Some(file);
    }
    opts
}

/// A POST with a `Cookie` header.
fn post_with_cookie(path: &str, body: Value, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/json");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn the_config_carries_the_terms_and_their_version() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::build(options(dir.path(), &[])).await.unwrap();
    let (status, config) = call(&app, get("/api/config")).await;
    assert_eq!(status, StatusCode::OK);
    let text = config["terms"]["text"].as_str().unwrap();
    assert!(text.contains("research preview"), "{config}");
    assert!(text.contains("Creative Commons"), "{config}");
    let default_version = config["terms"]["version"].as_str().unwrap().to_string();
    assert_eq!(default_version.len(), 16, "{config}");

    let other = tempfile::tempdir().unwrap();
    let app = App::build(with_contestants(
        other.path(),
        Some("Be nice.\n\nReally.\n"),
    ))
    .await
    .unwrap();
    let (_, config) = call(&app, get("/api/config")).await;
    assert_eq!(config["terms"]["text"], "Be nice.\n\nReally.");
    let version = config["terms"]["version"].as_str().unwrap();
    assert_eq!(version.len(), 16);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    assert_ne!(version, default_version);
}

#[tokio::test]
async fn conversations_store_the_terms_their_client_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let opts = with_contestants(dir.path(), Some("Be nice."));
    let store = arena_store::connect(&opts.database_url).await.unwrap();
    let app = App::build(opts).await.unwrap();
    let (_, config) = call(&app, get("/api/config")).await;
    let version = config["terms"]["version"].as_str().unwrap().to_string();

    let battle = json!({"mode": "named", "model_a": "alpha", "model_b": "beta"});
    let right = format!("theme=dark; arena_terms={version}");
    let cases = [
        (Some(right.as_str()), Some(version.as_str())),
        // Older terms, another cookie, no cookie: created all the same, stored as NULL.
        (Some("arena_terms=0123456789abcdef"), None),
        (Some("theme=dark"), None),
        (None, None),
    ];
    for (cookie, want) in cases {
        let (status, created) = call(
            &app,
            post_with_cookie("/api/battles", battle.clone(), cookie),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let b = store
            .battle(created["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        for side in [&b.conversation_a, &b.conversation_b] {
            let c = store.conversation(side).await.unwrap().unwrap();
            assert_eq!(
                c.terms_version.as_deref(),
                want,
                "battle, cookie {cookie:?}"
            );
        }

        let (status, created) = call(
            &app,
            post_with_cookie("/api/chats", json!({"model": "alpha"}), cookie),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let c = store
            .conversation(created["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.terms_version.as_deref(), want, "chat, cookie {cookie:?}");
    }
}

#[tokio::test]
async fn terms_from_a_missing_file_stop_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), &[]);
    let missing = dir.path().join("no-such-terms.txt");
    opts.terms = Some(missing.clone());
    let e = App::build(opts).await.err().expect("start-up fails");
    let e = e.to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert!(e.contains("terms of use"), "{e}");
}

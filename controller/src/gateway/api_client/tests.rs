//! The API client against scripted remotes: timeouts, hang-ups, and the retry without
//! `stream_options`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A remote on a free loopback port that reads each request and answers `answer` (then
/// holds the connection open, sending nothing more); returns its base URL and whether a
/// connection was closed by the controller.
async fn remote(answer: &'static str) -> (String, Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicBool::new(false));
    let seen = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(answer.as_bytes()).await;
                // Reads until the controller hangs up.
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                seen.store(true, Ordering::SeqCst);
            });
        }
    });
    (url, closed)
}

fn endpoint(base_url: String) -> Endpoint {
    Endpoint {
        name: "remote".into(),
        base_url,
        model: "m".into(),
        api_key: None,
        battle_only: false,
    }
}

fn request() -> GenerateRequest {
    GenerateRequest {
        input: Some(generate_request::Input::Chat(arena_proto::v1::Messages {
            messages: vec![arena_proto::v1::ChatMessage {
                role: "user".into(),
                content: "hi".into(),
            }],
        })),
        ..Default::default()
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(300),
        between_tokens: Duration::from_millis(300),
    }
}

/// `f` within 10 s, far longer than the timeouts under test.
async fn soon<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("still waiting after 10 s")
}

#[tokio::test]
async fn a_remote_silent_before_its_first_token_is_a_504_and_is_hung_up_on() {
    // Headers, then nothing.
    let (url, closed) = remote("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").await;
    let http = http_client(&timeouts()).unwrap();
    let e = soon(start(&http, &endpoint(url), request(), &timeouts()))
        .await
        .err()
        .expect("a silent remote started a generation");
    assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        e.message.contains("sent no first token within 300 ms"),
        "{}",
        e.message
    );
    soon(async {
        while !closed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_remote_stalling_mid_stream_times_out_and_is_hung_up_on() {
    let (url, closed) = remote(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
         data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
    )
    .await;
    let http = http_client(&timeouts()).unwrap();
    let mut started = soon(start(&http, &endpoint(url), request(), &timeouts()))
        .await
        .unwrap();
    assert_eq!(started.next_message().await.unwrap().text, "Hi");
    let broken = soon(started.next_message()).await.unwrap_err();
    assert!(
        matches!(broken, super::super::stream::Broken::TimedOut(_)),
        "{broken:?}"
    );
    soon(async {
        while !closed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A remote that refuses any request carrying `stream_options` with `status` and
/// streams an answer without usage to the others; returns its base URL and the bodies it
/// received.
async fn strict_remote(status: u16) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let refuse = body.get("stream_options").is_some();
                log.lock().unwrap().push(body);
                if refuse {
                    let code = StatusCode::from_u16(status).unwrap();
                    let msg = json!({"error": {"message": "extra fields not permitted: stream_options"}});
                    return (code, axum::Json(msg)).into_response();
                }
                let sse = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n\
                           data: {\"choices\":[{\"delta\":{\"content\":\"Bon\"}}]}\r\n\r\n\
                           data: {\"choices\":[{\"delta\":{\"content\":\"jour\"},\"finish_reason\":\"stop\"}]}\r\n\r\n\
                           data: [DONE]\r\n\r\n";
                ([("content-type", "text/event-stream")], sse).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Reads a started generation to its last message: the text and that message.
async fn drain(mut started: Started) -> (String, GenerateResponse) {
    let mut text = String::new();
    loop {
        let m = soon(started.next_message()).await.unwrap();
        text.push_str(&m.text);
        if m.finish_reason != 0 {
            return (text, m);
        }
    }
}

#[tokio::test]
async fn a_remote_refusing_stream_options_is_asked_again_without_and_its_tokens_counted() {
    for status in [400, 422] {
        let (url, seen) = strict_remote(status).await;
        let http = http_client(&timeouts()).unwrap();
        let started = soon(start(&http, &endpoint(url), request(), &timeouts()))
            .await
            .unwrap_or_else(|e| panic!("{status}: {}", e.message));
        let (text, last) = drain(started).await;
        assert_eq!(text, "Bonjour");
        let usage = last.usage.unwrap();
        assert_eq!((usage.completion_tokens, usage.estimated), (2, true));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "one retry");
        assert_eq!(seen[0]["stream_options"]["include_usage"], true);
        assert!(seen[1].get("stream_options").is_none(), "{}", seen[1]);
        assert_eq!(seen[1]["stream"], true);
    }
}

#[tokio::test]
async fn a_request_refused_for_another_reason_is_retried_once_and_reported() {
    // Refuses everything: the retry's refusal is the answer, and there is one retry.
    let seen = Arc::new(std::sync::Mutex::new(0));
    let count = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                *count.lock().unwrap() += 1;
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": {"message": "temperature is too high"}})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = http_client(&timeouts()).unwrap();
    let e = soon(start(&http, &endpoint(url), request(), &timeouts()))
        .await
        .err()
        .expect("a refused request started");
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert!(
        e.message.contains("temperature is too high"),
        "{}",
        e.message
    );
    assert_eq!(*seen.lock().unwrap(), 2);
}

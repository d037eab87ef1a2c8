//! The OpenAI-compatible client against a scripted endpoint on a real socket: overload is
//! retried as long as `Retry-After` asks, server faults with backoff, refusals fail at once
//! with the endpoint's own message, and a run of faults gives up saying how often it tried.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_eval::client::{ChatClient, ChatRequest, Message, RetryPolicy};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::json;

/// One scripted answer: status, Retry-After, body.
type Scripted = (u16, Option<&'static str>, String);

/// When each call came, with its Authorization header.
type Calls = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

/// What the endpoint answers, in order (the last one repeats), and when each call came with
/// which Authorization header.
#[derive(Clone)]
struct Script {
    answers: Arc<Vec<Scripted>>,
    calls: Calls,
}

fn completion(text: &str) -> String {
    json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    })
    .to_string()
}

async fn endpoint(script: Script) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap| {
            let script = script.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let n = {
                    let mut calls = script.calls.lock().unwrap();
                    calls.push((Instant::now(), auth));
                    calls.len() - 1
                };
                let (status, retry_after, body) = &script.answers[n.min(script.answers.len() - 1)];
                let mut response: Response = (
                    StatusCode::from_u16(*status).unwrap(),
                    [("content-type", "application/json")],
                    body.clone(),
                )
                    .into_response();
                if let Some(wait) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", wait.parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn script(answers: Vec<Scripted>) -> Script {
    Script {
        answers: Arc::new(answers),
        calls: Arc::new(Mutex::new(Vec::new())),
    }
}

fn client(url: &str, attempts: u32) -> ChatClient {
    let retry = RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(5),
    };
    ChatClient::new(url, Some("sk-test".into()), Duration::from_secs(10), retry).unwrap()
}

async fn ask(c: &ChatClient) -> Result<String, String> {
    let messages = [Message::new("user", "Hi?")];
    c.chat(&ChatRequest {
        model: "judge",
        messages: &messages,
        temperature: 0.0,
        max_tokens: Some(8),
        logprobs: false,
        top_logprobs: None,
        user: None,
    })
    .await
    .map(|r| r.content)
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn overload_waits_as_retry_after_says_then_succeeds() {
    let s = script(vec![
        (
            429,
            Some("1"),
            json!({"error": {"message": "slow down"}}).to_string(),
        ),
        (503, None, "busy".into()),
        (200, None, completion("Rating: [[7]]")),
    ]);
    let url = endpoint(s.clone()).await;
    let reply = client(&url, 5);
    assert_eq!(ask(&reply).await.unwrap(), "Rating: [[7]]");
    let calls = s.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    // Retry-After: 1 is honoured although the backoff alone would wait 50 ms.
    assert!(
        calls[1].0 - calls[0].0 >= Duration::from_millis(950),
        "{:?}",
        calls[1].0 - calls[0].0
    );
    // The 503 without Retry-After waits the doubled backoff, not a second.
    assert!(calls[2].0 - calls[1].0 < Duration::from_millis(900));
    assert!(calls
        .iter()
        .all(|c| c.1.as_deref() == Some("Bearer sk-test")));
}

#[tokio::test]
async fn a_refusal_fails_at_once_with_the_endpoints_message() {
    let s = script(vec![(
        404,
        None,
        json!({"error": {"message": "model 'judge' is not served here"}}).to_string(),
    )]);
    let url = endpoint(s.clone()).await;
    let e = ask(&client(&url, 5)).await.unwrap_err();
    assert!(
        e.contains("404") && e.contains("model 'judge' is not served here"),
        "{e}"
    );
    assert_eq!(s.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn endless_faults_give_up_after_the_attempts() {
    let s = script(vec![(500, None, "boom".into())]);
    let url = endpoint(s.clone()).await;
    let e = ask(&client(&url, 3)).await.unwrap_err();
    assert!(
        e.contains("500") && e.contains("gave up after 3 attempts"),
        "{e}"
    );
    assert_eq!(s.calls.lock().unwrap().len(), 3);
    // A 200 that is not a completion is a fault too, retried, then reported.
    let s = script(vec![(200, None, "<html>proxy page</html>".into())]);
    let url = endpoint(s.clone()).await;
    let e = ask(&client(&url, 2)).await.unwrap_err();
    assert!(e.contains("not a chat completion"), "{e}");
    assert_eq!(s.calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_endpoint_that_is_not_there_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = ask(&client(&format!("http://127.0.0.1:{port}/v1"), 2))
        .await
        .unwrap_err();
    assert!(
        e.contains(&format!("127.0.0.1:{port}/v1/chat/completions")),
        "{e}"
    );
    assert!(e.contains("gave up after 2 attempts"), "{e}");
}

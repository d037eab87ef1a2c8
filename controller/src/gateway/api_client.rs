//! Generations on API-hosted endpoints: an OpenAI-compatible `/chat/completions` stream,
//! read as server-sent events and turned into the same messages a worker sends.

use std::time::Instant;

use arena_proto::v1::{generate_request, FinishReason, GenerateRequest, GenerateResponse, Usage};
use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio_stream::StreamExt;
use tonic::Status;

use super::contestants::Endpoint;
use super::stream::Started;
use crate::config::Timeouts;
use crate::error::{ApiError, ControllerError};

/// The HTTP client for API-hosted contestants (and moderation): connecting may take
/// `timeouts.connect` at most; the waits for tokens are bounded per call.
pub fn http_client(timeouts: &Timeouts) -> Result<reqwest::Client, ControllerError> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .build()
        .map_err(|e| ControllerError::Config(format!("the HTTP client: {e}")))
}

/// 504 naming the endpoint that sent nothing in time.
fn timed_out(endpoint: &Endpoint, timeouts: &Timeouts) -> ApiError {
    ApiError {
        status: StatusCode::GATEWAY_TIMEOUT,
        code: "upstream_timeout",
        ..ApiError::unavailable(format!(
            "endpoint '{}' sent no first token within {} ms (the first-token timeout)",
            endpoint.name,
            timeouts.first_token.as_millis()
        ))
    }
}

/// The request body for the remote.
fn body(endpoint: &Endpoint, req: &GenerateRequest) -> Result<Value, ApiError> {
    let messages: Vec<Value> = match &req.input {
        Some(generate_request::Input::Chat(m)) => m
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect(),
        _ => {
            return Err(ApiError::invalid_param(
                "prompt",
                format!(
                    "'{}' is API-hosted: only chat completions are supported for it",
                    endpoint.name
                ),
            ))
        }
    };
    let p = req.params.clone().unwrap_or_default();
    let mut b = json!({
        "model": endpoint.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let fields = [
        ("temperature", p.temperature.map(|v| json!(v))),
        ("top_p", p.top_p.map(|v| json!(v))),
        ("max_tokens", p.max_new_tokens.map(|v| json!(v))),
        ("seed", p.seed.map(|v| json!(v))),
        ("stop", (!p.stop.is_empty()).then(|| json!(p.stop))),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            b[k] = v;
        }
    }
    Ok(b)
}

/// Maps the remote's refusal to our error: its client errors pass through, its other
/// failures (including refusing our key) are the gateway's problem, 502.
async fn refusal(endpoint: &Endpoint, response: reqwest::Response) -> ApiError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(text);
    let message = format!("endpoint '{}' answered {status}: {message}", endpoint.name);
    match status.as_u16() {
        400 | 404 | 422 => ApiError::bad_request(message),
        429 => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            ..ApiError::bad_request(message)
        },
        _ => ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "upstream_error",
            ..ApiError::internal(message)
        },
    }
}

/// Parses one SSE `data:` payload into a message; `None` for chunks with nothing to say.
fn parse(
    data: &str,
    finish: &mut Option<FinishReason>,
    usage: &mut Option<Usage>,
) -> Result<Option<GenerateResponse>, Status> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Status::internal(format!("bad chunk from the endpoint: {e}")))?;
    if let Some(err) = v.get("error") {
        let msg = err["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        return Ok(Some(GenerateResponse {
            finish_reason: FinishReason::Error as i32,
            error: msg,
            ..Default::default()
        }));
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        *usage = Some(Usage {
            prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0) as u32,
            completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0) as u32,
            // OpenAI's own count of prompt tokens its cache served.
            cached_tokens: u["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap_or(0) as u32,
        });
    }
    let choice = &v["choices"][0];
    match choice["finish_reason"].as_str() {
        Some("length") => *finish = Some(FinishReason::Length),
        Some(_) => *finish = Some(FinishReason::Stop),
        None => {}
    }
    Ok(choice["delta"]["content"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(|t| GenerateResponse {
            text: t.to_string(),
            ..Default::default()
        }))
}

/// Starts a streamed chat completion on the endpoint: its first token within
/// `timeouts.first_token`, each next one within `timeouts.between_tokens`.
pub async fn start(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    req: GenerateRequest,
    timeouts: &Timeouts,
) -> Result<Started, ApiError> {
    let dispatched = Instant::now();
    let deadline = tokio::time::Instant::now() + timeouts.first_token;
    let mut call = http
        .post(format!("{}/chat/completions", endpoint.base_url))
        .json(&body(endpoint, &req)?);
    if let Some(key) = &endpoint.api_key {
        call = call.bearer_auth(key);
    }
    let response = tokio::time::timeout_at(deadline, call.send())
        .await
        .map_err(|_| timed_out(endpoint, timeouts))?
        .map_err(|e| {
            ApiError::unavailable(format!("endpoint '{}' is unreachable: {e}", endpoint.name))
        })?;
    if !response.status().is_success() {
        return Err(refusal(endpoint, response).await);
    }
    let mut bytes = response.bytes_stream();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<GenerateResponse, Status>>(32);
    tokio::spawn(async move {
        let mut buf = String::new();
        let (mut finish, mut usage) = (None, None);
        loop {
            // The reader goes (a timeout, a client gone): drop the remote call with it.
            let chunk = tokio::select! {
                _ = tx.closed() => return,
                chunk = bytes.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::unavailable(format!(
                            "the endpoint's stream broke: {e}"
                        ))))
                        .await;
                    return;
                }
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for data in event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                {
                    if data == "[DONE]" {
                        let last = GenerateResponse {
                            finish_reason: finish.unwrap_or(FinishReason::Stop) as i32,
                            usage,
                            ..Default::default()
                        };
                        let _ = tx.send(Ok(last)).await;
                        return;
                    }
                    match parse(data, &mut finish, &mut usage) {
                        Ok(Some(m)) => {
                            if tx.send(Ok(m)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
        }
        let _ = tx
            .send(Err(Status::unavailable(
                "the endpoint's stream ended without [DONE]",
            )))
            .await;
    });
    let mut stream: super::stream::ResponseStream =
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    let first = tokio::time::timeout_at(deadline, stream.next())
        .await
        .map_err(|_| timed_out(endpoint, timeouts))?;
    let first = match first {
        Some(Ok(m)) => Some(m),
        Some(Err(s)) => {
            return Err(ApiError::unavailable(format!(
                "endpoint '{}': {}",
                endpoint.name,
                s.message()
            )))
        }
        None => None,
    };
    Ok(Started::new(
        stream,
        first,
        None,
        dispatched,
        timeouts.between_tokens,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn chunks_become_messages() {
        let (mut f, mut u) = (None, None);
        let m = parse(
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(m.unwrap().text, "Hi");
        assert!(parse(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            &mut f,
            &mut u
        )
        .unwrap()
        .is_none());
        parse(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(f, Some(FinishReason::Length));
        parse(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(u.unwrap().completion_tokens, 5);
        let e = parse(r#"{"error":{"message":"boom"}}"#, &mut f, &mut u)
            .unwrap()
            .unwrap();
        assert_eq!(e.finish_reason, FinishReason::Error as i32);
        assert!(parse("{oops", &mut f, &mut u).is_err());
    }

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
        let (url, closed) =
            remote("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").await;
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
}
